"""The learned density: log p_theta(x) of a model by its probability-flow ODE, with the exact divergence.

The instantaneous change of variables (Chen et al. 2018, "Neural ODEs", theorem 1; Song et al. 2021, "Score-based
generative modeling through SDEs", appendix D.2): along a path of the probability-flow ODE dx/ds = u(x, s), the
density of the model's marginals changes as d/ds log p_s(x_s) = -div u(x_s, s), so integrating from the data (s = 0)
to the prior (s = S)

    log p_0(x_0) = log p_S(x_S) + int_0^S div u(x_s, s) ds,        p_S = N(0, I).

The ODE.  For x_s = alpha(s) x_0 + sigma(s) eps the probability-flow velocity is the posterior mean of the path's
velocity, u(x, s) = alpha'(s) x0_hat(x, s) + sigma'(s) eps_hat(x, s) (for the flow: dx/dt = eps_hat - x0_hat, Liu
et al. 2022, eq. 1; for VP in the noise angle phi = arctan(sigma / alpha): dx/dphi = cos(phi) eps_hat - sin(phi)
x0_hat, the v of Salimans & Ho 2022, section 4), the same field the samplers integrate backwards.

Time variable, grid and edges (``likelihood_grid``).  Both processes are integrated in the noise angle
phi = arctan(sigma / alpha) (VP: alpha = cos phi, sigma = sin phi; the flow: t = sin phi / (sin phi + cos phi)), with
the network called at the process time of phi (VP: the fractional table time whose sigma / alpha is tan(phi),
``VPProcess.time_from_sigma_ve``).  The steps are dense where the field is rough: the flow's grow quadratically from
the data, phi_k = phi_min + (phi_end - phi_min) (k / N)^2; VP's are dense at both ends,
phi_k = phi_min + (phi_end - phi_min) (1 - cos(pi k / N)) / 2, since a learned eps-model is rough near alpha -> 0 too.
Measured on a 30x30 grid over the app's plot extent, where log p is within 10 nats of its top (largest error
against 128 even steps): moons-flow at 16 steps 0.15 nats quadratic, 0.70 even, 1.3 cosine; 8gaussians (VP) at 32 steps
0.23 cosine, 0.48 quadratic, 0.49 even.  bench/bench_novel.py prints these figures against 64 steps, with the times.
* The edge at the data.  The network is never called below phi_min: VP's t = 1 (the table has no earlier time;
  sigma_1 = 0.01 on the linear schedule), the flow's t = FLOW_T_MIN (its x0-predicting networks divide by t).  On
  [0, phi_min] its score there, -eps_hat / sigma_min, stands in for the score (eps = sigma(phi) score), which changes
  by O(sigma_min^2 / scale^2) over the stretch, and the stretch is one RK4 step of its own.  (Evaluating the network
  at t = 1 with its own eps_hat instead made an O(h) error: 5e-3 nats on 8gaussians.)
* The end.  The flow ends at t = 1, where p_1 = N(0, I) exactly.  VP ends at T with alpha_T > 0 (linear, T = 1000:
  0.0064), whose marginal E_x0 N(alpha_T x0, sigma_T^2 I) differs from N(0, I) at first order in alpha_T (7e-3 nats
  for data with mean (0.4, -0.2)): it is taken as N(alpha_T x0_hat(x_T), sigma_T^2 I), one more forward call, which
  leaves O(alpha_T^2 |x0|^2) (~2e-4 nats).
The integrator is the classical 4th-order Runge-Kutta method on the pair (x, log-density change), one network call
per stage for the whole batch.  Measured with the exact mixture denoiser (tests/test_likelihood.py's two mixtures,
50 points, largest error in nats): VP 1e-1 / 4e-3 / 4e-4 / 4e-4 at 8 / 16 / 32 / 64 steps, the flow 3e-2 / 1e-3 /
5e-5 / 3e-6; on the trained presets a held-out NLL of 2,000 points moves by <= 3e-3 nats from 16 to 64 steps.

The divergence is exact: D vector-Jacobian products (two backward passes for 2-D points; no Hutchinson noise),
which bounds it to small data (``MAX_EXACT_DIM`` coordinates).  Autograd is switched on inside, whatever the caller's
grad mode (not under torch.inference_mode, which no code can undo).

The data's own density for comparison (``data_log_density``): the exact mixture density for the Gaussian-mixture
sets, a Gaussian kernel density estimate from a large fresh draw otherwise (``kde_log_density``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..diffusion.parameterization import Predictor
from ..diffusion.processes import Process

__all__ = [
    "LIKELIHOOD_STEPS",
    "MAX_EXACT_DIM",
    "LikelihoodGrid",
    "LogLikelihood",
    "likelihood_grid",
    "log_likelihood",
    "model_log_likelihood",
    "heldout_nll",
    "NLL",
    "kde_log_density",
    "data_log_density",
    "standard_normal_log_prob",
]

LIKELIHOOD_STEPS = 32  # RK4 steps (4 network calls each, plus the edge step); errors: see the module docstring
FLOW_T_MIN = 1e-3  # the flow's network is called at t >= this (see likelihood_grid)
MAX_EXACT_DIM = 16  # the exact divergence costs one backward pass per coordinate


@dataclass(frozen=True)
class LikelihoodGrid:
    """The integration grid of the probability-flow ODE in the noise angle phi, from the data (phi = 0) to the
    prior (phi_end): an edge step 0 -> phi_min (the first time the network knows), then the process's spacing."""

    s: list  # [num_steps + 2] ascending: 0, phi_min, ..., phi_end
    t: Callable[[float], float]  # phi -> the process's time the network is called at (phi_min's below phi_min)
    alpha: Callable[[float], tuple[float, float]]  # phi -> (alpha, d alpha / d phi)
    sigma: Callable[[float], tuple[float, float]]  # phi -> (sigma, d sigma / d phi)

    @property
    def s_min(self) -> float:
        return self.s[1]


