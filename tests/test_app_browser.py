"""The app in a real browser (Debian's Chromium through Playwright), used the way people use it, against the app
started for the test; what a person would look at must really change.

* the walk through the tabs: schedules (a curve added, the custom-schedule check names the field), forward (t
  re-noises), reverse (a run streams light messages into the player, then the whole trajectory; scrubbing and Play run
  with no request to the server; one click on Pause stops; Stop during a long run says "stopped"; a typed 0 steps is
  reported), density (the model's map beside the data's and their difference, the held-out NLL in words; an image
  model is refused by name), guidance (an over-shooting λ is said in words), adaptation (curves grow, Stop and Reset), train (a loss
  curve; a corrupt upload is reported);
* a deep link opens the right tab with its values, and the tab's link button writes such a link;
* 1440×900: the action button and the result are in view together, and no plot title is cut off;
* 390×844 (a phone): every tab name is visible (the arrangement at both sizes: tests/test_layout_browser.py).

Any console error or warning, or uncaught page error, fails the test. Screenshots go to artifacts/screenshots/.
On CI (CI=true) a missing Chromium or Playwright fails instead of skipping.
"""

import os
import re
import time
from pathlib import Path

import pytest

from components.adaptation.handlers import state_of as adaptation_state
from components.choices import steps_for
from tests.app_helpers import live_app, require
from tests.browser import ARGS, CHROMIUM

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
TABS = {
    "schedules": "1 · Schedules",
    "forward": "2 · Forward",
    "reverse": "3 · Reverse",
    "compare": "4 · Compare",
    "density": "5 · Density",
    "guidance": "6 · Guidance",
    "complete": "7 · Complete",
    "adaptation": "8 · Adaptation",
    "train": "9 · Train",
}
PLAYER = "#rev-player .adiff-player"
# Console messages that are not the app's own: (a regular expression for the text, where it comes from).
# * Gradio's client logs "Method not implemented." from its SSE stream's close() whenever a running event is cancelled,
#   i.e. on every Stop (gradio 6.31, index-*.js).
# * The Train tab's drawing canvas is Gradio's ImageEditor, drawn with PIXI.js: on a headless Chromium without a GPU,
#   PIXI warns from its own chunks (colorToUniform-*.js, CanvasTextSystem-*.js) while it sets up its layers, and
#   Chromium's software GL reports "GPU stall due to ReadPixels" for the page.  Warnings only: errors stay ours.
NOT_OURS = (
    (r"Method not implemented\.$", "/assets/index-", ("warning", "error")),
    (r"", "/assets/colorToUniform-", ("warning",)),
    (r"", "/assets/CanvasTextSystem-", ("warning",)),
    (r"\[\.WebGL-\w+\]GL Driver Message .*GPU stall due to ReadPixels", "", ("warning",)),
)


def app_in_chromium(tmp_path_factory, **build_kwargs):
    """(demo, url, browser): the app built with ``build_kwargs`` and a Chromium to open it (a fixture's body)."""
    require(os.path.exists(CHROMIUM), "Chromium is not installed (apt-get install chromium, or set ADIFF_CHROMIUM)")
    try:
        import playwright.sync_api as playwright
    except ImportError:  # pragma: no cover - depends on the environment
        require(False, "the playwright Python package is not installed (pip install playwright)")
    with live_app(tmp_path_factory.mktemp("presets"), **build_kwargs) as (demo, url), playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield demo, url, browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    yield from app_in_chromium(tmp_path_factory)


