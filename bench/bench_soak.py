"""Memory soak: does the app's memory stay flat as visitors come and go?  (issue 14, finding 8)

    python bench/bench_soak.py [--sessions 500] [--warmup 50] [--every 50] [--max-minutes 60] [--max-sessions 200]
                               [--samples 200] [--steps 20] [--baseline DIR]

Starts `python app.py --device cpu --port P --max-sessions N` as a process of its own on 127.0.0.1 (loopback only;
its log goes to a temporary file) and then plays ``warmup + sessions`` visitors, one after the other: each is a
new gradio_client.Client (a new session) that runs one /generate on the moons preset (DDIM, ``--steps`` steps,
``--samples`` points) and leaves.  Every ``--every`` visitors it reads the app's resident memory (VmRSS, and the
peak VmHWM) from /proc/PID/status.

It prints the RSS per checkpoint and the growth per visitor after the warm-up (least-squares slope of RSS over
visitors), over all measured visitors and over the second half (which shows whether it levels off), against the
target of <= 0.2 MB per visitor.  ``--baseline DIR`` also starts the app.py of another checkout (e.g. the code
before a fix, from `git archive`) and sends every visitor to both apps in turn, so both are measured side by side
under the same load.  The apps run without the benchmarks' malloc tunables (measured as deployed).  Bounded: at
most ``--sessions`` visitors and ``--max-minutes`` minutes; then the apps are stopped by their own process ids.
The report is also written to bench/results/bench_soak.txt (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from common import MALLOC_ENV, ROOT, print_footer, print_header, print_table

TARGET_MB_PER_VISITOR = 0.2


class Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self):
        for st in self.streams:
            st.flush()


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys on xs."""
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=500, help="visitors measured after the warm-up (default 500)")
    ap.add_argument("--warmup", type=int, default=50, help="visitors before the first measurement (default 50)")
    ap.add_argument("--every", type=int, default=50, help="read the apps' memory every N visitors (default 50)")
    ap.add_argument("--max-minutes", type=float, default=60.0, help="stop after this long (default 60)")
    ap.add_argument("--max-sessions", type=int, default=200, help="the app's --max-sessions (default 200)")
    ap.add_argument("--samples", type=int, default=200, help="points per /generate (default 200)")
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps per /generate (default 20)")
    ap.add_argument(
        "--baseline", default=None, help="a checkout whose app.py is measured side by side (e.g. before a fix)"
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench_soak.txt"), help="report file ('' = none)")
    args = ap.parse_args()
    for name in ("sessions", "warmup", "every", "max_sessions", "samples", "steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.baseline and not (Path(args.baseline) / "app.py").is_file():
        ap.error(f"--baseline {args.baseline}: no app.py there")
    out = open(args.out, "w") if args.out else None  # noqa: SIM115 - open for the whole run
    if out:
        sys.stdout = Tee(sys.__stdout__, out)

    import httpx
    import torch
    from gradio_client import Client

    from tests.app_helpers import (  # the same launcher and /proc reader as the upload tests
        app_process,
        memory_mb,
    )

    torch.set_num_threads(
        1
    )  # the harness; each app gives each of its --max-heavy-jobs 2 jobs one thread of the 2 cores
    for k in MALLOC_ENV:  # the harness keeps them; the apps run as deployed
        os.environ.pop(k, None)
    apps = {"this code": ROOT} | ({"baseline": Path(args.baseline).resolve()} if args.baseline else {})
    info = print_header(
        "bench_soak: app memory as visitors come and go",
        "cpu",
        args,
        {
            "sessions": args.sessions,
            "warmup": args.warmup,
            "max_sessions": args.max_sessions,
            "visitor": f"one /generate (moons, ddim, {args.steps} steps, {args.samples} points)",
            "apps": {k: str(v) for k, v in apps.items()},
        },
    )
    log_dir = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    series: dict[str, list] = {name: [] for name in apps}  # (visitor, RSS, peak, elapsed)
    t0 = time.time()
    total = args.warmup + args.sessions
    done, ok_run = 0, True
    with contextlib.ExitStack() as stack:
        served = {}
        for name, root in apps.items():
            log = log_dir / f"{name.replace(' ', '_')}.log"
            url, pid = stack.enter_context(app_process(log, "--max-sessions", str(args.max_sessions), root=root))
            served[name] = (url, pid)
            print(f"  {name}: app up at {url}, pid {pid} (log {log})", flush=True)

        def record(i):
            for name, (_, pid) in served.items():
                mem = memory_mb(pid)
                series[name].append((i, mem["VmRSS"], mem["VmHWM"], time.time() - t0))
                print(f"  visitor {i}, {name}: RSS {mem['VmRSS']:.1f} MB, peak {mem['VmHWM']:.1f} MB", flush=True)

        def visit(url: str, i: int) -> dict:
            """One visitor: a new client (a new session), one /generate, gone.  gradio_client reads the app's config
            with a short timeout: on a loaded machine that can time out, so the visitor comes again (counted)."""
            nonlocal retries
            for attempt in range(5):
                try:
                    client = Client(url, verbose=False)
                    break
                except httpx.TimeoutException:
                    retries += 1
                    time.sleep(1 + attempt)
            else:
                raise RuntimeError(f"visitor {i}: {url} did not answer in 5 tries")
            *_, summary, _, _ = client.predict(
                "moons", "ddim", args.steps, 0.0, i, args.samples, "any", 1.0, api_name="/generate"
            )
            return summary

        retries = 0
        record(0)
        for i in range(1, total + 1):
            if time.time() - t0 > 60 * args.max_minutes:
                print(f"stopped after {args.max_minutes} minutes, at visitor {i - 1} of {total}")
                break
            try:
                for name, (url, _) in served.items():  # each visitor visits every app in turn: the same load for both
                    summary = visit(url, i)
                    if summary.get("status") != "done":
                        raise RuntimeError(f"visitor {i} ({name}): /generate returned {summary}")
            except Exception as e:  # noqa: BLE001 - report what was measured, then the error
                print(f"stopped at visitor {i} of {total}: {type(e).__name__}: {e}")
                ok_run = False
                break
            done = i
            if i % args.every == 0 or i == args.warmup:
                record(i)
        print(f"visitors whose first connection timed out and came again: {retries}")
    print()
    ok = True
    for name, rows in series.items():
        print_table(
            ["visitors", "RSS MB", "peak MB", "after warm-up", "elapsed s"],
            [
                [i, f"{r:.1f}", f"{h:.1f}", i - args.warmup if i >= args.warmup else "(warm-up)", f"{e:.0f}"]
                for i, r, h, e in rows
            ],
            title=f"{name}: VmRSS of the app process as visitors come and go",
        )
        pts = [(i, r) for i, r, _, _ in rows if i >= args.warmup]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        all_slope = slope(xs, ys)
        half = len(xs) // 2
        late = slope(xs[half:], ys[half:]) if len(xs) - half >= 2 else float("nan")
        print(
            f"\n{name}: visitors after the warm-up: {max(0, done - args.warmup)}; RSS "
            f"{ys[0] if ys else math.nan:.1f} -> {ys[-1] if ys else math.nan:.1f} MB"
        )
        print(
            f"{name}: growth per visitor after the warm-up (least squares): {all_slope:.3f} MB over all, {late:.3f} MB "
            f"over the second half (target <= {TARGET_MB_PER_VISITOR} MB, and levelling off)\n"
        )
        if name == "this code":
            ok = all_slope <= TARGET_MB_PER_VISITOR and (math.isnan(late) or late <= all_slope + 0.05)
    ok = ok and ok_run and done == total
    print(
        "verdict (this code): "
        + ("PASS" if ok else "FAIL")
        + ("" if done == total else f" (only {done} of {total} visitors)")
    )
    print(f"\nbench_soak on {info['processor']}, {info['cpu_count']} cores, torch {info['torch']}")
    print_footer()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
