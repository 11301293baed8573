"""The app in Chromium (Playwright), as a workshop laptop feels it: the trajectory player and streaming targets of
issue 13, measured in the browser against a live `python app.py`.

    python bench/bench_browser.py [--quick] [--repeats 3] [--out bench/results/bench_browser.txt]

Figures (moons preset, DDIM-100 set in the page, 500 points, a new seed every run so that it samples, 1440x900 window):
* scrub latency: a key press on the frame slider (ArrowLeft/Right, 60 ms apart) or a mouse drag along it, from the
  input event's timestamp to the first task after the next paint (requestAnimationFrame, then setTimeout 0);
  target <= 50 ms. Side by side: one /frame request through gradio_client (the old server round trip per scrub).
* Play: frames drawn per second at the 20 frames/s setting and with the player asked for 60 (its ceiling);
  target >= 20 for 500 points.
* streaming: the longest main-thread block (PerformanceObserver "longtask") from the click on Generate to the
  finished player, with the script that ran in it (long-animation-frame attribution) and its CPU time (a Chrome
  trace); target <= 100 ms. The bytes the browser received per Generate (the queue's event stream and the
  trajectory's JSON file; Chrome DevTools protocol), and the messages.
* browser vs API: click-to-done in the browser against the same request through gradio_client, interleaved (the
  order alternates every round); target <= 1.3x.
* Stop: DDPM-1000 is started, Stop is clicked once frames arrive; the time from the click to "stopped" on screen and
  the time of the last frame after the click; target <= 0.5 s.
* payload: the complete trajectory message (JSON bytes) for the 52-frame, 500-point run; target <= 1.5 MB.
The app runs as a subprocess (its log in a temporary file); Chromium is /usr/bin/chromium (or $ADIFF_CHROMIUM).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from app_client import updates
from bench_app import free_port, start_app, stop_app
from common import ROOT, base_parser, fmt_stats, print_footer, print_header, print_table, setup, stats, verdict

from tests.browser import ARGS, CHROMIUM

PLAYER = "#rev-player .adiff-player"
GEN = dict(
    preset="moons", sampler="ddim", num_steps=100, eta=0.0, seed=0, num_samples=500, class_label="any", cfg_scale=1.0
)

# In the page before any script: long tasks, long-animation-frame attribution, and timestamps of player changes.
PROBE = """
window.__lt = []; window.__loaf = [];
new PerformanceObserver(l => l.getEntries().forEach(e => window.__lt.push([e.startTime, e.duration])))
  .observe({type: 'longtask', buffered: true});
try { new PerformanceObserver(l => l.getEntries().forEach(e => { if (e.duration > 50) window.__loaf.push(
  [e.startTime, e.duration, e.scripts.map(s => [s.invoker, (s.sourceURL || '').split('/').pop(), Math.round(s.duration)])]); }))
  .observe({type: 'long-animation-frame', buffered: true}); } catch (e) {}
"""
WATCH = (
    """() => { const r = document.querySelector('%s'); window.__marks = [];
  new MutationObserver(() => window.__marks.push([performance.now(), r.dataset.state, +(r.dataset.frames || 0)]))
    .observe(r, {attributes: true, attributeFilter: ['data-state', 'data-frames']});
  const s = document.querySelector('#rev-status');
  new MutationObserver(() => { if (!window.__armed) return; const txt = s.innerText, now = performance.now();
      if (!window.__stoppedAt && txt.includes('stopped')) window.__stoppedAt = now;
      if (!window.__confirmedAt && /stopped (at|after|before) /.test(txt)) window.__confirmedAt = now; })
    .observe(s, {subtree: true, childList: true, characterData: true}); }"""
    % PLAYER
)
LATENCY = (
    """() => { window.__lat = []; const s = document.querySelector('%s .adiff-frame');
  s.addEventListener('input', ev => { const t0 = ev.timeStamp;
    requestAnimationFrame(() => setTimeout(() => window.__lat.push(performance.now() - t0), 0)); }, true); }"""
    % PLAYER
)


def player(page) -> dict:
    return page.evaluate(
        f"() => {{ const r = document.querySelector('{PLAYER}'); return {{state: r.dataset.state, "
        "frame: +r.dataset.frame, frames: +(r.dataset.frames || 0)}}; }}"
    )


class Stream:
    """Bytes received on the queue's event stream (/gradio_api/queue/data) and the trajectory's JSON file, from the
    DevTools protocol."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.ids: set[str] = set()
        self.bytes = 0
        self.cdp.on("Network.requestWillBeSent", self._req)
        self.cdp.on("Network.dataReceived", self._data)

    def _req(self, e):
        url = e["request"]["url"]
        if "/gradio_api/queue/data" in url or ("/gradio_api/file=" in url and url.endswith(".json")):
            self.ids.add(e["requestId"])

    def _data(self, e):
        if e["requestId"] in self.ids:
            self.bytes += e.get("encodedDataLength") or e.get("dataLength", 0)


