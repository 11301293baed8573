"""The Complete tab's figures through its own handler (components/complete/handlers.py), one torch thread: what its
lessons state, measured on the lesson seeds 1-5 first (digits preset, 8 completions of held-out example 0,
DPM-Solver++ 25 steps, the unconditional branch), and what a run costs through the app's sampling engine against
the library's inpaint() without it (the same completions to the bit; interleaved, medians of the repeats).

    python bench/bench_complete.py      # results: bench/results/bench_complete.txt
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from adiff.steering.inpaint import inpaint  # noqa: E402
from components.complete.handlers import CompleteRequest, complete  # noqa: E402
from components.context import AppContext  # noqa: E402
from tests.app_helpers import preset_dir_with_fallbacks  # noqa: E402

SETTINGS = [  # (keep, digit, correction, recurrence)
    ("top half", 0, True, 1),
    ("top quarter", 0, True, 1),
    ("left half", 7, False, 1),
    ("left half", 7, False, 5),
    ("left half", 7, True, 1),
    ("top half", 7, True, 1),
]


def run(ctx, keep, digit, correction, rec, seed, n=8):
    session = ctx.store.get(None)
    try:
        req = CompleteRequest.parse(
            ctx, session, "digits", keep, digit, 0, None, correction, "dpmpp_2m", 25, rec, seed, n
        )
        *_, done = complete(ctx, session, req)
        return req, done
    finally:
        ctx.store.drop(session.key)


def main() -> None:
    torch.set_num_threads(1)
    print(f"# bench/bench_complete.py, torch {torch.__version__}, 1 thread; load average at start {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp, preset_dir_with_fallbacks(Path(tmp)):
        ctx = AppContext(device="cpu")
        print("## lessons' settings: completions (of 8) read as the kept digit, and distinct classes read, seeds 1-5")
        for keep, digit, fix, rec in SETTINGS:
            counts, distinct = [], []
            for seed in range(1, 6):
                _, done = run(ctx, keep, digit, fix, rec, seed)
                counts.append(done.summary["true_class_count"])
                distinct.append(done.summary["distinct_classes"])
            m = statistics.mean(counts)
            se = statistics.stdev(counts) / len(counts) ** 0.5
            method = "correction" if fix else "replacement"
            print(
                f"{keep:12s} of a {digit}, {method:11s}, recurrence {rec}: read as {digit} {counts} "
                f"(mean {m:.1f} ± {se:.1f}); distinct classes {distinct}"
            )
        print(
            "## cost of one run (8 completions, top half of a 0): the tab's handler (engine) vs inpaint() (no engine)"
        )
        for fix in (True, False):
            app_t, lib_t = [], []
            for seed in range(1, 6):
                t0 = time.perf_counter()
                req, done = run(ctx, "top half", 0, fix, 1, seed)
                app_t.append(time.perf_counter() - t0)
                known = req.known.expand(8, *req.known.shape[1:]).clone()
                t0 = time.perf_counter()
                lib = inpaint(
                    req.model,
                    known,
                    req.mask,
                    sampler="dpmpp_2m",
                    num_steps=25,
                    seed=seed,
                    clip_x0=1.0,
                    solve_iters=5 if fix else 0,
                )
                lib_t.append(time.perf_counter() - t0)
                assert torch.equal(lib, done.completions)
            ratio = statistics.median(a / b for a, b in zip(app_t, lib_t))
            print(
                f"{'correction' if fix else 'replacement'}: handler {statistics.median(app_t):.2f} s "
                f"[{min(app_t):.2f}-{max(app_t):.2f}], inpaint() {statistics.median(lib_t):.2f} s "
                f"[{min(lib_t):.2f}-{max(lib_t):.2f}], median ratio {ratio:.2f} (identical completions)"
            )
        ctx.close()
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
