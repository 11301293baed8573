"""The app through gradio_client against a live `python app.py`: time from request to the first streamed frame of
/generate (target < 1 s on this CPU for the moons preset), a frame scrub (/frame), /schedule_curves, and 10 and 30
concurrent clients calling /generate (success rate, p50/p95 latency).

    python bench/bench_app.py [--quick] [--device cuda] [--port 0] [--clients 10,30]
    python bench/bench_app.py --workshop [--quick] [--workshop-clients 30]   # a workshop's load: see bench/workshop.py

The script starts `python app.py --port P --device D` as a subprocess (its log goes to a temporary file, printed
when something fails), waits for it to answer HTTP, and stops it at the end (by its own process id).  Each
simulated user is its own gradio_client.Client (its own session).  Inputs:
* first frame: /generate on moons with the UI's defaults (DDIM, 100 steps, 500 points, seed 0), and DDPM-1000
  (full mode only: each DDPM-1000 request runs to the end);
  the first call after start-up (cold: the preset is loaded then) is reported separately;
* scrub: /frame on frames of the trajectory the same client just generated;
* /schedule_curves: the UI's defaults (linear + cosine, T = 1000);
* concurrency: N clients at once (a barrier releases them together), each one /generate with small inputs
  (DDIM, 20 steps, 200 points); the app runs at most --max-heavy-jobs (default 2) of them at a time, the rest queue.
As a side-by-side reference, the same DDIM-100 / 500-point sampling run in this process through the library
(model.generate) is timed interleaved with the app's requests: "app / library".
--quick: 2 rounds, no DDPM-1000, 10 clients only.
--workshop: instead of the above, N clients each call all five endpoints at the UI's defaults, with the same
defaults (the app's result cache can serve) and with a different seed each (it cannot), beside a single-client
baseline and the default's sample quality against DDIM-100 (bench/workshop.py says how).
The app picks its own torch threads (cores / max-heavy-jobs); --threads only sets this process's reference run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from app_client import Api, load_client, pct, timed_generate
from common import (
    ROOT,
    base_parser,
    fmt_stats,
    load_model,
    print_footer,
    print_header,
    print_table,
    setup,
    stats,
    verdict,
)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, device: str, extra: list[str], log_path: Path, timeout: float = 180.0):
    app = ROOT / "app.py"
    if not app.is_file():
        sys.exit(
            f"error: {app} was not found: bench_app.py benchmarks the Gradio app and needs app.py "
            "(endpoints /generate and /schedule_curves)"
        )
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    log = open(log_path, "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(app), "--port", str(port), "--device", device, *extra],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    while True:
        if proc.poll() is not None:
            log.close()
            sys.exit(
                f"error: app.py exited with code {proc.returncode} before serving; its log:\n{log_path.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.perf_counter() - t0 > timeout:
            stop_app(proc)
            sys.exit(
                f"error: app.py did not answer on {url} within {timeout:.0f} s; its log:\n{log_path.read_text()[-4000:]}"
            )
        time.sleep(0.25)
    return proc, url, time.perf_counter() - t0


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def concurrent_generate(url: str, n_clients: int, inputs: dict, timeout: float) -> dict:
    apis = [Api(load_client(url)) for _ in range(n_clients)]
    barrier = threading.Barrier(n_clients)
    results: list[dict] = [None] * n_clients

    def user(i: int) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        try:
            r = timed_generate(apis[i], **inputs)
        except Exception as e:  # noqa: BLE001  (a failed request is a figure here, not a crash)
            r = {
                "ok": False,
                "error": f"{type(e).__name__}: {e}"[:200],
                "total": time.perf_counter() - t0,
                "first": None,
            }
        results[i] = r

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    wall = time.perf_counter() - t0
    done = [r for r in results if r is not None]
    ok = [r for r in done if r["ok"]]
    errors = sorted({r.get("error") or f"status {r.get('status')}" for r in done if not r["ok"]})
    lat = [r["total"] for r in ok]
    first = [r["first"] for r in ok if r["first"] is not None]
    return {
        "n": n_clients,
        "ok": len(ok),
        "wall": wall,
        "p50": pct(lat, 0.5),
        "p95": pct(lat, 0.95),
        "first_p50": pct(first, 0.5),
        "first_p95": pct(first, 0.95),
        "errors": errors[:3],
    }


def main() -> int:
    ap = base_parser(__doc__)
    ap.add_argument("--port", type=int, default=0, help="port for the app (0: a free one)")
    ap.add_argument("--clients", default=None, help="concurrent client counts (default 10,30; --quick 10)")
    ap.add_argument("--max-heavy-jobs", type=int, default=2, help="passed to app.py")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per latency figure (default 7; --quick 3)")
    ap.add_argument("--workshop", action="store_true", help="the workshop load (bench/workshop.py) instead")
    ap.add_argument("--workshop-clients", type=int, default=None, help="clients at once (default 30; --quick 10)")
    ap.add_argument("--baseline-rounds", type=int, default=None, help="single-client rounds (default 3; --quick 2)")
    ap.add_argument(
        "--http-timeout",
        type=float,
        default=60.0,
        help="the workshop clients' HTTP timeout in s (gradio_client's default: 5)",
    )
    ap.add_argument(
        "--quality-seeds", type=int, default=None, help="DDIM-100 runs for the quality figure (default 10; --quick 4)"
    )
    args = ap.parse_args()
    args.workshop_clients = args.workshop_clients or (10 if args.quick else 30)
    args.baseline_rounds = args.baseline_rounds or (2 if args.quick else 3)
    args.quality_seeds = args.quality_seeds or (4 if args.quick else 10)
    if args.compile:
        sys.exit("error: --compile does not apply to bench_app.py (the app decides how it runs the model)")
    device = setup(args)
    reps = args.repeats or (2 if args.quick else 5)
    clients = [int(c) for c in str(args.clients or ("10" if args.quick else "10,30")).split(",") if c.strip()]
    port = args.port or free_port()
    import gradio_client
    from gradio_client import Client

    title = "workshop load" if args.workshop else "moons preset"
    info = print_header(
        f"bench_app: the Gradio app through gradio_client ({title})",
        device,
        args,
        {
            "gradio_client": gradio_client.__version__,
            "port": port,
            "clients": args.workshop_clients if args.workshop else clients,
            "max_heavy_jobs": args.max_heavy_jobs,
        },
    )
    log_path = Path(tempfile.mkdtemp(prefix="bench_app_")) / "app.log"
    proc, url, startup = start_app(port, args.device, ["--max-heavy-jobs", str(args.max_heavy_jobs)], log_path)
    rows = []
    try:
        print(f"  app up at {url} after {startup:.1f} s (log {log_path})", flush=True)
        api = Api(Client(url, verbose=False))
        if args.workshop:
            from workshop import run_workshop

            run_workshop(args, url, api, pct, print_table)
            print_footer()
            return 0
        ui = {"preset": "moons", "sampler": "ddim", "num_steps": 100, "eta": 0.0, "seed": 0, "num_samples": 500}
        ddpm = {**ui, "sampler": "ddpm", "num_steps": 1000}

        # cold start: the first request loads the preset in the app
        cold = timed_generate(api, **ui)
        if not cold["ok"]:
            raise SystemExit(
                f"error: /generate did not finish with status 'done': {cold['status']}\n"
                f"app log:\n{log_path.read_text()[-3000:]}"
            )
        rows.append(
            [
                "/generate first frame, cold (first request after start-up)",
                f"{cold['first']:.3f} s",
                f"DDIM-100, 500 pts; whole run {cold['total']:.2f} s, {cold['updates']} updates",
                "",
            ]
        )

        # warm first frame, interleaved with the library reference ------------------------------------------
        model = load_model("moons", device)
        lib = lambda: model.generate(500, sampler="ddim", num_steps=100, seed=0, keep_every=2)  # noqa: E731

        def lib_first_step():
            t0 = time.perf_counter()
            next(iter(model.generate_progressive(500, sampler="ddim", num_steps=100, seed=0)))
            return time.perf_counter() - t0

        lib()
        with_ddpm = not args.quick
        print(
            f"\n[first frame] {reps} rounds: app DDIM-100{', app DDPM-1000' if with_ddpm else ''} (500 pts), "
            "library DDIM-100",
            flush=True,
        )
        app_ddim, app_ddpm, lib_s, lib_first = [], [], [], []
        for r in range(reps):
            app_ddim.append(timed_generate(api, **ui))
            if with_ddpm:
                app_ddpm.append(timed_generate(api, **ddpm))
            t0 = time.perf_counter()
            lib()
            lib_s.append(time.perf_counter() - t0)
            lib_first.append(lib_first_step())
            print(
                f"    round {r + 1}: first frame ddim {app_ddim[-1]['first']:.3f} s"
                + (f" / ddpm {app_ddpm[-1]['first']:.3f} s" if with_ddpm else "")
                + "; "
                f"app ddim total {app_ddim[-1]['total']:.2f} s, library {lib_s[-1]:.2f} s",
                flush=True,
            )
        for label, res in (("DDIM-100", app_ddim), ("DDPM-1000", app_ddpm)) if with_ddpm else (("DDIM-100", app_ddim),):
            ok = all(x["ok"] for x in res)
            f = stats([x["first"] for x in res])
            rows.append(
                [
                    f"/generate first frame, warm, moons {label}, 500 pts",
                    fmt_stats(f, " s"),
                    f"whole run {fmt_stats(stats([x['total'] for x in res]), ' s', digits=2)}; all done: {ok}",
                    "< 1 s: " + verdict(f[0], 1.0),
                ]
            )
        rows.append(
            [
                "library first step (in-process, DDIM-100, 500 pts)",
                fmt_stats(stats(lib_first), " s"),
                "the sampling part of the first frame",
                "",
            ]
        )
        ratio = stats([a["total"] / b for a, b in zip(app_ddim, lib_s)])
        rows.append(
            [
                "app /generate whole run / library generate (DDIM-100, 500 pts)",
                fmt_stats(ratio, "x", digits=2),
                f"library {fmt_stats(stats(lib_s), ' s', digits=2)}; the app adds a few streamed frames, a score "
                "field per kept frame, a GIF, the trajectory file and MMD^2",
                "(report)",
            ]
        )

        # scrub -------------------------------------------------------------------------------------------
        if "/frame" in api.endpoints:
            timed_generate(api, **ui)
            num_frames = None
            lat = []
            for r in range(reps):
                for k in (0, 10, 25, 40, 50):
                    t0 = time.perf_counter()
                    out = api.predict("/frame", frame_index=k)
                    lat.append(time.perf_counter() - t0)
                    if isinstance(out, (list, tuple)) and isinstance(out[-1], dict):
                        num_frames = out[-1].get("num_frames", num_frames)
            rows.append(
                [
                    "/frame (scrub one frame of the stored trajectory)",
                    fmt_stats(stats(lat), " s"),
                    f"{len(lat)} calls over frames 0..50 of {num_frames}; p95 {pct(lat, 0.95):.3f} s",
                    "(no target)",
                ]
            )
        else:
            rows.append(["/frame (scrub)", "n/a", f"the app exposes no /frame endpoint ({sorted(api.endpoints)})", ""])

        # schedule curves -------------------------------------------------------------------------------------
        lat = []
        for _ in range(reps * 2):
            t0 = time.perf_counter()
            api.predict("/schedule_curves", schedules=["linear", "cosine"], num_steps=1000)
            lat.append(time.perf_counter() - t0)
        rows.append(
            [
                "/schedule_curves (linear + cosine, T = 1000)",
                fmt_stats(stats(lat), " s"),
                f"{len(lat)} calls",
                "(no target)",
            ]
        )

        # concurrency -----------------------------------------------------------------------------------------
        small = {"preset": "moons", "sampler": "ddim", "num_steps": 20, "eta": 0.0, "seed": 0, "num_samples": 200}
        t0 = time.perf_counter()
        one = timed_generate(api, **small)
        rows.append(
            [
                "/generate alone, small inputs (DDIM-20, 200 pts)",
                f"{one['total']:.3f} s",
                f"first frame {one['first']:.3f} s",
                "(reference)",
            ]
        )
        for n in clients:
            print(f"\n[concurrency] {n} clients at once, /generate DDIM-20, 200 pts", flush=True)
            r = concurrent_generate(url, n, small, timeout=600)
            rows.append(
                [
                    f"{n} concurrent clients: success, latency p50 / p95",
                    f"{r['ok']}/{r['n']} ok; {r['p50']:.2f} s / {r['p95']:.2f} s",
                    f"first frame p50 {r['first_p50']:.2f} s, p95 {r['first_p95']:.2f} s; all done in {r['wall']:.1f} s"
                    + (f"; errors: {r['errors']}" if r["errors"] else ""),
                    "success 100%: " + verdict(r["ok"], r["n"], False),
                ]
            )
    finally:
        stop_app(proc)
    print_table(
        ["figure", "value: median (min-max)", "details", "target"],
        rows,
        f"bench_app results on {info['processor']}, {info['cpu_count']} cores, torch {info['torch']}, "
        f"app on {args.device} with --max-heavy-jobs {args.max_heavy_jobs}; app start-up {startup:.1f} s",
    )
    print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
