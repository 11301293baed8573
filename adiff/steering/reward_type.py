"""The Reward type shared by the built-in rewards (adiff.steering.rewards) and user formulas
(adiff.steering.expressions): a named, differentiable function of a batch of samples."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Reward", "KINDS"]

KINDS = ("points", "images", "any")


@dataclass(frozen=True)
class Reward:
    """A named, differentiable reward: ``reward(x [B, *data_shape]) -> [B]``.

    kind: "points" (x [B, 2]), "images" (x [B, C, H, W]) or "any" (x [B, ...]); checked on every call.
    formula: a short human-readable formula for a slide, e.g. "r(x, y) = x".
    params: the parameters it was made with (so ``make_reward(name, **params)`` rebuilds it).
    """

    name: str
    kind: str
    description: str
    formula: str
    fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if not callable(self.fn):
            raise ValueError(f"fn must be callable, got {self.fn!r}")

    def check_input(self, x) -> None:
        """Raise ValueError unless x is a float tensor [B, ...] that this reward's kind accepts."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = f"a {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a floating-point tensor for reward {self.name!r}, got {got}")
        shape = tuple(x.shape)
        if self.kind == "points" and (x.dim() != 2 or shape[1] != 2):
            raise ValueError(f"x must have shape [B, 2] for the points reward {self.name!r}, got shape {shape}")
        if self.kind == "images" and x.dim() != 4:
            raise ValueError(f"x must have shape [B, C, H, W] for the images reward {self.name!r}, got shape {shape}")
        if self.kind == "any" and x.dim() < 2:
            raise ValueError(f"x must have shape [B, *data_shape] for reward {self.name!r}, got shape {shape}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, *data_shape] -> r [B] (same dtype and device as x)."""
        self.check_input(x)
        out = self.fn(x)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0],):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"reward {self.name!r} must return shape [B] = ({x.shape[0]},), got {got}")
        return out
