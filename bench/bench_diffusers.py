"""A peer: the moons preset's EMA denoiser driven by diffusers' scheduler loops against adiff's solvers, on the same
noise.  Equal outputs to ~1e-5 on the same alphas_cumprod table, and ours no slower.

    python bench/bench_diffusers.py [--quick] [--threads 1] [--device cuda] [--compile] [--out PATH]

diffusers is an optional, bench-only dependency (pip install diffusers); adiff never imports it.

The pairs (adiff solver and spacing <-> diffusers scheduler), all on the preset's VP linear process (T = 1000) except
the last, which runs a flow twin of the preset (common.flow_twin: the same architecture and weights read as a velocity
network; no flow preset ships yet, and speed does not depend on the weights):
  DDPM-1000          ddpm                 <-> DDPMScheduler(clip_sample=False, variance_type="fixed_small")
  DDIM-50            ddim, "uniform"      <-> DDIMScheduler(timestep_spacing="trailing", set_alpha_to_one=True, clip_sample=False)
  dpmpp_2m-20        dpmpp_2m, "uniform"  <-> DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2,
                                              timestep_spacing="trailing", final_sigmas_type="zero", lower_order_final=True)
  euler-20           euler, "karras"      <-> EulerDiscreteScheduler(timestep_spacing="linspace", use_karras_sigmas=True)
  heun-10 (19 NFE)   heun, "karras", form "karras" <-> HeunDiscreteScheduler(timestep_spacing="linspace", use_karras_sigmas=True)
  flow euler-20      euler (flow)         <-> FlowMatchEulerDiscreteScheduler(shift=1.0), set_timesteps(sigmas=adiff's grid)
Conventions lined up (as in scripts/make_solver_fixtures.py and tests/test_solver_parity.py): diffusers counts VP
timesteps 0..T-1 and adiff 1..T, so the network gets the adiff time t_diffusers + 1 (its input (t_diffusers + 1) / T);
"trailing" is adiff's "uniform"; use_karras_sigmas with "linspace" is adiff's "karras"; Euler/Heun integrate
y = x / alpha, so diffusers' loop starts from y_T = x_T * sqrt(sigma_max^2 + 1), the same point as adiff's x_T
(diffusers' own init_noise_sigma for "linspace" is sigma_max, a relative 2e-5 smaller); the flow network gets
t = timestep / 1000 = sigma.  The same noise: both loops seed one torch.Generator alike and draw x_T first; DDPM then
draws one randn per step in both (diffusers skips t = 0, where adiff multiplies its draw by sigma = 0).
The same table: diffusers builds alphas_cumprod with a float32 cumprod; adiff's is float64.  Each pair's max |ours -
diffusers| is printed with diffusers' own table and with adiff's float64 table written into the scheduler before
set_timesteps (the formulas alone; diffusers then still keeps its sigmas and timesteps in float32).

Timing: both loops call the same raw network function (model.model_fn(), t a Python number, one shared time row)
under no_grad, and diffusers' loop calls scale_model_input as its pipelines do.  Interleaved whole runs (median
(min-max) of per-round ratios ours / diffusers) and "lockstep": one run in which the two loops advance one solver step
each in turn (a Heun step is both of its network calls), every step timed, robust to the machine's load changing
between whole runs (the main figure on a shared machine): the median of the per-step ratios over every step of 1
(DDPM) or 5 (--quick: 3) lockstep runs, with the ratio of the totals beside it.  The loop cost per step is measured
the same way with a trivial model (output 0.1 x), which isolates the solver arithmetic from the network: per-step
medians (min-max) over 7 (DDPM) / 25 (others) lockstep runs.
DDPM-1000 runs on --ddpm-points (default 250: at 1000 points the DDPM pair alone took over 40 minutes on the shared
2-core machine at load average 15-20).  --quick: DDPM on 200 points, fewer repeats.
"""

from __future__ import annotations

import math
import sys

import torch  # noqa: E402
from common import (
    base_parser,
    flow_twin,
    fmt_stats,
    interleaved,
    load_model,
    lockstep,
    paired_ratio,
    print_footer,
    print_header,
    print_table,
    setup,
    stats,
    step_ratio,
    verdict,
)

