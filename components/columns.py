"""The arrangement every tab shares (widgets only, no events): three columns, the lesson beside the result.

* ``controls_column()``: the settings, narrow, with the main button in the sticky action bar at its foot.
* ``result_column()``: the status line, the main figure (or the player: class ``MAIN``), then what is secondary.
* ``lesson_column()``: the tab's introduction folded under its heading (``intro``), then the "try this → notice
  that" prompts, beside the result.
* ``fit_script()``: once per page, assets/fit.js: a plotly figure whose panels would be narrower than 200 px (a
  phone) gets them stacked in one column, in the browser.

At 1440×900 the three stand side by side, so after a run a tab's main button, its main figure and its prompts are
on screen together (tests/test_layout_browser.py measures it); below about 1,000 px the lesson column wraps under the
other two, and on a phone all three stack in that order.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .links import link_row

__all__ = ["intro", "tab_row", "controls_column", "result_column", "lesson_column", "fit_script", "WIDTHS", "MAIN"]

FIT_JS = (Path(__file__).resolve().parent.parent / "assets" / "fit.js").read_text()

# The class of a tab's main figure (or player): on a phone it comes first in the result column, right under the
# action bar, and the status line under it (app.css).
MAIN = "adiff-main"
# (scale, min_width in px) of the three columns: at 1440 px about 270 | 810 | 270.
WIDTHS = {"controls": (1, 270), "result": (3, 420), "lesson": (1, 250)}


def intro(markdown: str, tab: str) -> gr.Accordion:
    """A tab's introduction ("### Heading" then paragraphs) folded under its heading (elem_id ``<tab>-intro``): the
    lesson starts above the fold and the teaching text is one click away.  Returns the accordion."""
    first, _, body = markdown.strip().partition("\n")
    heading = first.lstrip("#").strip()
    with gr.Accordion(
        f"{heading} · how it works", open=False, elem_id=f"{tab}-intro", elem_classes=["adiff-intro"]
    ) as acc:
        gr.Markdown(body.strip())
    return acc


def tab_row() -> gr.Row:
    """The row that holds a tab's three columns."""
    return gr.Row(equal_height=False, elem_classes=["adiff-tab-row"])


def _column(kind: str) -> gr.Column:
    scale, min_width = WIDTHS[kind]
    return gr.Column(scale=scale, min_width=min_width, elem_classes=[f"adiff-{kind}-col"])


def controls_column() -> gr.Column:
    return _column("controls")


def result_column() -> gr.Column:
    return _column("result")


def lesson_column() -> gr.Column:
    return _column("lesson")


def fit_script() -> gr.HTML:
    """An empty block whose script (assets/fit.js) stacks a figure's side-by-side panels where the screen is narrow."""
    return gr.HTML("", js_on_load=FIT_JS, container=False, padding=False, elem_id="adiff-fit-script")


def figure_result(prefix: str, tab: str, start: str, figure, label: str, details: str):
    """A result column's usual content: the status line (``start`` until a run), one main figure (``figure`` until a
    run), the numbers as JSON in a closed "Details" section and the tab's link row.  Call inside result_column().
    Returns (status, plot, summary, link button, link box)."""
    status = gr.Markdown(start, elem_id=f"{prefix}-status", elem_classes=["adiff-status"])
    plot = gr.Plot(
        figure, label=label, show_label=False, elem_id=f"{prefix}-figure", elem_classes=["adiff-figure", MAIN]
    )
    with gr.Accordion(f"Details: {details} (JSON)", open=False):
        summary = gr.JSON(label=details, elem_id=f"{prefix}-summary", max_height=320)
    link_btn, link_box = link_row(tab)
    return status, plot, summary, link_btn, link_box
