"""Your own data in a real browser (Chromium through Playwright): draw strokes on the Train tab's canvas (the app's
own, assets/drawing.js) with the mouse, press 'Use my drawing', and the preview shows the points sampled from the ink
along the strokes; the dataset list switches to 'my drawing' and a model trains on it.  Drawing sends nothing to the
server (the click sends the strokes as coordinates); undo and clear work; an empty canvas shows an error naming the
drawing.  No console errors."""

import pytest

from tests.test_app_browser import Page, served  # noqa: F401  (the module's app + browser)

pytestmark = pytest.mark.browser

COUNT = "#tr-sketch .adiff-draw-count"


def _stroke(page, box, y_frac: float, x0: float = 0.15, x1: float = 0.85) -> None:
    """A horizontal stroke across the canvas at ``y_frac`` of its height, drawn with the mouse."""
    y = box["y"] + box["height"] * y_frac
    page.mouse.move(box["x"] + box["width"] * x0, y)
    page.mouse.down()
    for k in range(1, 21):
        page.mouse.move(box["x"] + box["width"] * (x0 + (x1 - x0) * k / 20), y, steps=2)
    page.mouse.up()


def test_draw_a_dataset_with_the_mouse(served):  # noqa: F811
    from playwright.sync_api import expect

    _, url, browser = served
    P = Page(browser, url, height=1100)
    page = P.page
    P.tab("train")
    own = page.locator("#tr-own")
    expect(own).to_be_visible(timeout=30_000)

    # An empty canvas: the error names the drawing.
    page.locator("#tr-use-drawing").click()
    expect(page.locator(".toast-body").filter(has_text="drawing: the canvas is empty").first).to_be_visible(
        timeout=30_000
    )

    canvas = page.locator("#tr-sketch canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    before = len(P.requests)
    _stroke(page, box, 0.25)  # a stroke near the top, then undone
    expect(page.locator(COUNT)).to_contain_text("1 stroke")
    page.locator("#tr-sketch .adiff-draw-undo").click()
    expect(page.locator(COUNT)).to_contain_text("empty")
    _stroke(page, box, 0.5)  # the one that stays: across the middle
    expect(page.locator(COUNT)).to_contain_text("1 stroke")
    assert len(P.requests) == before, P.requests[before:]  # drawing talks to no one
    page.locator("#tr-use-drawing").click()
    P.wait_text("#tr-own-status", "inked_pixels", timeout=60_000)
    traces = P.plot("tr-own-preview")
    assert traces and traces[0]["name"] == "data x₀" and traces[0]["n"] == 2000, traces
    ys = page.evaluate("() => document.querySelector('#tr-own-preview .js-plotly-plot').data[0].y")
    assert max(abs(v) for v in ys) < 0.3, "the points lie along the middle stroke only (the undone one is gone)"
    expect(page.locator("#tr-dataset input")).to_have_value("my drawing")
    P.shoot("6-train-own-drawing")

    # ... and a model trains on it
    P.set_number("#tr-steps input[type=number]", 30)
    page.click("#tr-train")
    P.wait_text("#tr-status-text", "done", timeout=120_000)
    assert "step 30 of 30" in P.text("#tr-status-text"), P.text("#tr-status-text")

    # Clear empties the canvas again: the next click is refused, naming the drawing
    page.locator("#tr-sketch .adiff-draw-clear").click()
    expect(page.locator(COUNT)).to_contain_text("empty")
    page.locator("#tr-use-drawing").click()
    expect(page.locator(".toast-body").filter(has_text="drawing: the canvas is empty").nth(0)).to_be_visible(
        timeout=30_000
    )
    P.check_clean()
