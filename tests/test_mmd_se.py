"""The unbiased MMD² and its standard error (adiff.eval.metrics.mmd2_estimate, MMDReference.estimate): the value is
Gretton et al.'s eq. 3, and the standard error is calibrated: over repeated draws of both sets, the scatter of the
value matches the mean reported SE, for equal distributions (where the SE is conservative by design: its linear part
is kept >= 0) and for slightly and clearly different ones, unweighted and against a weighted reference."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from adiff.eval.metrics import MMD_BANDWIDTHS, MMDEstimate, MMDReference, mmd2, mmd2_estimate, standardize


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def brute_force_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Gretton et al. 2012, eq. 3, one pair at a time, on coordinates standardised by y."""
    a, b = standardize(x, y).tolist(), standardize(y, y).tolist()

    def k(p, q):
        d2 = sum((pi - qi) ** 2 for pi, qi in zip(p, q))
        return sum(math.exp(-d2 / (2 * h * h)) for h in MMD_BANDWIDTHS) / len(MMD_BANDWIDTHS)

    n, m = len(a), len(b)
    sxx = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    syy = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(p, q) for p in a for q in b) / (n * m)
    return sxx + syy - 2 * sxy


def test_the_value_is_gretton_eq_3_and_every_path_gives_the_same_estimate():
    x, y = torch.randn(13, 2, generator=gen(0)) + 0.3, torch.randn(17, 2, generator=gen(1))
    e = mmd2_estimate(x, y)
    assert isinstance(e, MMDEstimate) and e.se > 0
    assert e.value == pytest.approx(brute_force_mmd2(x, y), abs=1e-12) and mmd2(x, y) == e.value
    for chunk in (1024, 5):  # the reference's kernel rows computed at once, or block by block (twice)
        r = MMDReference(y, chunk=chunk).estimate(x)
        assert r.value == pytest.approx(e.value, abs=1e-12) and r.se == pytest.approx(e.se, rel=1e-9)
    flat = MMDReference(y, torch.full((17,), 3.0)).estimate(x)  # equal weights of any scale: unweighted
    assert flat.value == pytest.approx(e.value, abs=1e-12) and flat.se == pytest.approx(e.se, rel=1e-9)


def scatter(draw, n: int) -> tuple[float, float, float, float]:
    """(mean value, sd of the values, mean reported SE, share of |value| > 2 SE) over n draws."""
    est = [draw(s) for s in range(n)]
    values = [e.value for e in est]
    sd = statistics.stdev(values)
    return (
        statistics.mean(values),
        sd,
        statistics.mean(e.se for e in est),
        sum(abs(e.value) > 2 * e.se for e in est) / n,
    )


# (x's shift, lowest and highest mean SE / sd).  The sd of 150 draws is itself known to about ±6-10% (MMD² at equal
# distributions is skewed).  Measured (300 draws of 300 points): 1.18-1.26 at equal distributions (Gaussian, moons,
# 8gaussians; a clamp-free estimate would be 1.0-1.08, the plug-in without the noise correction sqrt(3)), 1.02 at a
# shift of 0.1 sd, 0.92-0.96 at 0.2-0.3 sd.
CASES = [(0.0, 0.95, 1.45), (0.1, 0.8, 1.25), (0.3, 0.8, 1.2)]


@pytest.mark.parametrize("shift, low, high", CASES)
def test_the_standard_error_matches_the_scatter_over_draws(shift, low, high):
    n = 200

    def draw(s):
        x = torch.randn(n, 2, generator=gen(2 * s)) + torch.tensor([shift, 0.0])
        return mmd2_estimate(x, torch.randn(n, 2, generator=gen(2 * s + 1)))

    mean, sd, se, beyond = scatter(draw, 150)
    assert low <= se / sd <= high, (mean, sd, se)
    if shift == 0:  # equal distributions: |MMD²| > 2 SE (the verdict's "detectable") at most as often as 2 SE says
        assert beyond <= 0.05 and abs(mean) < 3 * sd / math.sqrt(150), (beyond, mean, sd)
    else:  # the value's mean is the exact MMD² > 0, which the estimate finds
        assert mean > 3 * sd / math.sqrt(150), (mean, sd)


@pytest.mark.parametrize("shift, low, high", [(0.0, 0.95, 1.5), (0.2, 0.8, 1.25)])
def test_the_standard_error_against_a_weighted_reference_matches_the_scatter(shift, low, high):
    """The reference: N(0, I) weighted by exp(λ y₁), a self-normalised estimate of the tilted N((λ, 0), I); x is
    drawn from N((λ + shift, 0), I), λ = 1.  Measured: 1.14 at shift 0 and 0.88 at 0.2 for these sizes (800
    reference points, ESS ≈ 290; 200 samples; 120 draws); 1.35, 1.03 (shift 0.15) and 1.00 (0.3) with 2000 points and
    256 samples; 0.97 and 0.79 with 500 points (ESS ≈ 180) and 150 samples: as the ESS falls, the self-normalised
    estimate's delta-method variance becomes optimistic (as in Owen 2013, sec. 9.2)."""
    lam = 1.0

    def draw(s):
        y = torch.randn(800, 2, generator=gen(2 * s))
        x = torch.randn(200, 2, generator=gen(2 * s + 1)) + torch.tensor([lam + shift, 0.0])
        return MMDReference(y, torch.softmax(lam * y[:, 0].double(), 0)).estimate(x)

    mean, sd, se, beyond = scatter(draw, 120)
    assert low <= se / sd <= high, (mean, sd, se)
    if shift == 0:
        assert beyond <= 0.05, beyond


def test_too_few_samples_name_the_set():
    with pytest.raises(ValueError, match="at least 2 samples in each set, got 1 and 5"):
        mmd2_estimate(torch.zeros(1, 2), torch.randn(5, 2))
    with pytest.raises(ValueError, match="at least 2 reference samples, got 1"):
        MMDReference(torch.zeros(1, 2))


@pytest.mark.parametrize("bandwidths", [MMD_BANDWIDTHS, (0.3, 0.7), (4.0, 0.25, 1.0, 0.5)])
def test_rbf_kernel_by_squaring_equals_one_exp_per_bandwidth(bandwidths):
    """A bandwidth half the one before it is that kernel squared twice: the same mean of exps, to rounding."""
    from adiff.eval.metrics import _rbf

    g = torch.Generator().manual_seed(0)
    p = torch.randn(300, 3, generator=g, dtype=torch.float64) * 2
    q = torch.randn(200, 3, generator=g, dtype=torch.float64)
    d2 = torch.cdist(p, q).pow(2)
    want = sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths) / len(bandwidths)
    assert float((_rbf(bandwidths)(p, q) - want).abs().max()) <= 1e-14
