"""The app in a real browser (Debian's Chromium through Playwright): it renders, Generate streams and the frame
slider/Play scrub, Stop ends an adaptation, and closing the tab releases the session."""
import os
import shutil
import time

import pytest

from tests.app_helpers import preset_dir_with_fallbacks, torch_threads

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ADIFF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (apt-get install chromium, or set ADIFF_CHROMIUM)")
    playwright = pytest.importorskip("playwright.sync_api")
    import app as app_module

    with preset_dir_with_fallbacks(tmp_path_factory.mktemp("presets")), torch_threads(1):
        demo = app_module.build_app(device="cpu")
        _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield demo, url, browser
            finally:
                browser.close()
                demo.close()
                demo.adiff_context.store.close_all()


def status_text(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def test_the_app_in_a_browser(served):
    from playwright.sync_api import expect

    demo, url, browser = served
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(url)
    # tab 1 opens with curves and the cosine warning
    expect(page.locator("#sched-figure .js-plotly-plot .main-svg").first).to_be_visible(timeout=30_000)
    expect(page.locator("#sched-warnings")).to_contain_text("0.999 clip")

    # tab 3: Generate streams, then the slider and Play scrub the stored frames
    page.get_by_role("tab", name="3 · Reverse diffusion").click()
    page.locator("#rev-steps input[type=number]").fill("30")
    page.locator("#rev-steps input[type=number]").press("Enter")
    page.click("#rev-generate")
    page.wait_for_function("document.querySelector('#rev-status')?.innerText.includes('\"done\"')", timeout=60_000)
    expect(page.locator("#rev-figure .gtitle")).to_contain_text("t = 0")
    frame = page.locator("#rev-frame input[type=number]")
    frame.fill("5")
    frame.press("Enter")
    expect(page.locator("#rev-figure .gtitle")).to_contain_text("frame 6 of", timeout=20_000)
    page.click("#rev-play")
    expect(page.locator("#rev-figure .gtitle")).not_to_contain_text("frame 6 of", timeout=20_000)
    page.click("#rev-pause")
    expect(page.locator("#rev-gif")).to_contain_text(".gif")

    # tab 5: Stop ends a running adaptation
    page.get_by_role("tab", name="5 · Adaptation").click()
    page.locator("#ad-steps input").fill("200")
    page.locator("#ad-bs input").fill("32")
    page.click("#ad-start")
    page.wait_for_function("document.querySelector('#ad-status')?.innerText.includes('\"running\"')", timeout=90_000)
    page.click("#ad-stop")
    page.wait_for_function("document.querySelector('#ad-status')?.innerText.includes('\"stopped\"')", timeout=20_000)
    key = next(iter(demo.adiff_context.store.keys()))
    session = demo.adiff_context.store.peek(key)
    step = session.adaptation.adapter.steps
    time.sleep(2)
    assert session.adaptation.adapter.steps == step < 200  # the loop really stopped

    # closing the tab releases the session
    page.close()
    deadline = time.time() + 20
    while key in demo.adiff_context.store.keys() and time.time() < deadline:
        time.sleep(0.5)
    assert key not in demo.adiff_context.store.keys()
