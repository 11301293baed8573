"""Deep links in a real browser (Chromium through Playwright), issue 23 item 2 and issue 21 item 6: a link's values
are shown as plain text (a markdown link or image in a value makes no <a> or <img>, and the browser fetches no
beacon), bounded (a 5,000-character value and 300 unknown keys give a short notice); and the "link to this view"
box follows the settings (a link already shown is rewritten when a linked setting changes; an empty box stays
empty)."""

from urllib.parse import urlencode, urlparse

import pytest

from tests.test_app_browser import Page, served  # noqa: F401  (the module's app + browser)

pytestmark = pytest.mark.browser

HOSTILE = {
    "tab": "reverse",
    "seed": "[Session expired: log in again](https://evil.example/login)",
    "n": "![x](http://127.0.0.1:9/beacon.png)",
    "sampler": "<img src=http://127.0.0.1:9/beacon2.png>",
    "steps": "7" * 5000,
    **{f"k{i:03d}": "[x](https://evil.example)" for i in range(300)},
}


def test_a_hostile_link_is_shown_as_short_plain_text(served):  # noqa: F811
    _, url, browser = served
    fetched = []  # requests to the beacon's or the phishing link's host (the page's own URL carries both)
    hosts = {("127.0.0.1", 9), ("evil.example", None)}
    P = Page(  # the listener sees every request of the page from its first, images included
        browser,
        url,
        query="?" + urlencode(HOSTILE),
        on_request=lambda r: (
            fetched.append(r.url) if (urlparse(r.url).hostname, urlparse(r.url).port) in hosts else None
        ),
    )
    page = P.page
    P.wait_text("#link-notice", "Opened from a link")
    page.wait_for_timeout(1000)  # time for an image to be fetched, were there one
    notice = P.text("#link-notice")
    assert page.locator("#link-notice a, #link-notice img").count() == 0
    assert fetched == []
    assert len(notice) < 1500, len(notice)
    assert "300 unknown settings ignored: k000, k001, k002, k003, k004, …" in notice
    assert "seed = [Session expired: log in again](https:/…" in notice  # the reader sees the value, as text
    assert "steps: the value is 5000 characters long, at most 400; ignored" in notice
    P.check_clean()


def test_the_link_box_follows_the_settings(served):  # noqa: F811
    _, url, browser = served
    P = Page(browser, url)
    page = P.page
    P.tab("reverse")
    page.wait_for_selector("#rev-generate", timeout=30_000)
    box = "#reverse-link textarea, #reverse-link input"
    P.set_number("#rev-seed input", 5)
    page.wait_for_timeout(500)
    assert page.locator(box).first.input_value() == ""  # no link yet: a change writes none
    page.click("#reverse-link-btn")
    page.wait_for_function(f"document.querySelector('{box}').value.includes('seed=5')", timeout=10_000)
    P.set_number("#rev-seed input", 9)
    page.wait_for_function(f"document.querySelector('{box}').value.includes('seed=9')", timeout=10_000)
    page.locator("#rev-sampler").get_by_label("ddpm").check()
    page.wait_for_function(f"document.querySelector('{box}').value.includes('sampler=ddpm')", timeout=10_000)
    link = page.locator(box).first.input_value()
    assert "tab=reverse" in link and "seed=9" in link and "seed=5" not in link, link
    P.check_clean()
