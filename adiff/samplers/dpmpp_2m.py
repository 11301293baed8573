"""DPM-Solver++(2M): the multistep second-order solver in data prediction (Lu et al. 2022, "DPM-Solver++",
Algorithm 2), in lambda = log(alpha / sigma).  With h = lambda_s - lambda_t and phi = e^{-h} = (alpha_t sigma_s) /
(sigma_t alpha_s):

    first order (the first step, the step to s = 0, and steps repeated by recurrence):
        x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - phi) x0_hat_t                       (their eq. 9, = DDIM)
    second order, with the previous step's x0_hat_p at lambda_p, r = (lambda_t - lambda_p) / h:
        D = x0_hat_t + (x0_hat_t - x0_hat_p) / (2 r)
        x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - phi) D                             (Algorithm 2, "midpoint")

as diffusers' DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2) does (first order at the first
and at the final step when the final sigma is 0).  On the flow path lambda_1 = -inf (alpha = 0): phi = 0 and the first
step reduces to x_s = alpha_s x0_hat + sigma_s x_1.
"""

from __future__ import annotations

from .base import Solver, StepResult


class DPMSolverPP2M(Solver):
    name = "dpmpp_2m"
    processes = ("vp", "flow")
    order = 2
    summary = "second-order multistep in log-SNR, reusing the previous x̂₀ (Lu et al. 2022)"
    default_steps = 15

    def init_state(self) -> dict:
        return {"x0": None, "lambda": None}

    def restart(self, state: dict) -> dict:
        return self.init_state()

    def step(self, model, process, x, t, s, *, state=None, options=None, generator=None) -> StepResult:
        pred = model(x, t)
        a_t, s_t = process.coefficients(t)
        a_s, s_s = process.coefficients(s)
        phi = (a_t * s_s) / (s_t * a_s)  # e^{-h}; 0 when alpha_t = 0 or sigma_s = 0
        lam_t, lam_s = process.half_log_snr(t), process.half_log_snr(s)
        D = pred.x0
        prev = (state or {}).get("x0")
        if prev is not None and s_s > 0:
            h, h_prev = lam_s - lam_t, lam_t - state["lambda"]
            r = h_prev / h
            D = pred.x0 + (pred.x0 - prev) / (2 * r)
        x_s = (s_s / s_t) * x + a_s * (1 - phi) * D
        return StepResult(x_s, pred, {"x0": pred.x0, "lambda": lam_t})
