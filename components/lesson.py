"""A lesson is data (DESIGN.md habit 17): each "try this → notice that" prompt is a record of its tab, what to try,
what you will notice, the settings as a deep link ("set this up" opens the tab with them), and the claim as a check
on the numbers the app computes.  The page text is rendered from the records, and tests/test_lessons.py runs every
check through the tab's own handlers on several seeds: a prompt whose claim does not hold when a room tries it
fails the suite.

Each tab folder has a ``lessons.py`` with its ``LESSONS``; a check is ``check(ctx, seed) -> Outcome``: whether the
claim held for that seed and the numbers it was judged on (the test prints them when it fails)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import gradio as gr

__all__ = ["Lesson", "Outcome", "render", "lesson_markdown", "SEEDS", "REQUIRED"]

SEEDS = (1, 2, 3, 4, 5)  # a claim is checked on these seeds ...
REQUIRED = 4  # ... and must hold on at least this many (or the check is a paired statistic at 2 SE)


@dataclass(frozen=True)
class Outcome:
    """One seed's verdict on a claim, with the numbers behind it."""

    holds: bool
    numbers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Lesson:
    tab: str  # the tab's id (its deep-link name)
    try_: str  # what to do, in markdown: "Set **Steps = 5** and Generate"
    notice: str  # what you will see: "the samples land off the moons"
    claim: str  # the check in words, for the test's report: "MMD² at 5 steps > 3 × MMD² at 25"
    check: Callable[[Any, int], Outcome]  # (ctx, seed) -> Outcome, through the tab's own handlers
    link: dict = field(default_factory=dict)  # deep-link settings (the tab's link keys) that set the lesson up
    deterministic: bool = False  # no randomness: one seed says it all

    def url(self) -> str:
        """The relative deep link that opens the tab with the lesson's settings."""
        return "?" + urlencode({"tab": self.tab, **{k: str(v) for k, v in self.link.items()}})

    def seeds(self) -> Sequence[int]:
        return SEEDS[:1] if self.deterministic else SEEDS


def lesson_markdown(lessons: Sequence[Lesson]) -> str:
    """The prompts of one tab as a short list: try → notice, each with its "set this up" link."""
    items = []
    for ls in lessons:
        setup = f" · [set this up]({ls.url()})" if ls.link else ""  # urlencode leaves no markdown syntax
        items.append(f"- {ls.try_} → {ls.notice}{setup}")
    return "**Try this →** notice that\n" + "\n".join(items)


def render(tab: str, lessons: Sequence[Lesson]) -> gr.Markdown:
    """The tab's prompts under its figure (elem_id ``<tab>-try``)."""
    return gr.Markdown(lesson_markdown(lessons), elem_classes=["adiff-try"], elem_id=f"{tab}-try")
