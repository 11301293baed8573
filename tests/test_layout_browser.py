"""The page's arrangement in a real browser (issue 21, items 4 and 5), measured from the element boxes.

* 1440x900: on every tab, after its main button (on the forward tab its t slider) and the result it brings, the
  settings its prompts name, its main button, its main figure (or player) and its prompts lie inside the window, and
  no named setting lies under the sticky action bar; the header and the glossary take one line; compare shows side A
  beside side B with the table under them.
* 390x844 (a phone): on every tab, after its run, every plotly figure and every player canvas is at most the screen's
  width, and every panel of a plotly figure lies inside the screen, at least 150 px wide (side-by-side panels stack:
  assets/fit.js); the player's top is within one screen of its Generate button's top, as the page first shows them;
  the sticky action bar takes at most 12 % of the height.

Screenshots of every tab at both sizes go to artifacts/screenshots/ (layout-1440-<tab>.png: the window;
layout-390-<tab>.png: the whole page). Any console error or warning fails the test, as in test_app_browser.py.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests import test_app_browser as base
from tests.test_app_browser import SCREENSHOTS, Page

pytestmark = pytest.mark.browser
served = base.served  # the same fixture: the app in-process and a Chromium, for this module

DESKTOP, PHONE = (1440, 900), (390, 844)
BAR_SHARE = 0.12  # the sticky action bar's most height, as a share of a phone's


def _ready(P: Page, player: str) -> None:
    P.page.wait_for_function(
        f"document.querySelector('#{player} .adiff-player')?.dataset.state === 'ready'", timeout=120_000
    )


def _press(P: Page, button: str) -> None:
    P.page.click(button, force=True)  # (force: the page redraws while it loads; a person just clicks)


def run_schedules(P: Page) -> None:
    P.page.locator("#sched-names").get_by_label("sigmoid").check()
    _press(P, "#sched-plot")
    P.page.wait_for_function(
        "(document.querySelector('#sched-figure .js-plotly-plot')?.data || []).some(t => t.name === 'sigmoid')",
        timeout=30_000,
    )


def run_forward(P: Page) -> None:
    P.set_number("#fwd-t input[type=number]", 800)
    P.page.wait_for_function(
        "(document.querySelector('#fwd-figure .js-plotly-plot')?.data || []).some(t => (t.name || '').includes('800'))",
        timeout=30_000,
    )


def run_reverse(P: Page) -> None:
    _press(P, "#rev-generate")
    _ready(P, "rev-player")


def run_compare(P: Page) -> None:
    P.set_number("#cmp-n input[type=number]", 300)
    _press(P, "#cmp-go")
    _ready(P, "cmp-player")
    P.wait_text("#cmp-status", "straightness")


def run_density(P: Page) -> None:
    P.set_number("#dn-steps input[type=number]", 4)  # a small map: the arrangement, not the accuracy
    P.set_number("#dn-grid input[type=number]", 20)
    _press(P, "#dn-estimate")
    P.wait_text("#dn-status", "held-out NLL is", timeout=180_000)  # the result, not a progress line


def run_guidance(P: Page) -> None:
    _press(P, "#gd-generate")
    P.wait_text("#gd-status", "tilted target", timeout=120_000)


def run_complete(P: Page) -> None:
    _press(P, "#cp-complete")
    P.wait_text("#cp-status", "read as", timeout=120_000)
    _ready(P, "cp-player")


def run_adaptation(P: Page) -> None:
    P.set_number("#ad-steps input", 3)
    P.set_number("#ad-bs input", 32)
    _press(P, "#ad-start")
    P.wait_text("#ad-status-text", "done", timeout=120_000)


def run_train(P: Page) -> None:
    P.page.locator("#tr-size").get_by_label("tiny").check()
    P.set_number("#tr-steps input[type=number]", 30)
    P.set_number("#tr-bs input[type=number]", 64)
    _press(P, "#tr-train")
    P.wait_text("#tr-status-text", "done", timeout=120_000)


@dataclass(frozen=True)
class Case:
    key: str  # the tab
    settings: tuple[str, ...]  # the settings its prompts name
    buttons: tuple[str, ...]  # its main button(s) (none on the forward tab: its t slider is the main control)
    figures: tuple[str, ...]  # its main figure (or player); compare: and the table under it
    run: Callable[[Page], None]  # its main button, and wait for the result
    player: str | None = None  # its player, filled by buttons[0]


CASES = (
    Case(
        "schedules", ("#sched-names", "#sched-T", "#sched-shift"), ("#sched-plot",), ("#sched-figure",), run_schedules
    ),
    Case("forward", ("#fwd-dataset", "#fwd-t", "#fwd-schedule"), (), ("#fwd-figure",), run_forward),
    Case("reverse", ("#rev-preset", "#rev-steps"), ("#rev-generate",), ("#rev-player",), run_reverse, "#rev-player"),
    Case(
        "compare",
        ("#cmp-a-preset", "#cmp-a-sampler", "#cmp-a-steps"),
        ("#cmp-go",),
        ("#cmp-player", "#cmp-status table"),
        run_compare,
        "#cmp-player",
    ),
    Case("density", ("#dn-preset", "#dn-steps", "#dn-grid"), ("#dn-estimate",), ("#dn-figure",), run_density),
    Case("guidance", ("#gd-preset", "#gd-lambda", "#gd-recurrence"), ("#gd-generate",), ("#gd-figure",), run_guidance),
    Case("complete", ("#cp-preset", "#cp-keep", "#cp-recurrence"), ("#cp-complete",), ("#cp-figure",), run_complete),
    Case(
        "adaptation",
        ("#ad-preset", "#ad-lambda", "#ad-replay"),
        ("#ad-start", "#ad-reset"),
        ("#ad-curves",),
        run_adaptation,
    ),
    Case(
        "train",
        ("#tr-dataset", "#tr-process", "#tr-size", "#tr-cond", "#tr-steps"),
        ("#tr-train",),
        ("#tr-loss", "#tr-samples"),
        run_train,
    ),
)
BOX_JS = """sel => { const e = document.querySelector(sel); if (!e) return null;
  const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; }"""


def box(P: Page, selector: str) -> dict:
    b = P.page.evaluate(BOX_JS, selector)
    assert b is not None and b["w"] > 0 and b["h"] > 0, f"{selector} is not on the page"
    return b


def action_bar(P: Page) -> dict | None:
    """The box of the visible tab's sticky action bar (None on a tab without one)."""
    return P.page.evaluate(
        """() => { const e = Array.from(document.querySelectorAll('.adiff-actions')).find(e => e.offsetParent);
                   if (!e) return null; const r = e.getBoundingClientRect();
                   return {x: r.x, y: r.y, w: r.width, h: r.height}; }"""
    )