class Page:
    """A browser tab on the app that records console problems and the requests it sends to the server."""

    def __init__(self, browser, url: str, width: int = 1440, height: int = 900, query: str = "", on_request=None):
        """on_request: also called with every request the page sends, from its first (the document's own)."""
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url) if "/gradio_api/" in r.url else None)
        if on_request is not None:
            self.page.on("request", on_request)
        self.page.goto(url + query)
        self.page.wait_for_selector("button[role=tab]", timeout=60_000)

    def _console(self, m) -> None:
        where = (m.location or {}).get("url", "")
        if m.type in ("error", "warning") and not any(
            m.type in kinds and re.match(t, m.text) and w in where for t, w, kinds in NOT_OURS
        ):
            self.problems.append(f"console {m.type}: {m.text} ({where})")

    def tab(self, key: str) -> None:
        self.page.get_by_role("tab", name=TABS[key]).click()

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def wait_text(self, selector: str, text: str, timeout: float = 60_000) -> None:
        self.page.wait_for_function(
            "([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
            arg=[selector, text],
            timeout=timeout,
        )

    def plot(self, elem_id: str) -> list[dict]:
        """The traces plotly rendered in gr.Plot(elem_id=...): name, type and number of values."""
        return self.page.evaluate(
            """id => { const g = document.querySelector('#' + id + ' .js-plotly-plot');
                       return g && g.data ? g.data.map(t => ({name: t.name || '', type: t.type || 'scatter',
                                                              n: t.x ? t.x.length : (t.z ? t.z.length : 0)})) : []; }""",
            elem_id,
        )

    def player(self) -> dict:
        return self.page.evaluate(f"""() => {{ const r = document.querySelector('{PLAYER}');
            return r ? {{state: r.dataset.state, frame: +(r.dataset.frame ?? -1), frames: +(r.dataset.frames ?? 0),
                        run: r.dataset.run || ''}} : null; }}""")

    def set_number(self, selector: str, value) -> None:
        box = self.page.locator(selector).first
        box.fill(str(value))
        box.press("Enter")

    def shoot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    def titles_outside(self, elem_id: str) -> list[str]:
        """Plot and panel titles of gr.Plot(elem_id=...) that stick out of the figure (cut off on screen)."""
        return self.page.evaluate(
            """id => { const g = document.querySelector('#' + id + ' .js-plotly-plot').getBoundingClientRect();
                return Array.from(document.querySelectorAll('#' + id + ' .annotation-text, #' + id + ' .gtitle'))
                  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 &&
                    (r.left < g.left - 1 || r.right > g.right + 1 || r.top < g.top - 1); })
                  .map(e => e.textContent); }""",
            elem_id,
        )

    def start_long_training(self) -> None:
        """A training run (tiny, 20,000 steps) that holds a heavy slot until it is stopped, under way."""
        self.tab("train")
        self.page.wait_for_selector("#tr-train")
        self.page.locator("#tr-size").get_by_label("tiny").check()
        self.set_number("#tr-steps input[type=number]", 20000)
        self.page.click("#tr-train")
        self.wait_text("#tr-status-text", "training", timeout=120_000)

    def check_clean(self) -> None:
        assert not self.problems, "console problems:\n" + "\n".join(self.problems)


# --- the walk --------------------------------------------------------------------------------------------------------


