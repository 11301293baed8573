"""The model configuration: three typed sections (architecture, diffusion, training) plus where it runs.

Users write one flat dict (``{"model_type": ..., "hidden_dim": ..., "num_diffusion_steps": ...}``) or a nested one
(``{"arch": {...}, "diffusion": {...}, "training": {...}}``); ``ModelConfig.from_dict`` routes every key to its
section and validates every value.  A bad value raises ValueError naming the field and the value (DESIGN.md, habit 9).
``to_dict`` writes the nested form, which checkpoints store; flat dicts of checkpoints made before the sections
existed load unchanged (as epsilon-prediction VP models).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from ..diffusion.parameterization import DEFAULT_PREDICTION_TYPE, check_prediction_type
from ..diffusion.processes import PROCESSES, Process, make_process
from ..diffusion.schedules import MAX_STEPS, SCHEDULES, validate_custom_values

__all__ = ["ModelConfig", "ArchConfig", "DiffusionConfig", "TrainingConfig", "resolve_device", "REQUIRED_FIELDS"]

REQUIRED_FIELDS = ("model_type", "embedding_dim", "hidden_dim", "num_layers")
MODEL_TYPES = ("conditional", "unconditional")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "bf16")


def _integer(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"config field '{name}' must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise ValueError(f"config field '{name}' must be in {lo}..{hi}, got {v!r}")


def _number(name, v, lo, hi, lo_open=False, hi_open=True):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"config field '{name}' must be a finite number, got {v!r}")
    if (v < lo or (lo_open and v == lo)) or (v > hi or (hi_open and v == hi)):
        raise ValueError(
            f"config field '{name}' must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, got {v!r}"
        )


def _choice(name, v, options):
    if v not in options:
        raise ValueError(f"config field '{name}' must be one of {list(options)}, got {v!r}")


@dataclass(frozen=True)
class ArchConfig:
    """The denoiser network (adiff.nn.denoisers)."""

    model_type: str  # "conditional" (class labels via cross-attention, with a null class for CFG) | "unconditional"
    embedding_dim: int  # width of the sinusoidal time features and of the condition embedding
    hidden_dim: int  # transformer width (tokens are hidden_dim wide); divisible by num_heads
    num_layers: int  # number of transformer blocks
    num_heads: int = 4  # attention heads per block
    dropout: float = 0.0  # dropout in attention and MLP, in [0, 1)
    data_shape: tuple = (2,)  # per-sample shape: (D,) for vectors/points, (C, H, W) for images
    num_classes: int | None = None  # number of class labels (conditional models only)
    patch_size: int | None = None  # token size: coordinates per token for (D,), pixels per side for (C, H, W)
    mlp_ratio: int = 4  # MLP width = mlp_ratio * hidden_dim

    def validate(self) -> None:
        _choice("model_type", self.model_type, MODEL_TYPES)
        _integer("embedding_dim", self.embedding_dim, 2, 4096)
        _integer("hidden_dim", self.hidden_dim, 1, 8192)
        _integer("num_layers", self.num_layers, 1, 64)
        _integer("num_heads", self.num_heads, 1, 256)
        _integer("mlp_ratio", self.mlp_ratio, 1, 16)
        _number("dropout", self.dropout, 0.0, 1.0)
        if self.embedding_dim % 2:
            raise ValueError(f"config field 'embedding_dim' must be even (sin/cos pairs), got {self.embedding_dim!r}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"config field 'hidden_dim' ({self.hidden_dim}) must be divisible by 'num_heads' ({self.num_heads})"
            )
        shape = self.data_shape
        if (
            not isinstance(shape, tuple)
            or len(shape) not in (1, 3)
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)
        ):
            raise ValueError(f"config field 'data_shape' must be [D] or [C, H, W] of positive integers, got {shape!r}")
        if math.prod(shape) > 65_536:
            raise ValueError(
                f"config field 'data_shape' {list(shape)} is too large (more than 65536 values per sample)"
            )
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
                raise ValueError(
                    f"config field 'num_classes' must be an integer >= 1 for a conditional model, got {n!r}"
                )
        elif self.num_classes is not None:
            raise ValueError(f"config field 'num_classes' is only for conditional models, got {self.num_classes!r}")

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


@dataclass(frozen=True)
class DiffusionConfig:
    """The forward process and what the network predicts (adiff.diffusion)."""

    process: str = "vp"  # "vp" (discrete variance-preserving, t = 1..T) | "flow" (rectified flow, t in [0, 1])
    prediction_type: str | None = None  # "epsilon" | "sample" | "v_prediction" (VP) | "velocity" (flow); None = default
    num_diffusion_steps: int | None = None  # T of the VP process (required for "vp"; not used by the flow)
    noise_schedule: str = "linear"  # VP: "linear" | "cosine" | "sigmoid" | "custom"
    custom_schedule_values: tuple | None = None  # VP custom: noise levels sqrt(1 - abar) in (0, 1), increasing
    beta_range: tuple | None = None  # VP linear: (beta_1, beta_T); None = (1e-4, 0.02) scaled by 1000 / T
    flow_shift: float = 1.0  # flow: timestep shift of the sampling grid (Esser et al. 2024); 1 = even in t

    def __post_init__(self):
        if self.prediction_type is None and self.process in DEFAULT_PREDICTION_TYPE:
            object.__setattr__(self, "prediction_type", DEFAULT_PREDICTION_TYPE[self.process])

    def validate(self) -> None:
        _choice("process", self.process, PROCESSES)
        check_prediction_type(self.prediction_type, self.process, "config field 'prediction_type'")
        if self.process == "vp":
            if self.num_diffusion_steps is None:
                raise ValueError("config field 'num_diffusion_steps' is required (missing) for the 'vp' process")
            _integer("num_diffusion_steps", self.num_diffusion_steps, 1, MAX_STEPS)
            _choice("noise_schedule", self.noise_schedule, SCHEDULES)
            if self.noise_schedule == "custom":
                if self.custom_schedule_values is None:
                    raise ValueError(
                        "config field 'custom_schedule_values' is required when noise_schedule is 'custom'"
                    )
                validate_custom_values(list(self.custom_schedule_values))
            if self.beta_range is not None:
                b = self.beta_range
                if self.noise_schedule != "linear":
                    raise ValueError(f"config field 'beta_range' is for the linear schedule only, got {b!r}")
                if (
                    not isinstance(b, tuple)
                    or len(b) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b)
                    or not 0 < b[0] <= b[1] < 1
                ):
                    raise ValueError(
                        f"config field 'beta_range' must be [beta_1, beta_T] with 0 < beta_1 <= beta_T < 1, got {b!r}"
                    )
        else:
            if self.num_diffusion_steps is not None:
                raise ValueError(
                    f"config field 'num_diffusion_steps' is for the 'vp' process; a flow has continuous "
                    f"time t in [0, 1] (got {self.num_diffusion_steps!r})"
                )
            _number("flow_shift", self.flow_shift, 0.1, 10.0, hi_open=False)

    def make_process(self) -> Process:
        return make_process(
            self.process,
            schedule=self.noise_schedule,
            num_steps=self.num_diffusion_steps,
            custom_values=self.custom_schedule_values,
            beta_range=self.beta_range,
            shift=self.flow_shift,
        )


@dataclass(frozen=True)
class TrainingConfig:
    """How it is trained and adapted."""

    cfg_dropout: float = 0.1  # probability of training a conditional model with the null label (for CFG)
    ema_decay: float = 0.999  # EMA of the weights used for sampling
    buffer_capacity: int = 1000  # trajectory buffer size for adaptation

    def validate(self) -> None:
        _number("cfg_dropout", self.cfg_dropout, 0.0, 1.0)
        _number("ema_decay", self.ema_decay, 0.0, 1.0)
        _integer("buffer_capacity", self.buffer_capacity, 1, 100_000)


SECTIONS = {"arch": ArchConfig, "diffusion": DiffusionConfig, "training": TrainingConfig}
_SECTION_OF = {f.name: sec for sec, cls in SECTIONS.items() for f in fields(cls)}
_TOP = ("device", "precision")
_TUPLES = ("data_shape", "custom_schedule_values", "beta_range")


@dataclass(frozen=True)
class ModelConfig:
    arch: ArchConfig
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    device: str = "auto"  # "auto" (CUDA when present) | "cpu" | "cuda" | "cuda:N"
    precision: str = "fp32"  # autocast dtype on CUDA: "fp32" | "fp16" | "bf16"; always fp32 on CPU

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, config: Any) -> ModelConfig:
        """From a flat dict (every field at the top) or a nested one ({"arch": ..., "diffusion": ..., ...})."""
        if isinstance(config, ModelConfig):
            return config
        flat = _flatten(config)
        for name in REQUIRED_FIELDS:
            if name not in flat:
                raise ValueError(f"config field '{name}' is required (missing)")
        for key in _TUPLES:
            if isinstance(flat.get(key), list):
                flat[key] = tuple(flat[key])
        parts = {sec: SECTIONS[sec](**{k: v for k, v in flat.items() if _SECTION_OF.get(k) == sec}) for sec in SECTIONS}
        cfg = cls(**parts, **{k: flat[k] for k in _TOP if k in flat})
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        """The nested form: {"arch": {...}, "diffusion": {...}, "training": {...}, "device", "precision"}."""
        out = {sec: asdict(getattr(self, sec)) for sec in SECTIONS}
        for sec in out.values():
            for k in _TUPLES:
                if sec.get(k) is not None:
                    sec[k] = list(sec[k])
        return {**out, "device": self.device, "precision": self.precision}

    def flat(self) -> dict:
        """Every field at the top level (for display and for building a changed copy)."""
        d = self.to_dict()
        return {**d["arch"], **d["diffusion"], **d["training"], "device": self.device, "precision": self.precision}

    def replace(self, **changes) -> ModelConfig:
        return ModelConfig.from_dict({**self.flat(), **changes})

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        for sec in SECTIONS:
            part = getattr(self, sec)
            if not isinstance(part, SECTIONS[sec]):
                raise ValueError(f"config section '{sec}' must be a {SECTIONS[sec].__name__}, got {part!r}")
            part.validate()
        _choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.device, str) or not (self.device in DEVICES or self.device.startswith("cuda:")):
            raise ValueError(f"config field 'device' must be one of {list(DEVICES)} (or 'cuda:N'), got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"config field 'device' is {self.device!r} but no CUDA GPU is available on this machine")


def resolve_device(device: str) -> torch.device:
    """ "auto" picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but no CUDA GPU is available")
    return torch.device(device)


def _flatten(config: Any) -> dict:
    """A flat or nested config dict -> every field at the top; an unknown field or a section that is not an object
    raises an error naming it."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict, got {type(config).__name__}")
    flat: dict = {}
    for key, value in config.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"config section '{key}' must be an object, got {value!r}")
            for k, v in value.items():
                if _SECTION_OF.get(k) != key:
                    raise ValueError(
                        f"config field '{key}.{k}' is unknown (value {v!r}); known fields: "
                        f"{sorted(f.name for f in fields(SECTIONS[key]))}"
                    )
                flat[k] = v
        elif key in _SECTION_OF or key in _TOP:
            flat[key] = value
        else:
            raise ValueError(
                f"config field '{key}' is unknown (value {value!r}); known fields: {sorted([*_SECTION_OF, *_TOP])}"
            )
    return flat
