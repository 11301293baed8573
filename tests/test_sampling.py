"""Sampler correctness with the exact Gaussian-mixture denoiser (no learned error), plus step-level identities."""
import math

import pytest
import torch

from adiff.data.gmm import GaussianMixture
from adiff.samplers import (
    TrajectoryRecorder,
    ddim_step,
    ddpm_step,
    q_posterior,
    sample,
    sample_progressive,
    sampling_timesteps,
)
from adiff.diffusion.schedules import make_schedule


def eight_gaussians():
    ang = torch.arange(8) * math.pi / 4
    means = torch.stack([2 * ang.cos(), 2 * ang.sin()], 1)
    return GaussianMixture(torch.full((8,), 1 / 8), means, 0.0625 * torch.eye(2).repeat(8, 1, 1))


def check_mixture(x, g, mean_tol, cov_rtol):
    n = x.shape[0]
    lab = torch.cdist(x.double(), g.means).argmin(1)
    w = torch.bincount(lab, minlength=g.num_components).double() / n
    se_w = (g.weights * (1 - g.weights) / n).sqrt()
    assert ((w - g.weights).abs() < 4.5 * se_w).all(), f"mode weights {w.tolist()}"
    for k in range(g.num_components):
        xk = x[lab == k].double()
        assert (xk.mean(0) - g.means[k]).norm() < mean_tol, f"mean of mode {k}: {xk.mean(0).tolist()}"
        cov = torch.cov(xk.T)
        assert torch.allclose(cov, g.covs[k], atol=cov_rtol * float(g.covs[k].diagonal().mean())), f"cov of mode {k}: {cov.tolist()}"


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddim", 50)])
def test_exact_denoiser_reproduces_the_mixture(schedule, sampler, steps):
    g = eight_gaussians()
    sch = make_schedule(schedule, 1000)
    x = sample(g.eps_fn(sch), sch, (4000, 2), sampler=sampler, num_steps=steps, generator=torch.Generator().manual_seed(0))
    # sampling error of a mode's mean: 0.25 / sqrt(500) ~ 0.011 per coordinate; DDIM-50 adds a measured
    # discretisation bias of about 0.02 towards the origin, so the bound is 0.06 for both.
    check_mixture(x, g, mean_tol=0.06, cov_rtol=0.25)


def test_wrong_denoiser_is_caught():
    """The check above has teeth: sampling with a mis-scaled noise prediction fails it."""
    g = eight_gaussians()
    sch = make_schedule("linear", 1000)
    eps = g.eps_fn(sch)
    x = sample(lambda x, t: 0.9 * eps(x, t), sch, (4000, 2), sampler="ddim", num_steps=50, generator=torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError):
        check_mixture(x, g, mean_tol=0.06, cov_rtol=0.25)


def test_ddpm_step_is_eq11():
    """For s = t - 1 the posterior mean equals Ho et al.'s eq. 11 and the variance is beta_tilde."""
    sch = make_schedule("linear", 1000)
    x, eps, t = torch.randn(8, 2), torch.randn(8, 2), 600
    out, _ = ddpm_step(sch, x, t, t - 1, eps, torch.zeros(8, 2))
    beta, abar = sch.betas[t - 1], sch.alphas_cumprod[t - 1]
    eq11 = (x - beta / (1 - abar).sqrt() * eps) / (1 - beta).sqrt()
    assert torch.allclose(out, eq11, atol=1e-5)
    _, var = q_posterior(sch, x, x, t, t - 1)
    assert torch.allclose(var, (1 - sch.alphas_cumprod[t - 2]) / (1 - abar) * beta)
    _, var1 = q_posterior(sch, x, x, 1, 0)
    assert float(var1.max()) == 0.0, "the last step adds no noise"


def test_ddim_eta1_full_steps_has_ddpm_variance():
    sch = make_schedule("cosine", 100)
    x, eps, z = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    for t in (100, 50, 2):
        a, b = ddim_step(sch, x, t, t - 1, eps, z, eta=1.0)[0], ddpm_step(sch, x, t, t - 1, eps, z)[0]
        assert torch.allclose(a, b, atol=1e-5)


def test_timesteps_start_at_T_and_never_repeat():
    lin = make_schedule("linear", 1000)
    assert sampling_timesteps(1000, 50, "uniform")[:3] == [1000, 980, 960] and sampling_timesteps(1000, 50, "uniform")[-1] == 20
    assert sampling_timesteps(lin, 50, "uniform") == sampling_timesteps(1000, 50, "uniform")
    assert sampling_timesteps(10, None, "uniform") == list(range(10, 0, -1))
    assert sampling_timesteps(make_schedule("linear", 10), None) == list(range(10, 0, -1))
    for T, S in [(1000, 7), (37, 36), (5, 5), (1000, 1), (1000, 999), (1000, 500), (10, 9)]:
        for sch in (make_schedule("linear", T), make_schedule("cosine", T), T):
            for spacing in ("uniform",) if isinstance(sch, int) else ("uniform", "angle"):
                ts = sampling_timesteps(sch, S, spacing)
                assert len(ts) == S and ts[0] == T and all(a > b for a, b in zip(ts, ts[1:])) and ts[-1] >= 1, (T, S, spacing)
    for bad in (0, 1001, 2.5, True):
        with pytest.raises(ValueError, match="num_steps"):
            sampling_timesteps(lin, bad)
    with pytest.raises(ValueError, match="spacing must be one of"):
        sampling_timesteps(lin, 50, "log")
    with pytest.raises(ValueError, match="needs the noise schedule"):
        sampling_timesteps(1000, 50, "angle")


