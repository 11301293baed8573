"""Parity with diffusers' schedulers on the same model outputs, the same noise and the same alphas_cumprod table:
every state of the trajectory within 1e-5 (max |difference|), and the network called at the same times.

The fixtures come from scripts/make_solver_fixtures.py, which runs diffusers 0.42 (a bench/fixture-only dependency;
adiff never imports it).  Convention differences, lined up by the fixture script:
* diffusers counts timesteps 0..T-1 and adiff 1..T: the network's time input (t_diffusers + 1) / T = t_adiff / T.
* diffusers' "trailing" spacing is adiff's "uniform"; its use_karras_sigmas (with "linspace", whose range reaches
  sigma(t = 1)) is adiff's "karras" (fractional times, log sigma interpolated between steps, as diffusers'
  _sigma_to_t).  adiff's default "angle" spacing has no peer.  diffusers keeps sigmas and timesteps in float32;
  the fixture writes the same sigmas in float64 into the scheduler (the same table in both loops).
* Euler/Heun run in y = x / alpha (Karras' variable); diffusers starts them from randn * sigma_max (= sqrt(1 - abar_T)
  times adiff's x_T ~ N(0, I)); the fixture starts both from the same x_T.
* every solver ends at sigma = 0 (diffusers' final_sigmas_type "zero"); DPM-Solver++ takes that step first order,
  Heun takes it as a plain Euler step (2N - 1 network calls for N steps).
* Heun runs in its "karras" form (options={"form": "karras"}), the trapezoid on dy/dtau that HeunDiscreteScheduler
  implements; adiff's default form is the trapezoid on x0_hat in log-SNR, which diffusers has no peer of.
* DDPM (DDPMScheduler, variance "fixed_small", clip_sample=False) is stochastic: both loops draw their noise from a
  generator with the case's seed, one [N, 2] float64 draw per step (diffusers skips the draw at its t = 0, adiff draws
  and multiplies it by 0: the last step, so the earlier draws line up).
* FlowMatchEulerDiscreteScheduler's own grid is linspace(1, 1/1000, N) then 0; adiff steps evenly from 1 to 0, and
  the fixture hands diffusers that grid.
"""

import json
from pathlib import Path

import pytest
import torch
from solver_parity import CASES, T, parity_model

from adiff.diffusion import Predictor, make_process
from adiff.samplers import sample_progressive

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "diffusers_solvers.json").read_text())
SPACING = {"trailing": "uniform", "karras": "karras"}


def _id(c):
    return f"{c['scheduler']}-{c['prediction_type']}-{c['spacing']}-{c['num_steps']}"


def test_fixture_covers_every_case():
    assert [{k: c[k] for k in CASES[0]} for c in FIXTURE["cases"]] == CASES


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[_id(c) for c in FIXTURE["cases"]])
def test_states_match_diffusers(case):
    process = (
        make_process(case["process"], schedule="linear", num_steps=T)
        if case["process"] == "vp"
        else make_process("flow")
    )
    scale = T if case["process"] == "vp" else 1.0
    calls = []

    def fn(x, t):
        calls.append(float(t))
        return parity_model(x, torch.tensor(float(t) / scale, dtype=torch.float64), case["prediction_type"])

    predict = Predictor(fn, process, case["prediction_type"])
    kw = {"spacing": SPACING[case["spacing"]]} if case["process"] == "vp" else {}
    x_T = torch.tensor(FIXTURE["x_T"], dtype=torch.float64)
    if case["seed"] is not None:
        kw["generator"] = torch.Generator().manual_seed(case["seed"])
    recs = list(
        sample_progressive(
            predict,
            process,
            tuple(x_T.shape),
            sampler=case["sampler"],
            num_steps=case["num_steps"],
            options=case["options"],
            x_T=x_T,
            **kw,
        )
    )
    ours = torch.stack([r.x_prev for r in recs])
    theirs = torch.tensor(case["states"], dtype=torch.float64)
    # diffusers keeps its timesteps in float32
    assert calls == pytest.approx(case["model_times"], rel=1e-6, abs=1e-6), "the network is called at the same times"
    assert len(calls) == case["nfe"] and recs[-1].nfe == case["nfe"]
    assert ours.shape == theirs.shape
    err = float((ours - theirs).abs().max())
    assert err <= 1e-5, f"max |adiff - diffusers| = {err:.2e}"
