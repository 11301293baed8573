"""The denoising loss for any process and prediction type.

    L = E_{t, eps} w_i | f_theta(x_t, t) - target(x0, eps, t) |^2,   x_t = alpha(t) x0 + sigma(t) eps,

with t drawn by the process (U{1..T} for VP, U[0, 1] for the flow) and the target set by the prediction type
(adiff.diffusion.parameterization.training_target): eps for "epsilon" (Ho et al. 2020, eq. 14, "L_simple"), x0 for
"sample", alpha eps - sigma x0 for "v_prediction" (Salimans & Ho 2022), eps - x0 for "velocity" (conditional flow
matching, Lipman et al. 2023, eq. 23; Liu et al. 2022, eq. 1).  ``per_sample_loss`` returns one value per sample, so
adaptation can weight them.
"""
from __future__ import annotations

from typing import Callable

import torch

from .parameterization import training_target
from .processes import Process

__all__ = ["per_sample_loss", "diffusion_loss"]


def per_sample_loss(net: Callable, process: Process, prediction_type: str, x0: torch.Tensor, condition=None,
                    generator: torch.Generator | None = None, t: torch.Tensor | None = None,
                    noise: torch.Tensor | None = None, return_output: bool = False):  # fmt: skip
    """Per-sample squared error [B] (mean over the sample's coordinates) of ``net(x_t, model_time, condition)``.

    x0 [B, *data_shape]; t [B] process times (drawn by the process when None); noise as x0 (drawn when None).
    With ``return_output`` also returns (x_t, t, output) so a caller can add terms at the same points."""
    B = x0.shape[0]
    if t is None:
        t = process.training_times(B, generator=generator, device=x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    alpha, sigma = process.coefficients(t, x0)
    x_t = alpha * x0 + sigma * noise
    out = net(x_t, process.model_time(t, device=x0.device), condition).float()
    target = training_target(x0, noise, alpha, sigma, prediction_type)
    per = ((out - target) ** 2).reshape(B, -1).mean(1)
    return (per, (x_t, t, out)) if return_output else per


def diffusion_loss(net: Callable, process: Process, prediction_type: str, x0: torch.Tensor, condition=None,
                   generator: torch.Generator | None = None, t: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """The mean of ``per_sample_loss`` over the batch."""
    return per_sample_loss(net, process, prediction_type, x0, condition, generator, t).mean()
