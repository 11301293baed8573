"""Your own data in a real browser (Chromium through Playwright): draw a stroke on the Train tab's canvas with the
mouse, press 'Use my drawing', and the preview shows the points sampled from the ink along the stroke; the dataset
list switches to 'my drawing'.  An empty canvas shows an error naming the drawing.  No console errors."""

import pytest

from tests.test_app_browser import Page, served  # noqa: F401  (the module's app + browser)

pytestmark = pytest.mark.browser


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
    expect(page.get_by_text("drawing").filter(has_text="empty").first).to_be_visible(timeout=30_000)

    # Pick the brush, draw a horizontal stroke across the middle of the canvas, then use it.
    page.locator("#tr-sketch button[aria-label=Brush]").click()
    canvas = page.locator("#tr-sketch canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    box = canvas.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.15, y)
    page.mouse.down()
    for k in range(1, 21):
        page.mouse.move(box["x"] + box["width"] * (0.15 + 0.7 * k / 20), y, steps=2)
    page.mouse.up()
    page.locator("#tr-use-drawing").click()
    P.wait_text("#tr-own-status", "inked_pixels", timeout=60_000)
    traces = P.plot("tr-own-preview")
    assert traces and traces[0]["name"] == "data x₀" and traces[0]["n"] == 2000, traces
    ys = page.evaluate("() => document.querySelector('#tr-own-preview .js-plotly-plot').data[0].y")
    assert max(abs(v) for v in ys) < 0.6, "the points lie along the horizontal stroke"
    expect(page.locator("#tr-dataset input")).to_have_value("my drawing")
    P.shoot("6-train-own-drawing")
    P.check_clean()
