"""Inpainting (adiff.steering.inpaint): for Gaussian data the conditional p(x_U | x_K = k) is closed form, and the
known coordinates must come out as given; on the digits preset, completions of held-out top halves are read as the
right digit far more often than chance."""

import pytest
import torch

from adiff.data.gmm import GaussianMixture
from adiff.diffusion import Predictor, make_process
from adiff.samplers import sample, sample_progressive
from adiff.steering.inpaint import KnownPixels, inpaint, top_half_mask

KNOWN, UNKNOWN = [0, 2], [1, 3]


def _gaussian():
    """N(mu, S) in 4-D with a full covariance, and the closed-form conditional of coordinates 1, 3 given 0, 2."""
    g = torch.Generator().manual_seed(3)
    A = torch.randn(4, 4, dtype=torch.float64, generator=g)
    S = A @ A.T / 4 + 0.1 * torch.eye(4, dtype=torch.float64)
    mu = torch.tensor([0.5, -1.0, 0.3, 1.0], dtype=torch.float64)
    k = torch.tensor([1.0, -0.5], dtype=torch.float64)
    Skk, Suk = S[KNOWN][:, KNOWN], S[UNKNOWN][:, KNOWN]
    mean = mu[UNKNOWN] + Suk @ torch.linalg.solve(Skk, k - mu[KNOWN])  # Gaussian conditioning
    cov = S[UNKNOWN][:, UNKNOWN] - Suk @ torch.linalg.solve(Skk, Suk.T)
    return GaussianMixture([1.0], mu[None], S[None]), k, mean, cov


def _setup(n):
    g, k, mean, cov = _gaussian()
    known = torch.zeros(n, 4)
    known[:, KNOWN] = k.float()
    mask = torch.zeros(1, 4, dtype=torch.bool)
    mask[0, KNOWN] = True
    return g, k, known, mask, mean, cov


@pytest.mark.parametrize(
    "process, sampler, steps",
    [("vp", "dpmpp_2m", 50), pytest.param("vp", "ddpm", 1000, marks=pytest.mark.slow), ("flow", "heun", 30)],
)
def test_gaussian_conditional_is_sampled_exactly(process, sampler, steps):
    """Mean and covariance of the unknown coordinates against the closed-form conditional, pooled over 3 seeds,
    each figure within 4 standard errors (mean: sqrt(C_ii / n); covariance entry: sqrt((C_ii C_jj + C_ij^2) / n));
    the known coordinates are the given values at t = 0 (to float rounding, before any final projection)."""
    n = 4000
    g, k, known, mask, mean, cov = _setup(n)
    proc = make_process(process)
    pred = Predictor(g.model_fn(proc, "sample"), proc, "sample")
    xs = []
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        x = sample(KnownPixels(pred, proc, known, mask), proc, (n, 4), sampler=sampler, num_steps=steps, generator=gen)
        assert (x[:, KNOWN].double() - k).abs().max() <= 1e-6
        xs.append(x.double())
    x = torch.cat(xs)[:, UNKNOWN]
    N = x.shape[0]
    z_mean = (x.mean(0) - mean) / (cov.diagonal() / N).sqrt()
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov**2) / N).sqrt()
    z_cov = (torch.cov(x.T) - cov) / se_cov
    assert z_mean.abs().max() < 4, z_mean
    assert z_cov.abs().max() < 4, (torch.cov(x.T), cov)


def test_plain_replacement_is_biased_without_the_correction():
    """RePaint's replacement alone (solve_iters = 0) misses the conditional mean by tens of standard errors (what the
    correction fixes; the same run with it is within 2)."""
    n = 4000
    g, k, known, mask, mean, cov = _setup(n)
    proc = make_process("vp")
    pred = Predictor(g.model_fn(proc, "sample"), proc, "sample")
    gen = torch.Generator().manual_seed(0)
    kp = KnownPixels(pred, proc, known, mask, solve_iters=0)
    x = sample(kp, proc, (n, 4), sampler="dpmpp_2m", num_steps=50, generator=gen).double()
    assert (x[:, KNOWN] - k).abs().max() <= 1e-6
    z_mean = (x[:, UNKNOWN].mean(0) - mean) / (cov.diagonal() / n).sqrt()
    assert z_mean.abs().min() > 10, z_mean


def test_known_coordinates_stay_draws_of_the_forward_kernel():
    """At every step a known coordinate of x_t is a draw of q(x_t | k): (x_t - alpha_t k) / sigma_t ~ N(0, 1)."""
    n = 4000
    g, k, known, mask, _, _ = _setup(n)
    proc = make_process("vp")
    pred = Predictor(g.model_fn(proc, "sample"), proc, "sample")
    kp = KnownPixels(pred, proc, known, mask)
    for rec in sample_progressive(kp, proc, (n, 4), sampler="ddpm", num_steps=1000, generator=torch.Generator()):
        if rec.t in (900, 500, 100, 10):
            a, s = proc.coefficients(rec.t)
            z = (rec.x_t[:, KNOWN].double() - a * k) / s
            assert z.mean(0).abs().max() < 4 / n**0.5 and (z.var(0) - 1).abs().max() < 4 * (2 / n) ** 0.5


def test_inpaint_checks_its_inputs():
    g, k, known, mask, _, _ = _setup(8)
    proc = make_process("vp")
    pred = Predictor(g.model_fn(proc, "sample"), proc, "sample")
    with pytest.raises(ValueError, match=r"mask must have shape \[8 or 1, 4\], got \[1, 3\]"):
        KnownPixels(pred, proc, known, mask[:, :3])
    with pytest.raises(ValueError, match="solve_iters must be an integer in 0..100, got -1"):
        KnownPixels(pred, proc, known, mask, solve_iters=-1)
    bad = known.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="known contains NaN"):
        KnownPixels(pred, proc, bad, mask)
    with pytest.raises(ValueError, match=r"top_half_mask needs an image shape \(C, H, W\), got \[2\]"):
        top_half_mask((2,))


@pytest.mark.slow
def test_digits_completed_from_the_top_half_are_read_as_the_right_digit():
    """The top half of 200 held-out digits kept, the bottom sampled by the digits preset (its unconditional branch,
    the default posterior correction, DPM-Solver++ 25 steps): the digit classifier reads the completion as the
    true digit far more often than chance (10%) and than the top half on a blank bottom."""
    from adiff.data import digits_split
    from adiff.eval.classifier import load_digits_classifier
    from adiff.presets import load_preset

    model, clf = load_preset("digits", device="cpu"), load_digits_classifier()
    x, y = digits_split("heldout")
    x, y = x[:200], y[:200]
    mask = top_half_mask(model.data_shape)
    out = inpaint(model, x, mask, sampler="dpmpp_2m", num_steps=25, seed=0, clip_x0=1.0)
    assert torch.equal(out[mask.expand_as(out)], x[mask.expand_as(x)])
    with torch.no_grad():
        right = (clf(out).argmax(1) == y).float().mean()
        blank = (clf(torch.where(mask, x, torch.full_like(x, -1.0))).argmax(1) == y).float().mean()
    assert right >= 0.3 and right >= blank + 0.15, (float(right), float(blank))
