"""The optimiser and learning-rate schedule from the design's optimizer_config, and the per-step training event."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["OptimizerConfig", "make_optimizer", "make_lr_scheduler", "lr_factor", "TrainEvent"]


@dataclass(frozen=True)
class OptimizerConfig:
    optimizer_type: str = "adamw"  # "adam" | "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    scheduler_type: str = "cosine"  # "cosine" | "linear" (both after a linear warmup) | "constant"
    scheduler_steps: int = 10_000  # total steps the schedule spans
    warmup_steps: int = 200
    grad_clip: float = 1.0  # max global gradient norm (0 = off)
    betas: tuple = (0.9, 0.999)

    @classmethod
    def from_dict(cls, d: dict | None) -> OptimizerConfig:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"optimizer_config field {unknown[0]!r} is unknown (value {d[unknown[0]]!r})")
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.optimizer_type not in ("adam", "adamw"):
            raise ValueError(
                f"optimizer_config field 'optimizer_type' must be 'adam' or 'adamw', got {self.optimizer_type!r}"
            )
        if self.scheduler_type not in ("cosine", "linear", "constant"):
            raise ValueError(
                f"optimizer_config field 'scheduler_type' must be 'cosine', 'linear' or 'constant', got {self.scheduler_type!r}"
            )
        for name, lo, hi in (("learning_rate", 0, 1), ("weight_decay", 0, 1), ("grad_clip", 0, 1e6)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"optimizer_config field '{name}' must be a number in [{lo}, {hi}], got {v!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"optimizer_config field 'learning_rate' must be > 0, got {self.learning_rate!r}")
        for name in ("scheduler_steps", "warmup_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"optimizer_config field '{name}' must be a non-negative integer, got {v!r}")


def make_optimizer(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if cfg.optimizer_type == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=cfg.betas)


def lr_factor(step: int, cfg: OptimizerConfig) -> float:
    """Multiplier of the base LR at a step: linear warmup, then cosine / linear decay to 0, or constant."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.scheduler_type == "constant":
        return 1.0
    span = max(1, cfg.scheduler_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    if cfg.scheduler_type == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0 - progress


def make_lr_scheduler(optimizer, cfg: OptimizerConfig):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))


@dataclass(frozen=True)
class TrainEvent:
    step: int  # global training step after this update
    loss: float  # the batch's denoising loss
    lr: float  # learning rate used for this update
    grad_norm: float  # global gradient norm before clipping