def test_walk_through_every_tab(served, tmp_path):
    from playwright.sync_api import expect

    demo, url, browser = served
    P = Page(browser, url)
    page = P.page

    # 1 · schedules: tick sigmoid, its four curves join the eleven of linear + cosine + flow (α, σ, log-SNR: no β);
    # the custom check names the field
    expect(page.locator("#sched-figure .js-plotly-plot .main-svg").first).to_be_visible(timeout=30_000)
    expect(page.locator("#sched-warnings")).to_contain_text("0.999 clip")
    assert len(P.plot("sched-figure")) == 11
    expect(page.locator("#sched-figure .legend")).to_contain_text("flow")
    page.locator("#sched-names").get_by_label("sigmoid").check()
    page.wait_for_function(
        "document.querySelector('#sched-figure .js-plotly-plot')?.data?.length === 15", timeout=20_000
    )
    expect(page.locator("#sched-figure .legend")).to_contain_text("sigmoid")
    page.locator("button.label-wrap", has_text="Custom schedule").click()  # folded under the main settings
    page.locator("#sched-custom textarea").fill("1e-300, 0.5, 0.99999999999")
    P.wait_text("#sched-custom-status", "custom_values", timeout=20_000)
    assert "✗" in P.text("#sched-custom-status") and "β_t is 0 or 1" in P.text("#sched-custom-status")
    P.shoot("1-schedules")

    # 2 · forward: t = 800 re-noises the points; the summary says so in words
    P.tab("forward")
    expect(page.locator("#fwd-figure .js-plotly-plot .main-svg").first).to_be_visible(timeout=20_000)
    P.set_number("#fwd-t input[type=number]", 800)
    page.wait_for_function(
        "(document.querySelector('#fwd-figure .js-plotly-plot')?.data || [])"
        ".some(t => (t.name || '').includes('t = 800'))",
        timeout=20_000,
    )
    P.wait_text("#fwd-summary-text", "At t = 800")
    P.wait_text("#fwd-summary-text", "Rectified flow at t = 0.8")  # the flow path beside VP, at the same slider
    assert any(t["name"] == "flow x_t (t = 0.8)" for t in P.plot("fwd-figure"))
    P.shoot("2-forward")

    # 3 · reverse: a typed 0 steps is reported, not silently clamped
    P.tab("reverse")
    page.wait_for_selector("#rev-generate")
    P.set_number("#rev-steps input[type=number]", 0)
    P.wait_text("#rev-steps", "num_steps", timeout=10_000)
    assert "below the minimum 1" in P.text("#rev-steps .adiff-clamp-note")
    # a short run: live messages, then the whole trajectory in the player
    P.set_number("#rev-steps input[type=number]", 30)
    expect(page.locator("#rev-steps .adiff-clamp-note")).to_have_count(0)
    P.set_number("#rev-n input[type=number]", 300)
    page.click("#rev-generate")
    page.wait_for_function(f"document.querySelector('{PLAYER}')?.dataset.state === 'ready'", timeout=90_000)
    P.wait_text("#rev-status", "done")
    st = P.player()
    assert st["frames"] == 31 and st["frame"] == 30, st  # 30 steps kept whole, plus the final sample
    assert "t = 0" in P.text(f"{PLAYER} .adiff-frame-label")

    # scrubbing changes the frame and sends nothing to the server (the keyboard, as a user would)
    before = len(P.requests)
    slider = page.locator(f"{PLAYER} .adiff-frame")
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"document.querySelector('{PLAYER}').dataset.frame === '25'", timeout=5_000)
    assert "frame 26 of 31" in P.text(f"{PLAYER} .adiff-frame-label")
    slider.fill("3")  # a jump, as a drag would make
    page.wait_for_function(f"document.querySelector('{PLAYER}').dataset.frame === '3'", timeout=5_000)

    # Play advances frames in the browser; one click on Pause stops it
    page.click(f"{PLAYER} .adiff-play")
    page.wait_for_function(f"+document.querySelector('{PLAYER}').dataset.frame >= 6", timeout=5_000)
    page.click(f"{PLAYER} .adiff-play")
    stopped_at = P.player()["frame"]
    page.wait_for_timeout(600)
    assert P.player()["frame"] == stopped_at and P.player()["state"] == "ready"
    assert len(P.requests) == before, P.requests[before:]  # not one request for scrubbing, Play or Pause
    P.shoot("3-reverse")

    # Stop during a long run: the status says "stopped" and no frame arrives after it
    page.locator("#rev-sampler").get_by_label("ddpm").check()
    P.set_number("#rev-steps input[type=number]", 1000)
    page.click("#rev-generate")
    page.wait_for_function(
        f"""() => {{ const r = document.querySelector('{PLAYER}');
        return r.dataset.state === 'live' && r.dataset.run !== '{st["run"]}' && +r.dataset.frames >= 2; }}""",
        timeout=90_000,
    )
    page.click("#rev-stop", force=True)  # (force: Playwright waits for two still frames, which a page redrawing
    # several times a second may not give; a person just clicks)
    P.wait_text("#rev-status", "stopped", timeout=20_000)
    frames = P.player()["frames"]
    page.wait_for_timeout(1200)
    assert P.player()["frames"] == frames and "stopped" in P.text("#rev-status")

    # 3b · density: a small map of moons-flow beside the data's kernel estimate, their difference, the NLL in words;
    # an image model is refused with a message naming the field
    P.tab("density")
    page.wait_for_selector("#dn-estimate")
    page.locator("#dn-preset input").first.click()
    page.get_by_role("option", name="moons-flow", exact=True).click()
    expect(page.locator("#dn-steps input[type=number]").first).to_have_value("16", timeout=30_000)  # a flow's default
    P.set_number("#dn-steps input[type=number]", 4)
    P.set_number("#dn-grid input[type=number]", 20)
    page.click("#dn-estimate")
    P.wait_text("#dn-status", "held-out NLL is", timeout=180_000)  # the result, not a progress line
    assert "kernel density estimate" in P.text("#dn-status"), P.text("#dn-status")
    assert [t["name"] for t in P.plot("dn-figure")] == ["model log p_θ", "data log p", "model − data"]
    assert not P.titles_outside("dn-figure")
    P.shoot("5-density")
    page.locator("#dn-preset input").first.click()
    page.get_by_role("option", name="glyphs", exact=True).click()
    P.wait_text("#dn-note", "takes 2-D models", timeout=30_000)

    # 4 · guidance: a large λ over-shoots the tilted target, and the summary says so
    P.tab("guidance")
    page.wait_for_selector("#gd-generate")
    P.set_number("#gd-lambda input[type=number]", "1e6")  # the slider clamps it: the page says so
    P.wait_text("#gd-lambda", "guidance_scale", timeout=10_000)
    assert "1e6 is above the maximum 20; the slider uses 20" in P.text("#gd-lambda .adiff-clamp-note")
    P.set_number("#gd-lambda input[type=number]", 10)
    page.locator("button.label-wrap", has_text=re.compile(r"^\s*Sampler")).click()
    P.set_number("#gd-steps input[type=number]", 10)
    P.set_number("#gd-n input[type=number]", 150)
    page.click("#gd-generate")
    P.wait_text("#gd-status", "tilted target", timeout=90_000)
    assert "over-shoots p·e^{λr}" in P.text("#gd-status"), P.text("#gd-status")
    titles = page.locator("#gd-figure .annotation-text").all_text_contents()
    assert sum("mean reward" in t for t in titles) >= 3, titles  # unguided, guided and the target
    assert not P.titles_outside("gd-figure")
    P.shoot("4-guidance")

    # 5 · adaptation: Start, the curves gain points and the buffer fills; Stop says "stopped"; Reset clears
    P.tab("adaptation")
    page.wait_for_selector("#ad-start")
    # the defaults follow the kind of model: glyphs (brightness varies little) get a stronger tilt and fewer steps
    lam_box, steps_box = page.locator("#ad-lambda input[type=number]").first, page.locator("#ad-steps input").first
    expect(lam_box).to_have_value("2")
    expect(steps_box).to_have_value("100")
    for preset, lam, steps in (("glyphs", "10", "30"), ("moons", "2", "100")):
        page.locator("#ad-preset input").first.click()
        page.get_by_role("option", name=preset, exact=True).click()
        expect(lam_box).to_have_value(lam, timeout=60_000)
        expect(steps_box).to_have_value(steps)
    P.set_number("#ad-steps input", 500)  # the most: Stop must come before the end on a loaded machine too
    P.set_number("#ad-bs input", 32)
    page.click("#ad-start")
    P.wait_text("#ad-status-text", "adapting", timeout=120_000)

    def curve_points():
        return max((t["n"] for t in P.plot("ad-curves") if t["name"] == "mean reward"), default=0)

    page.wait_for_function(
        "(document.querySelector('#ad-curves .js-plotly-plot')?.data || [])"
        ".some(t => t.name === 'mean reward' && t.x.length >= 2)",
        timeout=120_000,
    )
    n1 = curve_points()
    page.wait_for_function(
        "n => (document.querySelector('#ad-curves .js-plotly-plot')?.data || [])"
        ".some(t => t.name === 'mean reward' && t.x.length > n)",
        arg=n1,
        timeout=120_000,
    )
    page.wait_for_function(
        "(document.querySelector('#ad-buffer .js-plotly-plot')?.data || [])"
        ".some(t => t.type === 'scatter' && t.x.length > 0)",
        timeout=60_000,
    )
    P.shoot("5-adaptation-running")
    for elem in ("ad-curves", "ad-buffer"):
        assert not P.titles_outside(elem), (elem, P.titles_outside(elem))
    page.click("#ad-stop", force=True)
    P.wait_text("#ad-status-text", "stopped", timeout=20_000)
    store = demo.adiff_context.store
    session = next(s for k in store.keys() if adaptation_state(s := store.peek(k)).run)
    step = adaptation_state(session).run.adapter.steps
    time.sleep(1.5)
    assert adaptation_state(session).run.adapter.steps == step < 500  # the loop really stopped
    assert "stopped" in P.text("#ad-status-text")
    page.click("#ad-reset")
    P.wait_text("#ad-status-text", "Reset", timeout=20_000)
    assert adaptation_state(session).run is None

    # 6 · train: a few steps draw the loss curve; the status reads in words; a corrupt checkpoint is reported
    P.tab("train")
    page.wait_for_selector("#tr-train")
    page.locator("#tr-size").get_by_label("tiny").check()
    P.set_number("#tr-T input[type=number]", 50)
    P.wait_text("#tr-schedule-note", "T = 50 (linear)", timeout=20_000)  # √ᾱ_T and the 1000/T rescaling, beside T
    assert "rescaled by 1000/T" in P.text("#tr-schedule-note")
    P.set_number("#tr-steps input[type=number]", 30)
    P.set_number("#tr-bs input[type=number]", 64)
    page.click("#tr-train")
    P.wait_text("#tr-status-text", "done", timeout=90_000)
    assert "step 30 of 30" in P.text("#tr-status-text")
    loss = [t for t in P.plot("tr-loss") if t["name"] == "batch loss"]
    assert loss and loss[0]["n"] == 30
    for elem in ("tr-loss", "tr-samples"):
        assert not P.titles_outside(elem), (elem, P.titles_outside(elem))
    P.shoot("6-train")
    # rectified flow: T and the schedule go away, and only the prediction types that serve a flow are offered
    assert page.locator("#tr-prediction label").all_inner_texts() == [
        "ε: the noise",
        "x₀: the clean sample",
        "v = α ε − σ x₀",
    ]
    page.locator("#tr-process").get_by_label("rectified flow").check()
    P.wait_text("#tr-schedule-note", "no T and no schedule", timeout=20_000)
    expect(page.locator("#tr-T")).to_be_hidden()
    expect(page.locator("#tr-schedule")).to_be_hidden()
    assert page.locator("#tr-prediction label").all_inner_texts() == ["velocity ε − x₀", "x₀: the clean sample"]
    page.locator("#tr-process").get_by_label("VP (DDPM schedule)").check()
    expect(page.locator("#tr-T")).to_be_visible(timeout=20_000)
    page.locator("button.label-wrap", has_text="Save / load a model").click()
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(os.urandom(4096))
    page.locator("#tr-upload input[type=file]").set_input_files(str(bad))
    toast = page.locator(".toast-body").filter(has_text="model_file")
    expect(toast.first).to_be_visible(timeout=20_000)

    P.check_clean()
    # closing the tab releases the session
    key = session.key
    page.close()
    deadline = time.time() + 20
    while key in demo.adiff_context.store.keys() and time.time() < deadline:
        time.sleep(0.5)
    assert key not in demo.adiff_context.store.keys()


