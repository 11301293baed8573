"""Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Algorithm 1, churn 0), in the
process's ODE coordinates (see euler.py): sigma / alpha for the VP process, t itself for the flow.

    y' = y_t + (tau_s - tau_t) d_t,                 d = dy/dtau at (x_t, t)
    y_s = y_t + (tau_s - tau_t) (d_t + d'(y', s)) / 2   unless s = 0, where the Euler step is kept (their line 8)

Two network calls per step except the last: N steps cost 2N - 1 evaluations (as diffusers' HeunDiscreteScheduler).
"""

from __future__ import annotations

from .base import Solver
from .euler import euler_update


class Heun(Solver):
    name = "heun"
    processes = ("vp", "flow")
    order = 2
    summary = "Euler step, then a trapezoidal correction from a second evaluation (Karras et al. 2022); 2 NFE/step"
    default_steps = 10
    default_spacing = {"vp": "karras", "flow": "uniform"}

    def nfe(self, num_steps: int) -> int:
        return 2 * num_steps - 1

    def step(self, model, process, x, t, s, pred, state, generator, **options):
        x1, y, d, tau_t, tau_s = euler_update(process, x, t, s, pred)
        if s == 0:
            return x1, state
        p1 = model(x1, s)
        d1 = process.ode_derivative(p1.x0, p1.eps, s)
        return process.from_ode_state(y + (tau_s - tau_t) * 0.5 * (d + d1), s), state
