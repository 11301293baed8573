"""Every number the glossary (components/help.py) states that the app also computes, checked against what the app
really does: the frames a reverse run keeps, the NFE per step of each solver (a real run's count of network calls),
the sign of the DPS correction (guided samples move up the reward), the path straightness it quotes for VP against
a flow, the 0.999 clip of cosine schedules, and the ESS below which the guidance tab calls its target rough."""

from __future__ import annotations

import re

import pytest
import torch

from adiff.data.datasets import eight_gaussians_mixture
from adiff.diffusion import Predictor, make_process
from adiff.eval.metrics import path_straightness
from adiff.samplers import SOLVERS, sample_progressive, solvers_for
from adiff.steering.guidance import GuidanceConfig, RewardGuidance
from components import help as H
from components.guidance import view as guidance_view
from components.limits import LIMITS
from components.reverse import handlers as reverse
from components.reverse import requests as reverse_requests
from components.state import Session
from components.summaries import ROUGH_ESS
from tests.app_helpers import app_context


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    with app_context(tmp_path_factory.mktemp("presets")) as c:
        yield c


def reverse_run(ctx, preset: str, sampler: str, steps: int, n: int = 4):
    """A reverse-tab run through its own handler: (summary, the stored trajectory)."""
    session = Session("glossary")
    req = reverse_requests.GenerateRequest.parse(ctx, session, preset, sampler, steps, 0.0, 0, n, "any", 1.0)
    done = list(reverse.generate(ctx, session, req))[-1]
    return done.summary, reverse_requests.state_of(session).trajectory.trajectory


def test_frames_per_run_is_what_a_run_keeps(ctx):
    """The glossary's "at most MAX_FRAMES per run": a run keeps every k-th step (k = ceil(steps / LIMITS.frames)), the
    last step and the final sample; 100 steps (k = 2: steps 0, 2, ..., 98, then 99 and the sample) reach the most."""
    assert (
        f"at most {H.MAX_FRAMES} per run" in H.GLOSSARY["frame"]
        and f"at most {LIMITS.frames} are kept" in (H.GLOSSARY["frame"])
    )
    counts = {steps: reverse_run(ctx, "moons", "ddim", steps)[0]["num_frames"] for steps in (1, 50, 99, 100, 150)}
    assert counts == {1: 2, 50: 51, 99: 51, 100: H.MAX_FRAMES, 150: H.MAX_FRAMES}, counts
    assert H.MAX_FRAMES == 52


def glossary_nfe(name: str, steps: int) -> int:
    """The NFE of ``steps`` steps of solver ``name`` as the glossary's NFE entry states it."""
    for names, per, last in re.findall(r"([\w, ]+): (\d+) per step(?:, (\d+) for the last)?", H.GLOSSARY["NFE"]):
        if name in [n.strip() for n in names.split(",")]:
            return int(per) * (steps - 1) + int(last or per)
    raise AssertionError(f"the glossary states no NFE for {name}: {H.GLOSSARY['NFE']}")


@pytest.mark.parametrize("preset", ["moons", "moons-flow"])
def test_nfe_per_step_of_each_solver_is_what_a_run_counts(ctx, preset):
    """For every solver of the process: the glossary's count = the registry's nfe() for 1..12 steps = the network
    calls a real 10-step run makes (the trajectory's own count); Heun's 10 steps make 19."""
    model, _ = ctx.model(preset, None)
    for name in solvers_for(model.process):
        assert [glossary_nfe(name, k) for k in range(1, 13)] == [SOLVERS[name].nfe(k) for k in range(1, 13)], name
        summary, traj = reverse_run(ctx, preset, name, 10)
        assert traj.nfe == summary["nfe"] == glossary_nfe(name, 10), (name, traj.nfe, summary["nfe"])
    assert glossary_nfe("heun", 10) == 19


