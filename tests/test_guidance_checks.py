"""adiff.eval.guidance_checks against exact answers: the tilted target of a Gaussian under a linear reward is a
shifted Gaussian (its mean reward and Kish's effective sample size in closed form), and the classifier re-check keeps
real digits and undoes pixels that only fool the classifier."""

import math
import statistics

import pytest
import torch

from adiff.eval.guidance_checks import Recheck, classifier_recheck, tilt_weights, tilted_target

# p = N(mu, sig^2 I) in 2-D and r(x) = a·x: p(x) exp(lam r(x)) ∝ N(mu + lam sig^2 a, sig^2 I), so the tilted mean
# reward is a·mu + lam sig^2 |a|^2, and for N draws of p the weights exp(lam a·x) are log-normal with
# (E w)^2 / E w^2 = exp(-lam^2 sig^2 |a|^2): Kish's ESS / N tends to that.
MU, SIG, A, LAM = torch.tensor([0.5, -1.0]), 0.8, torch.tensor([1.0, 0.5]), 1.0
EXACT_MEAN = float(A @ MU) + LAM * SIG**2 * float(A @ A)
EXACT_ESS_SHARE = math.exp(-(LAM**2) * SIG**2 * float(A @ A))
SHIFTED = MU + LAM * SIG**2 * A
N, DRAWS = 20_000, 4000


def gaussian_pool(seed: int) -> torch.Tensor:
    return MU + SIG * torch.randn(N, 2, generator=torch.Generator().manual_seed(seed))  # [N, 2]


def test_the_tilted_target_of_a_gaussian_under_a_linear_reward_is_the_shifted_gaussian():
    means, shares = [], []
    for seed in range(8):
        pool = gaussian_pool(seed)
        t = tilted_target(pool, pool @ A, LAM, DRAWS, torch.Generator().manual_seed(100 + seed))
        means.append(t.mean_reward)
        shares.append(t.ess / N)
        assert t.samples.shape == (DRAWS, 2)
        # the draws: the shifted Gaussian's mean (their own noise plus that of ~ESS effective pool points) and std
        tol = 4 * SIG * math.sqrt(1 / DRAWS + 1 / t.ess)
        assert torch.allclose(t.samples.mean(0), SHIFTED, atol=tol), (t.samples.mean(0), SHIFTED, tol)
        assert torch.allclose(t.samples.std(0), torch.full((2,), SIG), atol=0.05)
    # the weighted mean reward and ESS / N against the closed form, within 3 standard errors across the seeds
    for got, exact in ((means, EXACT_MEAN), (shares, EXACT_ESS_SHARE)):
        se = statistics.stdev(got) / math.sqrt(len(got))
        assert abs(statistics.mean(got) - exact) < 3 * se, (statistics.mean(got), exact, se)


def test_lam_zero_weighs_every_point_alike_exactly():
    pool = gaussian_pool(0)[:500]
    r = (pool @ A).double()
    t = tilted_target(pool, r, 0.0, 10, torch.Generator().manual_seed(0))
    assert math.isclose(t.ess, 500, rel_tol=1e-12) and math.isclose(t.mean_reward, float(r.mean()), rel_tol=1e-12)
    assert math.isclose(t.se, math.sqrt(float(r.var(unbiased=False)) / 500), rel_tol=1e-9)
    assert torch.allclose(tilt_weights(r, 0.0), torch.full((500,), 1 / 500, dtype=torch.float64))


def test_equal_rewards_keep_the_whole_pool_and_a_broken_reward_gets_no_weight():
    pool = torch.randn(40, 2, generator=torch.Generator().manual_seed(1))
    assert math.isclose(tilted_target(pool, torch.ones(40), 7.0, 5).ess, 40, rel_tol=1e-12)
    w = tilt_weights(torch.tensor([0.0, 1.0, float("nan"), float("-inf")]), 2.0)
    e = math.exp(2.0)
    assert torch.allclose(w, torch.tensor([1 / (1 + e), e / (1 + e), 0.0, 0.0], dtype=torch.float64))


