"""A run that waits says so (issue 21, item 8), in a real browser against an app with one heavy slot
(--max-heavy-jobs 1): while a long training run holds the slot, pressing another heavy tab's run (the Density tab's;
sampling no longer waits for the heavy slots: it shares the engine) clears that tab's last "✓ done" at once and its
status line says "queued", with Gradio's queue position on the same line; Stop on a
waiting run says "stopped"; when the slot frees, a queued run goes through to "done".  And a run that is refused
says so instead of staying "queued"."""

from __future__ import annotations

import time

import pytest

from components.controls import FAILED_TEXT, QUEUED_TEXT
from tests.test_app_browser import Page, app_in_chromium

pytestmark = pytest.mark.browser

QUEUED = "queued"


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory):
    yield from app_in_chromium(tmp_path_factory, max_heavy_jobs=1)


def test_a_queued_run_clears_its_done_and_says_queued(one_slot):
    _, url, browser = one_slot
    P = Page(browser, url)
    page = P.page
    assert QUEUED in QUEUED_TEXT
    P.tab("density")  # a small map of moons-flow: a heavy job of about a second
    page.locator("#dn-preset input").click()
    page.get_by_role("option", name="moons-flow").click()
    page.wait_for_function("document.querySelector('#dn-steps input[type=number]').value === '16'", timeout=20_000)
    P.set_number("#dn-grid input[type=number]", 10)
    P.set_number("#dn-steps input[type=number]", 4)
    page.wait_for_timeout(500)
    page.click("#dn-estimate")
    P.wait_text("#dn-status", "✓", timeout=120_000)
    P.start_long_training()
    P.tab("density")
    page.click("#dn-estimate")
    P.wait_text("#dn-status", QUEUED, timeout=5_000)
    P.wait_text("#dn-status", "queue: 1/1", timeout=20_000)  # Gradio's position, on the same line
    status = P.text("#dn-status")
    assert "✓" not in status, status
    P.shoot("queued_density")
    page.click("#dn-stop", force=True)  # a waiting run stopped says "stopped", not "not run"
    P.wait_text("#dn-status", "stopped", timeout=10_000)
    time.sleep(1.0)
    assert "not run" not in P.text("#dn-status")
    page.click("#dn-estimate")
    P.wait_text("#dn-status", QUEUED, timeout=5_000)
    P.tab("train")
    page.click("#tr-stop", force=True)
    P.wait_text("#tr-status-text", "stopped", timeout=30_000)
    P.tab("density")
    P.wait_text("#dn-status", "✓", timeout=120_000)
    assert QUEUED not in P.text("#dn-status")
    P.tab("train")
    assert "stopped" in P.text("#tr-status-text")  # a cancelled run is not a failed one: Stop's words stay
    P.check_clean()


def test_a_refused_run_does_not_stay_queued(one_slot):
    _, url, browser = one_slot
    P = Page(browser, url)
    page = P.page
    P.tab("train")
    page.wait_for_selector("#tr-train")
    P.set_number("#tr-steps input[type=number]", 0)  # below the minimum: /train refuses the field
    page.click("#tr-train")
    assert "not run" in FAILED_TEXT
    P.wait_text("#tr-status-text", "not run", timeout=30_000)
    P.problems = [p for p in P.problems if "num_steps" not in p]  # the refusal itself is the expected message
    P.check_clean()
