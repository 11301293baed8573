"""What guided samples are measured against: the tilted target they aim at, and a second opinion on a classifier
reward.

* ``tilted_target``: draws of p_lam(x) ∝ p(x) exp(lam r(x)) made by resampling data with self-normalised importance
  weights, with the target's mean reward, its standard error (the delta method's) and Kish's effective sample size.
* ``classifier_recheck``: the digit classifier's agreement on samples, and again after they are re-noised to
  t = t_fraction T and denoised in one step by the model without condition or guidance: pixels that only fool the
  classifier do not survive it, a drawn digit does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .classifier import classifier_for_shape

__all__ = ["Tilted", "tilt_weights", "tilted_target", "Recheck", "classifier_recheck", "RECHECK_T_FRACTION"]

# The re-check re-noises to t = 0.3 T (sigma ~ 0.46 on the glyphs preset's cosine schedule).
RECHECK_T_FRACTION = 0.3


@dataclass(frozen=True)
class Tilted:
    """n draws of the tilted target and what is known about its reward."""

    samples: torch.Tensor  # [n, ...] drawn from the pool with the weights
    mean_reward: float  # E_w[r]: the weighted mean over the whole pool
    se: float  # its standard error, sqrt(sum_i w_i^2 (r_i - E_w[r])^2) (the delta method)
    ess: float  # effective sample size 1 / sum w^2 (Kish)


def tilt_weights(rewards: torch.Tensor, lam: float) -> torch.Tensor:
    """Self-normalised importance weights of p·exp(lam r) against p for draws of p: w_i = softmax(lam r_i), float64
    [N] (Owen, "Monte Carlo theory, methods and examples", 2013, sec. 9.2).  A NaN reward counts as -1e6 and an
    infinite one as ±1e6, so a broken reward value gets (almost) no weight instead of poisoning the sum."""
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be a vector [N], got shape {list(rewards.shape)}")
    if not math.isfinite(lam):
        raise ValueError(f"lam must be finite, got {lam!r}")
    return torch.softmax(lam * _finite(rewards), 0)


def _finite(rewards: torch.Tensor) -> torch.Tensor:
    """rewards [N] as float64 on the CPU, NaN -> -1e6 and ±inf -> ±1e6."""
    return torch.nan_to_num(rewards.detach().double().cpu(), nan=-1e6, posinf=1e6, neginf=-1e6)


def tilted_target(
    pool: torch.Tensor, rewards: torch.Tensor, lam: float, n: int, generator: torch.Generator | None = None
) -> Tilted:
    """n draws of p(x) exp(lam r(x)) by resampling ``pool`` (draws of p, [N, ...]) with replacement by the weights
    w = softmax(lam r) (sampling importance resampling, Rubin 1988), and the target's reward statistics over the
    whole pool: the weighted mean E_w[r] = sum_i w_i r_i, its standard error and Kish's effective sample size
    ESS = 1 / sum_i w_i^2 (Kish 1965).  ``rewards`` [N] are r(pool); a NaN or infinite reward counts as ∓1e6 (see
    ``tilt_weights``).

    The standard error is the delta method's for a self-normalised importance-sampling mean,
    sqrt(sum_i w_i^2 (r_i - E_w[r])^2) (Owen 2013, "Monte Carlo theory, methods and examples", eq. 9.8): over pools
    of a Gaussian with a linear reward it matches the scatter of E_w[r] (tests/test_guidance_checks.py), where
    sqrt(Var_w[r] / ESS) came out 0.64 times too small because the weights grow with r, and so with (r - E_w[r])^2.
    With very uneven weights (ESS a few % of N) it is itself rough and low (0.8 times the scatter at ESS = 1.8% of
    N).  The mean is taken over the whole pool, not over the n resampled draws, so the resampling adds no noise to
    it."""
    if len(pool) < 2:
        raise ValueError(f"pool must hold at least 2 points, got {len(pool)}")
    if rewards.shape != (len(pool),):
        raise ValueError(f"rewards must have shape [{len(pool)}] (one per pool point), got {list(rewards.shape)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    w, r = tilt_weights(rewards, lam), _finite(rewards)  # [N], [N]
    ess = float(1.0 / (w**2).sum())
    mean = float((w * r).sum())
    se = math.sqrt(float((w**2 * (r - mean) ** 2).sum()))
    idx = torch.multinomial(w.float(), n, replacement=True, generator=generator)  # [n]
    return Tilted(pool[idx.to(pool.device)], mean, se, ess)


@dataclass(frozen=True)
class Recheck:
    """The classifier's agreement with a digit before and after the re-noise/denoise round trip."""

    agree: float  # share of the samples the classifier reads as the digit
    after: float  # the same share after re-noising to t and denoising without guidance
    t: float  # the time the samples were re-noised to (an integer step of a discrete process)


def classifier_recheck(
    model,
    x: torch.Tensor,
    digit: int,
    generator: torch.Generator | None = None,
    t_fraction: float = RECHECK_T_FRACTION,
) -> Recheck:
    """The digit classifier's agreement with ``digit`` on x [B, 1, S, S] (16x16 glyphs or 8x8 digits), and on a copy
    re-noised to t = t_fraction T (x_t = alpha_t x + sigma_t eps) and denoised in one step by ``model`` (a
    DiffusionModel) without any condition or guidance: x0_hat = (x_t - sigma_t eps_hat) / alpha_t (Ho et al. 2020,
    eq. 15, written for any alpha_t, sigma_t).  The noise comes from ``generator``."""
    if not 0.0 < t_fraction <= 1.0:
        raise ValueError(f"t_fraction must lie in (0, 1], got {t_fraction!r}")
    clf = classifier_for_shape(tuple(x.shape[1:]), "cpu")
    proc = model.process
    t = t_fraction * proc.t_max if proc.continuous else max(1, int(round(t_fraction * proc.t_max)))
    x = x.detach().float().cpu()  # [B, 1, S, S]
    with torch.no_grad():
        noise = torch.randn(x.shape, generator=generator)  # [B, 1, S, S]
        xt = proc.q_sample(x, t, noise).to(model.device)
        x0 = model.predictor(None, x.shape[0], clip_x0=1.0)(xt, t).x0.float().cpu()  # [B, 1, S, S]
        agree = float((clf(x).argmax(-1) == digit).float().mean())
        after = float((clf(x0).argmax(-1) == digit).float().mean())
    return Recheck(agree, after, t)
