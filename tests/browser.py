"""The real browser the tests and benches drive (STACK.md): Debian's Chromium through Playwright, never a
downloaded one.  One place for its path and its flags: tests/test_*browser*.py and bench/bench_browser.py import it."""

from __future__ import annotations

import os
import shutil

__all__ = ["CHROMIUM", "ARGS", "launch"]

CHROMIUM = os.environ.get("ADIFF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# headless on a machine whose network is closed: without the background-networking flags Chromium's own connections
# are refused many at a time
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright):
    """A Chromium browser from a started ``playwright.sync_playwright()``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
