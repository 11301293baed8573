"""Reward guidance aims at p(x) exp(lambda r(x)): measured with the exact Gaussian-mixture denoiser, so these
tests check the guidance math alone (no learned error)."""

import pytest
import torch

from adiff.data import eight_gaussians_mixture
from adiff.diffusion import Predictor, make_process
from adiff.eval.metrics import mmd2
from adiff.samplers import sample, sample_progressive
from adiff.steering.cfg import ConditionalModel
from adiff.steering.guidance import GuidanceConfig, RewardGuidance
from adiff.steering.rewards import make_reward

LAM = 2.0


@pytest.fixture(scope="module")
def setup():
    g = eight_gaussians_mixture()
    tilt = g.tilted_linear([1.0, 0.0], LAM)
    target, _ = tilt.sample(4000, torch.Generator().manual_seed(5))
    # the tilted mean reward, also by reweighting a large data sample by exp(lambda r) (self-normalised)
    big, _ = g.sample(400_000, torch.Generator().manual_seed(6))
    w = torch.softmax(LAM * big[:, 0].double(), 0)
    reweighted = float((w * big[:, 0].double()).sum())
    exact = float((tilt.weights * tilt.means[:, 0]).sum())
    assert abs(reweighted - exact) < 0.01
    return g, target, exact, make_process("vp", schedule="linear", num_steps=1000)


def steer(g, proc, reward=None, scale=LAM, mode="dps", ptype="epsilon", **kw):
    """The exact model of g, wrapped by reward guidance."""
    cfg = GuidanceConfig(reward or make_reward("x_coordinate"), scale, mode, **kw)
    return RewardGuidance(Predictor(g.model_fn(proc, ptype), proc, ptype), proc, cfg)


def guided(g, proc, n=2000, guidance_mode="dps", recurrence=1, sampler="ddpm", ptype="epsilon", **kw):
    return sample(
        steer(g, proc, mode=guidance_mode, ptype=ptype),
        proc,
        (n, 2),
        sampler=sampler,
        recurrence=recurrence,
        generator=torch.Generator().manual_seed(0),
        **kw,
    )


def test_tilted_mixture_is_exact():
    g = eight_gaussians_mixture()
    tilt = g.tilted_linear([1.0, 0.0], LAM)
    x = torch.randn(50, 2) * 2
    diff = tilt.log_prob(x) - (g.log_prob(x) + LAM * x[:, 0].double())
    assert float(diff.max() - diff.min()) < 1e-9, "log p_tilt - (log p + lambda r) must be a constant"


@pytest.mark.parametrize("recurrence,mmd_bound", [(1, 2e-2), (3, 3e-3)])
def test_dps_samples_the_tilted_target(setup, recurrence, mmd_bound):
    g, target, exact_mean, sch = setup
    x = guided(g, sch, guidance_mode="dps", recurrence=recurrence)
    mean_r = float(x[:, 0].mean())
    base_mean = float((g.weights * g.means[:, 0]).sum())  # 0: the untilted mean reward
    assert abs(mean_r - exact_mean) <= 0.1 * abs(exact_mean - base_mean), (mean_r, exact_mean)
    assert mmd2(x, target) <= mmd_bound


def test_approximate_modes_overshoot(setup):
    """'cheap' and 'xt' are labelled as over-shooting approximations: they push further than the target."""
    g, target, exact_mean, sch = setup
    dps = guided(g, sch, n=1000, guidance_mode="dps")
    for mode in ("cheap", "xt"):
        x = guided(g, sch, n=1000, guidance_mode=mode)
        assert mmd2(x, target) > mmd2(dps, target)
        assert float(x[:, 0].mean()) > exact_mean


def test_no_guidance_is_untilted(setup):
    g, target, _, sch = setup
    x = sample(
        steer(g, sch, scale=0.0),
        sch,
        (1000, 2),
        sampler="ddim",
        num_steps=50,
        generator=torch.Generator().manual_seed(0),
    )
    assert abs(float(x[:, 0].mean())) < 0.15


def test_huge_scale_and_bad_gradients_are_clipped_not_nan(setup):
    g, _, _, sch = setup
    recs = list(
        sample_progressive(
            steer(g, sch, scale=1e4),
            sch,
            (64, 2),
            sampler="ddim",
            num_steps=20,
            generator=torch.Generator().manual_seed(0),
        )
    )
    assert all(torch.isfinite(r.x_prev).all() for r in recs)
    assert max(r.guidance.clipped_fraction for r in recs) == 1.0

    def nan_grad_reward(x):  # sqrt at 0 has an infinite gradient
        return torch.sqrt((x[:, 0] - x[:, 0].detach()).abs()) + x[:, 1]

    recs = list(
        sample_progressive(
            steer(g, sch, nan_grad_reward, 1.0, "xt"),
            sch,
            (16, 2),
            sampler="ddim",
            num_steps=10,
            generator=torch.Generator().manual_seed(0),
        )
    )
    assert all(torch.isfinite(r.x_prev).all() for r in recs)
    assert sum(r.guidance.nonfinite for r in recs) > 0