from adiff.diffusion import Predictor  # noqa: E402
from adiff.samplers import sample_progressive  # noqa: E402

try:
    import diffusers
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        FlowMatchEulerDiscreteScheduler,
        HeunDiscreteScheduler,
    )
except ImportError:  # pragma: no cover
    sys.exit("error: bench_diffusers.py needs diffusers (an optional bench-only dependency): pip install diffusers")

VP_KW = {"beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear", "prediction_type": "epsilon"}
# label: (adiff sampler, steps, spacing, process "vp" | "flow")
PAIRS = {
    "DDPM-1000": ("ddpm", 1000, "uniform", "vp"),
    "DDIM-50": ("ddim", 50, "uniform", "vp"),
    "dpmpp_2m-20": ("dpmpp_2m", 20, "uniform", "vp"),
    "euler-20": ("euler", 20, "karras", "vp"),
    "heun-10": ("heun", 10, "karras", "vp"),
    "flow euler-20": ("euler", 20, "uniform", "flow"),
}


def make_scheduler(label: str, T: int, table: torch.Tensor | None = None):
    """The diffusers scheduler of a pair; ``table``: alphas_cumprod to use instead of diffusers' own (float64)."""
    kind = PAIRS[label][0] if PAIRS[label][3] == "vp" else "flow"
    if kind == "ddpm":
        s = DDPMScheduler(num_train_timesteps=T, clip_sample=False, variance_type="fixed_small", **VP_KW)
    elif kind == "ddim":
        s = DDIMScheduler(
            num_train_timesteps=T, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing", **VP_KW
        )
    elif kind == "dpmpp_2m":
        s = DPMSolverMultistepScheduler(
            num_train_timesteps=T,
            algorithm_type="dpmsolver++",
            solver_order=2,
            timestep_spacing="trailing",
            final_sigmas_type="zero",
            lower_order_final=True,
            **VP_KW,
        )
    elif kind == "euler":
        s = EulerDiscreteScheduler(num_train_timesteps=T, timestep_spacing="linspace", use_karras_sigmas=True, **VP_KW)
    elif kind == "heun":
        s = HeunDiscreteScheduler(num_train_timesteps=T, timestep_spacing="linspace", use_karras_sigmas=True, **VP_KW)
    else:
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    if table is not None:
        s.alphas_cumprod = table.clone()
        if kind == "ddim":
            s.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return s


def diffusers_steps(raw, sched, label: str, n: int, seed: int, device, process):
    """diffusers' textbook loop as a generator: yields x after every solver step (after both calls of a Heun step).
    raw(x, t) is the network in adiff's time (VP 1..T, flow 0..1)."""
    sampler, steps, _, kind = PAIRS[label]
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((n, 2), generator=g, device=device)
    if kind == "flow":
        sched.set_timesteps(sigmas=process.timesteps(steps), device=device)
    else:
        sched.set_timesteps(steps, device=device)
    if kind == "vp" and sampler in ("euler", "heun"):  # Karras' y = x / alpha: the same starting point as adiff's x_T
        x = x * math.sqrt(float(sched.sigmas[0]) ** 2 + 1)
    kw = {"generator": g} if sampler == "ddpm" else ({"eta": 0.0} if sampler == "ddim" else {})
    scale = hasattr(type(sched), "scale_model_input")  # FlowMatchEulerDiscreteScheduler has none
    pending = False
    for t in sched.timesteps:
        with torch.no_grad():
            x_in = sched.scale_model_input(x, t) if scale else x
            t_adiff = (
                float(t) / 1000.0 if kind == "flow" else (int(t) + 1 if sampler in ("ddpm", "ddim") else float(t) + 1.0)
            )
            x = sched.step(raw(x_in, t_adiff), t, x, **kw).prev_sample
        if sampler == "heun" and not sched.state_in_first_order:
            pending = True  # the predictor half of a Heun step (or its final Euler step)
            continue
        pending = False
        yield x
    if pending:
        yield x


