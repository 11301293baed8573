"""The sampling engine (adiff.serving) against today's two heavy slots: a workshop's burst of concurrent requests.

    python bench/bench_engine.py [--quick] [--threads 2] [--workers 1] [--runs 30] [--samples 500]

1. Burst: ``--runs`` requests of the moons preset at its default solver and steps (dpmpp_2m, 25 steps, clip_x0 4),
   ``--samples`` points each, distinct seeds, all arriving at once, each in its own thread that keeps the trajectory
   (TrajectoryRecorder, as the app does).  "engine": every run samples through one SamplingEngine (default
   max_wait_ms and max_rows, ``--workers``); "2 slots": runs go two at a time without the engine (a semaphore of 2, like today's two
   heavy Gradio slots; the others wait for a slot).  Per run: seconds from the burst to its first step and to its
   end; p50 / p95 / max over the runs, medians over ``--repeats`` interleaved repeats.  The floor: runs x one
   request's compute (alone, one thread) / cores, the least any schedule can take to finish them all.
2. A late arrival: during an engine burst, one more request comes at a third of the burst's expected length; what
   engine.estimate_wait said before it started (first step, and end with calls = its NFE) against what it took.
3. One request alone through the engine against without it (whole runs, interleaved repeats; target <= 1.05x).
4. The same for one reward-guided request (its VJPs go through the engine's graph and backward rounds).
Before these, for scale: the bare network's cost per row at a request's size, at max_rows and at the whole burst.

torch threads = --threads (default 2) in every case.  The machine is shared: the header and footer name what else ran.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import threading
import time

import torch
from common import base_parser, fmt_stats, interleaved, paired_ratio, print_footer, print_header, print_table, setup

from adiff.presets import PRESETS, load_preset
from adiff.samplers import TrajectoryRecorder
from adiff.serving import SamplingEngine
from adiff.steering.rewards import make_reward

PRESET = "moons"


def run_one(model, kw, seed: int, samples: int, net=None, marks=None, t0: float = 0.0) -> None:
    """One request as the app runs it: stream the steps, keep the trajectory.  marks: [first, end] seconds after t0."""
    rec = TrajectoryRecorder(1)
    for step in model.generate_progressive(samples, seed=seed, network=net, **kw):
        if marks is not None and marks[0] is None:
            marks[0] = time.perf_counter() - t0
        rec.add(step)
    rec.finish()
    if marks is not None:
        marks[1] = time.perf_counter() - t0


@contextlib.contextmanager
def _slot(sem: threading.Semaphore):
    with sem:
        yield None


def burst(model, kw, runs: int, samples: int, engine: SamplingEngine | None, slots: int = 2, late=None) -> dict:
    """All ``runs`` requests at once (engine, or ``slots`` at a time without it).  late: (delay seconds, dict) adds a
    request at t0 + delay whose estimate_wait figures and measured times are written into the dict."""
    marks = [[None, None] for _ in range(runs)]
    gate = threading.Barrier(runs + 1)
    sem = threading.Semaphore(slots)
    clock = {}

    def work(i):
        gate.wait()
        with engine.session(model) if engine is not None else _slot(sem) as net:
            run_one(model, kw, 1000 + i, samples, net, marks[i], clock["t0"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(runs)]
    if late is not None:
        threads.append(threading.Thread(target=_late, args=(engine, model, kw, samples, clock, *late)))
    for th in threads:
        th.start()
    clock["t0"] = time.perf_counter()
    gate.wait()
    for th in threads:
        th.join()
    first, end = [m[0] for m in marks], [m[1] for m in marks]
    return {"first": first, "end": end}


def _late(engine, model, kw, samples, clock, delay, out):
    while "t0" not in clock:
        time.sleep(0.001)
    time.sleep(max(0.0, clock["t0"] + delay - time.perf_counter()))
    nfe = kw["num_steps"]  # dpmpp_2m: one call per step
    out["est_first"] = engine.estimate_wait(samples, model)
    out["est_end"] = engine.estimate_wait(samples, model, calls=nfe)
    start, marks = time.perf_counter(), [None, None]
    with engine.session(model) as net:
        run_one(model, kw, 9999, samples, net, marks, start)
    out["first"], out["end"] = marks


def pct(xs, q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def summary(res: dict) -> dict:
    f, e = res["first"], res["end"]
    return {
        "first p50": pct(f, 0.5),
        "first p95": pct(f, 0.95),
        "first max": max(f),
        "end p50": pct(e, 0.5),
        "end p95": pct(e, 0.95),
        "end max": max(e),
    }


def solo_seconds(model, kw, samples: int, repeats: int, threads: int) -> float:
    torch.set_num_threads(threads)
    ts = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        run_one(model, kw, r, samples)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts[1:])


def row_costs(model, sizes: list[int], threads: list[int], repeats: int) -> None:
    """Microseconds per row of one bare forward (shared t) at each batch size and thread count, interleaved."""
    net, t = model.ema.module, torch.tensor([0.5])
    xs = {n: torch.randn(n, 2, generator=torch.Generator().manual_seed(0)) for n in sizes}
    before = torch.get_num_threads()

    def case(n, th):
        def run():
            torch.set_num_threads(th)
            with torch.no_grad():
                net(xs[n], t)

        return run

    times = interleaved({(n, th): case(n, th) for n in sizes for th in threads}, repeats, device="cpu", verbose=False)
    torch.set_num_threads(before)
    cells = {k: f"{1e6 * statistics.median(v) / k[0]:.1f}" for k, v in times.items()}
    rows = [[n, *(cells[(n, th)] for th in threads)] for n in sizes]
    print_table(["rows", *(f"us/row, {th} thread(s)" for th in threads)], rows, "bare forward of the moons network")


def main():
    ap = base_parser(__doc__, "bench_engine")
    ap.set_defaults(threads=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each burst")
    ap.add_argument("--solo-repeats", type=int, default=15)
    ap.add_argument("--workers", type=int, default=1, help="SamplingEngine(workers=...): threads sharing a round")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.repeats, args.solo_repeats = min(args.runs, 10), 1, 6
    device = setup(args)
    model = load_preset(PRESET, device=str(device))
    kw = dict(PRESETS[PRESET].sampling)
    engine = SamplingEngine(workers=args.workers)
    print_header(
        "bench_engine: a burst of concurrent sampling requests, engine vs two slots",
        device,
        args,
        {"preset": f"{PRESET} {kw}", "runs": args.runs, "samples": args.samples, "engine": _settings(engine)},
    )
    cores = os.cpu_count() or 1
    one = solo_seconds(model, kw, args.samples, 3, 1)
    one2 = solo_seconds(model, kw, args.samples, 3, args.threads)
    torch.set_num_threads(args.threads)
    floor = args.runs * one / cores
    row_costs(model, [args.samples, 8192, args.runs * args.samples], sorted({1, args.threads}), args.solo_repeats)
    print(f"\none request alone: {one:.3f} s on 1 thread, {one2:.3f} s on {args.threads} threads")
    print(f"floor: {args.runs} x {one:.3f} s / {cores} cores = {floor:.2f} s (everyone's last step, at best)")

    results = {"engine": [], "2 slots": []}
    for r in range(args.repeats):
        for name in ("engine", "2 slots") if r % 2 == 0 else ("2 slots", "engine"):
            res = burst(model, kw, args.runs, args.samples, engine if name == "engine" else None)
            results[name].append(summary(res))
            print(f"  repeat {r + 1} {name}: " + ", ".join(f"{k} {v:.2f}s" for k, v in results[name][-1].items()))
    s = engine.stats()
    rows = []
    for name, reps in results.items():
        med = {k: statistics.median(rep[k] for rep in reps) for k in reps[0]}
        rows.append([name, *(f"{v:.2f}" for v in med.values()), f"{med['end max'] / floor:.2f}x"])
    print_table(
        ["schedule", *results["engine"][0].keys(), "last end / floor"],
        rows,
        f"\n1. burst of {args.runs} x {args.samples} points: seconds after the burst (medians of {args.repeats} repeats)",
    )
    wall = sum(rep["end max"] for rep in results["engine"])
    print(
        f"engine: {s.rounds} calls, mean {s.mean_rows_per_call:.0f} rows per call (max {s.max_rows_call}), "
        f"{1e6 * s.busy_seconds / max(1, s.rows):.1f} us per row in its calls; it computed "
        f"{100 * s.busy_seconds / wall:.0f}% of the bursts' time"
    )

    late = {}
    burst(model, kw, args.runs, args.samples, engine, late=(floor / 3, late))
    print(f"\n2. a request arriving {floor / 3:.2f} s into an engine burst of {args.runs}:")
    print(f"   estimate_wait said first step in {late['est_first']:.2f} s, end in {late['est_end']:.2f} s")
    print(f"   measured: first step after {late['first']:.2f} s, end after {late['end']:.2f} s")

    cases = {
        "engine": lambda: _through(engine, model, kw, args.samples),
        "direct": lambda: run_one(model, kw, 0, args.samples),
    }
    times = interleaved(cases, args.solo_repeats, device=device, verbose=False)
    ratio = paired_ratio(times, "engine", "direct")
    print(f"\n3. one request alone ({args.samples} points, {args.threads} threads), {args.solo_repeats} repeats:")
    print(
        f"   engine {fmt_stats(tuple(_stats(times['engine'])), ' s')}, direct {fmt_stats(_stats(times['direct']), ' s')}"
    )
    print(
        f"   engine / direct = {fmt_stats(ratio, 'x')}  (target <= 1.05x: {'met' if ratio[0] <= 1.05 else 'NOT met'})"
    )
    guided = {**kw, "use_guidance": True, "reward_fn": make_reward("x_coordinate"), "guidance_scale": 2.0}
    cases = {
        "engine": lambda: _through(engine, model, guided, args.samples),
        "direct": lambda: run_one(model, guided, 0, args.samples),
    }
    times = interleaved(cases, max(3, args.solo_repeats // 3), device=device, verbose=False)
    ratio = paired_ratio(times, "engine", "direct")
    print(f"\n4. one reward-guided request alone (dps, r = x, lambda = 2), {len(times['engine'])} repeats:")
    print(f"   engine {fmt_stats(_stats(times['engine']), ' s')}, direct {fmt_stats(_stats(times['direct']), ' s')}")
    print(f"   engine / direct = {fmt_stats(ratio, 'x')}")
    engine.close()
    print_footer()


def _through(engine, model, kw, samples):
    with engine.session(model) as net:
        run_one(model, kw, 0, samples, net)


def _stats(xs):
    return statistics.median(xs), min(xs), max(xs)


def _settings(engine: SamplingEngine) -> str:
    return f"max_wait_ms={engine.max_wait * 1000:g}, max_rows={engine.max_rows}, workers={engine.workers}"


if __name__ == "__main__":
    main()