def test_reward_must_return_one_value_per_sample(setup):
    g, _, _, sch = setup
    with pytest.raises(ValueError, match="one reward per sample"):
        sample(steer(g, sch, lambda x: x.sum(), 1.0), sch, (4, 2), num_steps=2)


def test_classifier_free_guidance_combination():
    calls = []

    def fn(x, t, labels):
        calls.append(labels.clone())
        return torch.where(labels.unsqueeze(1) == 3, torch.zeros_like(x), torch.ones_like(x))  # 3 = null

    eps = ConditionalModel(fn, torch.tensor([0, 1]), null_label=3)
    out = eps.with_cfg(2.5)(torch.zeros(2, 2), torch.tensor([5, 5]))
    assert torch.allclose(out, torch.full((2, 2), 2.5))  # uncond + w (cond - uncond) = 0 + 2.5 (1 - 0)
    assert calls[-1].tolist() == [0, 1, 3, 3]
    assert eps.with_cfg(1.0) is eps


@pytest.mark.slow
@pytest.mark.parametrize(
    "process,ptype,sampler,steps",
    [
        ("vp", "epsilon", "dpmpp_2m", 60),
        ("vp", "v_prediction", "heun", 40),
        ("vp", "sample", "euler", 200),
        ("flow", "velocity", "euler", 100),
        ("flow", "velocity", "heun", 30),
        ("flow", "sample", "dpmpp_2m", 60),
    ],
)
def test_guidance_works_with_every_solver_and_process(setup, process, ptype, sampler, steps):
    """DPS with recurrence 3 lands near p(x) exp(lambda r(x)) whatever the solver, process and prediction type (the
    guided prediction is steered before the solver sees it, Heun's second evaluation included)."""
    g, target, exact_mean, _ = setup
    proc = make_process(process, schedule="linear", num_steps=1000)
    x = guided(g, proc, n=2000, recurrence=3, sampler=sampler, num_steps=steps, ptype=ptype)
    assert torch.isfinite(x).all()
    assert abs(float(x[:, 0].mean()) - exact_mean) <= 0.15 * exact_mean, (float(x[:, 0].mean()), exact_mean)
    assert mmd2(x, target) <= 1e-2


def test_flow_guidance_at_pure_noise_is_clipped_not_nan(setup):
    """At a flow's t = 1 (alpha = 0) the x0 shift lambda sigma^2 / alpha g is unbounded: the clip bounds it, eps is
    unchanged there (alpha / sigma = 0), and nothing is NaN."""
    g = setup[0]
    flow = make_process("flow")
    predict = steer(g, flow, ptype="velocity", mode="cheap")
    x = torch.randn(32, 2)
    p = predict(x, 1.0)
    base = Predictor(g.model_fn(flow, "velocity"), flow, "velocity")(x, 1.0)
    assert torch.isfinite(p.x0).all() and torch.isfinite(p.eps).all()
    assert torch.allclose(p.eps, base.eps) and p.info.clipped_fraction == 1.0
    assert torch.allclose((p.x0 - base.x0).norm(dim=1), torch.full((32,), 3.0 * 2**0.5), atol=1e-5)


def test_guidance_differentiates_the_clipped_x0_the_step_uses(setup):
    """With clip_x0, every x0_hat outside the box is clamped: r(x0) = x0[0] then has zero gradient through the clamp,
    so the guided prediction equals the unguided one (the old code differentiated the unclipped x0_hat)."""
    g, _, _, proc = setup
    base = Predictor(g.model_fn(proc, "epsilon"), proc, "epsilon", clip_x0=0.5)
    guided_p = RewardGuidance(base, proc, GuidanceConfig(make_reward("x_coordinate"), 5.0, "dps"), clip_x0=0.5)
    x = torch.tensor([[1.9, 0.0], [0.0, 1.95]]) * proc.coefficients(300)[0]  # near the modes at (2, 0) and (0, 2)
    p, q = guided_p(x, 300), base(x, 300)
    assert float(q.x0[0, 0]) == 0.5  # the first point's x0_hat is clipped in its x coordinate
    assert p.info.grad_norm_mean < float("inf")
    assert torch.allclose(p.x0[0], q.x0[0]), "no gradient flows through a clamped coordinate"
    assert not torch.allclose(p.x0[1], q.x0[1]), "an unclipped coordinate is steered"