def main_thread_tasks(trace: bytes) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) of every task on the page's renderer main thread, from a Chrome trace."""
    events = json.loads(trace)["traceEvents"]
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    tasks: dict = {}
    for e in events:
        if e.get("ph") == "X" and e.get("name") == "RunTask" and (e["pid"], e["tid"]) in mains:
            tasks.setdefault((e["pid"], e["tid"]), []).append((e.get("dur", 0) / 1e3, e.get("tdur", 0) / 1e3))
    return max(tasks.values(), key=len) if tasks else []


def set_seed(page, seed: int) -> None:
    """The page's seed, so that every run samples (a repeated request is answered by the result cache)."""
    box = page.locator("#rev-seed input")
    box.fill(str(seed))
    box.press("Tab")
    page.wait_for_timeout(200)


def set_defaults(page) -> None:
    """The page's solver and steps as GEN says (DDIM-100), set the way a user would."""
    page.locator("#rev-sampler").get_by_label(GEN["sampler"]).check()
    page.wait_for_timeout(800)  # the solver's own step count arrives first
    steps = page.locator("#rev-steps input[type=number]")
    steps.fill(str(GEN["num_steps"]))
    steps.press("Tab")
    page.wait_for_timeout(300)


def browser_generate(page, stream: Stream, browser=None, seed: int = 0) -> dict:
    set_seed(page, seed)
    page.evaluate("() => { window.__lt = []; window.__loaf = []; window.__marks = []; }")
    if browser is not None:
        browser.start_tracing(page=page, categories=["devtools.timeline", "disabled-by-default-devtools.timeline"])
    b0 = stream.bytes
    t0 = page.evaluate(
        "() => { const t = performance.now(); document.querySelector('#rev-generate').click(); return t; }"
    )
    page.wait_for_function(
        f"""t0 => {{ const r = document.querySelector('{PLAYER}');
        return (window.__marks || []).some(m => m[0] > t0 && m[1] === 'ready'); }}""",
        arg=t0,
        timeout=300_000,
    )
    page.wait_for_function("(document.querySelector('#rev-status')?.innerText || '').includes('done')", timeout=60_000)
    marks = page.evaluate("window.__marks")
    done = next(m[0] for m in marks if m[0] > t0 and m[1] == "ready")
    page.wait_for_timeout(300)  # the long-task entries of the last frame land a moment later
    lt = [d for s, d in page.evaluate("window.__lt") if s >= t0 - 5]
    loaf = sorted((e for e in page.evaluate("window.__loaf") if e[0] >= t0 - 5), key=lambda e: -e[1])
    live = max((m[2] for m in marks if m[1] == "live"), default=0)
    tasks = main_thread_tasks(browser.stop_tracing()) if browser is not None else []
    server = re.search(r"in ([0-9.]+) s", page.locator("#rev-status").inner_text())
    wall, cpu = max(tasks, default=(0.0, 0.0))  # the longest task by wall-clock time, and the CPU it used
    return {
        "seconds": (done - t0) / 1000,
        "longest_ms": max(lt, default=0.0),
        "long_tasks": len(lt),
        "worst": loaf[0] if loaf else None,
        "bytes": stream.bytes - b0,
        "live_messages": live,
        "trace_longest": (wall, cpu),
        "trace_max_cpu": max((c for _, c in tasks), default=0.0),
        "cpu_total": sum(c for _, c in tasks),
        "server_s": float(server.group(1)) if server else float("nan"),
    }


