"""Every lesson the page states holds when a room tries it (components/lesson.py).

Each "try this → notice that" prompt is a record whose claim is a check on the numbers the app computes, through the
tab's own handlers.  Here every claim runs on the lesson seeds and must hold on at least ``REQUIRED`` of them (a
deterministic lesson: on its one run); the page's prompts are rendered from the records; and every "set this up"
link applies cleanly through the tab's own deep-link code (no problem reported, no key left unused)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import components
from components.lesson import REQUIRED, Lesson, lesson_markdown
from components.links import LinkParams

TAB_FOLDERS = sorted(m.name for m in pkgutil.iter_modules(components.__path__) if m.ispkg)


def _lessons() -> dict[str, list[Lesson]]:
    out = {}
    for tab in TAB_FOLDERS:
        try:
            mod = importlib.import_module(f"components.{tab}.lessons")
        except ModuleNotFoundError:
            continue
        out[tab] = list(mod.LESSONS)
    return out


LESSONS = _lessons()
ALL = [(tab, i, ls) for tab, lessons in LESSONS.items() for i, ls in enumerate(lessons)]


@pytest.fixture(scope="module")
def ctx():
    import tempfile
    from pathlib import Path

    from components.context import AppContext
    from tests.app_helpers import preset_dir_with_fallbacks, torch_threads

    with tempfile.TemporaryDirectory() as tmp, preset_dir_with_fallbacks(Path(tmp)), torch_threads(1):
        c = AppContext(device="cpu")
        yield c
        c.store.close_all()


@pytest.fixture(scope="module")
def demo():
    import tempfile
    from pathlib import Path

    import app
    from tests.app_helpers import preset_dir_with_fallbacks

    with tempfile.TemporaryDirectory() as tmp, preset_dir_with_fallbacks(Path(tmp)):
        d = app.build_app(device="cpu")
        yield d
        d.adiff_context.store.close_all()


def test_every_tab_folder_states_two_or_three_lessons():
    assert LESSONS, "no lessons found"
    for tab, lessons in LESSONS.items():
        assert 2 <= len(lessons) <= 3, tab
        assert all(ls.tab == tab for ls in lessons), tab


@pytest.mark.parametrize(("tab", "index", "lesson"), ALL, ids=[f"{t}-{i}" for t, i, _ in ALL])
def test_the_lesson_holds_on_the_lesson_seeds(ctx, tab, index, lesson):
    outcomes = {seed: lesson.check(ctx, seed) for seed in lesson.seeds()}
    held = sum(o.holds for o in outcomes.values())
    need = len(outcomes) if lesson.deterministic else REQUIRED
    report = "\n".join(f"  seed {s}: {'✓' if o.holds else '✗'} {o.numbers}" for s, o in outcomes.items())
    assert held >= need, f"{tab}: '{lesson.try_} → {lesson.notice}'\nclaim: {lesson.claim}\n{report}"


@pytest.mark.parametrize(("tab", "index", "lesson"), ALL, ids=[f"{t}-{i}" for t, i, _ in ALL])
def test_the_set_this_up_link_applies_cleanly(demo, tab, index, lesson):
    link = demo.adiff_links[tab]
    q = LinkParams({"tab": tab, **{k: str(v) for k, v in lesson.link.items()}})
    link.apply(q, None)
    assert not q.problems and not q.unused(), (q.problems, q.unused())


def test_the_page_shows_the_records():
    """The prompts on the page are made from the records: each tab's markdown holds every lesson's words and link."""
    for tab, lessons in LESSONS.items():
        text = lesson_markdown(lessons)
        for ls in lessons:
            assert ls.try_ in text and ls.notice in text
            if ls.link:
                assert ls.url() in text


def test_a_claim_that_fails_is_caught():
    """Negative control: a lesson whose check fails on two seeds of five fails the rule."""
    from components.lesson import Outcome

    bad = Lesson("x", "try", "notice", "claim", lambda ctx, seed: Outcome(seed > 2))
    held = sum(bad.check(None, s).holds for s in bad.seeds())
    assert held < REQUIRED
