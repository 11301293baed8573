"""Gaussian mixtures and their exact (Bayes-optimal) denoiser: "the ideal model".

If p(x_0) = sum_k w_k N(mu_k, S_k) and x_t = a x_0 + s eps (any process: a = sqrt(abar_t), s = sqrt(1 - abar_t) for
VP; a = 1 - t, s = t for the flow), the noised marginal is again a mixture, p_t(x_t) = sum_k w_k N(a mu_k, C_k) with
C_k = a^2 S_k + s^2 I, and the optimal predictions are posterior means in closed form (Gaussian conditioning):
    x0*(x_t) = E[x0 | x_t] = sum_k gamma_k(x_t) (mu_k + a S_k C_k^{-1} (x_t - a mu_k)),
    eps*(x_t) = E[eps | x_t] = (x_t - a x0*) / s = -s grad log p_t(x_t)   (Tweedie; Vincent 2011),
with gamma_k the posterior responsibilities; every other prediction type follows (adiff.diffusion.parameterization;
the flow's velocity E[eps - x0 | x_t] = eps* - x0*).  x0* stays defined where a = 0 (a flow's t = 1: the data mean).
With it a sampler can be tested without any learned error, and a learner can compare a trained network with the
ideal one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..diffusion.parameterization import from_prediction

__all__ = ["GaussianMixture"]


@dataclass
class GaussianMixture:
    """weights [K] (summing to 1), means [K, D], covs [K, D, D]; stored in float64."""

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def __post_init__(self):
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64)
        self.means = torch.as_tensor(self.means, dtype=torch.float64)
        self.covs = torch.as_tensor(self.covs, dtype=torch.float64)
        K, D = self.means.shape
        if self.weights.shape != (K,) or self.covs.shape != (K, D, D):
            raise ValueError(
                f"shapes do not agree: weights {tuple(self.weights.shape)}, means {(K, D)}, covs {tuple(self.covs.shape)}"
            )
        if (self.weights < 0).any() or abs(float(self.weights.sum()) - 1.0) > 1e-9:
            raise ValueError("mixture weights must be non-negative and sum to 1")
        torch.linalg.cholesky(self.covs)  # raises unless every covariance is symmetric positive definite

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    # ------------------------------------------------------------------ sampling and density
    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws: (x float32 [n, D], component labels long [n])."""
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        L = torch.linalg.cholesky(self.covs)  # [K, D, D]
        x = self.means[labels] + torch.einsum("nij,nj->ni", L[labels], z)
        return x.float(), labels

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) for x [N, D] -> [N] (float64)."""
        return torch.logsumexp(self._component_log_probs(x.double(), self.means, self.covs), dim=-1)

    def _component_log_probs(self, x, means, covs):
        # x [N, D]; means [N or 1, K, D] or [K, D]; covs [.., K, D, D] -> log w_k + log N(x; m_k, C_k): [N, K]
        diff = x.unsqueeze(-2) - means  # [N, K, D]
        L = torch.linalg.cholesky(covs)
        sol = torch.linalg.solve_triangular(L, diff.unsqueeze(-1), upper=False).squeeze(-1)  # L^-1 (x - m)
        maha = (sol**2).sum(-1)
        logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        return torch.log(self.weights) - 0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))

    def noised(self, abar: float) -> GaussianMixture:
        """The marginal q(x_t) for a given abar_t: means sqrt(abar) mu_k, covs abar S_k + (1 - abar) I."""
        a2 = float(abar)
        return self.marginal(math.sqrt(a2), math.sqrt(max(0.0, 1.0 - a2)))

    def marginal(self, alpha: float, sigma: float) -> GaussianMixture:
        """The law of x_t = alpha x_0 + sigma eps for any Gaussian path (VP: alpha^2 + sigma^2 = 1; rectified flow:
        alpha = 1 - t, sigma = t): means alpha mu_k, covs alpha^2 S_k + sigma^2 I."""
        a, s = float(alpha), float(sigma)
        eye = torch.eye(self.dim, dtype=torch.float64)
        return GaussianMixture(self.weights, a * self.means, a * a * self.covs + s * s * eye)

    # ------------------------------------------------------------------ the ideal denoiser
    def score(self, x_t: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """grad_x log p_t(x_t) for x_t [B, D] and abar [B] (per-sample noise level); differentiable; float64.

        Each noised covariance a^2 S_k + (1 - a^2) I shares S_k's eigenvectors U_k, with eigenvalues a^2 l + (1 - a^2),
        so densities and solves reduce to elementwise work in each component's eigenbasis."""
        x = x_t.double()
        a2 = abar.double().reshape(-1, 1, 1).to(x.device)  # [B, 1, 1]
        evals, evecs = self._eig(x.device)  # [K, D], [K, D, D]
        var = a2 * evals + (1 - a2)  # [B, K, D]
        diff = x.unsqueeze(1) - a2.sqrt() * self.means.to(x.device)  # [B, K, D]
        z = torch.einsum("kdj,bkd->bkj", evecs, diff)  # U_k^T (x - a mu_k)
        logp = torch.log(self.weights.to(x.device)) - 0.5 * (
            (z * z / var).sum(-1) + torch.log(var).sum(-1) + self.dim * math.log(2 * math.pi)
        )
        gamma = torch.softmax(logp, dim=-1)  # [B, K] posterior responsibility of each component
        prec_diff = torch.einsum("kdj,bkj->bkd", evecs, z / var)  # C_k^{-1} (x - a mu_k)
        return -(gamma.unsqueeze(-1) * prec_diff).sum(1)

    def _eig(self, device):
        if getattr(self, "_eig_cache", None) is None or self._eig_cache[0].device != torch.device(device):
            evals, evecs = torch.linalg.eigh(self.covs)
            self._eig_cache = (evals.to(device), evecs.to(device))
        return self._eig_cache

    def posterior_mean(self, x_t: torch.Tensor, alpha, sigma) -> torch.Tensor:
        """E[x0 | x_t] for x_t = alpha x0 + sigma eps; x_t [B, D], alpha/sigma floats or [B] -> [B, D] float64."""
        x = x_t.double()
        B = x.shape[0]
        a = torch.as_tensor(alpha, dtype=torch.float64, device=x.device).reshape(-1, 1, 1).expand(B, 1, 1)
        s2 = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1, 1, 1).expand(B, 1, 1) ** 2
        evals, evecs = self._eig(x.device)  # [K, D], [K, D, D]
        var = a * a * evals + s2  # [B, K, D]: eigenvalues of C_k
        means = self.means.to(x.device)
        diff = x.unsqueeze(1) - a * means  # [B, K, D]
        z = torch.einsum("kdj,bkd->bkj", evecs, diff)  # U_k^T (x - a mu_k)
        logp = torch.log(self.weights.to(x.device)) - 0.5 * ((z * z / var).sum(-1) + torch.log(var).sum(-1))
        gamma = torch.softmax(logp, dim=-1)  # [B, K]
        cond = means + torch.einsum("kdj,bkj->bkd", evecs, a * evals * z / var)  # mu_k + a S_k C_k^-1 (x - a mu_k)
        return (gamma.unsqueeze(-1) * cond).sum(1)

    def model_fn(self, process, prediction_type: str = "epsilon"):
        """The exact model as the samplers call a network: fn(x_t [B, D], t) -> the ``prediction_type`` output at the
        process's time t (a number or [B]), in x_t's dtype."""

        def fn(x_t: torch.Tensor, t) -> torch.Tensor:
            if torch.is_tensor(t):
                a, s = process.coefficients(t, x_t.double())
            else:
                a, s = process.coefficients(t)
            x0 = self.posterior_mean(
                x_t, a.reshape(-1) if torch.is_tensor(a) else a, s.reshape(-1) if torch.is_tensor(s) else s
            )
            x = x_t.double()
            eps = (x - a * x0) / s
            return from_prediction(x0, eps, a, s, prediction_type).to(x_t.dtype)

        return fn

    # ------------------------------------------------------------------ exact tilts, for tests and teaching
    def tilted_linear(self, direction, lam: float) -> GaussianMixture:
        """p(x) exp(lam * c.x) normalised, for a linear reward r(x) = c.x: again a Gaussian mixture with means
        mu_k + lam S_k c and weights proportional to w_k exp(lam c.mu_k + lam^2 c^T S_k c / 2)."""
        c = torch.as_tensor(direction, dtype=torch.float64)
        Sc = self.covs @ c  # [K, D]
        logw = torch.log(self.weights) + lam * (self.means @ c) + 0.5 * lam**2 * (Sc @ c)
        return GaussianMixture(torch.softmax(logw, 0), self.means + lam * Sc, self.covs)

    def to_dict(self) -> dict:
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "covs": self.covs.tolist()}