def test_angle_spacing_is_even_in_the_noise_angle():
    """"angle" steps are equal steps of phi = arctan(sigma_t / sqrt(abar_t)), so they bunch at low t for the linear
    schedule and are close to even in t for the cosine schedule (whose phi is almost linear in t)."""
    for name in ("linear", "cosine"):
        sch = make_schedule(name, 1000)
        ts = torch.tensor(sampling_timesteps(sch, 50, "angle") + [0])
        a = sch._abar64[ts]
        dphi = -torch.diff(torch.atan(((1 - a) / a).sqrt()))
        assert (dphi / dphi.mean() - 1).abs().max() < (0.05 if name == "cosine" else 0.35), (name, dphi)
    lin = sampling_timesteps(make_schedule("linear", 1000), 50, "angle")
    assert lin[:2] == [1000, 805] and lin[-1] == 6  # one big step through the nearly pure-noise end, fine ones at the data end
    cos = sampling_timesteps(make_schedule("cosine", 1000), 50, "angle")
    assert max(abs(a - b) for a, b in zip(cos, sampling_timesteps(1000, 50, "uniform"))) <= 16


def test_angle_spacing_shrinks_ddim_less_on_gaussian_data():
    """For data N(0, I) the exact eps is linear, so DDIM is a linear map and its shrinkage of the standard deviation
    is exact: DDIM-50 on the linear schedule keeps 96.4% of it with steps even in t and 97.6% with steps even in phi
    (the exact flow keeps 100%; DDIM-1000 keeps 99.8%)."""
    g = GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2).unsqueeze(0))
    sch = make_schedule("linear", 1000)
    x_T = torch.ones(1, 2)  # x_T has std sqrt(abar_T * 1 + 1 - abar_T) = 1: the map's factor is the ratio of stds
    kept = {}
    for spacing, steps in (("uniform", 50), ("angle", 50), ("uniform", 1000)):
        x = sample(g.eps_fn(sch), sch, (1, 2), sampler="ddim", num_steps=steps, spacing=spacing, x_T=x_T)
        kept[spacing, steps] = float(x[0, 0])
    assert kept["uniform", 50] == pytest.approx(0.9636, abs=2e-3)
    assert kept["angle", 50] == pytest.approx(0.9758, abs=2e-3)
    assert kept["uniform", 1000] == pytest.approx(0.9981, abs=2e-3)


def test_progressive_records_and_seed_reproducibility():
    g = eight_gaussians()
    sch = make_schedule("linear", 100)
    recs = list(sample_progressive(g.eps_fn(sch), sch, (16, 2), generator=torch.Generator().manual_seed(3)))
    assert [r.t for r in recs] == list(range(100, 0, -1)) and recs[-1].t_prev == 0
    for a, b in zip(recs, recs[1:]):
        assert torch.equal(a.x_prev, b.x_t)
    assert recs[0].noise_level == pytest.approx(float(sch.noise_levels[-1]))
    again = sample(g.eps_fn(sch), sch, (16, 2), generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, recs[-1].x_prev)
    other = sample(g.eps_fn(sch), sch, (16, 2), generator=torch.Generator().manual_seed(4))
    assert not torch.equal(again, other)
    rec = TrajectoryRecorder(keep_every=30)
    for r in recs:
        rec.add(r)
    traj = rec.finish()
    assert traj.timesteps == [100, 70, 40, 10, 1, 0] and traj.x.shape == (6, 16, 2)
    assert torch.equal(traj.final, recs[-1].x_prev) and traj.x.device.type == "cpu"


@pytest.mark.parametrize("kw,match", [({"sampler": "euler"}, "sampler"), ({"eta": 2.0}, "eta"), ({"num_steps": 0}, "num_steps"),
                                      ({"guidance_mode": "magic", "reward_fn": lambda x: x[:, 0]}, "guidance_mode"),
                                      ({"recurrence": 0}, "recurrence"), ({"bogus": 1}, "bogus")])
def test_bad_sampler_arguments(kw, match):
    sch = make_schedule("linear", 10)
    with pytest.raises(ValueError, match=match):
        sample(lambda x, t: torch.zeros_like(x), sch, (2, 2), **kw)