def test_dps_subtracts_the_reward_gradient_from_the_noise_prediction_and_moves_samples_up_the_reward():
    """The glossary: λ σ_t g is subtracted from ε̂ (g = ∇_{x_t} r(x̂₀(x_t))), which moves x̂₀ up the reward.  Checked
    on the exact 8-gaussians denoiser with r(x) = x₁: at one step, ε̃ − ε̂ = −λ σ_t g with g from autograd here; and
    a whole DDIM run from the same noise ends with a higher mean reward guided than unguided, on three seeds."""
    assert "λ σ_t g is subtracted from the noise prediction (ε̂ − λ σ_t g)" in H.GLOSSARY["DPS"]
    assert "up the reward" in H.GLOSSARY["DPS"]
    mix, lam = eight_gaussians_mixture(), 0.5
    proc = make_process(name="vp", schedule="linear", num_steps=1000)
    pred = Predictor(mix.model_fn(proc, "epsilon"), proc, "epsilon")
    reward = lambda x: x[:, 0]  # noqa: E731
    guided = RewardGuidance(pred, proc, GuidanceConfig(reward, lam, "dps", guidance_clip=1e6))
    x, t = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 300
    alpha, sigma = proc.coefficients(t)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(reward(pred(xg, t).x0).sum(), xg)
    shift = guided(x, t).eps - pred(x, t).eps
    assert torch.allclose(shift, -lam * sigma * g, atol=1e-9) and float((shift * g).sum()) < 0
    for seed in range(3):
        ends = [
            sample_progressive(
                p, proc, (500, 2), sampler="ddim", num_steps=20, generator=torch.Generator().manual_seed(seed)
            )
            for p in (pred, guided)
        ]
        base, steered = (list(run)[-1].x_prev for run in ends)
        assert float(reward(steered).mean()) > float(reward(base).mean()) + 0.1, seed


@pytest.mark.parametrize("seed", [0, 1])
def test_the_straightness_the_glossary_quotes_for_vp_and_flow(seed):
    """The glossary's "by this measure a variance-preserving path bends less": path_straightness of the exact
    8-gaussians mixture's probability-flow paths, 200 steps, 500 paths (VP: linear schedule, DDIM; flow: Euler),
    within 0.03 of the numbers it states (measured 1.150 / 1.168 VP, 1.509 / 1.543 flow on seeds 0 / 1)."""
    text = H.GLOSSARY["path straightness"]
    assert f"{H.STRAIGHTNESS['vp']:.2f} VP against {H.STRAIGHTNESS['flow']:.2f} flow" in text and "200 steps" in text
    mix, got = eight_gaussians_mixture(), {}
    for process, solver, kw in (("vp", "ddim", {"schedule": "linear", "num_steps": 1000}), ("flow", "euler", {})):
        proc = make_process(name=process, **kw)
        pred = Predictor(mix.model_fn(proc, "sample"), proc, "sample")
        recs = list(
            sample_progressive(
                pred, proc, (500, 2), sampler=solver, num_steps=200, generator=torch.Generator().manual_seed(seed)
            )
        )
        got[process] = path_straightness(torch.stack([r.x_t for r in recs] + [recs[-1].x_prev]).double())
    assert got["vp"] < got["flow"]
    for process, value in got.items():
        assert value == pytest.approx(H.STRAIGHTNESS[process], abs=0.03), (process, value)


def test_the_cosine_clip_and_the_rough_target_are_the_numbers_the_app_uses():
    from adiff.diffusion.schedules import make_schedule

    betas = make_schedule("cosine", 1000).betas
    assert "0.999" in H.GLOSSARY["0.999 clip"] and float(betas.max()) == pytest.approx(0.999, abs=1e-6)
    assert f"(< {ROUGH_ESS})" in H.GLOSSARY["ESS"]
    rough = [
        guidance_view.guidance_verdict(0.0, 2.0, 1.0, 0.01, 0.01, e, 1.0, 1)[1] for e in (ROUGH_ESS - 1, ROUGH_ESS)
    ]
    assert "rough" in rough[0] and "rough" not in rough[1]


def test_the_nll_entry_states_the_entropy_of_the_data_the_app_uses():
    """'NLL (nats)': 8gaussians' entropy 'log 8 + log(2πe·0.25²) ≈ 2.14 nats', against the exact mixture the app
    draws 8gaussians from: a Monte-Carlo -E log p over 20,000 of its own samples (modes far apart: the formula holds)."""
    text = H.GLOSSARY["NLL (nats)"]
    stated = float(re.search(r"≈ ([0-9.]+) nats", text).group(1))
    g = eight_gaussians_mixture()
    x, _ = g.sample(20_000, generator=torch.Generator().manual_seed(0))
    lp = g.log_prob(x.double())
    mc, se = -lp.mean().item(), lp.std().item() / len(lp) ** 0.5
    assert torch.allclose(g.covs, torch.eye(2, dtype=g.covs.dtype) * 0.25**2)  # the 0.25 the entry names
    assert abs(mc - stated) < 0.005 + 2 * se, (mc, se, stated)