def _vp_coefficients(phi: float) -> tuple[tuple[float, float], tuple[float, float]]:
    return (math.cos(phi), -math.sin(phi)), (math.sin(phi), math.cos(phi))  # alpha = cos phi, sigma = sin phi


def _flow_coefficients(phi: float) -> tuple[tuple[float, float], tuple[float, float]]:
    t = math.sin(phi) / (math.sin(phi) + math.cos(phi))  # tan(phi) = t / (1 - t)
    dt = 1.0 / (math.sin(phi) + math.cos(phi)) ** 2  # d t / d phi
    return (1.0 - t, -dt), (t, dt)  # alpha = 1 - t, sigma = t


# Where the steps go, u in [0, 1] -> share of the way from phi_min to phi_end: the flow's field is roughest near the
# data; a learned VP eps-model's also near the end, where x0_hat = (x - sigma eps_hat) / alpha magnifies its errors
# by 1 / alpha_T (156 on the linear schedule), so VP's steps are dense at both ends.
_SPACING = {"flow": lambda u: u * u, "vp": lambda u: (1 - math.cos(math.pi * u)) / 2}


def likelihood_grid(process: Process, num_steps: int = LIKELIHOOD_STEPS) -> LikelihoodGrid:
    """The edge step from phi = 0 to phi_min, then ``num_steps`` steps in phi = arctan(sigma / alpha) to the
    process's end, spaced by ``_SPACING``.  phi_min: VP's t = 1 (the table has no earlier time), the flow's
    t = FLOW_T_MIN."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= 10_000:
        raise ValueError(f"num_steps must be an integer in 1..10000, got {num_steps!r}")
    if process.name == "vp":
        (a_1, s_1), (a_T, s_T) = process.coefficients(1), process.coefficients(process.t_max)
        start, end, coefficients = math.atan2(s_1, a_1), math.atan2(s_T, a_T), _vp_coefficients

        def t_of(phi: float) -> float:  # the (fractional) table time whose sigma / alpha is tan(phi), in [1, T]
            return process.time_from_sigma_ve(math.tan(phi)) if phi < end else process.t_max

    elif process.name == "flow":
        start, end, coefficients = math.atan(FLOW_T_MIN / (1 - FLOW_T_MIN)), math.pi / 2, _flow_coefficients

        def t_of(phi: float) -> float:
            return max(_flow_coefficients(phi)[1][0], FLOW_T_MIN) if phi < end else 1.0

    else:
        raise ValueError(f"process must be 'vp' or 'flow', got {process.name!r}")
    s = [0.0] + [start + (end - start) * _SPACING[process.name](k / num_steps) for k in range(num_steps + 1)]
    return LikelihoodGrid(s, t_of, lambda p: coefficients(p)[0], lambda p: coefficients(p)[1])


@dataclass
class LogLikelihood:
    """log p_theta(x) of a batch, in nats, and its two parts."""

    log_prob: torch.Tensor  # [N] float64: prior + delta
    prior: torch.Tensor  # [N] float64: log N(x_S; 0, I) where each path ends
    delta: torch.Tensor  # [N] float64: int div u ds along each path
    x_end: torch.Tensor  # [N, *data_shape] where each path ends (N(0, I) distributed when the model is right)
    num_steps: int  # RK4 steps
    nfe: int  # network calls (each for the whole batch, with D backward passes)
    seconds: float


def standard_normal_log_prob(x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, I) for x [N, ...] -> [N] float64."""
    z = x.detach().double().reshape(x.shape[0], -1)
    return -0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def _field_and_divergence(predict: Predictor, grid: LikelihoodGrid, x: torch.Tensor, s: float):
    """u(x, s) [N, *shape] and div_x u [N] (float64), exactly, by one backward pass per coordinate."""
    (a, da), (sg, dsg) = grid.alpha(s), grid.sigma(s)
    with torch.enable_grad():
        xin = x.detach().requires_grad_(True)
        pred = predict(xin, grid.t(s))
        x0, eps = pred.x0, pred.eps
        if s < grid.s_min:
            # Below the first time the network knows, its score there, -eps_hat / sigma_min, stands for the score
            # (it changes by O(sigma_min^2 / scale^2) between noise 0 and sigma_min): eps = sigma * score.
            eps = eps * (sg / grid.sigma(grid.s_min)[0])
            x0 = (xin - sg * eps) / a
        u = da * x0 + dsg * eps  # [N, *shape]: alpha' x0_hat + sigma' eps_hat
        flat = u.reshape(u.shape[0], -1)
        div = torch.zeros(u.shape[0], dtype=torch.float64, device=u.device)
        D = flat.shape[1]
        for i in range(D):  # d u_i / d x_i, summed: the samples are independent, so grad of the sum is per sample
            (g,) = torch.autograd.grad(flat[:, i].sum(), xin, retain_graph=i + 1 < D)
            div += g.reshape(g.shape[0], -1)[:, i].double()
    return u.detach(), div


