"""An exponential moving average of a module's weights, kept as a frozen copy that sampling uses."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

__all__ = ["EMA"]


class EMA:
    """Exponential moving average of a module's parameters, kept as a frozen copy of the module that sampling uses:
    w_ema <- d w_ema + (1 - d) w, with the warm-up d_k = min(decay, (1 + k) / (10 + k)) so that early averages are
    not dominated by the initial weights."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        torch._foreach_lerp_(list(self.module.parameters()), [p.detach() for p in model.parameters()], 1.0 - d)

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Make the average equal to the model's current weights."""
        self.module.load_state_dict(model.state_dict())
        self.num_updates = 0
