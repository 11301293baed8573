"""Classifier-free guidance (Ho & Salimans 2022): mix the conditional and the unconditional output,

    f_w(x, t, y) = f(x, t, null) + w (f(x, t, y) - f(x, t, null))   (their eq. 6, written with w = 1 + their w),

where f is the raw network output.  Every prediction type is affine in the output for a fixed (x_t, t)
(adiff.diffusion.parameterization), so mixing outputs is the same as mixing the eps (or x0, or v) they imply.
One batched call evaluates both halves.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["ConditionalModel"]


class ConditionalModel:
    """A conditional model fn(x_t, t, labels) bound to labels [B]: calling it gives fn(x_t, t, labels)."""

    def __init__(self, fn: Callable, labels: torch.Tensor, null_label: int):
        self.fn, self.labels, self.null_label = fn, labels, null_label

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.fn(x, t, self.labels)

    def with_cfg(self, w: float) -> Callable:
        """The CFG-mixed model fn(x_t, t) for weight w (w = 1: plain conditional, this object itself)."""
        if w == 1.0:
            return self

        def mixed(x: torch.Tensor, t) -> torch.Tensor:
            null = torch.full_like(self.labels, self.null_label)
            tt = torch.cat([t, t]) if torch.is_tensor(t) and t.numel() > 1 else t
            both = self.fn(torch.cat([x, x]), tt, torch.cat([self.labels, null]))
            cond, uncond = both.chunk(2)
            return uncond + w * (cond - uncond)

        return mixed
