"""The Complete tab in a real browser (Chromium through Playwright): keep the top half of a held-out digit and
complete it; then draw strokes on the tab's canvas (the app's own, assets/drawing.js) with the mouse, keep them and
the blank in their box, and complete them: the status line says how many completions read as which digit, the figure
shows the kept part beside the completions, and the player plays the trajectory.  Stop ends a long run; an empty
canvas is refused naming the drawing.  No console errors."""

import re

import pytest

from tests.test_app_browser import Page, served  # noqa: F401  (the module's app + browser)
from tests.test_own_data_browser import _stroke

pytestmark = pytest.mark.browser


def _completed(P: Page, text: str = "read as") -> None:
    P.wait_text("#cp-status", text, timeout=120_000)
    P.page.wait_for_function(
        "document.querySelector('#cp-player .adiff-player')?.dataset.state === 'ready'", timeout=120_000
    )


def test_complete_a_digit_and_your_own_strokes(served):  # noqa: F811
    from playwright.sync_api import expect

    _, url, browser = served
    P = Page(browser, url, height=1100)
    page = P.page
    P.tab("complete")
    expect(page.locator("#cp-keep")).to_be_visible(timeout=30_000)

    # the top half of a held-out 0
    page.click("#cp-complete")
    _completed(P)
    assert "held-out 0" in P.text("#cp-status") and "reproduced exactly" in P.text("#cp-status")
    traces = P.plot("cp-figure")
    assert [t["name"] for t in traces] == ["kept", "completion"], traces
    P.shoot("7-complete-top-half")

    # your own strokes: a bar along the top, kept with the blank in its box
    page.locator("#cp-keep").get_by_label("my strokes and their box").check()
    page.locator("#cp-draw button.label-wrap, #cp-draw > button").first.click()
    canvas = page.locator("#cp-sketch canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    canvas.scroll_into_view_if_needed()
    before = len(P.requests)
    _stroke(page, canvas.bounding_box(), 0.1)
    expect(page.locator("#cp-sketch .adiff-draw-count")).to_contain_text("1 stroke")
    assert len(P.requests) == before, P.requests[before:]  # drawing talks to no one
    page.click("#cp-complete")
    _completed(P, "Kept: my strokes and their box")
    assert "read as" in P.text("#cp-status")
    P.shoot("7-complete-strokes")

    # Stop during a long run (DDPM, all 1,000 steps): the status says "stopped" and the server ends the run
    page.locator("#cp-keep").get_by_label("top half").check()
    page.locator("button.label-wrap", has_text=re.compile(r"^\s*Sampler")).click()
    page.locator("#cp-sampler").get_by_label("ddpm").check()
    P.set_number("#cp-steps input[type=number]", 1000)
    page.click("#cp-complete")
    P.wait_text("#cp-status", "completing", timeout=90_000)
    page.click("#cp-stop", force=True)
    P.wait_text("#cp-status", "stopped", timeout=20_000)
    page.wait_for_timeout(1500)
    assert "stopped" in P.text("#cp-status") and "read as" not in P.text("#cp-status")

    # an empty canvas is refused, naming the drawing
    page.locator("#cp-keep").get_by_label("my strokes", exact=True).check()
    page.locator("#cp-sketch .adiff-draw-clear").click()
    page.click("#cp-complete")
    expect(page.locator(".toast-body").filter(has_text="drawing: the canvas is empty").first).to_be_visible(
        timeout=30_000
    )
    P.check_clean()
