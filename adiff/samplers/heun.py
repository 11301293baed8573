"""Heun's second-order method (explicit trapezoid: an Euler predictor, then a corrector from a second evaluation at
its end) on the probability-flow ODE, in one of two forms (``HeunOptions.form``):

"exponential" (the default): the trapezoid on x0_hat in lambda = log(alpha / sigma), inside the ODE's exact solution
(Lu et al. 2022, DPM-Solver++, eq. 9: x_s = (sigma_s / sigma_t) x_t + sigma_s int_{lambda_t}^{lambda_s} e^lambda
x0_hat d lambda), with x0_hat interpolated linearly between its value at (x_t, t) and at the predictor's state.
With h = lambda_s - lambda_t and phi = e^{-h}:

    x' = (sigma_s / sigma_t) x_t + alpha_s (1 - phi) x0_t                    (predictor: the Euler / DDIM step)
    x_s = (sigma_s / sigma_t) x_t + alpha_s [(1 - phi) x0_t + (h - 1 + phi) / h (x0'(x', s) - x0_t)]

the second-order update of diffusers' DPMSolverSinglestepScheduler with solver_type="heun", with the intermediate
point at the step's end.  A constant x0_hat is integrated exactly, so the huge first step of a VP grid (from
sigma / alpha = 157 at t = T on the linear schedule) stays accurate.

"karras": Karras et al. 2022, Algorithm 1 (churn 0), the trapezoid on dy/dtau in y = x / alpha, tau = sigma / alpha
(t itself on a flow), as diffusers' HeunDiscreteScheduler:

    y' = y_t + (tau_s - tau_t) d_t,   y_s = y_t + (tau_s - tau_t) (d_t + d'(y', s)) / 2,   d = dy/dtau

Its corrector gives the derivative at the step's end the weight (tau_t - tau_s) / 2: about 78 on a VP grid's first
step from tau = 157, at an end where the path already bends.  On the exact 8-gaussians mixture at 5 steps (9 NFE),
MMD² x 1e4: 29 on its best VP grid ("uniform"), 565 on "angle", 1826 on "karras", against 14 for the exponential form
on "angle" and 10 for Euler at 10 steps (bench/results/bench_solvers_grids.txt).  It is the form to compare with
diffusers (spacing="karras" for HeunDiscreteScheduler(use_karras_sigmas=True)).

Both take the last step, to t = 0, as a plain Euler step (Karras et al.'s line 8): N steps cost 2N - 1 evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Solver, SolverOptions, StepResult
from .euler import euler_update

HEUN_FORMS = ("exponential", "karras")


@dataclass(frozen=True)
class HeunOptions(SolverOptions):
    form: str = "exponential"  # "exponential": trapezoid on x0_hat in log-SNR; "karras": on dy/dtau (diffusers)

    def check(self) -> HeunOptions:
        if self.form not in HEUN_FORMS:
            raise ValueError(f"form must be one of {list(HEUN_FORMS)}, got {self.form!r}")
        return self


def _exponential_corrector(process, x, t, s, x0_t, x0_end):
    """x_s from x0_hat at t and at the predictor's end, linear in lambda (the module's formula)."""
    a_t, s_t = process.coefficients(t)
    a_s, s_s = process.coefficients(s)
    phi = (a_t * s_s) / (s_t * a_s)  # e^{-h}; 0 where alpha_t = 0 (a flow's t = 1)
    h = process.half_log_snr(s) - process.half_log_snr(t)
    w = 1.0 if math.isinf(h) else (h - 1 + phi) / h  # -> 1 as h -> inf: x0 at the end alone
    return (s_s / s_t) * x + a_s * ((1 - phi) * x0_t + w * (x0_end - x0_t))


class Heun(Solver):
    name = "heun"
    processes = ("vp", "flow")
    order = 2
    nfe_per_step = 2
    summary = "Euler step, then a trapezoidal correction from a second evaluation at its end (Heun; Karras et al. 2022)"
    default_steps = 10
    Options = HeunOptions

    def step(self, model, process, x, t, s, *, state=None, options=None, generator=None) -> StepResult:
        pred = model(x, t)
        x1, y, d, tau_t, tau_s = euler_update(process, x, t, s, pred)
        if s == 0:
            return StepResult(x1, pred, {})
        p1 = model(x1, s)
        if (options or HeunOptions()).form == "karras":
            d1 = process.ode_derivative(p1.x0, p1.eps, s)
            return StepResult(process.from_ode_state(y + (tau_s - tau_t) * 0.5 * (d + d1), s), pred, {})
        return StepResult(_exponential_corrector(process, x, t, s, pred.x0, p1.x0), pred, {})
