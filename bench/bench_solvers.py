"""Quality against network calls: MMD² to fresh data for every solver, spacing and budget of network evaluations.

    python bench/bench_solvers.py [--quick] [--threads 1] [--draws 3] [--moons-draws 2] [--moons-full] [--points 2000] [--out PATH]
    python bench/bench_solvers.py --grids [--draws 5] [--points 2000]    # the best grid per solver at ~10 NFE (solver_grids.py)

(a) The exact 8-gaussians mixture (adiff.data.eight_gaussians_mixture, GaussianMixture.model_fn: the Bayes-optimal
    model, so only the solver's discretisation error shows) under the VP linear and VP cosine processes (T = 1000,
    epsilon prediction) and the rectified-flow path (velocity prediction) with timestep shift 1 and 3.
(b) The shipped moons preset (adiff.presets.load_preset("moons"): VP linear, epsilon, EMA weights, no x0 clipping),
    where the network's own error adds to the solver's.

Budgets: NFE (network evaluations) 5, 10, 20, 50, 100, 1000.  A solver gets the most steps whose NFE fits the budget
(Solver.nfe: one per step, Heun 2N - 1 for N steps, so heun runs 3, 5, 10, 25, 50, 500 steps = 5, 9, 19, 49, 99, 999
NFE).  Every VP solver runs every spacing ("angle", "uniform", "karras") up to 100 NFE; the 1000-NFE budget runs each
solver's default spacing only (the time limit; there every grid is fine and the figure serves as the solver's
converged reference).  Grids that coincide are run once.  The flow has one spacing (even in t), bent by the shift.

A cell is the mean MMD² (adiff.eval.metrics.mmd2, on coordinates standardised by the data) over D draws, with its
standard error.  A draw: ``--points`` samples against as many fresh data points (a new data set per draw).  Within a
draw every configuration starts from the same x_T (generator seed = draw) and meets the same data, so differences
between cells are paired; the verdicts use per-draw paired differences.  The data-vs-data floor (two fresh data sets)
is printed beside each table: a perfect sampler scores that (mean 0, noise about 1e-4 at 2000 points).

Targets (issue 11):
  T1  dpmpp_2m or heun at <= 20 NFE matches the MMD² that ddim reaches at 100 NFE (mixture VP linear / cosine, moons).
  T2  the exact mixture under the flow path, flow euler at 20 NFE, is at least as close to the data as the VP path
      sampled by ddim at 20 NFE.
"Matches" / "at least as close": the candidate's mean MMD² exceeds the reference's by at most
max(1e-4, 2 SE of the paired difference): 1e-4 is the noise of one MMD² estimate at 2000 points (the floor's
spread), so a smaller gap is not something a user could see.  Each solver and spacing is named as it ran.

Recommendations: for each VP solver, the spacing with the lowest mean MMD² most often over the budgets 10-100 NFE
(mixture linear and cosine, moons); and the smallest budget at which a solver, at that spacing, comes within the
same tolerance of its own 1000-NFE figure (capped at 20 NFE for the few-step solvers: what it costs to stop there).

On moons the 1000-NFE budget runs ddim only (the converged reference) and 2 draws by default: every solver at 1000
NFE and 3 draws take over an hour on the shared 2-core machine (--moons-full, --moons-draws 3 restore them).
--quick: 1000 points, 2 draws, budgets 5, 10, 20, 100 (moons 10, 20, 100).  One torch thread (--threads).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch  # noqa: E402
from common import base_parser, mean_se, print_footer, print_header, print_table, setup

from adiff.data import eight_gaussians_mixture, make_dataset  # noqa: E402
from adiff.diffusion import Predictor, make_process  # noqa: E402
from adiff.eval.metrics import mmd2  # noqa: E402
from adiff.presets import load_preset  # noqa: E402
from adiff.samplers import SOLVERS, sample, sample_progressive, sampling_timesteps, solvers_for  # noqa: E402

BUDGETS = (5, 10, 20, 50, 100, 1000)
TOL = 1e-4  # the noise of one MMD² estimate at 2000 points
FEW_STEP = ("dpmpp_2m", "euler", "heun")  # solvers meant for <= 20 NFE


@dataclass
class Setting:
    """One curve family: a process with its model (the exact mixture or a network) and its data."""

    name: str
    process: object
    predict: Callable  # (x_t, t) -> Prediction
    data: Callable[[int, int], torch.Tensor]  # (n, seed) -> data points [n, 2]
    spacings: tuple  # the spacings to run ("uniform" for the flow)
    full_budget_spacing: str = "default"  # "all" | "default": which spacings run the 1000-NFE budget
    full_budget_solvers: tuple | None = None  # the solvers that run the 1000-NFE budget (None: every solver)
    cells: dict = field(default_factory=dict)  # (solver, spacing, budget) -> {"nfe", "steps", "mmd": [per draw]}
    floor: list = field(default_factory=list)  # data-vs-data MMD² per draw
    seconds: float = 0.0


def steps_for(solver, budget: int, process) -> int:
    """The most steps whose network evaluations fit the budget (and the process's grid)."""
    n = min(budget, process.max_steps)
    while n > 1 and solver.nfe(n) > budget:
        n -= 1
    return n


def plan(setting: Setting, budgets) -> list[tuple]:
    """(solver, spacing, budget, steps, grid key) for every cell; cells with the same grid share one run."""
    out = []
    for name in solvers_for(setting.process):
        solver = SOLVERS[name]
        default = solver.default_spacing[setting.process.name]
        for spacing in setting.spacings:
            for b in budgets:
                if b == max(BUDGETS) and setting.full_budget_spacing == "default" and spacing != default:
                    continue
                if (
                    b == max(BUDGETS)
                    and setting.full_budget_solvers is not None
                    and name not in setting.full_budget_solvers
                ):
                    continue
                n = steps_for(solver, b, setting.process)
                grid = tuple(sampling_timesteps(setting.process, n, spacing, name))
                out.append((name, spacing, b, n, (name, grid)))
    return out


def run_setting(setting: Setting, budgets, draws: int, n: int) -> None:
    cells = plan(setting, budgets)
    runs = len({c[4] for c in cells})
    print(f"\n[{setting.name}] {len(cells)} cells ({runs} distinct runs) x {draws} draws, {n} points", flush=True)
    t_start = time.perf_counter()
    for d in range(draws):
        data = setting.data(n, 10_000 + d)
        setting.floor.append(mmd2(setting.data(n, 20_000 + d), data))
        done: dict = {}
        for name, spacing, b, steps, key in cells:
            if key not in done:
                g = torch.Generator().manual_seed(d)  # x_T first, then (DDPM) the per-step noise
                x = sample(
                    setting.predict,
                    setting.process,
                    (n, 2),
                    sampler=name,
                    num_steps=steps,
                    spacing=spacing,
                    generator=g,
                )
                done[key] = mmd2(x, data) if bool(torch.isfinite(x).all()) else math.nan
            cell = setting.cells.setdefault(
                (name, spacing, b), {"nfe": SOLVERS[name].nfe(steps), "steps": steps, "mmd": []}
            )
            cell["mmd"].append(done[key])
        print(
            f"    draw {d + 1}/{draws} done at {time.perf_counter() - t_start:.0f} s (floor {setting.floor[-1]:.1e})",
            flush=True,
        )
    setting.seconds = time.perf_counter() - t_start


# ------------------------------------------------------------------------------------------------ reporting
def fmt_cell(cell: dict | None) -> str:
    if cell is None:
        return "-"
    if any(math.isnan(v) for v in cell["mmd"]):
        return "diverged"
    m, se = mean_se(cell["mmd"])
    return f"{m * 1e4:.2f}±{se * 1e4:.2f}"


def print_setting(setting: Setting, budgets) -> None:
    fm, fse = mean_se(setting.floor)
    rows = []
    for name in solvers_for(setting.process):
        default = SOLVERS[name].default_spacing[setting.process.name]
        for spacing in setting.spacings:
            row = [name, spacing + (" *" if spacing == default else "")]
            for b in budgets:
                c = setting.cells.get((name, spacing, b))
                row.append(fmt_cell(c) + (f" ({c['nfe']})" if c is not None and c["nfe"] != b else ""))
            rows.append(row)
    print_table(
        ["solver", "spacing", *[f"NFE {b}" for b in budgets]],
        rows,
        f"{setting.name}: MMD² x 1e4, mean ± SE over {len(setting.floor)} draws (* = the solver's default "
        f"spacing; (k) = the NFE actually used). Data-vs-data floor {fm * 1e4:.2f}±{fse * 1e4:.2f}; "
        f"{setting.seconds:.0f} s",
    )


def paired(setting_a: Setting, key_a, setting_b: Setting, key_b) -> tuple[float, float, float, float] | None:
    """(mean a, mean b, mean of the per-draw differences a - b, its SE); None when a cell is missing or diverged."""
    ca, cb = setting_a.cells.get(key_a), setting_b.cells.get(key_b)
    if ca is None or cb is None or any(math.isnan(v) for v in ca["mmd"] + cb["mmd"]):
        return None
    dm, dse = mean_se([a - b for a, b in zip(ca["mmd"], cb["mmd"])])
    return mean_se(ca["mmd"])[0], mean_se(cb["mmd"])[0], dm, dse


def within(p) -> bool:
    return p is not None and p[2] <= max(TOL, 2 * p[3])


def describe(p, a: str, b: str) -> str:
    if p is None:
        return f"{a} vs {b}: not measured or diverged"
    return (
        f"{a} {p[0] * 1e4:.2f} vs {b} {p[1] * 1e4:.2f} (x 1e-4); paired difference {p[2] * 1e4:+.2f}±{p[3] * 1e4:.2f}"
        f" -> {'yes' if within(p) else 'no'}"
    )


def target_1(setting: Setting, budgets) -> list:
    """dpmpp_2m or heun at <= 20 NFE against ddim at 100 NFE (ddim's default spacing)."""
    ref = ("ddim", SOLVERS["ddim"].default_spacing["vp"], 100)
    lines, met_default, met_any = [], False, False
    for name in ("dpmpp_2m", "heun"):
        default = SOLVERS[name].default_spacing["vp"]
        for spacing in setting.spacings:
            for b in (x for x in budgets if x <= 20):
                p = paired(setting, (name, spacing, b), setting, ref)
                ok = within(p)
                met_any |= ok
                met_default |= ok and spacing == default
                if b == 20 or ok:  # every 20-NFE cell, and any cheaper cell that already matches
                    nfe = setting.cells[(name, spacing, b)]["nfe"]
                    lines.append(
                        f"  {name} {spacing}{' (default)' if spacing == default else ''} NFE {nfe}: "
                        + describe(p, "", f"ddim {ref[1]} NFE 100").lstrip()
                    )
    return [met_default, met_any, lines]


def best_spacing_tally(settings: list[Setting], solver: str, budgets) -> dict:
    """spacing -> how many (setting, budget) cells it has the lowest mean MMD² in, budgets 10-100 NFE."""
    tally = {}
    for s in settings:
        for b in (x for x in budgets if 10 <= x <= 100):
            means = {sp: mean_se(s.cells[(solver, sp, b)]["mmd"])[0] for sp in s.spacings if (solver, sp, b) in s.cells}
            means = {k: v for k, v in means.items() if not math.isnan(v)}
            if means:
                best = min(means, key=means.get)
                tally[best] = tally.get(best, 0) + 1
    return tally


def converged_budget(setting: Setting, solver: str, spacing: str, budgets) -> int | None:
    """The smallest budget whose mean MMD² is within the tolerance of the solver's own figure at its largest budget
    (measured at this spacing, or at its default spacing when this spacing did not run the largest budget)."""
    top = max(budgets)
    ref = setting.cells.get((solver, spacing, top)) or setting.cells.get(
        (solver, SOLVERS[solver].default_spacing[setting.process.name], top)
    )
    if ref is None:
        return None
    ref_m = mean_se(ref["mmd"])[0]
    for b in sorted(budgets):
        c = setting.cells.get((solver, spacing, b))
        if c is not None and not any(math.isnan(v) for v in c["mmd"]) and mean_se(c["mmd"])[0] <= ref_m + TOL:
            return b
    return None


# ------------------------------------------------------------------------------------------------ diagnostics
def grid_facts(settings: list[Setting]) -> list[list]:
    """Where each VP spacing puts its first steps: sigma/alpha at t = T and t = T - 1, and how many of 10 / 20 steps
    lie in the table's last interval t in (T - 1, T]."""
    rows = []
    for s in settings:
        p = s.process
        T = p.max_steps
        for spacing in s.spacings:
            g10, g20 = (sampling_timesteps(p, k, spacing, "euler") for k in (10, 20))
            rows.append(
                [
                    s.name,
                    spacing,
                    f"{p.sigma_ve(T):.0f} / {p.sigma_ve(T - 1):.0f}",
                    ", ".join(f"{t:.1f}" if isinstance(t, float) else str(t) for t in g10[:4]),
                    f"{sum(t > T - 1 for t in g10)} / {sum(t > T - 1 for t in g20)}",
                ]
            )
    return rows


def heun_euler_first(setting: Setting, spacing: str, steps: int, draws: int, n: int) -> list[float]:
    """PROTOTYPE (not in adiff): Heun in its Karras form whose first step, from t = T, is an Euler (= DDIM) step;
    2N - 2 NFE.  (Heun's default "exponential" form made this moot: bench_solvers.py --grids.)"""
    grid = sampling_timesteps(setting.process, steps, spacing, "heun")
    out = []
    for d in range(draws):
        data = setting.data(n, 10_000 + d)
        g = torch.Generator().manual_seed(d)  # the same x_T as the main runs
        first = next(
            iter(
                sample_progressive(
                    setting.predict, setting.process, (n, 2), sampler="euler", timesteps=grid[:2], generator=g
                )
            )
        )
        x = sample(
            setting.predict,
            setting.process,
            (n, 2),
            sampler="heun",
            options={"form": "karras"},
            timesteps=grid[1:],
            x_T=first.x_prev,
        )
        out.append(mmd2(x, data) if bool(torch.isfinite(x).all()) else math.nan)
    return out


# ------------------------------------------------------------------------------------------------ main
def mixture_settings() -> list[Setting]:
    gmm = eight_gaussians_mixture()

    def data(n, seed):
        return gmm.sample(n, torch.Generator().manual_seed(seed))[0]

    out = []
    for name, kw, ptype in (
        ("mixture VP linear", {"name": "vp", "schedule": "linear", "num_steps": 1000}, "epsilon"),
        ("mixture VP cosine", {"name": "vp", "schedule": "cosine", "num_steps": 1000}, "epsilon"),
        ("mixture flow shift 1", {"name": "flow", "shift": 1.0}, "velocity"),
        ("mixture flow shift 3", {"name": "flow", "shift": 3.0}, "velocity"),
    ):
        process = make_process(**kw)
        spacings = ("angle", "uniform", "karras") if process.name == "vp" else ("uniform",)
        out.append(Setting(name, process, Predictor(gmm.model_fn(process, ptype), process, ptype), data, spacings))
    return out


def moons_setting() -> Setting:
    model = load_preset("moons", device="cpu")

    def data(n, seed):
        return make_dataset("moons", n, seed=seed)[0]

    return Setting(
        "moons preset (VP linear, epsilon network)",
        model.process,
        model.predictor(),
        data,
        ("angle", "uniform", "karras"),
    )


def main() -> int:
    ap = base_parser(__doc__, results_name="bench_solvers")
    ap.add_argument("--points", type=int, default=None, help="samples per draw (default 2000; --quick 1000)")
    ap.add_argument("--draws", type=int, default=None, help="draws on the mixture (default 3, --grids 5; --quick 2)")
    ap.add_argument("--moons-draws", type=int, default=None, help="draws on moons (default 2; --quick 2)")
    ap.add_argument(
        "--moons-full",
        action="store_true",
        help="on moons, every solver runs the 1000-NFE budget (default: ddim only, the reference; the full "
        "run takes over an hour on the shared 2-core machine)",
    )
    ap.add_argument(
        "--grids",
        action="store_true",
        help="which grid each solver samples best on at ~10 NFE (bench/solver_grids.py; writes "
        "bench/results/bench_solvers_grids.txt)",
    )
    args = ap.parse_args()
    if args.grids:
        args.results_name = "bench_solvers_grids"
    device = setup(args)
    if device.type != "cpu":
        sys.exit("error: bench_solvers.py measures quality, not speed, and runs on the CPU (--device cpu)")
    if args.grids:
        import solver_grids

        print_header("bench_solvers --grids: MMD² at ~10 NFE for every solver and grid (exact mixtures)", device, args)
        rc = solver_grids.main(args)
        print_footer()
        return rc
    quick = args.quick
    n = args.points or (1000 if quick else 2000)
    draws = args.draws or (2 if quick else 3)
    moons_draws = args.moons_draws or 2
    budgets = (5, 10, 20, 100) if quick else BUDGETS
    moons_budgets = (10, 20, 100) if quick else BUDGETS
    print_header(
        "bench_solvers: quality (MMD² to fresh data) against network evaluations",
        device,
        args,
        {"points": n, "draws": draws, "moons_draws": moons_draws, "budgets": list(budgets)},
    )
    t0 = time.perf_counter()
    mixtures = mixture_settings()
    moons = moons_setting()
    if not args.moons_full:
        moons.full_budget_solvers = ("ddim",)
    for s in mixtures:
        run_setting(s, budgets, draws, n)
        print_setting(s, budgets)
    run_setting(moons, moons_budgets, moons_draws, n)
    print_setting(moons, moons_budgets)
    vp = [s for s in mixtures if s.process.name == "vp"] + [moons]

    # targets ------------------------------------------------------------------------------------------------------
    print("\n== Targets ==")
    rows = []
    for s in vp:
        met_default, met_any, lines = target_1(s, budgets if s is not moons else moons_budgets)
        print(f"\nT1 on {s.name}: dpmpp_2m or heun at <= 20 NFE vs ddim at 100 NFE")
        print("\n".join(lines))
        rows.append(
            [
                f"T1 {s.name}",
                "met" if met_default else ("met with a non-default spacing" if met_any else "NOT met"),
                "at the solvers' default spacings" if met_default else "",
            ]
        )
    flows = [s for s in mixtures if s.process.name == "flow"]
    print(
        "\nT2: the mixture under the flow path, flow euler at 20 NFE, vs the VP path, ddim at 20 NFE (ddim's default spacing)"
    )
    ddim_sp = SOLVERS["ddim"].default_spacing["vp"]
    for f in flows:
        for v in vp[:2]:
            p = paired(f, ("euler", "uniform", 20), v, ("ddim", ddim_sp, 20))
            print("  " + describe(p, f"{f.name} euler", f"{v.name} ddim {ddim_sp}"))
            rows.append(
                [
                    f"T2 {f.name} euler-20 vs {v.name} ddim-20",
                    "met" if within(p) else "NOT met",
                    f"{p[0] * 1e4:.2f} vs {p[1] * 1e4:.2f} (x 1e-4)" if p else "missing",
                ]
            )
    print_table(
        ["target", "verdict", "note"],
        rows,
        "Verdicts ('matches' = worse by at most max(1e-4, 2 SE of the paired difference))",
    )

    # recommendations -------------------------------------------------------------------------------------------
    print("\n== Recommendations (from the measurements above) ==")
    rec_rows = []
    for name in solvers_for("vp"):
        tally = best_spacing_tally(vp, name, budgets)
        best = max(tally, key=lambda k: (tally[k], k == SOLVERS[name].default_spacing["vp"])) if tally else "-"
        conv = {
            s.name: converged_budget(s, name, best, budgets if s is not moons else moons_budgets)
            for s in vp
            if s.full_budget_solvers is None or name in s.full_budget_solvers
        }  # a reference at the top budget
        need = [v for v in conv.values() if v is not None]
        worst = max(need) if need else None
        cap = 20 if name in FEW_STEP else None
        pick = min(worst, cap) if (worst is not None and cap) else worst
        steps = steps_for(SOLVERS[name], pick, vp[0].process) if pick else None
        rec_rows.append(
            [
                name,
                SOLVERS[name].default_spacing["vp"],
                best,
                ", ".join(f"{k} {v}" for k, v in sorted(tally.items(), key=lambda kv: -kv[1])),
                "; ".join(
                    f"{k.split(' (')[0]}: {v if v is not None else '>' + str(max(budgets))}" for k, v in conv.items()
                ),
                f"{steps} steps ({SOLVERS[name].nfe(steps)} NFE)" if steps else "-",
                SOLVERS[name].default_steps or "all T",
            ]
        )
    print_table(
        [
            "solver (VP)",
            "default spacing today",
            "best spacing",
            "lowest-MMD² wins (10-100 NFE)",
            "NFE to reach its 1000-NFE figure + 1e-4",
            "recommended steps",
            "default steps today",
        ],
        rec_rows,
    )
    flow_rows = []
    for name in solvers_for("flow"):
        conv = {f.name: converged_budget(f, name, "uniform", budgets) for f in flows}
        at20 = {f.name: fmt_cell(f.cells.get((name, "uniform", 20))) for f in flows}
        flow_rows.append(
            [
                name,
                "; ".join(f"{k}: {v}" for k, v in at20.items()),
                "; ".join(f"{k}: {v if v is not None else '>' + str(max(budgets))}" for k, v in conv.items()),
                SOLVERS[name].default_steps,
            ]
        )
    print_table(
        ["solver (flow)", "MMD² x 1e4 at 20 NFE", "NFE to reach its 1000-NFE figure + 1e-4", "default steps today"],
        flow_rows,
    )

    # diagnostics -----------------------------------------------------------------------------------------------
    print("\n== Diagnostics ==")
    print_table(
        ["setting", "spacing", "sigma/alpha at T / T-1", "first 4 of 10 steps", "steps in (T-1, T] of 10 / 20"],
        grid_facts(vp),
        "Where the VP grids put their first steps",
    )
    proto = []
    for s in vp[:2]:
        for spacing in ("angle", "uniform"):
            for steps in (3, 5, 10) if quick else (3, 5, 10, 25):
                ref = s.cells.get(
                    ("heun", spacing, next(b for b in budgets if steps_for(SOLVERS["heun"], b, s.process) == steps))
                )
                vals = heun_euler_first(s, spacing, steps, draws, n)
                proto.append(
                    [s.name, spacing, f"{steps} ({2 * steps - 2} NFE)", fmt_cell({"mmd": vals}), fmt_cell(ref)]
                )
    print_table(
        ["setting", "spacing", "steps", "PROTOTYPE heun, Euler first step: MMD² x 1e4", "heun as in adiff"],
        proto,
        "PROTOTYPE: heun with its first step (from t = T, where sigma/alpha is largest) taken by Euler",
    )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