def log_likelihood(predict: Predictor, x: torch.Tensor, num_steps: int = LIKELIHOOD_STEPS) -> LogLikelihood:
    """log p_theta(x) [N] of the model behind ``predict`` (a Predictor bound to a batch of N) at points x [N, ...],
    by RK4 on (x, log-density change) over ``likelihood_grid(predict.process, num_steps)``: 4 * num_steps network
    calls for the whole batch.  Runs with autograd enabled whatever the caller's grad mode (not under
    torch.inference_mode, where autograd is off for good)."""
    if not isinstance(predict, Predictor):
        raise ValueError(f"predict must be an adiff Predictor, got {type(predict).__name__}")
    if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() < 2 or not torch.isfinite(x).all():
        raise ValueError(f"x must be a finite float tensor [N, ...], got {getattr(x, 'shape', type(x).__name__)}")
    D = x[0].numel()
    if D > MAX_EXACT_DIM:
        raise ValueError(f"x has {D} coordinates per sample; the exact divergence takes at most {MAX_EXACT_DIM}")
    grid = likelihood_grid(predict.process, num_steps)
    t0 = time.time()
    y = x.detach().float()
    delta = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    nfe = 0
    for s0, s1 in zip(grid.s[:-1], grid.s[1:]):  # classical RK4 (Runge 1895, Kutta 1901) on (x, delta)
        h = s1 - s0
        k1, d1 = _field_and_divergence(predict, grid, y, s0)
        k2, d2 = _field_and_divergence(predict, grid, y + 0.5 * h * k1, s0 + 0.5 * h)
        k3, d3 = _field_and_divergence(predict, grid, y + 0.5 * h * k2, s0 + 0.5 * h)
        k4, d4 = _field_and_divergence(predict, grid, y + h * k3, s1)
        y = y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        delta = delta + (h / 6) * (d1 + 2 * d2 + 2 * d3 + d4)
        nfe += 4
    prior, extra = _prior_log_prob(predict, grid, y)
    return LogLikelihood(prior + delta, prior, delta, y, num_steps, nfe + extra, round(time.time() - t0, 3))


