"""The Train tab's film and reflow in a real browser (Chromium through Playwright, tests/test_app_browser.py's
launch and helpers): a short run's film plays in the player (every snapshot a frame, Play advances them in the
browser without a request), and the reflow section straightens moons-flow with live progress.  Screenshots at
1440×900 and 390×844 go to artifacts/screenshots/."""

import pytest

from tests.test_app_browser import Page, app_in_chromium

pytestmark = pytest.mark.browser

FILM = "#tr-film .adiff-player"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    yield from app_in_chromium(tmp_path_factory)


def _film(P: Page) -> dict:
    return P.page.evaluate(f"""() => {{ const r = document.querySelector('{FILM}');
        return {{state: r.dataset.state, frame: +(r.dataset.frame ?? -1), frames: +(r.dataset.frames ?? 0),
                 label: r.querySelector('.adiff-frame-label')?.textContent || ''}}; }}""")


@pytest.mark.parametrize("width, height", [(1440, 900), (390, 844)])
def test_the_film_plays_and_reflow_straightens(served, width, height):
    _, url, browser = served
    P = Page(browser, url, width, height)
    page = P.page
    P.tab("train")
    page.wait_for_selector("#tr-train")
    page.locator("#tr-size").get_by_label("tiny").check()
    P.set_number("#tr-steps input[type=number]", 60)
    P.set_number("#tr-bs input[type=number]", 64)
    page.click("#tr-train")
    P.wait_text("#tr-status-text", "done", timeout=120_000)
    page.wait_for_function(f"document.querySelector('{FILM}')?.dataset.frames === '31'", timeout=30_000)
    st = _film(P)
    assert st["state"] == "ready" and st["label"].startswith("step 60 of 60"), st
    page.locator("#tr-film").scroll_into_view_if_needed()
    P.shoot(f"train-film-{width}")
    before = len(P.requests)
    slider = page.locator(f"{FILM} .adiff-frame")
    slider.fill("0")
    page.wait_for_function(f"document.querySelector('{FILM}').dataset.frame === '0'", timeout=5_000)
    assert _film(P)["label"].startswith("step 0 of 60")
    page.click(f"{FILM} .adiff-play")
    page.wait_for_function(f"+document.querySelector('{FILM}').dataset.frame >= 3", timeout=10_000)
    page.click(f"{FILM} .adiff-play")
    assert len(P.requests) == before, P.requests[before:]  # scrubbing and Play run in the browser

    page.locator("#trr-section").scroll_into_view_if_needed()
    page.locator("#trr-section button.label-wrap").first.click()
    P.set_number("#trr-pairs input[type=number]", 400)
    P.set_number("#trr-steps input[type=number]", 60)
    page.click("#trr-reflow")
    P.wait_text("#trr-status", "done", timeout=120_000)
    text = P.text("#trr-status")
    assert "straightness" in text and "MMD²" in text and "my model" in text, text
    page.locator("#trr-section").scroll_into_view_if_needed()
    P.shoot(f"train-reflow-{width}")
    P.check_clean()
    page.close()


def test_an_image_run_says_the_film_is_for_2d_data(served):
    _, url, browser = served
    P = Page(browser, url, 1440, 900, query="?tab=train&dataset=glyphs&size=tiny&steps=2&bs=16")
    page = P.page
    page.wait_for_selector("#tr-train")
    P.wait_text("#link-notice", "Opened from a link")
    page.click("#tr-train")
    P.wait_text("#tr-status-text", "done", timeout=120_000)
    P.wait_text(f"{FILM} .adiff-title", "2-D data", timeout=20_000)
    assert _film(P)["frames"] == 1
    P.check_clean()
    page.close()
