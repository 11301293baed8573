"""A peer: the moons preset's EMA denoiser driven by diffusers' DDPMScheduler / DDIMScheduler loops against adiff's
samplers, on the same noise.  Equal outputs to 1e-5, and ours no slower.

    python bench/bench_diffusers.py [--quick] [--threads 1] [--device cuda] [--compile]

diffusers is an optional, bench-only dependency (pip install diffusers); adiff never imports it.

How the same noise is fed (nothing is monkey-patched):
* DDPM-1000: both loops draw from one torch.Generator seeded alike, in the same order: x_T = randn(shape) first,
  then one randn(shape) per step.  diffusers' DDPMScheduler.step(..., generator=g) draws its variance noise with
  randn_tensor(shape, generator=g) (= torch.randn) for every t > 0 (999 draws); adiff draws one per step (1000) and
  multiplies the last one by sigma = 0, so the streams coincide on every step that uses noise.
* DDIM-50, eta = 0: deterministic; both start from the same x_T.
Schedulers: DDPMScheduler(1000, "linear", clip_sample=False) (its default clip_sample=True clamps x0_hat to [-1, 1]),
DDIMScheduler(1000, "linear", timestep_spacing="trailing", set_alpha_to_one=True, clip_sample=False).  Timesteps:
ours are 1..T, diffusers' 0..T-1, so the network gets t_ours / T = (t_diffusers + 1) / T in both loops.
diffusers builds alphas_cumprod with a float32 cumprod; adiff computes it in float64 and stores float32, so the
max |difference| is also reported with diffusers' table replaced by adiff's (the formulas alone).

Timing: both loops call the same noise predictor under no_grad; interleaved repeats of whole runs, median (min-max)
of per-round ratios ours / diffusers; and "lockstep": one run in which the two loops advance step by step side by
side, each step timed (robust to the machine's load changing between whole runs).  The loop cost per step is also
measured in lockstep with a trivial noise predictor (eps = 0.1 x), which isolates the scheduler arithmetic from the
network: medians (min-max) over 7 (DDPM) / 40 (DDIM) lockstep runs, with a third contestant, a PROTOTYPE of a cheaper
adiff loop (per-step coefficients as Python floats, no noise drawn for DDIM eta = 0; see prototype_progressive).
--quick: DDPM on 200 points instead of 2000, fewer repeats.
"""
from __future__ import annotations

import math
import sys
import time

from common import (base_parser, fmt_stats, interleaved, load_model, lockstep as lockstep_n, paired_ratio,
                    print_footer, print_header, print_table, setup, stats, sync, verdict)  # fmt: skip

import torch  # noqa: E402

from adiff.samplers import StepRecord, sample, sample_progressive, sampling_timesteps  # noqa: E402

try:
    import diffusers
    from diffusers import DDIMScheduler, DDPMScheduler
except ImportError:  # pragma: no cover
    sys.exit("error: bench_diffusers.py needs diffusers (an optional bench-only dependency): pip install diffusers")


def make_scheduler(kind: str, T: int):
    if kind == "ddpm":
        return DDPMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                             clip_sample=False, variance_type="fixed_small", prediction_type="epsilon")  # fmt: skip
    return DDIMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear", clip_sample=False,
                         set_alpha_to_one=True, timestep_spacing="trailing", prediction_type="epsilon")  # fmt: skip