def _prior_log_prob(predict: Predictor, grid: LikelihoodGrid, y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """log p_end(y) [N] and the network calls it took.  p_end = E_x0 N(alpha x0, sigma^2 I) is N(0, I) where
    alpha = 0 (the flow).  For VP's alpha_T > 0, log p_end(y) = log N(y; 0, sigma^2 I) + alpha y.E[x0] / sigma^2
    + O(alpha^2) (a cumulant expansion of log E exp(alpha y.x0 / sigma^2 - alpha^2 |x0|^2 / (2 sigma^2))), so it is
    taken as N(alpha x0_hat(y), sigma^2 I), off by O(alpha^2 |x0|^2)."""
    a, sg = grid.alpha(grid.s[-1])[0], grid.sigma(grid.s[-1])[0]
    if a == 0.0 or abs(a) < 1e-12:
        return standard_normal_log_prob(y), 0
    with torch.no_grad():
        x0 = predict(y, grid.t(grid.s[-1])).x0
    z = (y.double() - a * x0.double()) / sg
    return standard_normal_log_prob(z) - z[0].numel() * math.log(sg), 1


def model_log_likelihood(
    model, x: torch.Tensor, condition=None, num_steps: int = LIKELIHOOD_STEPS, batch_size: int = 2000
) -> LogLikelihood:
    """log p_theta(x) [N] of a DiffusionModel (its EMA weights; a conditional model's ``condition``, None for the
    unconditional model, the null class), in chunks of ``batch_size`` points (one Predictor per chunk)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    x = model._check_batch(x, "x")
    labels = model.labels(condition, x.shape[0]) if condition is not None else None
    parts = []
    for i in range(0, x.shape[0], batch_size):
        xi = x[i : i + batch_size]
        cond = None if labels is None else labels[i : i + batch_size]
        parts.append(log_likelihood(model.predictor(cond, xi.shape[0]), xi, num_steps))
    return LogLikelihood(
        torch.cat([p.log_prob for p in parts]),
        torch.cat([p.prior for p in parts]),
        torch.cat([p.delta for p in parts]),
        torch.cat([p.x_end for p in parts]),
        num_steps,
        sum(p.nfe for p in parts),
        round(sum(p.seconds for p in parts), 3),
    )


@dataclass
class NLL:
    """Held-out negative log-likelihood in nats per sample (mean over points, with its standard error)."""

    nats: float
    se: float
    n: int
    num_steps: int
    seconds: float


def heldout_nll(
    model, x: torch.Tensor, condition=None, num_steps: int = LIKELIHOOD_STEPS, batch_size: int = 2000
) -> NLL:
    """-mean log p_theta(x) over held-out points x [N, ...] (never trained on: e.g. ``make_dataset(name, n, seed)``
    with a seed other than the training draw's), with the standard error of the mean."""
    ll = model_log_likelihood(model, x, condition, num_steps, batch_size)
    v = -ll.log_prob
    se = float(v.std() / math.sqrt(v.numel())) if v.numel() > 1 else float("nan")
    return NLL(float(v.mean()), se, v.numel(), num_steps, ll.seconds)


KDE_BANDWIDTHS = (0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3)  # times the samples' mean std


def _kde_terms(y: torch.Tensor, q: torch.Tensor, hs: list[float], chunk: int) -> torch.Tensor:
    """log (1/M) sum_j N(q_i; y_j, h^2 I) for every h in hs: [N, len(hs)] float64 (one distance matrix a chunk)."""
    M, D = y.shape
    out = []
    for i in range(0, q.shape[0], chunk):
        d2 = torch.cdist(q[i : i + chunk], y).pow(2)  # [c, M]
        out.append(
            torch.stack(
                [
                    torch.logsumexp(-d2 / (2 * h * h), 1) - math.log(M) - 0.5 * D * math.log(2 * math.pi * h * h)
                    for h in hs
                ],
                1,
            )
        )
    return torch.cat(out)


def kde_log_density(
    samples: torch.Tensor, x: torch.Tensor, bandwidth: float | None = None, heldout: torch.Tensor | None = None
) -> torch.Tensor:
    """log of a Gaussian kernel density estimate from samples [M, D] at points x [N, D] -> [N] float64:
    log (1/M) sum_j N(x; y_j, h^2 I).  ``bandwidth`` h; None: the h among KDE_BANDWIDTHS (times the samples' mean
    per-coordinate std) that gives ``heldout`` [K, D] (other draws of the same data) the highest mean log-density,
    likelihood cross-validation (Silverman 1986, section 3.4.4).  Scott's rule over-smooths the thin 2-D sets:
    on moons (M = 50,000, 2,000 held out) it gives h = 0.16 and 1.65 nats, the best h (0.03) 1.45."""
    y = samples.detach().double().reshape(samples.shape[0], -1)
    q = x.detach().double().reshape(x.shape[0], -1)
    if y.shape[0] < 2 or q.shape[1] != y.shape[1]:
        raise ValueError(f"kde needs samples [M >= 2, D] and points [N, D], got {list(y.shape)} and {list(q.shape)}")
    if bandwidth is None:
        if heldout is None:
            raise ValueError("kde_log_density needs a bandwidth or held-out points to choose one")
        scale = float(y.std(0).mean())
        hs = [scale * c for c in KDE_BANDWIDTHS]
        score = _kde_terms(y, heldout.detach().double().reshape(heldout.shape[0], -1), hs, 1024).mean(0)
        bandwidth = hs[int(score.argmax())]
    if not isinstance(bandwidth, (int, float)) or not bandwidth > 0:
        raise ValueError(f"bandwidth must be a positive number, got {bandwidth!r}")
    return _kde_terms(y, q, [float(bandwidth)], 1024)[:, 0]


def data_log_density(dataset: str, x: torch.Tensor, num_samples: int = 20_000, seed: int = 12345) -> torch.Tensor:
    """The data's log-density at points x [N, 2] -> [N] float64: exact for a Gaussian-mixture set ("8gaussians"),
    otherwise a kernel density estimate from ``num_samples`` fresh draws (seed ``seed``), its bandwidth chosen on
    1,000 more (seed + 1)."""
    from ..data import gaussian_mixture_for, make_dataset

    g = gaussian_mixture_for(dataset)
    if g is not None:
        return g.log_prob(x.detach().reshape(x.shape[0], -1))
    held = make_dataset(dataset, 1000, seed=seed + 1)[0]
    return kde_log_density(make_dataset(dataset, num_samples, seed=seed)[0], x, heldout=held)
