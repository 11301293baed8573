"""Pretrained presets shipped in assets/presets/, each reproducible with `python -m adiff.train --preset NAME --ship`.

A preset is a recipe (dataset, model config, training settings) plus the checkpoint and model card that the
training command wrote from it.  ``load_preset`` returns a cached, shared model: treat it as read-only and
``clone()`` it before training or adapting.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .nn.checkpoints import CheckpointError
from .model import DiffusionModel

__all__ = ["PresetSpec", "PRESETS", "list_presets", "preset_spec", "preset_path", "preset_card", "load_preset", "PRESET_DIR"]

PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"

_POINTS = {"embedding_dim": 64, "hidden_dim": 64, "num_layers": 3, "num_heads": 4, "num_diffusion_steps": 1000,
           "noise_schedule": "linear", "data_shape": [2], "ema_decay": 0.999}  # fmt: skip
# Every 2-D set lies inside [-3.5, 3.5]^2: clipping x0_hat at 4 never touches a sample of the data, but keeps a
# guided trajectory from running off to where the network never saw data.
_POINTS_SAMPLING = {"clip_x0": 4.0}


@dataclass(frozen=True)
class PresetSpec:
    name: str
    dataset: str  # adiff.data dataset name
    config: dict  # DiffusionModel config
    description: str
    steps: int = 10_000  # training steps
    batch_size: int = 256
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    dataset_size: int = 50_000
    sample_kwargs: dict = field(default_factory=dict)  # what the app uses by default (e.g. cfg_scale)


PRESETS: dict[str, PresetSpec] = {
    s.name: s
    for s in (
        PresetSpec("moons", "moons", {"model_type": "unconditional", **_POINTS}, "Two interleaving half-moons (unconditional).", sample_kwargs=_POINTS_SAMPLING),
        PresetSpec(
            "8gaussians",
            "8gaussians",
            {"model_type": "conditional", "num_classes": 8, **_POINTS},
            "Eight Gaussians on a circle, conditional on the component (0 = +x axis, counter-clockwise); "
            "the exact denoiser is known, so the learned model can be compared with the ideal one.",
            sample_kwargs=_POINTS_SAMPLING,
        ),
        PresetSpec("swissroll", "swissroll", {"model_type": "unconditional", **_POINTS}, "A 2-D Swiss roll (unconditional).", sample_kwargs=_POINTS_SAMPLING),
        PresetSpec("checkerboard", "checkerboard", {"model_type": "unconditional", **_POINTS}, "A 4x4 checkerboard (unconditional).", sample_kwargs=_POINTS_SAMPLING),
        PresetSpec(
            "glyphs",
            "glyphs",
            {"model_type": "conditional", "num_classes": 10, "embedding_dim": 64, "hidden_dim": 96, "num_layers": 4,
             "num_heads": 4, "num_diffusion_steps": 1000, "noise_schedule": "cosine", "data_shape": [1, 16, 16],
             "patch_size": 4, "ema_decay": 0.999},  # fmt: skip
            "Digits 0-9 as 16x16 grayscale glyphs, conditional on the digit.",
            steps=8000,
            batch_size=128,
            learning_rate=1e-3,
            sample_kwargs={"cfg_scale": 2.0, "clip_x0": 1.0},
        ),
        PresetSpec(
            "digits",
            "digits",
            {"model_type": "conditional", "num_classes": 10, "embedding_dim": 64, "hidden_dim": 64, "num_layers": 4,
             "num_heads": 4, "num_diffusion_steps": 1000, "noise_schedule": "cosine", "data_shape": [1, 8, 8],
             "patch_size": 2, "ema_decay": 0.999},  # fmt: skip
            "Real handwritten digits 0-9 (UCI, 8x8), conditional on the digit; trained on the 1,438-image training "
            "split only.",
            steps=4000,
            batch_size=128,
            learning_rate=2e-3,
            dataset_size=1438,  # the whole training split, once (make_dataset draws it in a shuffled pass)
            sample_kwargs={"cfg_scale": 2.0, "clip_x0": 1.0},
        ),
    )
}


def list_presets() -> list[str]:
    return list(PRESETS)


def preset_spec(name: str) -> PresetSpec:
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {name!r}")
    return PRESETS[name]


def preset_path(name: str, root: Path | None = None) -> Path:
    preset_spec(name)
    return (root or PRESET_DIR) / f"{name}.safetensors"


def preset_card(name: str, root: Path | None = None) -> dict:
    """The model card written by the training command (config, data, steps, wall time, machine, quality)."""
    p = preset_path(name, root).with_suffix(".json")
    return json.loads(p.read_text()) if p.is_file() else {}


_cache: dict[tuple[str, str], DiffusionModel] = {}
_lock = threading.Lock()


def load_preset(name: str, device: str = "auto") -> DiffusionModel:
    """The shipped model for a preset, loaded once per device and shared: do not mutate it, clone() it."""
    path = preset_path(name)
    key = (name, device)
    with _lock:
        if key not in _cache:
            if not path.is_file():
                raise CheckpointError(f"preset {name!r} has no checkpoint at {path}; run `python -m adiff.train --preset {name} --ship`")
            model = DiffusionModel.load(path, device=device)
            model.denoiser.eval()
            _cache[key] = model
        return _cache[key]