def outside(P: Page, selectors, height: int, bar: dict | None = None) -> list[str]:
    """The selectors whose box is not wholly inside the window or, given the action bar's box, reaches under it."""
    bad = []
    for sel in selectors:
        b = box(P, sel)
        if b["y"] < 0 or b["y"] + b["h"] > height + 0.5:
            bad.append(f"{sel}: y {b['y']:.0f} .. {b['y'] + b['h']:.0f} (window {height})")
        elif bar and b["y"] + b["h"] > bar["y"] + 0.5 and b["x"] < bar["x"] + bar["w"] and b["x"] + b["w"] > bar["x"]:
            bad.append(f"{sel}: ends at {b['y'] + b['h']:.0f}, under the action bar from {bar['y']:.0f}")
    return bad


def test_the_lesson_is_above_the_fold_at_1440x900(served):
    _, url, browser = served
    P = Page(browser, url, *DESKTOP)
    page = P.page
    head, glossary = box(P, "#header"), box(P, "#glossary")
    assert abs(head["y"] - glossary["y"]) < head["h"] and glossary["y"] + glossary["h"] < 80, (head, glossary)
    problems = {}
    for case in CASES:
        P.tab(case.key)
        page.wait_for_selector(case.settings[0], state="visible", timeout=30_000)
        case.run(P)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(400)
        bar = action_bar(P)
        bad = outside(P, case.settings, DESKTOP[1], bar) + outside(
            P, (*case.buttons, *case.figures, f"#{case.key}-try"), DESKTOP[1]
        )
        if case.key == "compare":
            # side A beside side B (two groups of panels on one line of the canvas), the table under them
            player = page.evaluate("() => document.querySelector('#cmp-player .adiff-player').__adiff.boxes")
            assert len({round(b["y"]) for b in player}) == 1 and len(player) == 4, player
            assert box(P, "#cmp-status table")["y"] > box(P, "#cmp-player canvas")["y"]
            page.get_by_role("tab", name="Side B").click()
            page.wait_for_selector("#cmp-b-steps", state="visible")
            bad += outside(P, ("#cmp-b-preset", "#cmp-b-sampler", "#cmp-b-steps"), DESKTOP[1], bar)
        P.shoot(f"layout-1440-{case.key}")
        if bad:
            problems[case.key] = bad
    assert not problems, problems
    P.check_clean()


def panels_outside(P: Page, width: int) -> list[str]:
    """Every visible plotly figure and player canvas wider than the screen, and every plotly panel (its drag
    rectangle) not wholly on the screen or narrower than 150 px."""
    return P.page.evaluate(
        """W => { const bad = [], shown = e => e.offsetParent !== null && e.getBoundingClientRect().width > 0;
          const name = e => (e.closest('[id]') || {}).id || e.className;
          for (const e of document.querySelectorAll('.js-plotly-plot, .adiff-canvas')) {
            if (!shown(e)) continue;
            const r = e.getBoundingClientRect();
            if (r.left < -0.5 || r.right > W + 0.5) bad.push(name(e) + ': x ' + r.left + ' .. ' + r.right);
            for (const d of e.querySelectorAll('.nsewdrag')) {
              const p = d.getBoundingClientRect();
              if (p.left < -0.5 || p.right > W + 0.5 || p.width < 150)
                bad.push(name(e) + ' panel: x ' + Math.round(p.left) + ' .. ' + Math.round(p.right));
            }
          }
          return bad; }""",
        width,
    )


def test_a_phone_shows_whole_figures_and_the_player_near_its_button(served):
    _, url, browser = served
    P = Page(browser, url, *PHONE)
    page = P.page
    problems = {}
    for case in CASES:
        P.tab(case.key)
        page.wait_for_selector(case.settings[0], state="visible", timeout=30_000)
        case.run(P)
        page.wait_for_timeout(800)  # the figures stack in the browser after they are drawn
        bad = panels_outside(P, PHONE[0])
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(300)
        bar = action_bar(P)
        if bar is not None and bar["h"] > BAR_SHARE * PHONE[1]:
            bad.append(f"the action bar is {bar['h']:.0f} px high, more than {BAR_SHARE:.0%} of {PHONE[1]}")
        if case.player:  # as the page first shows them: the button where it sticks, the player below it
            gap = box(P, case.player)["y"] - box(P, case.buttons[0])["y"]
            if not 0 < gap <= PHONE[1]:
                bad.append(f"the player's top is {gap:.0f} px below its button's top (one screen: {PHONE[1]})")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"layout-390-{case.key}.png"), full_page=True)
        if bad:
            problems[case.key] = bad
    assert not problems, problems
    P.check_clean()