def test_a_deep_link_opens_its_tab_with_its_values(served):
    _, url, browser = served
    P = Page(browser, url, query="?tab=reverse&preset=moons&sampler=ddpm&steps=50&seed=3&n=123")
    page = P.page
    page.wait_for_selector("#rev-generate", timeout=30_000)
    P.wait_text("#link-notice", "Opened from a link")
    assert page.locator("button[role=tab][aria-selected=true]").inner_text() == TABS["reverse"]
    page.wait_for_function("document.querySelector('#rev-steps input[type=number]').value === '50'", timeout=10_000)
    assert page.locator("#rev-seed input").input_value() == "3" and page.locator("#rev-n input").input_value() == "123"
    assert page.locator("#rev-sampler").get_by_label("ddpm").is_checked()
    # the tab's link button writes the same settings back, in the browser
    before = len(P.requests)
    page.click("#reverse-link-btn")
    page.wait_for_function(
        "document.querySelector('#reverse-link textarea, #reverse-link input').value.includes('tab=')"
    )
    link = page.locator("#reverse-link textarea, #reverse-link input").first.input_value()
    for part in ("tab=reverse", "preset=moons", "sampler=ddpm", "steps=50", "seed=3", "n=123"):
        assert part in link, link
    assert len(P.requests) == before
    # choosing another model adapts the controls (the user's own choice, not the link's)
    page.locator("#rev-preset input").click()
    page.get_by_role("option", name="glyphs").click()
    page.wait_for_function("document.querySelector('#rev-n input').value === '16'", timeout=20_000)
    P.wait_text("#rev-preset-info", "glyphs")
    # a value the tab would refuse is named, not clamped
    P2 = Page(browser, url, query="?tab=guidance&lam=1e6&steps=20&colour=red")
    P2.page.wait_for_selector("#gd-generate", timeout=30_000)
    P2.wait_text("#link-notice", "lam")
    notice = P2.text("#link-notice")
    assert "lam: must be in [-100, 100], got 1e+06" in notice and "1 unknown setting ignored: colour" in notice, notice
    P.check_clean()
    P2.check_clean()