def diffusers_loop(eps_fn, sched, n: int, num_steps: int, seed: int, device, eta: float = 0.0):
    """The textbook diffusers loop; eps_fn takes adiff's integer timesteps (1..T), so it gets t + 1."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((n, 2), generator=g, device=device)
    sched.set_timesteps(num_steps, device=device)
    ddim = isinstance(sched, DDIMScheduler)
    with torch.no_grad():
        for t in sched.timesteps:
            t_b = torch.full((n,), int(t) + 1, device=device, dtype=torch.long)
            eps = eps_fn(x, t_b)
            if ddim:
                x = sched.step(eps, t, x, eta=eta).prev_sample
            else:
                x = sched.step(eps, t, x, generator=g).prev_sample
    return x


def ours(eps_fn, schedule, n: int, sampler: str, num_steps, seed: int, device):
    g = torch.Generator(device=device).manual_seed(seed)
    return sample(eps_fn, schedule, (n, 2), sampler=sampler, num_steps=num_steps, eta=0.0, spacing="uniform", generator=g,
                  device=device)  # diffusers' "trailing" = even in t


def diffusers_progressive(eps_fn, sched, n: int, num_steps: int, seed: int, device):
    """diffusers_loop as a generator of steps (for lockstep timing)."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((n, 2), generator=g, device=device)
    sched.set_timesteps(num_steps, device=device)
    ddim = isinstance(sched, DDIMScheduler)
    for t in sched.timesteps:
        with torch.no_grad():
            eps = eps_fn(x, torch.full((n,), int(t) + 1, device=device, dtype=torch.long))
            x = (sched.step(eps, t, x, eta=0.0) if ddim else sched.step(eps, t, x, generator=g)).prev_sample
        yield x


def prototype_progressive(eps_fn, schedule, n: int, sampler: str, num_steps, seed: int, device):
    """PROTOTYPE of a cheaper sampler loop (a proposal for adiff.sampling.sample_progressive, unguided path): the
    per-step coefficients are Python floats computed once from the float64 table (no 0-d tensor arithmetic, no
    timestep checks per step), and DDIM with eta = 0 draws no noise.  Same formulas, same StepRecords."""
    T = schedule.num_steps
    ts = sampling_timesteps(T, num_steps, "uniform")
    abar = schedule._abar64.tolist()  # float64, index = timestep
    sig = [math.sqrt(1.0 - a) for a in abar]
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((n, 2), generator=g, device=device)
    for i, t in enumerate(ts):
        s = ts[i + 1] if i + 1 < len(ts) else 0
        a_t, a_s = abar[t], abar[s]
        with torch.no_grad():
            eps = eps_fn(x, torch.full((n,), t, device=device, dtype=torch.long))
        x0 = (x - sig[t] * eps) * (1.0 / math.sqrt(a_t))
        if sampler == "ddpm":
            alpha = a_t / a_s
            c0, c1 = math.sqrt(a_s) * (1 - alpha) / (1 - a_t), math.sqrt(alpha) * (1 - a_s) / (1 - a_t)
            sd = math.sqrt((1 - a_s) / (1 - a_t) * (1 - alpha))
            noise = torch.randn((n, 2), generator=g, device=device)
            x_s = c0 * x0 + c1 * x + sd * noise
        else:  # eta = 0
            x_s = math.sqrt(a_s) * x0 + math.sqrt(1 - a_s) * eps
        yield StepRecord(i, len(ts), t, s, x, x0, eps, x_s, sig[t])
        x = x_s


def lockstep(eps_fn, schedule, sched, n: int, sampler: str, num_steps, seed: int, device):
    """Both loops advanced step by step side by side (ours first on even steps, diffusers first on odd ones), each
    step timed with its network call: robust to machine load changing between whole runs.
    Returns (ours seconds, diffusers seconds, max |difference| of the final samples)."""
    S = num_steps or schedule.num_steps
    g1 = torch.Generator(device=device).manual_seed(seed)
    g2 = torch.Generator(device=device).manual_seed(seed)
    it = sample_progressive(eps_fn, schedule, (n, 2), sampler=sampler, num_steps=num_steps, spacing="uniform", generator=g1,
                            device=device)  # fmt: skip
    x = torch.randn((n, 2), generator=g2, device=device)
    sched.set_timesteps(S, device=device)
    ddim = isinstance(sched, DDIMScheduler)
    o_s = d_s = 0.0
    rec = None

    def ours_step():
        nonlocal rec
        t0 = time.perf_counter()
        rec = next(it)
        sync(device)
        return time.perf_counter() - t0

    def their_step(t):
        nonlocal x
        t0 = time.perf_counter()
        with torch.no_grad():
            eps = eps_fn(x, torch.full((n,), int(t) + 1, device=device, dtype=torch.long))
            x = (sched.step(eps, t, x, eta=0.0) if ddim else sched.step(eps, t, x, generator=g2)).prev_sample
        sync(device)
        return time.perf_counter() - t0

    for i, t in enumerate(sched.timesteps):
        if i % 2 == 0:
            o_s += ours_step()
            d_s += their_step(t)
        else:
            d_s += their_step(t)
            o_s += ours_step()
    assert next(it, None) is None
    return o_s, d_s, (rec.x_prev.float() - x.float()).abs().max().item()


