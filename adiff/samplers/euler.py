"""Euler's method on the probability-flow ODE, in the process's own coordinates (Karras et al. 2022, Algorithm 1
without churn): y = x / alpha, tau = sigma / alpha, dy/dtau = eps_hat for the VP process (their eq. 4 with
s(t) = alpha, sigma(t) = sigma / alpha), and x itself in t, dx/dt = eps_hat - x0_hat, for the flow.

    y_s = y_t + (tau_s - tau_t) * dy/dtau(x_t, t)

Written out, both are x_s = alpha_s x0_hat + sigma_s eps_hat: the DDIM (eta = 0) update, on either process.  Its
default grid is the one that samples best at about 10 steps (bench/bench_solvers.py --grids): "angle" on VP (Karras
et al.'s rho = 7 grid, diffusers' EulerDiscreteScheduler with use_karras_sigmas, is spacing="karras"), even in t on a
flow.
"""

from __future__ import annotations

from .base import Solver, StepResult


def euler_update(process, x, t, s, pred):
    """One Euler step of the probability-flow ODE from t to s: (x_s, y_t, dy/dtau, tau_t, tau_s)."""
    y = process.ode_state(x, t)
    d = process.ode_derivative(pred.x0, pred.eps, t)
    tau_t, tau_s = process.ode_time(t), process.ode_time(s)
    return process.from_ode_state(y + (tau_s - tau_t) * d, s), y, d, tau_t, tau_s


class Euler(Solver):
    name = "euler"
    processes = ("vp", "flow")
    order = 1
    summary = "Euler step of the probability-flow ODE (Karras et al. 2022; on a flow, x ← x + Δt·v̂)"
    default_steps = 20

    def step(self, model, process, x, t, s, *, state=None, options=None, generator=None) -> StepResult:
        pred = model(x, t)
        return StepResult(euler_update(process, x, t, s, pred)[0], pred, {})
