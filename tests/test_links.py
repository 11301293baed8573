"""The deep-link notice (issue 23, item 2): whatever a URL holds, the notice at the top of the page is plain text
(no markdown link, image, emphasis or HTML comes of a value), bounded (each value cut short, a few shown, unknown
keys summarised in one line), and the values the tab took are still named.  The browser half (no <a>/<img> in the
notice's DOM, no request to a beacon) is in tests/test_links_browser.py."""

from __future__ import annotations

import html
import re

from components.links import NOTICE_SHOWN, NOTICE_VALUE_CHARS, LinkParams, notice_text, plain

PHISH = "[Session expired: log in again](https://evil.example/login)"
BEACON = "![x](http://host/beacon)"


def _shown(markdown: str) -> str:
    """The characters a reader sees: the HTML entities decoded (what marked does with them in text)."""
    return html.unescape(markdown)


def test_plain_leaves_no_markdown_or_html_and_shows_the_same_characters():
    for raw in (PHISH, BEACON, "<img src=x onerror=alert(1)>", "**bold** _it_ `code` # h", "a\n\n# Heading\n    code"):
        out = plain(raw, 1000)
        assert not re.search(r"[\[\]()<>*_`#!:/\\]", re.sub(r"&#\d+;", "", out)), out  # all are entities
        assert _shown(out) == " ".join(raw.split())  # ... and the reader sees the value (whitespace collapsed)
    assert _shown(plain("x" * 100)) == "x" * (NOTICE_VALUE_CHARS - 1) + "…"
    assert _shown(plain("a\x00b\x1bc")) == "a b c"


def test_the_issue_hostile_link_gives_a_short_plain_notice():
    """The issue's values: a phishing link and a beacon image as values, one 5,000-character value and 300 unknown
    keys (21,496 characters echoed before)."""
    values = {"tab": "reverse", "seed": PHISH, "n": BEACON, "steps": "7" * 5000}
    values |= {f"junk{i:03d}": "[x](https://evil.example)" for i in range(300)}
    q = LinkParams(values)
    q.int("seed", 0, 10), q.int("n", 1, 100), q.int("steps", 1, 100)
    text = notice_text("reverse", values, q)
    assert len(text) < 2500, len(text)
    assert "](" not in text and "<" not in text and "http://" not in text and "https://" not in text
    seen = _shown(text)
    assert seen.startswith("Opened from a link: **reverse** with seed = [Session expired")
    assert "300 unknown settings ignored: junk000, junk001, junk002, junk003, junk004, …" in seen
    assert "steps: the value is 5000 characters long, at most 400; ignored" in seen
    assert "seed: must be an integer" in seen
    assert max(len(v) for v in re.findall(r"= ([^,]*)", seen.split("\n")[0][:-1])) <= NOTICE_VALUE_CHARS


def test_many_values_and_problems_are_counted_not_listed():
    values = {"tab": "reverse", **{f"k{i}": str(i) for i in range(12)}}
    q = LinkParams(values)
    for i in range(12):
        q.int(f"k{i}", 100, 200)  # every one refused: 12 problems
    seen = _shown(notice_text("reverse", values, q))
    assert "… and 7 more settings" in seen and "… and 7 more problems" in seen
    assert seen.count("\n- ⚠") == NOTICE_SHOWN + 1


def test_a_plain_link_reads_as_before():
    values = {"tab": "guidance", "lam": "1e6", "steps": "20", "colour": "red"}
    q = LinkParams(values)
    q.float("lam", -100, 100), q.int("steps", 1, 100)
    seen = _shown(notice_text("guidance", values, q))
    assert seen.startswith("Opened from a link: **guidance** with lam = 1e6, steps = 20.")
    assert "lam: must be in [-100, 100], got 1e+06" in seen and "1 unknown setting ignored: colour" in seen