def main() -> int:
    ap = base_parser(__doc__)
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    device = setup(args)
    n = args.points
    n_ddpm = 200 if args.quick else n
    reps_ddpm, reps = (3, 3) if args.quick else (3, 5)
    info = print_header("bench_diffusers: adiff samplers vs diffusers' scheduler loops (moons preset)", device, args,
                        {"diffusers": diffusers.__version__, "points": n, "ddpm_points": n_ddpm, "compile": args.compile})  # fmt: skip
    model = load_model("moons", device, compile=args.compile)
    T, sch = model.num_diffusion_steps, model.noise_schedule
    eps_fn = model.noise_predictor()
    rows = []
    # adiff's own table (float64 cumprod, stored float32) for the formula-only comparison
    our_abar = sch.alphas_cumprod.clone()
    d_abar = make_scheduler("ddpm", T).alphas_cumprod
    truth = sch._abar64[1:]  # float64 reference
    rel_d = ((d_abar.double() - truth).abs() / truth).max().item()
    rel_o = ((our_abar.double() - truth).abs() / truth).max().item()
    rows.append(["alphas_cumprod max relative error vs float64", f"diffusers {rel_d:.1e}", f"adiff {rel_o:.1e} "
                 "(diffusers: float32 cumprod; adiff: float64 cumprod stored float32)", "(explains the differences)"])  # fmt: skip

    for label, sampler, steps, npts, r in (("DDPM-1000", "ddpm", None, n_ddpm, reps_ddpm), ("DDIM-50", "ddim", 50, n, reps)):
        S = steps or T
        print(f"\n[{label}] {npts} points", flush=True)
        d_sched = make_scheduler(sampler, T)
        # correctness: same seed -> same x_T and the same per-step noise
        a = ours(eps_fn, sch, npts, sampler, steps, args.seed, device).float()
        b = diffusers_loop(eps_fn, d_sched, npts, S, args.seed, device).float()
        diff = (a - b).abs().max().item()
        twin = make_scheduler(sampler, T)
        twin.alphas_cumprod = our_abar.clone()
        if sampler == "ddim":
            twin.final_alpha_cumprod = torch.tensor(1.0)
        b2 = diffusers_loop(eps_fn, twin, npts, S, args.seed, device).float()
        diff2 = (a - b2).abs().max().item()
        print(f"    max |ours - diffusers| = {diff:.2e}  (with adiff's alphas_cumprod in diffusers: {diff2:.2e}); "
              f"sample std {a.std().item():.3f}", flush=True)  # fmt: skip
        cases = {
            "ours": lambda sampler=sampler, steps=steps, npts=npts: ours(eps_fn, sch, npts, sampler, steps, args.seed, device),
            "diffusers": lambda d=d_sched, S=S, npts=npts: diffusers_loop(eps_fn, d, npts, S, args.seed, device),
        }
        tm = interleaved(cases, r, warmup=False, device=device)  # the correctness runs above were the warm-up
        ratio = paired_ratio(tm, "ours", "diffusers")
        rows.append([f"{label} ({npts} pts): max |ours - diffusers|", f"{diff:.1e}",
                     f"{diff2:.1e} with adiff's alphas_cumprod table in diffusers", "<= 1e-5: " + verdict(diff, 1e-5)])  # fmt: skip
        rows.append([f"{label} ({npts} pts): time ours / diffusers", fmt_stats(ratio, "x"),
                     f"ours {fmt_stats(stats(tm['ours']), ' s', digits=2)}, diffusers {fmt_stats(stats(tm['diffusers']), ' s', digits=2)}",
                     "<= 1.00x: " + verdict(ratio[0], 1.0)])  # fmt: skip
        o_s, d_s, ldiff = lockstep(eps_fn, sch, make_scheduler(sampler, T), npts, sampler, steps, args.seed, device)
        rows.append([f"{label} ({npts} pts): time ours / diffusers, lockstep", f"{o_s / d_s:.3f}x",
                     f"one run, both loops stepped side by side: ours {o_s:.2f} s, diffusers {d_s:.2f} s "
                     f"(max |diff| {ldiff:.1e})", "<= 1.00x: " + verdict(o_s / d_s, 1.0)])  # fmt: skip

    # loop cost with a trivial predictor ------------------------------------------------------------------
    print("\n[loop] DDPM-1000 and DDIM-50 loops with a trivial noise predictor (eps = 0.1 x)", flush=True)

    def trivial(x, t):
        return 0.1 * x

    for label, sampler, steps, r in (("DDPM-1000", "ddpm", None, 7), ("DDIM-50", "ddim", 50, 40)):
        S = steps or T
        a = [rec.x_prev for rec in prototype_progressive(eps_fn, sch, 200, sampler, steps, args.seed, device)][-1]
        b = ours(eps_fn, sch, 200, sampler, steps, args.seed, device)
        proto_diff = (a.float() - b.float()).abs().max().item()
        makers = {
            "ours": lambda sampler=sampler, steps=steps: sample_progressive(
                trivial, sch, (n, 2), sampler=sampler, num_steps=steps, spacing="uniform", generator=torch.Generator(device=device).manual_seed(0),
                device=device),
            "diffusers": lambda sampler=sampler, S=S: diffusers_progressive(trivial, make_scheduler(sampler, T), n, S, 0, device),
            "prototype": lambda sampler=sampler, steps=steps: prototype_progressive(trivial, sch, n, sampler, steps, 0, device),
        }
        lockstep_n(makers, device)  # warm-up
        runs = [lockstep_n(makers, device) for _ in range(r)]
        us = {k: stats([run[k] / S * 1e6 for run in runs]) for k in makers}
        ratio = stats([run["ours"] / run["diffusers"] for run in runs])
        pratio = stats([run["prototype"] / run["diffusers"] for run in runs])
        rows.append([f"{label} loop cost per step, trivial eps ({n} pts), lockstep: ours / diffusers", fmt_stats(ratio, "x"),
                     f"ours {fmt_stats(us['ours'], ' us', digits=0)}, diffusers {fmt_stats(us['diffusers'], ' us', digits=0)}; "
                     f"{r} runs", "(no target)"])  # fmt: skip
        rows.append([f"{label} loop cost per step: PROTOTYPE fix / diffusers", fmt_stats(pratio, "x"),
                     f"prototype {fmt_stats(us['prototype'], ' us', digits=0)} (float coefficients, no DDIM noise draw); "
                     f"max |prototype - ours| with the real denoiser {proto_diff:.1e}", "(fix proposal)"])  # fmt: skip

    print_table(["figure", "value: median (min-max)", "details", "target"], rows,
                f"bench_diffusers results on {info['processor']}, {info['cpu_count']} cores, torch {info['torch']}, "
                f"diffusers {diffusers.__version__}, threads {info['threads']}, device {info['device']}"
                f"{', compiled' if args.compile else ''}")  # fmt: skip
    print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