def ours_steps(predict, process, label: str, n: int, seed: int, device):
    sampler, steps, spacing, _ = PAIRS[label]
    g = torch.Generator(device=device).manual_seed(seed)
    options = {"form": "karras"} if sampler == "heun" else None  # HeunDiscreteScheduler's form of Heun
    for rec in sample_progressive(
        predict,
        process,
        (n, 2),
        sampler=sampler,
        num_steps=steps,
        spacing=spacing,
        options=options,
        generator=g,
        device=device,
    ):
        yield rec.x_prev


def run_to_end(it):
    last = None
    for last in it:
        pass
    return last


def last_of(it, box: list):
    """Pass an iterator through, keeping its last value in box[0]."""
    for v in it:
        box[0] = v
        yield v


def main() -> int:
    ap = base_parser(__doc__, results_name="bench_diffusers")
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--ddpm-points",
        type=int,
        default=250,
        help="batch size for DDPM-1000 (default 250: 1000 points take over 40 min on 2 shared cores)",
    )
    args = ap.parse_args()
    device = setup(args)
    n = args.points
    n_ddpm = 200 if args.quick else args.ddpm_points
    reps_ddpm, reps = (3, 3) if args.quick else (3, 5)
    loop_runs = {"DDPM-1000": 3 if args.quick else 7}
    info = print_header(
        "bench_diffusers: adiff solvers vs diffusers' scheduler loops (moons preset)",
        device,
        args,
        {"diffusers": diffusers.__version__, "points": n, "ddpm_points": n_ddpm, "compile": args.compile},
    )
    model = load_model("moons", device, compile=args.compile)
    flow = flow_twin(model)
    if args.compile:
        flow.ema.module = torch.compile(flow.ema.module)
    T = model.num_diffusion_steps
    nets = {
        "vp": (model.model_fn(), model.predictor(), model.process),
        "flow": (flow.model_fn(), flow.predictor(), flow.process),
    }
    table = model.process.schedule._abar64[1:].clone()  # adiff's float64 alphas_cumprod at t = 1..T
    rows = []
    d_abar = make_scheduler("DDPM-1000", T).alphas_cumprod
    rel_d = ((d_abar.double() - table).abs() / table).max().item()
    rows.append(
        [
            "alphas_cumprod max relative error vs float64",
            f"diffusers {rel_d:.1e}",
            "adiff keeps the float64 table (its solvers use Python floats from it)",
            "(explains the differences)",
        ]
    )

    for label, (sampler, steps, spacing, kind) in PAIRS.items():
        npts = n_ddpm if sampler == "ddpm" else n
        r = reps_ddpm if sampler == "ddpm" else reps
        raw, predict, process = nets[kind]
        print(
            f"\n[{label}] {npts} points; adiff {sampler} ({spacing}) vs {type(make_scheduler(label, T)).__name__}",
            flush=True,
        )
        # correctness: same seed -> same x_T and the same per-step noise
        a = run_to_end(ours_steps(predict, process, label, npts, args.seed, device)).float()
        b = run_to_end(diffusers_steps(raw, make_scheduler(label, T), label, npts, args.seed, device, process)).float()
        diff = (a - b).abs().max().item()
        if kind == "vp":
            b2 = run_to_end(
                diffusers_steps(raw, make_scheduler(label, T, table), label, npts, args.seed, device, process)
            )
            diff2 = (a - b2.float()).abs().max().item()
            same = f"{diff2:.1e} with adiff's float64 alphas_cumprod in diffusers"
        else:
            diff2, same = diff, "(the flow has no table: alpha = 1 - t, sigma = t)"
        print(f"    max |ours - diffusers| = {diff:.2e}; {same}; sample std {a.std().item():.3f}", flush=True)
        cases = {
            "ours": lambda lb=label, np_=npts, p=predict, pr=process: run_to_end(
                ours_steps(p, pr, lb, np_, args.seed, device)
            ),
            "diffusers": lambda lb=label, np_=npts, f=raw, pr=process: run_to_end(
                diffusers_steps(f, make_scheduler(lb, T), lb, np_, args.seed, device, pr)
            ),
        }
        tm = interleaved(cases, r, warmup=False, device=device)  # the correctness runs above were the warm-up
        ratio = paired_ratio(tm, "ours", "diffusers")
        rows.append(
            [
                f"{label} ({npts} pts): max |ours - diffusers|",
                f"{diff2:.1e}",
                f"same table; with diffusers' own float32 table: {diff:.1e}",
                "~1e-5: " + verdict(diff2, 1e-5),
            ]
        )
        rows.append(
            [
                f"{label} ({npts} pts): time ours / diffusers, whole runs",
                fmt_stats(ratio, "x"),
                f"ours {fmt_stats(stats(tm['ours']), ' s', digits=2)}, diffusers {fmt_stats(stats(tm['diffusers']), ' s', digits=2)} ({r} rounds)",
                "<= 1.00x: " + verdict(ratio[0], 1.0),
            ]
        )
        boxes = {"ours": [None], "diffusers": [None]}
        per_step, tot = {}, {"ours": 0.0, "diffusers": 0.0}
        for _ in range(1 if sampler == "ddpm" else r):
            ls = lockstep(
                {
                    "ours": lambda: last_of(
                        ours_steps(predict, process, label, npts, args.seed, device), boxes["ours"]
                    ),
                    "diffusers": lambda: last_of(
                        diffusers_steps(raw, make_scheduler(label, T), label, npts, args.seed, device, process),
                        boxes["diffusers"],
                    ),
                },
                device,
                per_step,
            )
            tot = {k: tot[k] + ls[k] for k in tot}
        ldiff = (boxes["ours"][0].float() - boxes["diffusers"][0].float()).abs().max().item()
        per = step_ratio(per_step, "ours", "diffusers")
        rows.append(
            [
                f"{label} ({npts} pts): time ours / diffusers, lockstep",
                fmt_stats(per, "x"),
                f"median (min-max) of per-step ratios over {len(per_step['ours'])} steps "
                f"({len(per_step['ours']) // steps} runs); totals ours {tot['ours']:.2f} s, diffusers {tot['diffusers']:.2f} s "
                f"= {tot['ours'] / tot['diffusers']:.3f}x (max |diff| {ldiff:.1e})",
                "<= 1.00x: " + verdict(per[0], 1.0),
            ]
        )

    # loop cost with a trivial model ---------------------------------------------------------------------------------
    print("\n[loop] every pair's loop with a trivial model (output = 0.1 x), lockstep", flush=True)

    def trivial(x, t):
        return 0.1 * x

    for label, (sampler, steps, spacing, kind) in PAIRS.items():
        process = nets[kind][2]
        predict = Predictor(trivial, process, "epsilon" if kind == "vp" else "velocity")
        makers = {
            "ours": lambda lb=label, p=predict, pr=process: ours_steps(p, pr, lb, n, 0, device),
            "diffusers": lambda lb=label, pr=process: diffusers_steps(
                trivial, make_scheduler(lb, T), lb, n, 0, device, pr
            ),
        }
        lockstep(makers, device)  # warm-up
        per_step: dict = {}
        runs = [lockstep(makers, device, per_step) for _ in range(loop_runs.get(label, 5 if args.quick else 25))]
        us = {k: stats([v * 1e6 for v in per_step[k]]) for k in makers}
        ratio = step_ratio(per_step, "ours", "diffusers")
        whole = stats([run["ours"] / run["diffusers"] for run in runs])
        rows.append(
            [
                f"{label} loop cost per step, trivial model ({n} pts), lockstep: ours / diffusers",
                fmt_stats(ratio, "x"),
                f"per step: ours {fmt_stats(us['ours'], ' us', digits=0)}, diffusers {fmt_stats(us['diffusers'], ' us', digits=0)}; "
                f"{len(runs)} runs; per run: {fmt_stats(whole, 'x')}",
                "(no target)",
            ]
        )

    print_table(
        ["figure", "value: median (min-max)", "details", "target"],
        rows,
        f"bench_diffusers results on {info['processor']}, {info['cpu_count']} cores, torch {info['torch']}, "
        f"diffusers {diffusers.__version__}, threads {info['threads']}, device {info['device']}"
        f"{', compiled' if args.compile else ''}",
    )
    print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
