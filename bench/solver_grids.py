"""bench_solvers.py --grids: which grid each solver samples best on at about 10 network calls (issue 20, item 6).

    python bench/bench_solvers.py --grids [--draws 5] [--points 2000] [--quick]

Exact Gaussian mixtures (GaussianMixture.model_fn: the Bayes-optimal model, so only the solver's discretisation error
shows): the 8-gaussians mixture and a 3-blob mixture (unequal weights, anisotropic covariances), each under the VP
linear process (T = 1000, epsilon), the VP cosine process (8-gaussians only) and the rectified flow (velocity).
Every deterministic solver at about 10 NFE: ddim, euler, dpmpp_2m at 10 steps, heun at 5 steps (9 NFE) in both of its
forms (the default "exponential" and "karras", diffusers' HeunDiscreteScheduler), on every VP spacing ("angle",
"uniform", "karras") and on Karras et al.'s rho = 7 ramp from a smaller sigma_max (5, 20, 80: the first step goes from
t = T to sigma_max, the ramp runs from there to sigma(t = 1); given as explicit timesteps, not a library spacing).
The flow has one spacing (even in t); an explicit grid even in the noise angle arctan(t / (1 - t)) runs beside it.

A cell: mean MMD² (adiff.eval.metrics.mmd2 via MMDReference) over D draws with its SE; draw d starts every
configuration from the same x_T (seed d) against the same fresh data, so the comparison with dpmpp_2m at its default
grid is paired: "excess" is the mean of (cell - 2 x dpmpp_2m) per draw with its SE, and "within 2x" holds when the
excess is below 2 SE (the bar of tests/test_solver_defaults.py).  Default step counts: every solver at its default steps
and grid, beside twice the steps, shows what more steps would still buy.  Data scale: dpmpp_2m and ddim on every VP
grid with the 8-gaussians mixture scaled by 0.25 and 4 (which grid is best depends on the data's scale).
"""

from __future__ import annotations

import math
import time

import torch
from common import mean_se, print_table

from adiff.data import eight_gaussians_mixture
from adiff.data.gmm import GaussianMixture
from adiff.diffusion import Predictor, make_process
from adiff.eval.metrics import MMDReference
from adiff.samplers import SOLVERS, default_solver, sample, solvers_for

STEPS_AT_10 = {"ddim": 10, "euler": 10, "dpmpp_2m": 10, "heun": 5}
SIGMA_MAX = (5.0, 20.0, 80.0)
FLOOR = ("data", "floor")  # a second fresh data set: what a perfect sampler scores (0 in expectation)


def three_blobs() -> GaussianMixture:
    covs = [[[0.09, 0.03], [0.03, 0.05]], [[0.04, 0.0], [0.0, 0.04]], [[0.16, -0.05], [-0.05, 0.06]]]
    return GaussianMixture([0.5, 0.3, 0.2], [[-1.2, -0.4], [1.0, 0.9], [0.9, -1.1]], covs)


def karras_ramp(process, num_steps: int, sigma_max: float, rho: float = 7.0) -> list[float]:
    """t = T, then num_steps - 1 times whose sigma/alpha follow Karras et al. 2022's eq. 5 from sigma_max to
    sigma(t = 1)."""
    smin, m = process.sigma_ve(1), num_steps - 1
    ramp = [
        (sigma_max ** (1 / rho) + i / (m - 1) * (smin ** (1 / rho) - sigma_max ** (1 / rho))) ** rho for i in range(m)
    ]
    return [float(process.t_max)] + [process.time_from_sigma_ve(s) for s in ramp]


def flow_angle(num_steps: int) -> list[float]:
    """Times even in the noise angle phi = arctan(t / (1 - t)) from pi/2 (t = 1) down (0 follows)."""
    phis = [(math.pi / 2) * (1 - i / num_steps) for i in range(num_steps)]
    return [math.sin(p) / (math.sin(p) + math.cos(p)) for p in phis]