def test_desktop_layout_keeps_the_button_beside_the_result(served):
    _, url, browser = served
    P = Page(browser, url, 1440, 900)
    page = P.page
    for key, button, result in (
        ("reverse", "#rev-generate", "#rev-player canvas"),
        ("density", "#dn-estimate", "#dn-figure"),
        ("guidance", "#gd-generate", "#gd-figure"),
        ("adaptation", "#ad-start", "#ad-curves"),
        ("train", "#tr-train", "#tr-loss"),
    ):
        P.tab(key)
        page.wait_for_selector(button)
        page.wait_for_timeout(300)
        b = page.locator(button).bounding_box()
        r = page.locator(result).first.bounding_box()
        assert b and 0 <= b["y"] and b["y"] + b["height"] <= 900, (key, b)  # the button is in view...
        assert r and r["y"] < 900 - 150, (key, r)  # ...with the top of its result
    # no title of the figures a tab opens with is cut off (the ones drawn by a run are checked in the walk)
    for key, elem in (
        ("adaptation", "ad-curves"),
        ("adaptation", "ad-before-after"),
        ("train", "tr-loss"),
        ("train", "tr-samples"),
        ("guidance", "gd-figure"),
        ("density", "dn-figure"),
    ):
        P.tab(key)
        page.wait_for_selector(f"#{elem} .main-svg")
        assert not P.titles_outside(elem), (elem, P.titles_outside(elem))
    P.shoot("layout-1440")
    P.check_clean()


