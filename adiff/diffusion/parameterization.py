"""What a network predicts, and the one conversion from its output to (eps_hat, x0_hat) for any process.

With x_t = alpha x_0 + sigma eps (see adiff.diffusion.processes) a network may predict
  "epsilon"       eps                                   (Ho et al. 2020)
  "sample"        x_0                                   (the "x0-prediction" of Ramesh et al. 2022, Karras' D)
  "v_prediction"  v = alpha eps - sigma x_0             (Salimans & Ho 2022, section 4; VP: v = dx/dphi)
  "velocity"      v = eps - x_0                         (rectified flow: dx_t/dt, Liu et al. 2022, eq. 1)
Each output determines the other two quantities given x_t, because x_t is known:
  epsilon:       x0 = (x_t - sigma eps) / alpha
  sample:        eps = (x_t - alpha x0) / sigma
  v_prediction:  [x_t; v] = [[alpha, sigma], [-sigma, alpha]] [x0; eps], so
                 x0 = (alpha x_t - sigma v) / (alpha^2 + sigma^2),  eps = (sigma x_t + alpha v) / (alpha^2 + sigma^2)
  velocity:      x0 = x_t - sigma v,  eps = x_t + alpha v   (uses alpha + sigma = 1 of the flow path)
All are affine in the output for a fixed (x_t, t), so classifier-free guidance may mix raw outputs of any type.

``Predictor`` wraps a raw model function fn(x_t, t) -> output into one that returns a ``Prediction`` (x0_hat, eps_hat),
optionally with x0_hat clipped to [-c, c] and eps_hat recomputed from the clipped x0_hat, so that every later step
(and reward guidance) sees one consistent pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .processes import Process

__all__ = [
    "PREDICTION_TYPES",
    "PROCESS_PREDICTION_TYPES",
    "DEFAULT_PREDICTION_TYPE",
    "Prediction",
    "Predictor",
    "to_prediction",
    "from_prediction",
    "training_target",
    "check_prediction_type",
]

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction", "velocity")
# A flow's x_1 is pure noise (alpha(1) = 0), where an eps-predictor says nothing about x0 (x0 = (x_t - t eps) / (1 - t)
# is 0/0), so the flow takes the types that stay defined on all of [0, 1].
PROCESS_PREDICTION_TYPES = {"vp": ("epsilon", "sample", "v_prediction"), "flow": ("velocity", "sample")}
DEFAULT_PREDICTION_TYPE = {"vp": "epsilon", "flow": "velocity"}

ModelFn = Callable[[torch.Tensor, Any], torch.Tensor]  # fn(x_t [B, *shape], t: a Python number or [B]) -> output


def check_prediction_type(prediction_type: Any, process: str, field: str = "prediction_type") -> str:
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"{field} must be one of {list(PREDICTION_TYPES)}, got {prediction_type!r}")
    allowed = PROCESS_PREDICTION_TYPES[process]
    if prediction_type not in allowed:
        raise ValueError(
            f"{field} {prediction_type!r} does not serve the {process} process; use one of {list(allowed)}"
        )
    return prediction_type


@dataclass
class Prediction:
    """A consistent pair at (x_t, t): x_t = alpha x0 + sigma eps.  Tensors [B, *shape]."""

    x0: torch.Tensor  # predicted clean sample
    eps: torch.Tensor  # predicted noise
    info: Any = None  # what a wrapper (reward guidance) reports about this prediction


def to_prediction(output: torch.Tensor, x_t: torch.Tensor, alpha, sigma, prediction_type: str) -> tuple:
    """(x0_hat, eps_hat) from a network output of ``prediction_type``; alpha, sigma: floats or broadcastable tensors."""
    if prediction_type == "epsilon":
        return (x_t - sigma * output) / alpha, output
    if prediction_type == "sample":
        return output, (x_t - alpha * output) / sigma
    if prediction_type == "v_prediction":
        norm = alpha * alpha + sigma * sigma  # 1 on a VP path
        return (alpha * x_t - sigma * output) / norm, (sigma * x_t + alpha * output) / norm
    if prediction_type == "velocity":
        return x_t - sigma * output, x_t + alpha * output
    raise ValueError(f"prediction_type must be one of {list(PREDICTION_TYPES)}, got {prediction_type!r}")


def from_prediction(x0: torch.Tensor, eps: torch.Tensor, alpha, sigma, prediction_type: str) -> torch.Tensor:
    """The output a model of ``prediction_type`` gives for the pair (x0, eps): the inverse of ``to_prediction``."""
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "sample":
        return x0
    if prediction_type == "v_prediction":
        return alpha * eps - sigma * x0
    if prediction_type == "velocity":
        return eps - x0
    raise ValueError(f"prediction_type must be one of {list(PREDICTION_TYPES)}, got {prediction_type!r}")


def training_target(x0: torch.Tensor, eps: torch.Tensor, alpha, sigma, prediction_type: str) -> torch.Tensor:
    """The regression target of the denoising loss: what the network should output at x_t = alpha x0 + sigma eps."""
    return from_prediction(x0, eps, alpha, sigma, prediction_type)


class Predictor:
    """fn(x_t, t) -> raw output, made into (x_t, t) -> Prediction for ``process`` and ``prediction_type``.

    clip_x0: clamp x0_hat to [-clip_x0, clip_x0] and recompute eps_hat from it (None = off).  The network runs without
    autograd unless x_t requires grad (reward guidance differentiates through it)."""

    def __init__(self, fn: ModelFn, process: Process, prediction_type: str = "epsilon", clip_x0: float | None = None):
        check_prediction_type(prediction_type, process.name)
        if clip_x0 is not None and (
            isinstance(clip_x0, bool) or not isinstance(clip_x0, (int, float)) or not clip_x0 > 0
        ):
            raise ValueError(f"clip_x0 must be a positive number or None, got {clip_x0!r}")
        self.fn, self.process, self.prediction_type, self.clip_x0 = fn, process, prediction_type, clip_x0

    def __call__(self, x: torch.Tensor, t) -> Prediction:
        with torch.set_grad_enabled(x.requires_grad):
            out = self.fn(x, t).to(x.dtype)
        alpha, sigma = self.process.coefficients(t, x) if torch.is_tensor(t) else self.process.coefficients(t)
        x0, eps = to_prediction(out, x, alpha, sigma, self.prediction_type)
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            eps = eps_from_x0(x, x0, alpha, sigma, eps)
        return Prediction(x0, eps)


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alpha, sigma, fallback: torch.Tensor) -> torch.Tensor:
    """eps = (x_t - alpha x0) / sigma; where sigma = 0 (t = 0) there is no noise to speak of: ``fallback``."""
    if isinstance(sigma, float):
        return fallback if sigma == 0.0 else (x_t - alpha * x0) / sigma
    safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    return torch.where(sigma > 0, (x_t - alpha * x0) / safe, fallback)
