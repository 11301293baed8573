"""Reward guidance aims at p(x) exp(lambda r(x)): measured with the exact Gaussian-mixture denoiser, so these
tests check the guidance math alone (no learned error)."""
import pytest
import torch

from adiff.data import eight_gaussians_mixture
from adiff.steering.guidance import ConditionalEps
from adiff.eval.metrics import mmd2
from adiff.steering.rewards import make_reward
from adiff.samplers import sample, sample_progressive
from adiff.diffusion.schedules import make_schedule

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
    return g, target, exact, make_schedule("linear", 1000)


def guided(g, sch, n=2000, **kw):
    return sample(g.eps_fn(sch), sch, (n, 2), generator=torch.Generator().manual_seed(0),
                  reward_fn=make_reward("x_coordinate"), guidance_scale=LAM, **kw)


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
    x = sample(g.eps_fn(sch), sch, (1000, 2), sampler="ddim", num_steps=50, generator=torch.Generator().manual_seed(0),
               reward_fn=make_reward("x_coordinate"), guidance_scale=0.0)
    assert abs(float(x[:, 0].mean())) < 0.15


def test_huge_scale_and_bad_gradients_are_clipped_not_nan(setup):
    g, _, _, sch = setup
    recs = list(sample_progressive(g.eps_fn(sch), sch, (64, 2), sampler="ddim", num_steps=20,
                                   generator=torch.Generator().manual_seed(0),
                                   reward_fn=make_reward("x_coordinate"), guidance_scale=1e4))
    assert all(torch.isfinite(r.x_prev).all() for r in recs)
    assert max(r.guidance.clipped_fraction for r in recs) == 1.0

    def nan_grad_reward(x):  # sqrt at 0 has an infinite gradient
        return torch.sqrt((x[:, 0] - x[:, 0].detach()).abs()) + x[:, 1]

    recs = list(sample_progressive(g.eps_fn(sch), sch, (16, 2), sampler="ddim", num_steps=10,
                                   generator=torch.Generator().manual_seed(0), reward_fn=nan_grad_reward,
                                   guidance_scale=1.0, guidance_mode="xt"))
    assert all(torch.isfinite(r.x_prev).all() for r in recs)
    assert sum(r.guidance.nonfinite for r in recs) > 0


def test_reward_must_return_one_value_per_sample(setup):
    g, _, _, sch = setup
    with pytest.raises(ValueError, match="one reward per sample"):
        sample(g.eps_fn(sch), sch, (4, 2), num_steps=2, reward_fn=lambda x: x.sum(), guidance_scale=1.0)


def test_classifier_free_guidance_combination():
    calls = []

    def fn(x, t, labels):
        calls.append(labels.clone())
        return torch.where(labels.unsqueeze(1) == 3, torch.zeros_like(x), torch.ones_like(x))  # 3 = null

    eps = ConditionalEps(fn, torch.tensor([0, 1]), null_label=3)
    out = eps.with_cfg(2.5)(torch.zeros(2, 2), torch.tensor([5, 5]))
    assert torch.allclose(out, torch.full((2, 2), 2.5))  # uncond + w (cond - uncond) = 0 + 2.5 (1 - 0)
    assert calls[-1].tolist() == [0, 1, 3, 3]
    assert eps.with_cfg(1.0) is eps
