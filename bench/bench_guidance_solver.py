"""The guidance tab's solver: verdicts and time at the model's default solver (components.choices.default_solver:
DPM-Solver++ 25 steps for moons) against DDIM-20 (the tab's own, components/guidance/layout.py TAB_SOLVER), on moons.

    python bench/bench_guidance_solver.py [--quick] [--seeds 5] [--threads 1]

Runs the tab's own handler (components/guidance/handlers.py: parse, the unguided and guided runs, the tilted target
and the verdict) in-process, with the result cache cleared before each call, for the settings the tab's lessons
(components/help.py) and the browser walk use:

* default: λ = 2, dps, recurrence 1, 300 points (the tab as it opens);
* lesson 1: λ = 10 (the summary must say "over-shoots");
* lesson 2: λ = 2 with recurrence 3 (the guided mean reward must move towards the target's against recurrence 1);
* walk: λ = 10, 10 steps, 150 points (tests/test_app_browser.py: "over-shoots").

each at the moons preset's default solver (components.choices.default_solver) and at DDIM-20, the two interleaved
per seed.  Prints per setting and solver the verdict on each seed, the guided and target mean rewards, and the time
per request: medians (min-max) and the ratio default / DDIM-20 per seed.  --quick: 2 seeds.  The whole output goes
to bench/results/bench_guidance_solver.txt too.
"""

from __future__ import annotations

import statistics
import time

from common import base_parser, print_footer, print_header, setup

from components.choices import default_solver  # noqa: E402
from components.context import AppContext  # noqa: E402
from components.guidance.handlers import GuidedRequest, Result, guided_generate  # noqa: E402
from components.state import Session  # noqa: E402

# name -> (λ, recurrence, num_steps or None for the solver's own, num_samples)
SETTINGS = {
    "default": (2.0, 1, None, 300),
    "lesson 1 (λ = 10)": (10.0, 1, None, 300),
    "lesson 2 (recurrence 3)": (2.0, 3, None, 300),
    "walk (λ = 10, 10 steps)": (10.0, 1, 10, 150),
}


def run(ctx: AppContext, sampler: str, steps: int, lam: float, rec: int, n: int, seed: int) -> tuple[dict, float]:
    """One request through the tab's handler: (summary, seconds)."""
    ctx.results.clear()
    session = Session("bench")
    raw = ("moons", "distance_to_target", "", "", lam, "dps", rec, "any", 1.0, sampler, steps, seed, n)
    t0 = time.perf_counter()
    req = GuidedRequest.parse(ctx, session, *raw)
    out = [v for v in guided_generate(ctx, session, req) if isinstance(v, Result)][-1]
    return out.summary, time.perf_counter() - t0


def fmt_times(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main() -> None:
    ap = base_parser(__doc__, "bench_guidance_solver")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per setting and solver (--quick: 2)")
    args = ap.parse_args()
    if args.quick:
        args.seeds = 2
    device = setup(args)
    ctx = AppContext(device=str(device))
    model, info = ctx.model("moons", None)
    solvers = {"default": default_solver(model, info), "ddim-20": ("ddim", 20)}
    print_header("guidance tab: the model's default solver against DDIM-20 (moons)", device, args)
    print(f"moons; default solver {solvers['default'][0]}-{solvers['default'][1]}; seeds 0..{args.seeds - 1}")
    base = {}  # (seed, solver) -> guided mean reward at recurrence 1, λ = 2 (lesson 2 compares with it)
    for name, (lam, rec, fixed_steps, n) in SETTINGS.items():
        rows = {k: {"verdicts": [], "guided": [], "target": [], "s": [], "closer": []} for k in solvers}
        for seed in range(args.seeds):
            order = list(solvers) if seed % 2 == 0 else list(reversed(solvers))
            for k in order:
                sampler, steps = solvers[k]
                s, dt = run(ctx, sampler, fixed_steps or steps, lam, rec, n, seed)
                r = rows[k]
                r["verdicts"].append(s.get("versus_target"))
                r["guided"].append(s["guided_mean_reward"])
                r["target"].append(s["target_mean_reward"])
                r["s"].append(dt)
                if name == "default":
                    base[seed, k] = s["guided_mean_reward"]
                elif rec > 1:
                    t = s["target_mean_reward"]
                    r["closer"].append(abs(s["guided_mean_reward"] - t) < abs(base[seed, k] - t))
        print(f"\n{name}: λ = {lam:g}, recurrence {rec}, {n} points")
        for k, r in rows.items():
            sampler, steps = solvers[k]
            extra = (
                f"; closer to the target than recurrence 1 on {sum(r['closer'])}/{len(r['closer'])}"
                if r["closer"]
                else ""
            )
            print(
                f"  {k:8s} {sampler}-{fixed_steps or steps}: verdicts {r['verdicts']}; guided mean reward "
                f"{statistics.mean(r['guided']):.3f}, target {statistics.mean(r['target']):.3f}; "
                f"time {fmt_times(r['s'])} s{extra}"
            )
        ratios = [a / b for a, b in zip(rows["default"]["s"], rows["ddim-20"]["s"])]
        print(f"  time default / ddim-20 per seed: {fmt_times(ratios)}")
    print_footer()


if __name__ == "__main__":
    main()
