"""DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), over all T steps or a respaced subset.

From x_t to x_s (s < t) draw from the posterior q(x_s | x_t, x0 = x0_hat) of the Gaussian process
x_t = alpha_t x0 + sigma_t eps (Kingma et al. 2021, eq. 32-33; Ho et al. eqs. 6-7 for s = t - 1):
    alpha_{t|s} = alpha_t / alpha_s,  sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2,
    mean = alpha_s sigma_{t|s}^2 / sigma_t^2 x0_hat + alpha_{t|s} sigma_s^2 / sigma_t^2 x_t,
    var  = sigma_{t|s}^2 sigma_s^2 / sigma_t^2  (0 at s = 0).
On the VP path sigma_{t|s}^2 = 1 - abar_t / abar_s, the "respaced" beta of Nichol & Dhariwal 2021 (appendix), which is
what diffusers' DDPMScheduler.step computes for a respaced grid (its "fixed_small" variance, formulas (6)-(7) of
2006.11239).
"""

from __future__ import annotations

import math

from .base import Solver, StepResult, gaussian


def posterior(process, t, s):
    """Coefficients (c_x0, c_xt, std) of q(x_s | x_t, x0) = N(c_x0 x0 + c_xt x_t, std^2 I) as Python floats."""
    a_t, s_t = process.coefficients(t)
    a_s, s_s = process.coefficients(s)
    a_ts = a_t / a_s
    var_ts = max(s_t * s_t - a_ts * a_ts * s_s * s_s, 0.0)
    return a_s * var_ts / (s_t * s_t), a_ts * s_s * s_s / (s_t * s_t), math.sqrt(var_ts * s_s * s_s / (s_t * s_t))


class DDPM(Solver):
    name = "ddpm"
    processes = ("vp",)
    order = 1
    stochastic = True
    summary = "ancestral: x_s ~ q(x_s | x_t, x̂₀), fresh noise every step (Ho et al. 2020); needs many steps"
    default_steps = None  # all T

    def step(self, model, process, x, t, s, *, state=None, options=None, generator=None) -> StepResult:
        pred = model(x, t)
        c0, ct, std = posterior(process, t, s)
        noise = gaussian(x, generator)  # drawn even at s = 0 (std 0): earlier draws line up with diffusers' loop
        return StepResult(c0 * pred.x0 + ct * x + std * noise, pred, {})
