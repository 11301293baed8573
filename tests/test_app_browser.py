"""The app in a real browser (Debian's Chromium through Playwright), used the way people use it: a walk through all
six tabs against the app started for the test, asserting that what a person would look at really changes.

1 schedules: ticking another schedule adds its curves (trace count and legend).
2 forward: moving t re-noises the data (the x_t trace name and the schedule marker follow t).
3 reverse: Generate streams several frames before "done"; the frame slider changes the plot; Play scrubs; a GIF.
4 guidance: both panels (unguided and guided) appear with their mean rewards, and the summary has both numbers.
5 adaptation: Start; the reward curve gains points and the buffer fills; Stop halts; Reset clears.
6 train: a few steps give a loss curve with one point per step; a corrupt upload shows a clear error.

Any console error or uncaught page error fails the test. A screenshot of each tab is saved under
artifacts/screenshots/<tab>.png. On CI (CI=true) a missing Chromium or Playwright fails instead of skipping.
"""
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.app_helpers import live_app, require

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("ADIFF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
# Console messages that are not the app's errors. Empty on purpose: the app serves its own favicon and fonts, and
# an expected user error (the corrupt upload) is shown as a toast, not logged as a console error.
ALLOWED_CONSOLE_ERRORS: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require(os.path.exists(CHROMIUM), "Chromium is not installed (apt-get install chromium, or set ADIFF_CHROMIUM)")
    try:
        import playwright.sync_api as playwright
    except ImportError:  # pragma: no cover - depends on the environment
        require(False, "the playwright Python package is not installed (pip install playwright)")
    with live_app(tmp_path_factory.mktemp("presets")) as (demo, url), playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield demo, url, browser
        finally:
            browser.close()


# --- reading the page ----------------------------------------------------------------------------------------------

def plot_data(page, elem_id: str) -> list[dict]:
    """The traces plotly rendered in gr.Plot(elem_id=...): their name and number of x values."""
    return page.evaluate(
        """id => { const g = document.querySelector('#' + id + ' .js-plotly-plot');
                   return g && g.data ? g.data.map(t => ({name: t.name || '', type: t.type || 'scatter',
                                                          n: t.x ? t.x.length : (t.z ? t.z.length : 0)})) : []; }""",
        elem_id,
    )  # fmt: skip


def json_status(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def wait_text(page, elem_id: str, text: str, timeout: float = 60_000) -> None:
    page.wait_for_function(
        "([id, s]) => (document.querySelector('#' + id)?.innerText || '').includes(s)", arg=[elem_id, text],
        timeout=timeout)  # fmt: skip


def adapt_step(page) -> int:
    """The "step" of #ad-status, as the page shows it (-1 when absent)."""
    return page.evaluate(
        """() => { const m = (document.querySelector('#ad-status')?.innerText || '').match(/"?step"?\\s*:\\s*(\\d+)/);
                   return m ? parseInt(m[1]) : -1; }""")  # fmt: skip


def set_number(page, selector: str, value) -> None:
    box = page.locator(selector).first
    box.fill(str(value))
    box.press("Enter")


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# --- the walk --------------------------------------------------------------------------------------------------------

def test_walk_through_every_tab(served, tmp_path):
    from playwright.sync_api import expect

    demo, url, browser = served
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(url)

    # 1 · schedules: tick sigmoid, its four curves join the eight of linear + cosine
    expect(page.locator("#sched-figure .js-plotly-plot .main-svg").first).to_be_visible(timeout=30_000)
    expect(page.locator("#sched-warnings")).to_contain_text("0.999 clip")
    before = plot_data(page, "sched-figure")
    assert len(before) == 8 and not any("sigmoid" in t["name"] for t in before), before
    page.locator("#sched-names").get_by_label("sigmoid").check()
    page.wait_for_function("document.querySelector('#sched-figure .js-plotly-plot')?.data?.length === 12",
                           timeout=20_000)  # fmt: skip
    after = plot_data(page, "sched-figure")
    assert any("sigmoid" in t["name"] for t in after), after
    expect(page.locator("#sched-figure .legend")).to_contain_text("sigmoid")
    shoot(page, "1-schedules")

    # 2 · forward: t = 800 re-noises the points; the schedule marker moves to t
    page.get_by_role("tab", name="2 · Forward process").click()
    expect(page.locator("#fwd-figure .js-plotly-plot .main-svg").first).to_be_visible(timeout=20_000)
    names0 = [t["name"] for t in plot_data(page, "fwd-figure")]
    set_number(page, "#fwd-t input[type=number]", 800)
    page.wait_for_function(
        "(document.querySelector('#fwd-figure .js-plotly-plot')?.data || []).some(t => (t.name || '').includes('t = 800'))",
        timeout=20_000)  # fmt: skip
    assert [t["name"] for t in plot_data(page, "fwd-figure")] != names0
    shoot(page, "2-forward")

    # 3 · reverse: frames arrive while sampling, then the frame slider and Play scrub them
    page.get_by_role("tab", name="3 · Reverse diffusion").click()
    set_number(page, "#rev-steps input[type=number]", 20)
    set_number(page, "#rev-n input[type=number]", 200)
    page.evaluate("""() => { window.__titles = []; window.__statuses = [];
        window.__poll = setInterval(() => {
            const t = document.querySelector('#rev-figure .gtitle')?.textContent || '';
            const s = document.querySelector('#rev-status')?.innerText || '';
            if (t && window.__titles[window.__titles.length - 1] !== t) window.__titles.push(t);
            if (s && window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
        }, 20); }""")  # fmt: skip
    page.click("#rev-generate")
    wait_text(page, "rev-status", '"done"')
    titles = page.evaluate("() => { clearInterval(window.__poll); return window.__titles; }")
    statuses = page.evaluate("() => window.__statuses")
    assert len(titles) >= 3, titles  # several frames were drawn before the last
    assert sum('"sampling"' in s for s in statuses) >= 1, statuses
    expect(page.locator("#rev-figure .gtitle")).to_contain_text("t = 0")
    final_title = page.locator("#rev-figure .gtitle").text_content()
    set_number(page, "#rev-frame input[type=number]", 5)
    expect(page.locator("#rev-figure .gtitle")).to_contain_text("frame 6 of", timeout=20_000)
    assert page.locator("#rev-figure .gtitle").text_content() != final_title
    page.click("#rev-play")
    expect(page.locator("#rev-figure .gtitle")).not_to_contain_text("frame 6 of", timeout=20_000)
    page.click("#rev-pause")
    expect(page.locator("#rev-gif")).to_contain_text(".gif")
    shoot(page, "3-reverse")

    # 4 · guidance: unguided and guided panels, each titled with its mean reward; the summary has both numbers
    page.get_by_role("tab", name="4 · Guidance").click()
    page.locator("button.label-wrap", has_text="Sampler").click()  # the Sampler accordion
    page.locator("#gd-steps input[type=number]").fill("10")
    page.locator("#gd-steps input[type=number]").press("Enter")
    set_number(page, "#gd-n input[type=number]", 150)
    page.click("#gd-generate")
    wait_text(page, "gd-summary", "guided_mean_reward", timeout=90_000)
    summary = json_status(page, "gd-summary")
    assert "unguided_mean_reward" in summary and summary.count("guided_mean_reward") >= 2, summary
    panel_titles = page.locator("#gd-figure .annotation-text").all_text_contents()
    with_reward = [t for t in panel_titles if "mean reward" in t]
    assert len(with_reward) >= 2, panel_titles
    assert any(t["n"] > 0 and t["type"] == "scatter" for t in plot_data(page, "gd-figure"))
    shoot(page, "4-guidance")

    # 5 · adaptation: Start, the curves gain points and the buffer fills; Stop halts; Reset clears
    page.get_by_role("tab", name="5 · Adaptation").click()
    page.locator("#ad-steps input").first.fill("200")
    page.locator("#ad-bs input").first.fill("32")
    page.click("#ad-start")
    page.wait_for_function("""() => { const m = (document.querySelector('#ad-status')?.innerText || '')
                                          .match(/"?step"?\\s*:\\s*(\\d+)/); return m && parseInt(m[1]) >= 2; }""",
                           timeout=120_000)  # fmt: skip
    n1 = max((t["n"] for t in plot_data(page, "ad-curves") if t["name"] == "mean reward"), default=0)
    s1 = adapt_step(page)
    page.wait_for_function("s => { const m = (document.querySelector('#ad-status')?.innerText || '')"
                           ".match(/\"?step\"?\\s*:\\s*(\\d+)/); return m && parseInt(m[1]) > s; }", arg=s1,
                           timeout=60_000)  # fmt: skip
    n2 = max((t["n"] for t in plot_data(page, "ad-curves") if t["name"] == "mean reward"), default=0)
    assert 1 <= n1 < n2, (n1, n2)  # the reward curve gained points
    assert "buffer_size" in json_status(page, "ad-status")
    buffer_points = sum(t["n"] for t in plot_data(page, "ad-buffer") if t["type"] == "scatter")
    assert buffer_points > 0, plot_data(page, "ad-buffer")
    shoot(page, "5-adaptation-running")
    page.click("#ad-stop")
    wait_text(page, "ad-status", '"stopped"', timeout=20_000)
    key = next(iter(demo.adiff_context.store.keys()))
    session = demo.adiff_context.store.peek(key)
    step = session.adaptation.adapter.steps
    shown = adapt_step(page)
    time.sleep(1.5)
    assert session.adaptation.adapter.steps == step < 200  # the loop really stopped
    assert adapt_step(page) == shown and '"stopped"' in json_status(page, "ad-status")
    page.click("#ad-reset")
    wait_text(page, "ad-status", '"reset"', timeout=20_000)
    page.wait_for_function("!(document.querySelector('#ad-curves .js-plotly-plot')?.data || [])"
                           ".some(t => t.name === 'mean reward')", timeout=20_000)  # fmt: skip
    assert sum(t["n"] for t in plot_data(page, "ad-buffer") if t["type"] == "scatter") == 0
    assert session.adaptation is None
    shoot(page, "5-adaptation")

    # 6 · train: a few steps draw the loss curve; a corrupt checkpoint gets a clear error
    page.get_by_role("tab", name="6 · Train").click()
    page.locator("#tr-size").get_by_label("tiny").check()
    set_number(page, "#tr-T input[type=number]", 50)
    set_number(page, "#tr-steps input[type=number]", 30)
    set_number(page, "#tr-bs input[type=number]", 64)
    page.click("#tr-train")
    wait_text(page, "tr-status", '"done"', timeout=90_000)
    loss = [t for t in plot_data(page, "tr-loss") if t["name"] == "batch loss"]
    assert loss and loss[0]["n"] == 30, plot_data(page, "tr-loss")
    shoot(page, "6-train")
    page.locator("button.label-wrap", has_text="Save / load a model").click()
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(os.urandom(4096))
    page.locator("#tr-upload input[type=file]").set_input_files(str(bad))
    toast = page.locator(".toast-body").filter(has_text="model_file")
    expect(toast.first).to_be_visible(timeout=20_000)
    message = toast.first.inner_text()
    assert "corrupt.safetensors" in message or "safetensors" in message.lower() or "header" in message.lower(), message
    shoot(page, "6-train-corrupt-upload")

    # no console errors anywhere on the walk
    real = [e for e in errors if not any(a in e for a in ALLOWED_CONSOLE_ERRORS)]
    assert not real, "console errors:\n" + "\n".join(real)

    # closing the tab releases the session
    page.close()
    deadline = time.time() + 20
    while key in demo.adiff_context.store.keys() and time.time() < deadline:
        time.sleep(0.5)
    assert key not in demo.adiff_context.store.keys()
