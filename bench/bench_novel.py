"""Costs and figures of issue 24's library part at the app's sizes, on this machine (one torch thread):

* the learned density: log p_theta on the 60x60 plot grid and the held-out NLL of 2,000 points, for a VP and a flow
  preset, at 8 / 16 / 32 RK4 steps (the error against 32 steps, and the data's entropy where it is known);
  the data's density on the grid (exact mixture, or the cross-validated KDE);
* inpainting: the digits preset completing the top half of every held-out digit (359), the digit classifier's
  agreement with the true digit, for the plain replacement (RePaint's step, with and without resampling) and the
  posterior correction, with the time each took; the classifier on the top half with a blank bottom as the baseline;
* reflow: an in-app reflow of moons-flow (5,000 pairs, 1,000 steps) and its quality at 1 / 2 / 4 Euler steps.

    python bench/bench_novel.py [--quick] [--parts density,inpainting,reflow]   # results: bench/results/bench_novel.txt
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from adiff.data import digits_split, make_dataset  # noqa: E402
from adiff.eval.classifier import load_digits_classifier  # noqa: E402
from adiff.eval.likelihood import data_log_density, heldout_nll, model_log_likelihood  # noqa: E402
from adiff.eval.metrics import mmd2  # noqa: E402
from adiff.presets import load_preset  # noqa: E402
from adiff.steering.inpaint import inpaint, top_half_mask  # noqa: E402
from adiff.steering.reflow import couple, reflow_progressive  # noqa: E402


def clock(fn):
    t0, c0 = time.time(), time.process_time()
    out = fn()
    return out, time.time() - t0, time.process_time() - c0


def density(quick: bool) -> None:
    print("## the learned density (RK4 steps; wall s / CPU s; the 64-step run is the reference)")
    side = torch.linspace(-3.5, 3.5, 60)
    grid = torch.stack(torch.meshgrid(side, side, indexing="xy"), -1).reshape(-1, 2)  # [3600, 2]
    H = {"8gaussians": math.log(8) + math.log(2 * math.pi * math.e * 0.25**2)}
    for name, data in (("moons-flow", "moons"), ("8gaussians", "8gaussians"), ("moons", "moons")):
        model = load_preset(name, "cpu")
        x, _ = make_dataset(data, 1000 if quick else 2000, seed=4242)
        ref = None
        for steps in (64, 32, 16, 8):
            ll, wall, cpu = clock(lambda: model_log_likelihood(model, grid, num_steps=steps))
            nll, w2, c2 = clock(lambda: heldout_nll(model, x, num_steps=steps))
            ref = ll.log_prob if ref is None else ref
            seen = ref >= ref.max() - 10  # what a heatmap of log p shows (10 nats below its top)
            err = (ll.log_prob - ref).abs()
            print(
                f"{name:11s} {steps:2d} steps: 60x60 grid {wall:5.1f} / {cpu:5.1f} s (|diff| vs 64 steps where "
                f"log p >= max - 10 ({int(seen.sum())} points): max {float(err[seen].max()):.1e}, median "
                f"{float(err[seen].median()):.1e}; elsewhere max {float(err[~seen].max()):.1e}); NLL of {x.shape[0]} "
                f"points {nll.nats:.3f} ± {nll.se:.3f} nats in {w2:5.1f} / {c2:5.1f} s"
                + (f" (entropy {H[data]:.3f})" if data in H else "")
            )
        _, wall, cpu = clock(lambda: data_log_density(data, grid))
        held = float(-data_log_density(data, x).mean())
        print(
            f"{'':11s} the data's density on the grid: {wall:.1f} / {cpu:.1f} s; its cross-entropy on the points {held:.3f}"
        )


def inpainting(quick: bool) -> None:
    print("## inpainting: digits, top half of each held-out digit known (DPM-Solver++ 25 steps, clip 1)")
    model, clf = load_preset("digits", "cpu"), load_digits_classifier()
    x, y = digits_split("heldout")
    if quick:
        x, y = x[:100], y[:100]
    mask = top_half_mask(model.data_shape)
    with torch.no_grad():
        blank = float((clf(torch.where(mask, x, torch.full_like(x, -1.0))).argmax(1) == y).float().mean())
    print(f"classifier on the top half, bottom blank: {blank:.1%} ({len(y)} digits; chance 10%)")
    for label, kw in (
        ("replacement (RePaint step)", {"solve_iters": 0}),
        ("replacement, recurrence 3", {"solve_iters": 0, "recurrence": 3}),
        ("posterior correction, 5 CG iterations", {}),
    ):
        rates = []
        for seed in range(1 if quick else 3):
            out, wall, cpu = clock(
                lambda: inpaint(model, x, mask, sampler="dpmpp_2m", num_steps=25, seed=seed, clip_x0=1.0, **kw)
            )
            with torch.no_grad():
                rates.append(float((clf(out).argmax(1) == y).float().mean()))
        r = torch.tensor(rates)
        se = float(r.std() / len(rates) ** 0.5) if len(rates) > 1 else float("nan")
        print(
            f"{label:40s} right digit {float(r.mean()):.1%} ± {se:.1%} (seeds {len(rates)}); last run {wall:.1f} / {cpu:.1f} s"
        )


def reflow(quick: bool) -> None:
    print("## in-app reflow of moons-flow (warm start)")
    teacher = load_preset("moons-flow", "cpu")
    pairs, steps = (2000, 300) if quick else (5000, 1000)
    c, wall, cpu = clock(lambda: couple(teacher, pairs, "dpmpp_2m", 50, clip_x0=4.0))
    print(f"couple {pairs} pairs (DPM-Solver++ 50): {wall:.1f} / {cpu:.1f} s")
    student = teacher.clone()
    events, wall, cpu = clock(lambda: list(reflow_progressive(student, c, steps, straightness_every=steps // 4)))
    print(
        f"{steps} steps: {wall:.1f} / {cpu:.1f} s; straightness {[round(e.straightness, 4) for e in events if e.straightness]}"
    )
    for name, m in (("moons-flow", teacher), ("reflowed", student)):
        figs = []
        for nfe in (1, 2, 4):
            xs, _ = m.generate(2000, seed=1, sampler="euler", num_steps=nfe, clip_x0=4.0)
            figs.append(f"{nfe} NFE {mmd2(xs, make_dataset('moons', 2000, seed=77)[0]):.1e}")
        print(f"{name:11s} MMD² " + ", ".join(figs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="density,inpainting,reflow", help="comma-separated: density, inpainting, reflow")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()}")
    parts = {"density": density, "inpainting": inpainting, "reflow": reflow}
    for part in args.parts.split(","):
        parts[part](args.quick)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
