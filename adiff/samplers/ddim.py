"""DDIM (Song et al. 2021, eq. 12 with sigma from eq. 16), for any process x_t = alpha_t x0 + sigma_t eps:

    x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z,   c = eta * std of q(x_s | x_t, x0)

eta = 0 is deterministic (the probability-flow ODE's Euler step in y = x / alpha, tau = sigma / alpha: the same
update as the "euler" solver); eta = 1 has DDPM's variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .base import Solver, SolverOptions, StepResult, gaussian
from .ddpm import posterior


@dataclass(frozen=True)
class DDIMOptions(SolverOptions):
    eta: float = 0.0  # noise of each step: 0 deterministic, 1 DDPM's posterior variance (Song et al. 2021, eq. 16)

    def check(self) -> DDIMOptions:
        eta = self.eta
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
        return replace(self, eta=float(eta))


class DDIM(Solver):
    name = "ddim"
    processes = ("vp",)
    order = 1
    summary = "deterministic jump via x̂₀ (Song et al. 2021); η > 0 adds DDPM-like noise"
    default_steps = 50
    Options = DDIMOptions

    def step(self, model, process, x, t, s, *, state=None, options=None, generator=None) -> StepResult:
        eta = (options or DDIMOptions()).eta
        pred = model(x, t)
        a_s, s_s = process.coefficients(s)
        c = eta * posterior(process, t, s)[2] if eta > 0 else 0.0
        x_s = a_s * pred.x0 + math.sqrt(max(s_s * s_s - c * c, 0.0)) * pred.eps
        if c > 0:  # deterministic DDIM draws no noise (and spends no time on it)
            x_s = x_s + c * gaussian(x, generator)
        return StepResult(x_s, pred, {})
