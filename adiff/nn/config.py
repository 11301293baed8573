"""The model configuration: a typed dataclass built from the user's dict, with every value validated.

Every bad value raises ValueError naming the field and the value (DESIGN.md, habit 9).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from ..diffusion.schedules import MAX_STEPS, SCHEDULES, validate_custom_values

__all__ = ["ModelConfig", "resolve_device", "REQUIRED_FIELDS"]

REQUIRED_FIELDS = ("model_type", "embedding_dim", "hidden_dim", "num_layers", "num_diffusion_steps")
MODEL_TYPES = ("conditional", "unconditional")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelConfig:
    model_type: str  # "conditional" (class labels via cross-attention, with a null class for CFG) | "unconditional"
    embedding_dim: int  # width of the sinusoidal timestep features and of the condition embedding
    hidden_dim: int  # transformer width (tokens are hidden_dim wide); divisible by num_heads
    num_layers: int  # number of transformer blocks
    num_diffusion_steps: int  # T: timesteps run 1..T, t = 0 is clean data
    num_heads: int = 4  # attention heads per block
    dropout: float = 0.0  # dropout in attention and MLP, in [0, 1)
    noise_schedule: str = "linear"  # "linear" | "cosine" | "sigmoid" | "custom"
    custom_schedule_values: tuple | None = None  # noise levels sqrt(1 - abar) in (0, 1), strictly increasing
    device: str = "auto"  # "auto" (CUDA when present) | "cpu" | "cuda" | "cuda:N"
    precision: str = "fp32"  # autocast dtype on CUDA: "fp32" | "fp16" | "bf16"; always fp32 on CPU
    buffer_capacity: int = 1000  # trajectory buffer size for adaptation
    data_shape: tuple = (2,)  # per-sample shape: (D,) for vectors/points, (C, H, W) for images
    num_classes: int | None = None  # number of class labels (conditional models only)
    patch_size: int | None = None  # token size: coordinates per token for (D,), pixels per side for (C, H, W)
    mlp_ratio: int = 4  # MLP width = mlp_ratio * hidden_dim
    cfg_dropout: float = 0.1  # probability of training a conditional model with the null label (for CFG)
    ema_decay: float = 0.999  # EMA of the weights used for sampling

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, config: Any) -> "ModelConfig":
        if isinstance(config, ModelConfig):
            return config
        if not isinstance(config, dict):
            raise ValueError(f"config must be a dict, got {type(config).__name__}")
        for name in REQUIRED_FIELDS:
            if name not in config:
                raise ValueError(f"config field '{name}' is required (missing)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"config field '{unknown[0]}' is unknown (value {config[unknown[0]]!r}); known fields: {sorted(known)}")
        kw = dict(config)
        for key in ("data_shape", "custom_schedule_values"):
            if isinstance(kw.get(key), list):
                kw[key] = tuple(kw[key])
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_shape"] = list(self.data_shape)
        if self.custom_schedule_values is not None:
            d["custom_schedule_values"] = list(self.custom_schedule_values)
        return d

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        def integer(name, lo, hi):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"config field '{name}' must be an integer, got {v!r}")
            if not lo <= v <= hi:
                raise ValueError(f"config field '{name}' must be in {lo}..{hi}, got {v!r}")

        def number(name, lo, hi, lo_open=False, hi_open=True):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"config field '{name}' must be a finite number, got {v!r}")
            if (v < lo or (lo_open and v == lo)) or (v > hi or (hi_open and v == hi)):
                raise ValueError(f"config field '{name}' must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, got {v!r}")

        def choice(name, options):
            v = getattr(self, name)
            if v not in options:
                raise ValueError(f"config field '{name}' must be one of {list(options)}, got {v!r}")

        choice("model_type", MODEL_TYPES)
        integer("embedding_dim", 2, 4096)
        integer("hidden_dim", 1, 8192)
        integer("num_layers", 1, 64)
        integer("num_heads", 1, 256)
        integer("num_diffusion_steps", 1, MAX_STEPS)
        integer("buffer_capacity", 1, 100_000)
        integer("mlp_ratio", 1, 16)
        number("dropout", 0.0, 1.0)
        number("cfg_dropout", 0.0, 1.0)
        number("ema_decay", 0.0, 1.0)
        if self.embedding_dim % 2:
            raise ValueError(f"config field 'embedding_dim' must be even (sin/cos pairs), got {self.embedding_dim!r}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"config field 'hidden_dim' ({self.hidden_dim}) must be divisible by 'num_heads' ({self.num_heads})"
            )
        choice("noise_schedule", SCHEDULES)
        if self.noise_schedule == "custom":
            if self.custom_schedule_values is None:
                raise ValueError("config field 'custom_schedule_values' is required when noise_schedule is 'custom'")
            validate_custom_values(list(self.custom_schedule_values))
        choice("precision", PRECISIONS)
        if not isinstance(self.device, str) or not (self.device in DEVICES or self.device.startswith("cuda:")):
            raise ValueError(f"config field 'device' must be one of {list(DEVICES)} (or 'cuda:N'), got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"config field 'device' is {self.device!r} but no CUDA GPU is available on this machine")
        shape = self.data_shape
        if not isinstance(shape, tuple) or len(shape) not in (1, 3) or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape
        ):
            raise ValueError(f"config field 'data_shape' must be [D] or [C, H, W] of positive integers, got {shape!r}")
        if math.prod(shape) > 65_536:
            raise ValueError(f"config field 'data_shape' {list(shape)} is too large (more than 65536 values per sample)")
        p = self.patch_size
        if p is not None:
            if isinstance(p, bool) or not isinstance(p, int) or p < 1:
                raise ValueError(f"config field 'patch_size' must be a positive integer, got {p!r}")
            dims = shape if len(shape) == 1 else shape[1:]
            if any(d % p for d in dims):
                raise ValueError(f"config field 'patch_size' ({p}) must divide the data dimensions {list(dims)}")
        if self.model_type == "conditional":
            n = self.num_classes
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100_000:
                raise ValueError(f"config field 'num_classes' must be an integer >= 1 for a conditional model, got {n!r}")
        elif self.num_classes is not None:
            raise ValueError(f"config field 'num_classes' is only for conditional models, got {self.num_classes!r}")

    # ------------------------------------------------------------------ derived
    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3

    @property
    def effective_patch_size(self) -> int:
        if self.patch_size is not None:
            return self.patch_size
        if self.is_image:
            h, w = self.data_shape[1:]
            return 4 if h % 4 == 0 and w % 4 == 0 else 1
        return 1


def resolve_device(device: str) -> torch.device:
    """"auto" picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but no CUDA GPU is available")
    return torch.device(device)


