"""The Density tab's choices, measured on this machine (one torch thread): the grid and the ODE's step count of the
heatmap, the held-out NLL's size, and the numbers its lessons rest on.

* grid: log p_theta on the app's n x n plot grid (components.arrays.grid) at 8 / 16 / 32 RK4 steps against 64, for a
  flow and two VP presets: the largest and median error where the heatmap shows it (within 10 nats of its top), and
  the CPU time; chunked (the tab streams one chunk of rows at a time) against one batch;
* held-out NLL: on 2,000 held-out points per seed (and their first 1,000), paired with the data's own log-density on
  the same points (exact for 8gaussians, the kernel estimate otherwise): the NLL, its SE, the gap and the gap's SE;
* between the modes: where the data's density is > 10 nats below its top but the model's is not.

    python bench/bench_density.py [--parts grid,nll,between] [--grid 40]   # results: bench/results/bench_density.txt
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from adiff.data import make_dataset  # noqa: E402
from adiff.eval.likelihood import data_log_density, model_log_likelihood  # noqa: E402
from adiff.presets import load_preset, preset_spec  # noqa: E402
from components.arrays import grid as plot_grid  # noqa: E402
from components.limits import LIMITS  # noqa: E402


def cpu(fn):
    c0 = time.process_time()
    out = fn()
    return out, time.process_time() - c0


def grid_part(n: int) -> None:
    print(f"## log p_theta on the {n}x{n} plot grid: error against 64 RK4 steps (nats), CPU seconds")
    pts, _, _ = plot_grid(n)
    for name, steps in (("moons-flow", (8, 16, 32)), ("8gaussians", (16, 32)), ("moons", (16, 32))):
        model = load_preset(name, "cpu")
        ref, c = cpu(lambda: model_log_likelihood(model, pts, num_steps=64).log_prob)
        seen = ref >= ref.max() - 10
        print(f"{name:11s} 64 steps {c:5.1f} CPU-s ({int(seen.sum())} of {n * n} points within 10 nats of the top)")
        for k in steps:
            lp, c = cpu(lambda: model_log_likelihood(model, pts, num_steps=k).log_prob)
            err = (lp - ref).abs()
            print(
                f"{name:11s} {k:2d} steps {c:5.1f} CPU-s: shown max {float(err[seen].max()):.2f} median "
                f"{float(err[seen].median()):.3f}; elsewhere max {float(err[~seen].max()):.2f}"
            )
    model = load_preset("moons-flow", "cpu")
    rows = max(1, 200 // n) * n
    _, whole = cpu(lambda: model_log_likelihood(model, pts, num_steps=16))
    _, chunked = cpu(
        lambda: [model_log_likelihood(model, pts[i : i + rows], num_steps=16) for i in range(0, n * n, rows)]
    )
    print(f"moons-flow 16 steps, one batch {whole:.1f} CPU-s, chunks of {rows} points {chunked:.1f} CPU-s")


def nll_part(seeds) -> None:
    print(
        "## held-out NLL (the app's held-out seeds), 16 RK4 steps, paired with the data's log-density on the same points (nats)"
    )
    data_lp = {}
    for name in ("8gaussians", "moons", "moons-flow", "moons-reflow"):
        model, ds = load_preset(name, "cpu"), preset_spec(name).dataset
        for seed in seeds:
            x, _ = make_dataset(ds, 2000, seed=LIMITS.density_heldout_seed + seed)  # the app's held-out draws
            if (ds, seed) not in data_lp:
                data_lp[ds, seed] = cpu(lambda: data_log_density(ds, x))
            (d, cd), (ll, c) = data_lp[ds, seed], cpu(lambda: model_log_likelihood(model, x, num_steps=16))
            for m in (1000, 2000):
                v, g = -ll.log_prob[:m], (d[:m] - ll.log_prob[:m])
                print(
                    f"{name:12s} seed {seed} n {m}: NLL {float(v.mean()):.3f} ± {float(v.std()) / math.sqrt(m):.3f}; "
                    f"data {float(-d[:m].mean()):.3f}; gap {float(g.mean()):.4f} ± {float(g.std()) / math.sqrt(m):.4f}"
                    + (f"  ({c:.1f} CPU-s model, {cd:.1f} data, 2000 points)" if m == 2000 else "")
                )


def between_part(n: int) -> None:
    print(f"## between the modes ({n}x{n} grid, 32 steps for VP, 16 for the flow)")
    pts, _, _ = plot_grid(n)
    for name, ds, steps in (("8gaussians", "8gaussians", 32), ("moons", "moons", 32), ("moons-flow", "moons", 16)):
        model = load_preset(name, "cpu")
        lp = model_log_likelihood(model, pts, num_steps=steps).log_prob
        d = data_log_density(ds, pts)
        top = float(d.max())
        # the gaps: data's density more than 10 nats below its top, but within 3 cells of a point near the top
        near = d >= top - 4
        close = torch.cdist(pts, pts[near]).min(1).values <= 3 * 7.0 / n
        gap = (d < top - 10) & close
        diff = lp[gap] - d[gap]
        print(
            f"{name:11s} {int(gap.sum())} grid points between the modes: model minus data log p median "
            f"{float(diff.median()):.2f}, quartiles {float(diff.quantile(0.25)):.2f} {float(diff.quantile(0.75)):.2f}, "
            f"share above {float((diff > 0).double().mean()):.2f}; at the modes (data >= top - 4) median "
            f"{float((lp[near] - d[near]).median()):.2f}"
        )
        if ds == "8gaussians":  # the midpoints between neighbouring components on the circle of radius 2
            ang = torch.tensor([(k + 0.5) * math.pi / 4 for k in range(8)])
            mid = torch.stack([2 * ang.cos(), 2 * ang.sin()], 1)
            lm = model_log_likelihood(model, mid, num_steps=steps).log_prob
            dm = data_log_density(ds, mid)
            print(
                f"{'':11s} the 8 midpoints on the circle: data log p {float(dm.mean()):.2f}, model "
                f"{[round(float(v), 2) for v in lm]} (mean {float(lm.mean()):.2f})"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="grid,nll,between")
    ap.add_argument("--grid", type=int, default=40)
    ap.add_argument("--seeds", default="1,2,3,4,5")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()}")
    parts = args.parts.split(",")
    if "grid" in parts:
        grid_part(args.grid)
    if "nll" in parts:
        nll_part([int(s) for s in args.seeds.split(",")])
    if "between" in parts:
        between_part(args.grid)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
