"""Each deterministic solver's declared ``order`` is its measured order of convergence on an exact Gaussian.

Data N(m, s^2 I) has the exact denoiser x0*(x_t) = m + s^2 alpha / (alpha^2 s^2 + sigma^2) (x_t - alpha m), and its
probability-flow ODE carries x_T to x_t = alpha_t m + c_t (x_T - alpha_T m) / c_T with c_t = sqrt(alpha_t^2 s^2 +
sigma_t^2) (every path is radial around the moving mean; y = x / alpha then moves as sqrt(s^2 + tau^2), Karras et al.
2022, eq. 4).  A solver of order p run on a grid with N steps ends within C N^-p of that, so doubling N divides the
error by about 2^p.

The grids are even in log-SNR lambda = log(alpha / sigma) from t = T to t = 1 (VP; fractional times) and even in t from
1 to 0.05 (flow), and the error is read at the grid's last time, before the final step to t = 0: that step is one Euler
step for every solver (lambda = +inf there), whose error does not shrink with N on a grid that always ends at t = 1.
Measured slopes at N = 40 -> 80: 0.97-0.99 for the first-order solvers, 1.94-2.09 for the second-order ones.
"""

import math

import pytest
import torch

from adiff.data.gmm import GaussianMixture
from adiff.diffusion import Predictor, make_process
from adiff.samplers import SOLVERS, sample_progressive, solvers_for

M = torch.tensor([[0.5, -0.3]], dtype=torch.float64)
S = 0.5
GAUSSIAN = GaussianMixture([1.0], M, (S * S * torch.eye(2, dtype=torch.float64))[None])
X_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
PROCESSES = {
    "vp-linear": make_process("vp", schedule="linear", num_steps=1000),
    "vp-cosine": make_process("vp", schedule="cosine", num_steps=1000),
    "flow": make_process("flow"),
}
STEPS = (20, 40, 80)


def exact_state(process, t) -> torch.Tensor:
    """The probability-flow ODE's state at t from X_T at t_max (module docstring), [64, 2]."""
    a_T, s_T = process.coefficients(process.t_max)
    a, s = process.coefficients(t)
    return a * M + (X_T - a_T * M) * math.sqrt(a * a * S * S + s * s) / math.sqrt(a_T**2 * S * S + s_T**2)


def grid(process, n: int) -> list:
    """n + 1 times: even in lambda from t = T to t = 1 (VP), even in t from 1 to 0.05 (flow)."""
    if process.name == "flow":
        return [1.0 - i / n * 0.95 for i in range(n + 1)]
    lam0, lam1 = process.half_log_snr(process.t_max), process.half_log_snr(1)
    ts = [process.time_from_sigma_ve(math.exp(-(lam0 + i / n * (lam1 - lam0)))) for i in range(n + 1)]
    ts[0], ts[-1] = float(process.t_max), 1.0
    return ts


def error(process, sampler: str, options: dict, n: int) -> float:
    predict = Predictor(GAUSSIAN.model_fn(process, "sample"), process, "sample")
    ts = grid(process, n)
    recs = list(
        sample_progressive(predict, process, tuple(X_T.shape), sampler=sampler, timesteps=ts, options=options, x_T=X_T)
    )
    assert recs[-2].t_prev == ts[-1]
    return float((recs[-2].x_prev - exact_state(process, ts[-1])).abs().max())


CASES = [
    (p, name, opts)
    for p in PROCESSES
    for name in solvers_for(PROCESSES[p])
    if not SOLVERS[name].stochastic
    for opts in ([{}, {"form": "karras"}] if name == "heun" else [{}])
]


@pytest.mark.parametrize("process,sampler,options", CASES, ids=[f"{p}-{n}-{o.get('form', '')}" for p, n, o in CASES])
def test_measured_order_is_the_declared_order(process, sampler, options):
    proc = PROCESSES[process]
    errs = [error(proc, sampler, options, n) for n in STEPS]
    slopes = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert errs[0] > errs[1] > errs[2], errs
    assert abs(slopes[-1] - SOLVERS[sampler].order) < 0.25, f"errors {errs}, slopes {slopes}"
