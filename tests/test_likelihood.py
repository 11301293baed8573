"""The learned density (adiff.eval.likelihood): with the exact mixture denoiser the probability-flow ODE returns the
mixture's closed-form log-density, for the VP process and the flow; a trained preset's held-out NLL is near the data's
entropy; the data-density estimate and the inputs' checks."""

import math

import pytest
import torch

from adiff.data import gaussian_mixture_for, make_dataset
from adiff.data.gmm import GaussianMixture
from adiff.diffusion import Predictor, make_process
from adiff.eval.likelihood import (
    LIKELIHOOD_STEPS,
    data_log_density,
    heldout_nll,
    kde_log_density,
    likelihood_grid,
    log_likelihood,
)

MIXTURES = {
    "8gaussians": gaussian_mixture_for("8gaussians"),
    # two components with full covariances and a mean away from 0 (what VP's alpha_T > 0 is sensitive to)
    "two": GaussianMixture(
        [0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], [[[0.3, 0.1], [0.1, 0.2]], [[0.05, -0.02], [-0.02, 0.5]]]
    ),
}


@pytest.mark.parametrize("process", ["vp", "flow"])
@pytest.mark.parametrize("name", list(MIXTURES))
def test_exact_denoiser_gives_the_mixture_log_density(process, name):
    """50 points of the mixture: |log p_theta - log p| <= 1e-2 nats at the default step count (measured: <= 4e-4
    for VP, <= 5e-5 for the flow at 32 steps)."""
    g = MIXTURES[name]
    x, _ = g.sample(50, torch.Generator().manual_seed(0))
    proc = make_process(process)
    ll = log_likelihood(Predictor(g.model_fn(proc, "sample"), proc, "sample"), x)
    err = (ll.log_prob - g.log_prob(x)).abs()
    assert err.max() <= 1e-2, err.max()
    assert ll.num_steps == LIKELIHOOD_STEPS and ll.nfe == 4 * (LIKELIHOOD_STEPS + 1) + (process == "vp")


def test_paths_end_standard_normal():
    g = MIXTURES["two"]
    x, _ = g.sample(4000, torch.Generator().manual_seed(1))
    proc = make_process("flow")
    ll = log_likelihood(Predictor(g.model_fn(proc, "velocity"), proc, "velocity"), x, num_steps=8)
    z = ll.x_end.double()
    n = z.shape[0]
    assert z.mean(0).abs().max() < 4 / n**0.5
    assert (torch.cov(z.T) - torch.eye(2, dtype=torch.float64)).abs().max() < 4 * (2 / n) ** 0.5


def test_grid_covers_the_process_from_its_first_time():
    vp, flow = make_process("vp"), make_process("flow")
    g = likelihood_grid(vp, 10)
    a1, s1 = vp.coefficients(1)
    assert len(g.s) == 12 and g.s[0] == 0 and g.s[1] == pytest.approx(math.atan2(s1, a1))
    assert g.t(0.0) == 1 and g.t(g.s[-1]) == vp.t_max and 1 < g.t(g.s[5]) < vp.t_max
    assert g.alpha(g.s[5])[0] == pytest.approx(vp.coefficients(g.t(g.s[5]))[0], rel=1e-9)
    f = likelihood_grid(flow, 10)
    assert f.s[-1] == pytest.approx(math.pi / 2) and f.t(f.s[-1]) == 1.0 and f.t(0.0) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="num_steps must be an integer in 1..10000, got 0"):
        likelihood_grid(vp, 0)


@pytest.mark.slow
def test_8gaussians_preset_heldout_nll_is_near_the_data_entropy():
    """8gaussians: modes 6 sigma apart, so H = log 8 + log(2 pi e sigma^2) (= 2.145 nats, sigma = 0.25).  The
    preset's (VP, its unconditional branch) NLL on 2000 held-out points: within 0.15 nats of H; and the KL estimate
    mean(log p - log p_theta) on the same points is >= 0 within its standard error."""
    g = gaussian_mixture_for("8gaussians")
    from adiff.presets import load_preset

    H = math.log(8) + math.log(2 * math.pi * math.e * 0.25**2)
    x, _ = make_dataset("8gaussians", 2000, seed=4242)
    nll = heldout_nll(load_preset("8gaussians", device="cpu"), x, num_steps=16)
    assert abs(nll.nats - H) <= 0.15, (nll, H)
    exact = -g.log_prob(x)
    assert abs(float(exact.mean()) - H) < 3 * float(exact.std()) / 2000**0.5  # H itself, as a check of the formula


def test_kde_recovers_a_gaussian_density():
    """A KDE with a held-out-chosen bandwidth from 10,000 N(0, I) draws: its cross-entropy on fresh points is the
    Gaussian entropy (log(2 pi e) = 2.838 nats in 2-D) within 0.05."""
    g = torch.Generator().manual_seed(0)
    y, held, x = (
        torch.randn(10_000, 2, generator=g),
        torch.randn(1000, 2, generator=g),
        torch.randn(2000, 2, generator=g),
    )
    ce = float(-kde_log_density(y, x, heldout=held).mean())
    assert abs(ce - math.log(2 * math.pi * math.e)) < 0.05, ce
    with pytest.raises(ValueError, match="needs a bandwidth or held-out points"):
        kde_log_density(y, x)


def test_data_log_density_is_exact_for_the_mixture_set():
    x, _ = make_dataset("8gaussians", 100, seed=1)
    assert torch.equal(data_log_density("8gaussians", x), gaussian_mixture_for("8gaussians").log_prob(x))


def test_log_likelihood_checks_its_inputs():
    proc = make_process("flow")
    g = MIXTURES["two"]
    pred = Predictor(g.model_fn(proc, "velocity"), proc, "velocity")
    with pytest.raises(ValueError, match="x has 20 coordinates per sample; the exact divergence takes at most 16"):
        log_likelihood(pred, torch.zeros(3, 20))
    with pytest.raises(ValueError, match="predict must be an adiff Predictor"):
        log_likelihood(lambda x, t: x, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="x must be a finite float tensor"):
        log_likelihood(pred, torch.full((3, 2), float("nan")))