def grids_for(process, steps: int) -> dict[str, dict]:
    """grid label -> sample keywords (a library spacing, or explicit timesteps)."""
    if process.name == "flow":
        return {"uniform": {"spacing": "uniform"}, "angle (explicit)": {"timesteps": flow_angle(steps)}}
    out = {sp: {"spacing": sp} for sp in ("angle", "uniform", "karras")}
    for smax in SIGMA_MAX:
        out[f"karras smax={smax:g}"] = {"timesteps": karras_ramp(process, steps, smax)}
    return out


def configurations(process) -> list[tuple[str, str, int, str, dict]]:
    """(row label, solver, steps, grid label, keywords) for every deterministic solver (Heun in both forms)."""
    rows = []
    for name in solvers_for(process):
        if SOLVERS[name].stochastic:
            continue
        forms = (
            [("heun", {}), ("heun (karras form)", {"options": {"form": "karras"}})] if name == "heun" else [(name, {})]
        )
        for label, extra in forms:
            for grid, kw in grids_for(process, STEPS_AT_10[name]).items():
                rows.append((label, name, STEPS_AT_10[name], grid, {**kw, **extra}))
    return rows


def measure(gmm, process, configs, draws: int, n: int) -> dict:
    """(label, grid) -> per-draw MMD²; every configuration meets draw d's x_T (seed d) and data."""
    ptype = "epsilon" if process.name == "vp" else "velocity"
    predict = Predictor(gmm.model_fn(process, ptype), process, ptype)
    out: dict = {}
    for d in range(draws):
        ref = MMDReference(gmm.sample(n, torch.Generator().manual_seed(10_000 + d))[0])
        out.setdefault(FLOOR, []).append(ref(gmm.sample(n, torch.Generator().manual_seed(20_000 + d))[0]))
        for label, name, steps, grid, kw in configs:
            kw = dict(kw)
            if "timesteps" not in kw:
                kw["num_steps"] = steps
            x = sample(predict, process, (n, 2), sampler=name, generator=torch.Generator().manual_seed(d), **kw)
            out.setdefault((label, grid), []).append(ref(x) if bool(torch.isfinite(x).all()) else math.nan)
    return out


def grid_table(title: str, process, configs, cells: dict) -> list[list]:
    """Print the setting's table; returns its rows' verdicts [(solver, grid, within, is default)]."""
    ref_key = ("dpmpp_2m", SOLVERS["dpmpp_2m"].default_spacing[process.name])
    ref = cells[ref_key]
    rows, verdicts = [], []
    for label, name, steps, grid, _ in configs:
        v = cells[(label, grid)]
        m, se = mean_se(v)
        ex, ex_se = mean_se([a - 2 * b for a, b in zip(v, ref)])
        default = grid == SOLVERS[name].default_spacing[process.name] and label == name
        within = ex < 2 * ex_se
        verdicts.append((label, grid, within, default))
        rows.append(
            [
                label,
                grid + (" *" if default else ""),
                SOLVERS[name].nfe(steps),
                f"{m * 1e4:.2f}±{se * 1e4:.2f}",
                f"{m / mean_se(ref)[0]:.2f}",
                f"{ex * 1e4:+.2f}±{ex_se * 1e4:.2f}",
                "yes" if within else "no",
            ]
        )
    print_table(
        ["solver", "grid", "NFE", "MMD² x 1e4", "/ dpmpp_2m", "excess over 2x (x 1e4)", "within 2x"],
        rows,
        f"{title}: * = the solver's default grid; reference dpmpp_2m-10 on {ref_key[1]}; data-vs-data floor "
        + "{:.2f}±{:.2f} x 1e-4".format(*(v * 1e4 for v in mean_se(cells[FLOOR]))),
    )
    best: dict = {}
    for label, name, steps, grid, _ in configs:
        m = mean_se(cells[(label, grid)])[0]
        if label not in best or m < best[label][1]:
            best[label] = (grid, m)
    print("  lowest mean per solver: " + "; ".join(f"{k}: {g} ({m * 1e4:.2f})" for k, (g, m) in best.items()))
    return verdicts