def test_the_draws_come_from_the_generator():
    pool = gaussian_pool(2)
    r = pool @ A
    a, b, c = (tilted_target(pool, r, LAM, 50, torch.Generator().manual_seed(s)).samples for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "pool, rewards, lam, n, field",
    [
        (torch.zeros(1, 2), torch.zeros(1), 1.0, 5, "pool"),
        (torch.zeros(4, 2), torch.zeros(3), 1.0, 5, "rewards"),
        (torch.zeros(4, 2), torch.zeros(4), float("nan"), 5, "lam"),
        (torch.zeros(4, 2), torch.zeros(4), 1.0, 0, "n"),
    ],
)
def test_bad_arguments_name_the_field(pool, rewards, lam, n, field):
    with pytest.raises(ValueError, match=f"^{field} "):
        tilted_target(pool, rewards, lam, n)


@pytest.fixture(scope="module")
def digits():
    from adiff.data import make_dataset
    from tests.app_helpers import missing_presets, require

    require("digits" not in missing_presets(), "the digits preset is not trained here")
    from adiff.presets import load_preset

    x, y = make_dataset("digits", 2000, seed=777)  # [2000, 1, 8, 8] in [-1, 1], the real handwritten digits
    return load_preset("digits", "cpu"), x, y


@pytest.mark.parametrize("digit", [3, 7])
def test_the_recheck_keeps_real_digits(digits, digit):
    model, x, y = digits
    for seed in range(3):
        r = classifier_recheck(model, x[y == digit][:32], digit, torch.Generator().manual_seed(seed))
        assert isinstance(r, Recheck) and r.t == 300  # 0.3 T of the digits preset's T = 1000
        assert r.agree >= 0.95 and r.after >= 0.75, (seed, r)


def test_the_recheck_undoes_pixels_that_only_fool_the_classifier(digits):
    """Real 3s pushed (each pixel by at most 0.5) until the classifier reads 7: after the round trip it does not."""
    from adiff.eval.classifier import classifier_for_shape

    model, x, y = digits
    clf = classifier_for_shape((1, 8, 8))
    threes = x[y == 3][:32]
    fake = threes.clone().requires_grad_(True)
    for _ in range(100):  # projected signed-gradient ascent on log p(7 | x)
        (grad,) = torch.autograd.grad(torch.log_softmax(clf(fake), -1)[:, 7].sum(), fake)
        with torch.no_grad():
            fake += 0.02 * grad.sign()
            fake.copy_(torch.clamp(torch.minimum(torch.maximum(fake, threes - 0.5), threes + 0.5), -1, 1))
    for seed in range(2):
        seven = classifier_recheck(model, fake.detach(), 7, torch.Generator().manual_seed(seed))
        three = classifier_recheck(model, fake.detach(), 3, torch.Generator().manual_seed(seed))
        assert seven.agree >= 0.8 and seven.after < 0.5 * seven.agree, seven  # fooled, and the re-check says so
        assert three.agree <= 0.1 and three.after >= 0.4, three  # the 3 comes back


def test_the_recheck_on_drawn_glyphs_agrees():
    """Digits drawn by the glyphs preset with CFG for class 7 are still read as 7 after the re-noise/denoise check."""
    from tests.app_helpers import missing_presets, require

    require("glyphs" not in missing_presets(), "the glyphs preset is not trained here")
    from adiff.presets import load_preset

    torch.manual_seed(0)
    model = load_preset("glyphs", "cpu")
    x, _ = model.generate(
        12, condition=7, seed=0, sampler="ddim", num_steps=30, keep_every=10**6, cfg_scale=3.0, clip_x0=1.0
    )
    r = classifier_recheck(model, x, 7, torch.Generator().manual_seed(1))
    assert r.agree >= 0.8 and r.after >= 0.5 * r.agree and r.t == 300


def test_the_target_mean_rewards_standard_error_matches_its_scatter_over_pools():
    """The delta-method SE of the self-normalised mean, sqrt(sum w² (r − E_w r)²), against the scatter of E_w r over
    200 pools (the sd of 200 draws is known to about ±5%).  At λ = 1.5 (ESS ≈ 17% of the pool): mean SE 0.0248
    against a scatter of 0.0261 (0.95 times); the old sqrt(Var_w / ESS) reported about 0.0155 (0.6 times)."""
    lam, means, ses = 1.5, [], []
    for seed in range(200):
        pool = gaussian_pool(1000 + seed)
        t = tilted_target(pool, pool @ A, lam, 1, torch.Generator().manual_seed(seed))
        means.append(t.mean_reward)
        ses.append(t.se)
    ratio = statistics.mean(ses) / statistics.stdev(means)
    assert 0.85 <= ratio <= 1.15, (ratio, statistics.stdev(means), statistics.mean(ses))
