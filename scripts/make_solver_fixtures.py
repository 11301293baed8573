"""Run diffusers' schedulers on a fixed model function and record every step, for tests/test_solver_parity.py.

    pip install diffusers        # bench/fixture-only: adiff never imports it
    python scripts/make_solver_fixtures.py [--out tests/fixtures/diffusers_solvers.json]

Every case feeds diffusers' textbook loop and adiff's solver the same deterministic model function
(tests/solver_parity.py: ``parity_model(x, model_time)``, a smooth nonlinear function of x and the network's time
input in [0, 1]), the same initial noise and the same alphas_cumprod table (adiff's float64 table is written into
the scheduler before set_timesteps), so the states can be compared step by step.

Conventions that differ, and how each case lines them up (the test documents the same):
* timesteps: diffusers counts 0..T-1, adiff 1..T, so the network's time input is (t_diffusers + 1) / T = t_adiff / T.
  "trailing" spacing is adiff's "uniform" spacing; diffusers' use_karras_sigmas is adiff's "karras" spacing.
* Euler / Heun (Karras) run in the variance-exploding variable y = x / alpha; their initial latent is x_T / alpha_T
  here (diffusers would draw it as randn * sigma_max, i.e. sqrt(1 - abar_T) of adiff's x_T ~ N(0, I)); the recorded
  states are converted back with x = alpha y.  At the end sigma = 0 and both agree directly.
* the final step goes to sigma = 0 everywhere (diffusers' final_sigmas_type="zero"; DPM-Solver++ takes it first order).
* Heun cases run adiff's Heun in its "karras" form (the case's options), the one HeunDiscreteScheduler implements.
* DDPM (DDPMScheduler: "fixed_small" variance, clip_sample=False, "trailing" spacing) draws its per-step noise from a
  generator seeded with the case's seed, as adiff's loop does from the same seed (x_T is given, so no draw precedes).
* FlowMatchEulerDiscreteScheduler's default grid is linspace(1, 1/1000, N) then 0; the case passes adiff's grid
  (1 - i/N) as ``sigmas`` so both step on the same times; the network's time input is sigma = t.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from solver_parity import CASES, N_POINTS, T, initial_noise, parity_model  # noqa: E402

from adiff.diffusion import make_process  # noqa: E402
from adiff.samplers import sampling_timesteps  # noqa: E402

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
    sys.exit("error: this script needs diffusers (pip install diffusers)")

VP_KW = dict(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


def make(case: dict):
    ptype = case["prediction_type"]
    kind = case["scheduler"]
    if kind == "dpmpp_2m":
        return DPMSolverMultistepScheduler(
            **VP_KW,
            algorithm_type="dpmsolver++",
            solver_order=2,
            prediction_type=ptype,
            timestep_spacing="trailing",
            final_sigmas_type="zero",
            lower_order_final=True,
        )
    # Karras sigmas span the sigmas of the spaced timesteps: "linspace" reaches t_diffusers = 0 (adiff's t = 1), so its
    # range is sigma(1)..sigma(T) as in adiff; "trailing" would stop at sigma(T / N).
    karras = case["spacing"] == "karras"
    spacing = "linspace" if karras else "trailing"
    if kind == "euler":
        return EulerDiscreteScheduler(
            **VP_KW, prediction_type=ptype, timestep_spacing=spacing, use_karras_sigmas=karras
        )
    if kind == "heun":
        return HeunDiscreteScheduler(**VP_KW, prediction_type=ptype, timestep_spacing=spacing, use_karras_sigmas=karras)
    if kind == "ddim":
        return DDIMScheduler(
            **VP_KW, prediction_type=ptype, timestep_spacing="trailing", set_alpha_to_one=True, clip_sample=False
        )
    if kind == "ddpm":
        return DDPMScheduler(
            **VP_KW,
            prediction_type=ptype,
            timestep_spacing="trailing",
            variance_type="fixed_small",
            clip_sample=False,
        )
    if kind == "flow_euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    raise ValueError(kind)


def float64_sigmas(sched, vp, case) -> torch.Tensor:
    """diffusers stores its sigmas in float32; the same sigmas in float64 (from the float64 table), in its order."""
    table = ((1 - vp.schedule._abar64[1:]) / vp.schedule._abar64[1:]).sqrt()  # sigma at t_diffusers = 0..T-1
    uniq32 = list(dict.fromkeys(float(v) for v in sched.sigmas))
    if case["spacing"] == "karras":
        smin, smax, n, rho = float(table[0]), float(table[-1]), case["num_steps"], 7.0
        uniq64 = [(smax ** (1 / rho) + i / (n - 1) * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho for i in range(n)]
    else:
        uniq64 = [float(table[int(round(float(t)))]) for t in dict.fromkeys(float(t) for t in sched.timesteps)]
    uniq64.append(0.0)
    assert len(uniq64) == len(uniq32) and max(abs(a / b - 1) for a, b in zip(uniq32[:-1], uniq64[:-1])) < 1e-6
    return torch.tensor([uniq64[uniq32.index(float(v))] for v in sched.sigmas], dtype=torch.float64)


def run(case: dict) -> dict:
    sched = make(case)
    vp = make_process("vp", schedule="linear", num_steps=T)
    if case["process"] == "vp":
        sched.alphas_cumprod = vp.schedule._abar64[1:].clone()  # the same table (float64) in both loops
    n = case["num_steps"]
    x = initial_noise()  # [N, 2] float64: adiff's x_T (VP) or x_1 (flow)
    gen = torch.Generator().manual_seed(case["seed"]) if case["seed"] is not None else None  # DDPM's noise
    if case["process"] == "flow":
        grid = make_process("flow").timesteps(n)
        sched.set_timesteps(sigmas=grid)
    else:
        sched.set_timesteps(n)
        if hasattr(sched, "sigmas"):
            sched.sigmas = float64_sigmas(sched, vp, case)
    vp_ve = case["scheduler"] in ("euler", "heun")
    if vp_ve:  # Karras' variable y = x / alpha
        sig = sched.sigmas.double()
        x = x * (sig[0] ** 2 + 1).sqrt()
        grid_sigmas = list(dict.fromkeys(float(s) for s in sched.sigmas))  # s_0 > s_1 > ... > 0, without repeats
    states, times = [], []
    for t in sched.timesteps:
        model_in = sched.scale_model_input(x, t) if hasattr(type(sched), "scale_model_input") else x
        mt = float(t) / 1000.0 if case["process"] == "flow" else (float(t) + 1) / T
        out = parity_model(model_in, torch.tensor(mt, dtype=torch.float64), case["prediction_type"])
        kw = {"eta": 0.0} if case["scheduler"] == "ddim" else {}
        if case["seed"] is not None:
            kw["generator"] = gen
        x = sched.step(out, t, x, **kw).prev_sample.double()
        times.append(mt * (T if case["process"] == "vp" else 1.0))
        if case["scheduler"] == "heun" and not sched.state_in_first_order and sched.step_index < len(sched.timesteps):
            continue  # Heun's predictor half-step: not a state of the trajectory
        if vp_ve:  # back to x = alpha y at the state's noise level
            s_here = grid_sigmas[len(states) + 1]
            states.append((x / (s_here**2 + 1) ** 0.5).tolist())
        else:
            states.append(x.tolist())
    ours = None
    if case["process"] == "vp" and case["scheduler"] != "ddim":
        ours = sampling_timesteps(
            vp, n, "uniform" if case["spacing"] == "trailing" else case["spacing"], case["sampler"]
        )
    return {**case, "model_times": times, "states": states, "adiff_grid": ours, "nfe": len(times)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "diffusers_solvers.json"))
    args = ap.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    results = [run(c) for c in CASES]
    payload = {
        "diffusers": diffusers.__version__,
        "torch": torch.__version__,
        "n_points": N_POINTS,
        "T": T,
        "x_T": initial_noise().tolist(),
        "cases": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload) + "\n")
    print(f"wrote {args.out}: {len(results)} cases (diffusers {diffusers.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