def api_generate(client, seed: int = 0) -> tuple[float, int, dict, float]:
    t0 = time.perf_counter()
    job = client.submit(api_name="/generate", **{**GEN, "seed": seed})
    size = 0
    for out in updates(job):
        size += len(json.dumps(out, default=str))
    final = job.result()
    elapsed = time.perf_counter() - t0
    with open(final[4]) as f:  # the whole trajectory comes as a JSON file (the browser fetches the same file)
        payload = json.load(f)
    return elapsed, size + len(json.dumps(payload)), payload, final[2]["elapsed_s"]


def scrub(page, quick: bool) -> list[float]:
    page.evaluate(LATENCY)
    slider = page.locator(f"{PLAYER} .adiff-frame")
    slider.focus()
    for i in range(20 if quick else 50):
        page.keyboard.press("ArrowLeft" if (i // 10) % 2 == 0 else "ArrowRight")
        page.wait_for_timeout(60)
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 8, y)
    page.mouse.down()
    for i in range(20 if quick else 40):
        page.mouse.move(box["x"] + 8 + (box["width"] - 16) * ((i + 1) / (20 if quick else 40)), y)
        page.wait_for_timeout(40)
    page.mouse.up()
    page.wait_for_timeout(200)
    return page.evaluate("window.__lat")


def play(page, fps: int) -> tuple[float, float, int]:
    """Play from frame 0 at ``fps``: frames drawn per second (between the first and the last draw), the slowest
    draw (ms), and how many of the frames were drawn (the player skips a frame rather than fall behind the clock)."""
    page.evaluate(
        f"() => {{ const p = document.querySelector('{PLAYER}').adiffPlayer; p.pause(); p.show(0); "
        f"p.state.fps = {fps}; }}"
    )
    return tuple(
        page.evaluate(f"""() => new Promise(done => {{
        const p = document.querySelector('{PLAYER}').adiffPlayer, S = p.state;
        let worst = 0, seen = S.drawn, draws = [];
        const poll = (now) => {{ if (S.drawn !== seen) {{ seen = S.drawn; draws.push(performance.now());
            worst = Math.max(worst, S.lastDrawMs); }}
          if (S.playing) requestAnimationFrame(poll);
          else done([(draws.length - 1) / ((draws[draws.length - 1] - draws[0]) / 1000), worst, draws.length]); }};
        document.querySelector('{PLAYER} .adiff-play').click(); requestAnimationFrame(poll); }})""")
    )


def stop_run(page) -> dict:
    page.locator("#rev-sampler").get_by_label("ddpm").check()
    page.wait_for_timeout(300)
    page.evaluate(
        "() => { window.__armed = false; window.__stoppedAt = 0; window.__confirmedAt = 0; window.__marks = []; "
        "document.querySelector('#rev-generate').click(); }"
    )
    page.wait_for_function(
        f"() => document.querySelector('{PLAYER}').dataset.state === 'live' && "
        f"+document.querySelector('{PLAYER}').dataset.frames >= 3",
        timeout=300_000,
    )
    t_click = page.evaluate(
        "() => { window.__armed = true; const t = performance.now(); "
        "document.querySelector('#rev-stop').click(); return t; }"
    )
    page.wait_for_function("() => window.__stoppedAt > 0 && window.__confirmedAt > 0", timeout=60_000)
    page.wait_for_timeout(1500)
    marks = page.evaluate("window.__marks")
    frames = [m[2] for m in marks if m[0] > t_click]
    out = {
        "stopped_s": (page.evaluate("window.__stoppedAt") - t_click) / 1000,
        "confirmed_s": (page.evaluate("window.__confirmedAt") - t_click) / 1000,
        "frames_after": (max(frames) - min(frames)) if frames else 0,
    }
    page.locator("#rev-sampler").get_by_label("ddim").check()
    page.wait_for_timeout(300)
    return out


def main() -> int:
    ap = base_parser(__doc__)
    ap.add_argument("--repeats", type=int, default=3, help="browser/API Generate pairs (default 3; --quick: 2)")
    ap.add_argument(
        "--out", default=str(ROOT / "bench" / "results" / "bench_browser.txt"), help="where the output is kept"
    )
    args = ap.parse_args()
    device = setup(args)
    repeats = 2 if args.quick else args.repeats
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tee = Tee(out_path)
    try:
        import playwright.sync_api as pw
        from gradio_client import Client
    except ImportError as e:
        sys.exit(f"error: bench_browser needs playwright and gradio_client ({e})")
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: Chromium was not found at {CHROMIUM} (apt-get install chromium, or set ADIFF_CHROMIUM)")
    info = print_header(
        "bench_browser: the app in Chromium (moons, DDIM-100, 500 points, 1440x900)",
        device,
        args,
        {"chromium": CHROMIUM, "repeats": repeats},
    )
    log = Path(tempfile.mkdtemp(prefix="bench_browser_")) / "app.log"
    proc, url, started = start_app(free_port(), "cpu", [], log)
    print(f"  app up at {url} after {started:.1f} s (log {log})", flush=True)
    try:
        with pw.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.add_init_script(PROBE)
            stream = Stream(page)
            page.goto(url)
            page.get_by_role("tab", name="3 · Reverse").click()
            page.wait_for_selector("#rev-generate", timeout=60_000)
            page.wait_for_timeout(1500)
            page.evaluate(WATCH)
            client = Client(url, verbose=False)
            set_defaults(page)
            browser_generate(page, stream, seed=98)  # warm-up (the preset loads, plotly and the player settle)
            api_generate(client, 99)
            runs, api_runs, ratios, server_times = [], [], [], []
            for r in range(repeats):
                order = ("browser", "api") if r % 2 == 0 else ("api", "browser")
                res = {}
                for which in order:
                    seed = 100 + 2 * r + (which == "api")  # a new seed each run: it samples, no cache can serve it
                    res[which] = (
                        browser_generate(page, stream, browser, seed)
                        if which == "browser"
                        else api_generate(client, seed)
                    )
                b, (a_s, a_bytes, payload, a_server) = res["browser"], res["api"]
                runs.append(b)
                api_runs.append((a_s, a_bytes))
                server_times.append((b["server_s"], a_server))
                ratios.append(b["seconds"] / a_s)
                print(
                    f"    round {r + 1}: browser {b['seconds']:.2f} s (longest block {b['longest_ms']:.0f} ms; in the trace "
                    f"{b['trace_longest'][0]:.0f} ms wall / {b['trace_longest'][1]:.0f} ms CPU, largest CPU in one task "
                    f"{b['trace_max_cpu']:.0f} ms, main-thread CPU {b['cpu_total']:.0f} ms; {b['long_tasks']} long "
                    f"tasks, {b['bytes'] / 1e3:.0f} kB, {b['live_messages']} live messages), API {a_s:.2f} s; "
                    f"ratio {b['seconds'] / a_s:.2f}; the server's own time {b['server_s']:.2f} s (browser's run) and "
                    f"{a_server:.2f} s (API's run)",
                    flush=True,
                )
            lat = scrub(page, args.quick)
            frame_api = []
            for k in range(10):
                t0 = time.perf_counter()
                client.predict(k * 5, api_name="/frame")
                frame_api.append(time.perf_counter() - t0)
            fps20, draw20, shown20 = play(page, 20)
            fps60, draw60, shown60 = play(page, 60)
            stops = [stop_run(page) for _ in range(1 if args.quick else 2)]
            browser.close()
        if problems:
            print("  page errors: " + "; ".join(problems))
    finally:
        stop_app(proc)
    payload_bytes = len(json.dumps(payload))
    longest = [r["longest_ms"] for r in runs]
    worst = max(runs, key=lambda r: r["longest_ms"])["worst"]
    rows = [
        [
            "scrub: input to repaint (keys + mouse drag)",
            fmt_stats(stats(lat), " ms", digits=1),
            f"{len(lat)} inputs; p90 {sorted(lat)[int(0.9 * len(lat))]:.1f} ms; /frame through the API (the old way, "
            f"before any drawing) {statistics.median(frame_api) * 1e3:.0f} ms median",
            f"<= 50 ms: {verdict(statistics.median(lat), 50)}",
        ],
        [
            "Play at the 20 frames/s setting",
            f"{fps20:.1f} frames/s",
            f"{shown20} of {payload['frames']['count']} frames drawn; slowest draw {draw20:.1f} ms",
            f">= 20: {verdict(fps20, 19.5, lower_is_better=False)}",
        ],
        [
            "Play asked for 60 frames/s (its ceiling here)",
            f"{fps60:.1f} frames/s",
            f"{shown60} frames drawn; slowest draw {draw60:.1f} ms",
            f">= 20: {verdict(fps60, 20, lower_is_better=False)}",
        ],
        [
            "longest main-thread block during Generate",
            fmt_stats(stats(longest), " ms", digits=0),
            f"worst: {worst[1]:.0f} ms, scripts {worst[2]}" if worst else "no long task",
            f"<= 100 ms: {verdict(statistics.median(longest), 100)}",
        ],
        [
            "the same, in CPU time: the most CPU one main-thread task used",
            fmt_stats(stats([r["trace_max_cpu"] for r in runs]), " ms", digits=0),
            f"Chrome trace; the main thread's CPU per Generate {statistics.median([r['cpu_total'] for r in runs]):.0f} ms; "
            "wall minus CPU is the renderer waiting for a core",
            "(report)",
        ],
        [
            "bytes streamed per Generate (browser)",
            fmt_stats(stats([r["bytes"] / 1e3 for r in runs]), " kB", digits=0),
            f"{statistics.median([r['live_messages'] for r in runs]):.0f} live messages + the trajectory; API stream "
            f"{statistics.median([a for _, a in api_runs]) / 1e3:.0f} kB (JSON)",
            "(report)",
        ],
        [
            "click-to-done: browser / API",
            fmt_stats(stats(ratios), "x", digits=2),
            f"browser {statistics.median([r['seconds'] for r in runs]):.2f} s, API "
            f"{statistics.median([a for a, _ in api_runs]):.2f} s (medians); sampling and the payload on the server took "
            f"{statistics.median([b for b, _ in server_times]):.2f} s in the browser's runs and "
            f"{statistics.median([a for _, a in server_times]):.2f} s in the API's",
            f"<= 1.3x: {verdict(statistics.median(ratios), 1.3)}",
        ],
        [
            "Stop: click to 'stopped' on screen, no frame after",
            fmt_stats(stats([s["stopped_s"] for s in stops]), " s", digits=2),
            f"frames drawn after the click: {sum(s['frames_after'] for s in stops)}; the server's 'stopped at step k' "
            f"{statistics.median([s['confirmed_s'] for s in stops]):.2f} s after the click",
            f"<= 0.5 s: {verdict(max(s['stopped_s'] for s in stops), 0.5)}",
        ],
        [
            "payload: the whole trajectory (52 frames x 500 points, x0, eps, field)",
            f"{payload_bytes / 1e6:.3f} MB",
            f"{payload['frames']['count']} frames",
            f"<= 1.5 MB: {verdict(payload_bytes / 1e6, 1.5)}",
        ],
    ]
    print_table(
        ["figure", "value: median (min-max)", "details", "target"],
        rows,
        f"bench_browser results on {info['processor']}, {info['cpu_count']} cores; load average at the end "
        f"{open('/proc/loadavg').read().split()[0] if Path('/proc/loadavg').exists() else 'n/a'}",
    )
    print_footer()
    tee.close()
    return 0


class Tee:
    """Everything printed also goes to ``path`` (the raw output kept in bench/results/)."""

    def __init__(self, path: Path):
        self.file = open(path, "w")
        self.stdout = sys.stdout
        sys.stdout = self

    def write(self, s):
        self.stdout.write(s)
        self.file.write(s)

    def flush(self):
        self.stdout.flush()
        self.file.flush()

    def close(self):
        sys.stdout = self.stdout
        self.file.close()


if __name__ == "__main__":
    sys.exit(main())