def default_steps_table(settings, draws: int, n: int) -> None:
    """Every solver at its default steps and grid, and at twice the steps (ddpm at T is its own reference)."""
    rows = []
    for title, gmm, process in settings:
        configs = [("data-vs-data floor", "", 0, "floor", {})]
        for name in solvers_for(process):
            k = SOLVERS[name].default_num_steps(process)
            for steps in sorted({k, min(2 * k, process.max_steps)}):
                configs.append((f"{name} {steps}", name, steps, "default", {"num_steps": steps}))
        cells = measure(gmm, process, [(lab, nm, st, g, {}) for lab, nm, st, g, _ in configs[1:]], draws, n)
        cells[("data-vs-data floor", "floor")] = cells[FLOOR]
        for lab, name, steps, grid, _ in configs:
            m, se = mean_se(cells[(lab, grid)])
            nfe = SOLVERS[name].nfe(steps) if name else "-"
            rows.append([title, name or lab, steps or "-", nfe, f"{m * 1e4:.2f}±{se * 1e4:.2f}"])
    print_table(
        ["setting", "solver", "steps", "NFE", "MMD² x 1e4"],
        rows,
        "Default step counts (default grid): each solver at its default steps and at twice as many",
    )


def scale_table(draws: int, n: int) -> None:
    """dpmpp_2m and ddim at 10 steps on every VP grid for the 8-gaussians mixture scaled by 0.25, 1 and 4: a grid
    whose sigma_max is fixed in absolute units suits one data scale (MMD² is on standardised coordinates)."""
    base, process = eight_gaussians_mixture(), make_process("vp", schedule="linear", num_steps=1000)
    rows = []
    for scale in (0.25, 1.0, 4.0):
        gmm = GaussianMixture(base.weights, base.means * scale, base.covs * scale * scale)
        configs = [(name, name, 10, g, kw) for name in ("dpmpp_2m", "ddim") for g, kw in grids_for(process, 10).items()]
        cells = measure(gmm, process, configs, draws, n)
        for name in ("dpmpp_2m", "ddim"):
            means = {g: mean_se(cells[(name, g)])[0] for g in grids_for(process, 10)}
            best = min(means, key=means.get)
            rows.append([f"x{scale:g}", name, *(f"{m * 1e4:.1f}" for m in means.values()), best])
    print_table(
        ["data scale", "solver", *grids_for(process, 10), "lowest"],
        rows,
        "Data scale: 8-gaussians x scale, VP linear T=1000, 10 steps, MMD² x 1e4 (means)",
    )


def main(args) -> int:
    draws = args.draws or (2 if args.quick else 5)
    n = args.points or (1000 if args.quick else 2000)
    eight, blobs = eight_gaussians_mixture(), three_blobs()
    vp_lin = make_process("vp", schedule="linear", num_steps=1000)
    settings = [
        ("8-gaussians, VP linear T=1000", eight, vp_lin),
        ("8-gaussians, flow", eight, make_process("flow")),
        ("8-gaussians, VP cosine T=1000", eight, make_process("vp", schedule="cosine", num_steps=1000)),
        ("3 blobs, VP linear T=1000", blobs, vp_lin),
        ("3 blobs, flow", blobs, make_process("flow")),
    ]
    if args.quick:
        settings = settings[:2]
    print(f"draws {draws}, points {n}; default solver: {[default_solver(p) for p in ('vp', 'flow')]}")
    summary = []
    t0 = time.perf_counter()
    for title, gmm, process in settings:
        configs = configurations(process)
        t1 = time.perf_counter()
        cells = measure(gmm, process, configs, draws, n)
        verdicts = grid_table(f"{title} ({time.perf_counter() - t1:.0f} s)", process, configs, cells)
        summary.append([title, ", ".join(f"{lab} {'yes' if w else 'NO'}" for lab, g, w, dflt in verdicts if dflt)])
    print_table(["setting", "each deterministic solver at its default grid within 2x dpmpp_2m-10"], summary)
    default_steps_table(settings[:2], draws, n)
    if not args.quick:
        scale_table(draws, n)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0