def test_a_phone_shows_every_tab_name(served):
    """(Figures on a phone: tests/test_layout_browser.py.)"""
    _, url, browser = served
    P = Page(browser, url, 390, 844)
    page = P.page
    boxes = [page.get_by_role("tab", name=name).bounding_box() for name in TABS.values()]
    assert all(b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 390 and b["width"] > 40 for b in boxes), boxes
    assert not page.locator(".overflow-menu button[aria-label='More tabs']").is_visible()
    P.shoot("phone-390")
    P.check_clean()


def test_every_long_job_says_stopped(served):
    """Reverse and adaptation are stopped in the walk; here guidance, density and training."""
    _, url, browser = served
    P = Page(browser, url)
    page = P.page
    P.tab("guidance")
    page.wait_for_selector("#gd-generate")
    page.locator("button.label-wrap", has_text=re.compile(r"^\s*Sampler")).click()
    page.locator("#gd-sampler").get_by_label("ddpm").check()
    P.set_number("#gd-steps input[type=number]", 1000)
    page.click("#gd-generate")
    P.wait_text("#gd-status", "sampling guided", timeout=120_000)
    page.click("#gd-stop", force=True)
    P.wait_text("#gd-status", "stopped", timeout=30_000)
    P.tab("density")
    page.wait_for_selector("#dn-estimate")
    P.set_number("#dn-steps input[type=number]", 64)  # the most, on the largest grid: minutes of work
    P.set_number("#dn-grid input[type=number]", 60)
    page.click("#dn-estimate")
    P.wait_text("#dn-status", "the model's log-density on the grid", timeout=120_000)
    page.click("#dn-stop", force=True)
    P.wait_text("#dn-status", "stopped", timeout=30_000)
    P.start_long_training()
    page.click("#tr-stop", force=True)
    P.wait_text("#tr-status-text", "stopped", timeout=30_000)
    P.check_clean()


