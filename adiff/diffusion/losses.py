"""The denoising loss for any process and prediction type.

    L = E_{t, eps} w_i | f_theta(x_t, t) - target(x0, eps, t) |^2,   x_t = alpha(t) x0 + sigma(t) eps,

with t drawn by the process (U{1..T} for VP, U[0, 1] for the flow) and the target set by the prediction type
(adiff.diffusion.parameterization.training_target): eps for "epsilon" (Ho et al. 2020, eq. 14, "L_simple"), x0 for
"sample", alpha eps - sigma x0 for "v_prediction" (Salimans & Ho 2022), eps - x0 for "velocity" (conditional flow
matching, Lipman et al. 2023, eq. 23; Liu et al. 2022, eq. 1).  ``per_sample_loss`` returns one value per sample, so
adaptation can weight them.

Every one of these is a weighted eps-loss (Kingma & Gao 2023): at a fixed x_t an error in x0 is -sigma / alpha times
the error in eps, so the plain x0 loss weighs the eps error by 1 / SNR (SNR = alpha^2 / sigma^2), which puts nearly
all the weight on the noisiest times (1 / SNR ~ 24,000 at T on the linear schedule, ~1e-4 near t = 1) and learns the
last, fine steps badly (measured on moons, 3000 steps: MMD^2 2.6e-3 against 4.9e-4 for eps).  The "sample" loss is
therefore weighted by min(SNR, gamma) (Min-SNR-gamma, Hang et al. 2023), which makes it the eps loss wherever
SNR < gamma.  Hang et al.'s gamma = 5 (tuned for images) still under-weights the nearly clean end, where the fine
structure of a 2-D set is decided: on moons (the preset's recipe, 4000-5000 steps, DPM-Solver++ 100, mean MMD^2 of
5 x 2000) gamma = 5 gives 6.5e-4, gamma = 100 gives 1.4e-4, gamma = 1e4 (exactly the eps loss: the linear schedule's
largest SNR, at t = 1, is 9999) 3.1e-4; eps itself 1.3e-4.  A small x0 model adapted to a reward (tests/test_adaptation.py)
reaches the tilt at gamma = 100 and 5 but only slowly at 1e4.  So gamma depends on the process (MIN_SNR_GAMMA): 100
for VP; 5 for the flow, whose SNR ((1 - t) / t)^2 is unbounded as t -> 0 with t ~ U[0, 1] continuous (at gamma = 1e4
the rare t near 0 carry weights up to 1e4, and a small flow x0 model trained 600 steps came out too rough to adapt:
12% of the tilt's reward gain against 92-96% with gamma = 5).  The v and flow-velocity losses are the plain ones of their papers (an eps weight of
(alpha^2 + sigma^2)^2 / alpha^2 and 1 / alpha^2: more weight at high noise, bounded for VP).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .parameterization import training_target
from .processes import Process

__all__ = ["per_sample_loss", "diffusion_loss", "loss_weight_sample", "MIN_SNR_GAMMA"]


def per_sample_loss(
    net: Callable,
    process: Process,
    prediction_type: str,
    x0: torch.Tensor,
    condition=None,
    generator: torch.Generator | None = None,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    return_output: bool = False,
):
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
    if prediction_type == "sample":
        per = per * loss_weight_sample(alpha, sigma, MIN_SNR_GAMMA[process.name]).reshape(B)
    return (per, (x_t, t, out)) if return_output else per


MIN_SNR_GAMMA = {"vp": 100.0, "flow": 5.0}  # per process, see the module docstring


def loss_weight_sample(alpha: torch.Tensor, sigma: torch.Tensor, gamma: float) -> torch.Tensor:
    """min(SNR, gamma) with SNR = alpha^2 / sigma^2 (Hang et al. 2023, eq. 8 for an x0-predicting network)."""
    snr = (alpha * alpha) / (sigma * sigma).clamp(min=1e-20)
    return snr.clamp(max=gamma)


def diffusion_loss(
    net: Callable,
    process: Process,
    prediction_type: str,
    x0: torch.Tensor,
    condition=None,
    generator: torch.Generator | None = None,
    t: torch.Tensor | None = None,
) -> torch.Tensor:
    """The mean of ``per_sample_loss`` over the batch."""
    return per_sample_loss(net, process, prediction_type, x0, condition, generator, t).mean()