def test_compare_view_and_a_flow_preset(served):
    """Compare: the VP moons preset and the rectified-flow moons preset from the same noise; both rows stream in,
    one slider moves both, the table reports NFE, MMD² and straightness, the quality curve is drawn, the link button
    writes both sides' settings; then the flow preset in the reverse tab offers only its process's solvers and plays
    its velocity field."""
    from playwright.sync_api import expect

    demo, url, browser = served
    P = Page(browser, url)
    page = P.page
    cmp_player = "#cmp-player .adiff-player"
    P.tab("compare")
    page.wait_for_selector("#cmp-go")
    euler = {n: str(steps_for(demo.adiff_context.model(n, None)[0], "euler")) for n in ("moons", "moons-flow")}
    # each choice's own step count arrives from the server: wait for it, then type 12 (else it may land after)
    page.locator("#cmp-a-sampler").get_by_label("euler").check()
    expect(page.locator("#cmp-a-steps input[type=number]")).to_have_value(euler["moons"], timeout=30_000)
    P.set_number("#cmp-a-steps input[type=number]", 12)
    page.get_by_role("tab", name="Side B").click()  # the sides' settings are two tabs of the controls column
    page.locator("#cmp-b-preset input").click()
    page.get_by_role("option", name="moons-flow", exact=True).click()
    page.locator("#cmp-b-sampler").get_by_label("euler").check()
    expect(page.locator("#cmp-b-steps input[type=number]")).to_have_value(euler["moons-flow"], timeout=30_000)
    P.set_number("#cmp-b-steps input[type=number]", 12)
    P.set_number("#cmp-n input[type=number]", 300)
    page.click("#cmp-go")
    # frames stream: the player goes live with both rows before the run ends
    page.wait_for_function(f"document.querySelector('{cmp_player}')?.dataset.state === 'live'", timeout=90_000)
    page.wait_for_function(f"document.querySelector('{cmp_player}')?.dataset.state === 'ready'", timeout=120_000)
    P.wait_text("#cmp-status", "straightness")
    status = P.text("#cmp-status")
    assert "same x_T" in status and "moons-flow" in status and "euler" in status, status
    # one slider moves both rows: the frame label names both sides' times
    slider = page.locator(f"{cmp_player} .adiff-frame")
    slider.fill("4")
    page.wait_for_function(f"document.querySelector('{cmp_player}').dataset.frame === '4'", timeout=5_000)
    label = P.text(f"{cmp_player} .adiff-frame-label")
    assert label.startswith("A: t = ") and " · B: t = 0." in label and "frame 5 of 13" in label, label
    names = [t["name"] for t in P.plot("cmp-curve")]
    assert any(n.startswith("A: moons") for n in names) and any(n.startswith("B: moons-flow") for n in names), names
    P.shoot("4-compare")
    # the tab's link button writes both sides' settings into a link (in the browser)
    page.click("#compare-link-btn")
    box = "#compare-link textarea, #compare-link input"
    page.wait_for_function(f"document.querySelector('{box}').value.includes('tab=compare')")
    link = page.locator(box).first.input_value()
    for part in ("model_a=moons&", "solver_a=euler", "steps_a=12", "model_b=moons-flow", "steps_b=12", "n=300"):
        assert part in link, link

    # the flow preset in the reverse tab: its solvers only, its process named, a velocity panel in the player
    P.tab("reverse")
    page.locator("#rev-preset input").click()
    page.get_by_role("option", name="moons-flow", exact=True).click()
    P.wait_text("#rev-preset-info", "rectified flow")
    labels = page.locator("#rev-sampler label").all_inner_texts()
    assert not any(t.startswith(("ddpm", "ddim")) for t in labels), labels
    page.click("#rev-generate")
    page.wait_for_function(f"document.querySelector('{PLAYER}')?.dataset.state === 'ready'", timeout=90_000)
    P.wait_text("#rev-status", "done")
    assert "t = 0" in P.text(f"{PLAYER} .adiff-frame-label")
    P.shoot("3-reverse-flow")
    P.check_clean()
