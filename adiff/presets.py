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

from .diffusion.processes import FlowProcess
from .model import DiffusionModel
from .nn.checkpoints import CheckpointError

__all__ = [
    "PresetSpec",
    "ReflowRecipe",
    "PRESETS",
    "list_presets",
    "preset_spec",
    "preset_path",
    "preset_card",
    "preset_curve",
    "preset_curve_path",
    "load_preset",
    "PRESET_DIR",
]

PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"

_ARCH_2D = {
    "embedding_dim": 64,
    "hidden_dim": 64,
    "num_layers": 3,
    "num_heads": 4,
    "data_shape": [2],
    "ema_decay": 0.999,
}
_POINTS = {**_ARCH_2D, "num_diffusion_steps": 1000, "noise_schedule": "linear"}  # VP, epsilon prediction
# Rectified flow (x_t = (1 - t) x0 + t eps, the network predicts v = eps - x0): the same network; time is continuous
# in [0, 1], so there is no T.
_FLOW_POINTS = {**_ARCH_2D, "process": "flow", "prediction_type": "velocity"}
# Every 2-D set lies inside [-3.5, 3.5]^2: clipping x0_hat at 4 never touches a sample of the data, but keeps a
# guided trajectory from running off to where the network never saw data.
_POINTS_SAMPLING = {"clip_x0": 4.0}


@dataclass(frozen=True)
class ReflowRecipe:
    """A preset trained by reflow (adiff.steering.reflow): on pairs (x_1, ODE(x_1)) of a teacher preset, starting
    from the teacher's weights; the training command makes the pairs (their time counts in the card's CPU time)."""

    teacher: str  # the preset whose ODE map gives the pairs and whose weights the student starts from
    pairs: int  # number of (x_1, x0_hat) pairs
    sampler: str = "dpmpp_2m"  # the coupling's deterministic solver, with the teacher's sampling keywords
    num_steps: int = 50  # measured on moons-flow: MMD^2 -7e-5 at 50 steps (floor +-2e-4), 4.8e-4 at 20


@dataclass(frozen=True)
class PresetSpec:
    name: str
    dataset: str  # adiff.data dataset name
    config: dict  # DiffusionModel config
    description: str
    # The default solver and step count: what the app starts with, and where the card's headline quality is measured
    # (``python -m adiff.train --preset NAME`` evaluates there).  The solver must serve the config's process.
    sampler: str
    num_steps: int
    steps: int = 10_000  # training steps
    batch_size: int = 256
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    dataset_size: int = 50_000
    sample_kwargs: dict = field(default_factory=dict)  # what the app uses by default (e.g. cfg_scale)
    reflow: ReflowRecipe | None = None  # trained on a teacher's couplings instead of the dataset (dataset: evaluation)

    def __post_init__(self):
        from .nn.config import ModelConfig
        from .samplers.registry import solvers_for

        diffusion = ModelConfig.from_dict(self.config).diffusion
        if self.sampler not in solvers_for(diffusion.process):
            raise ValueError(
                f"preset {self.name!r}: sampler must be one of {solvers_for(diffusion.process)} for its "
                f"{diffusion.process} process, got {self.sampler!r}"
            )
        most = diffusion.num_diffusion_steps if diffusion.process == "vp" else FlowProcess().max_steps
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or not 1 <= self.num_steps <= most:
            raise ValueError(f"preset {self.name!r}: num_steps must be an integer in 1..{most}, got {self.num_steps!r}")

    @property
    def sampling(self) -> dict:
        """The default sampling keywords: sampler, num_steps and sample_kwargs together."""
        return {"sampler": self.sampler, "num_steps": self.num_steps, **self.sample_kwargs}


PRESETS: dict[str, PresetSpec] = {
    s.name: s
    for s in (
        PresetSpec(
            "moons",
            "moons",
            {"model_type": "unconditional", **_POINTS},
            "Two interleaving half-moons (unconditional).",
            "dpmpp_2m",
            25,
            sample_kwargs=_POINTS_SAMPLING,
        ),
        PresetSpec(
            "8gaussians",
            "8gaussians",
            # Half the batches with the null label: the app opens it on class "any" (unconditional samples).
            {"model_type": "conditional", "num_classes": 8, "cfg_dropout": 0.5, **_POINTS},
            "Eight Gaussians on a circle, conditional on the component (0 = +x axis, counter-clockwise); "
            "the exact denoiser is known, so the learned model can be compared with the ideal one.",
            "dpmpp_2m",
            25,
            sample_kwargs=_POINTS_SAMPLING,
        ),
        PresetSpec(
            "swissroll",
            "swissroll",
            {"model_type": "unconditional", **_POINTS},
            "A 2-D Swiss roll (unconditional).",
            "dpmpp_2m",
            25,
            sample_kwargs=_POINTS_SAMPLING,
        ),
        PresetSpec(
            "checkerboard",
            "checkerboard",
            {"model_type": "unconditional", **_POINTS},
            "A 4x4 checkerboard (unconditional).",
            "dpmpp_2m",
            25,
            sample_kwargs=_POINTS_SAMPLING,
        ),
        PresetSpec(
            "moons-flow",
            "moons",
            {"model_type": "unconditional", **_FLOW_POINTS},
            (
                "Two interleaving half-moons as a rectified flow (velocity prediction): trained on straight lines from "
                "noise to data; compare its sampled paths with the VP moons in tab 4."
            ),
            "dpmpp_2m",
            20,
            sample_kwargs=_POINTS_SAMPLING,
        ),
        PresetSpec(
            "moons-reflow",
            "moons",
            {"model_type": "unconditional", **_FLOW_POINTS},
            (
                "moons-flow reflowed (Liu et al. 2022, 2-rectified flow): trained on the straight lines from noise to "
                "where moons-flow's ODE takes it, starting from its weights; its paths are straight, so a few Euler "
                "steps (even one) sample the moons: compare it with moons-flow at 1-10 NFE."
            ),
            "euler",
            2,
            steps=4000,
            learning_rate=1e-3,
            warmup_steps=100,
            dataset_size=50_000,  # the pairs
            sample_kwargs=_POINTS_SAMPLING,
            reflow=ReflowRecipe("moons-flow", pairs=50_000),
        ),
        PresetSpec(
            "checkerboard-flow",
            "checkerboard",
            {"model_type": "unconditional", **_FLOW_POINTS},
            "A 4x4 checkerboard as a rectified flow (velocity prediction).",
            "dpmpp_2m",
            20,
            sample_kwargs=_POINTS_SAMPLING,
        ),
        PresetSpec(
            "glyphs",
            "glyphs",
            {
                "model_type": "conditional",
                "num_classes": 10,
                "embedding_dim": 64,
                "hidden_dim": 64,
                "num_layers": 4,
                "num_heads": 4,
                "num_diffusion_steps": 1000,
                "noise_schedule": "cosine",
                "prediction_type": "v_prediction",
                "data_shape": [1, 16, 16],
                "patch_size": 4,
                "ema_decay": 0.999,
            },
            "Digits 0-9 as 16x16 grayscale glyphs, conditional on the digit (v-prediction, cosine schedule).",
            "dpmpp_2m",
            20,
            steps=4000,
            batch_size=128,
            learning_rate=2e-3,
            sample_kwargs={"cfg_scale": 2.0, "clip_x0": 1.0},
        ),
        PresetSpec(
            "digits",
            "digits",
            {
                "model_type": "conditional",
                "num_classes": 10,
                "embedding_dim": 64,
                "hidden_dim": 64,
                "num_layers": 4,
                "num_heads": 4,
                "num_diffusion_steps": 1000,
                "noise_schedule": "cosine",
                "data_shape": [1, 8, 8],
                "patch_size": 2,
                "ema_decay": 0.999,
            },
            "Real handwritten digits 0-9 (UCI, 8x8), conditional on the digit; trained on the 1,438-image training "
            "split only.",
            "dpmpp_2m",
            25,
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


def preset_curve_path(name: str, root: Path | None = None) -> Path:
    """Where a preset's quality-against-NFE curve lives (written by ``python -m adiff.cli.quality``)."""
    return preset_path(name, root).with_suffix(".nfe.json")


def preset_curve(name: str, root: Path | None = None) -> dict | None:
    """A preset's quality-against-NFE curve as shipped; None for a model that is not a preset or has none."""
    if name not in PRESETS:
        return None
    p = preset_curve_path(name, root)
    return json.loads(p.read_text()) if p.is_file() else None


_cache: dict[tuple[str, str], DiffusionModel] = {}
_lock = threading.Lock()


def load_preset(name: str, device: str = "auto") -> DiffusionModel:
    """The shipped model for a preset, loaded once per device and shared: do not mutate it, clone() it."""
    path = preset_path(name)
    key = (name, device)
    with _lock:
        if key not in _cache:
            if not path.is_file():
                raise CheckpointError(
                    f"preset {name!r} has no checkpoint at {path}; run `python -m adiff.train --preset {name} --ship`"
                )
            model = DiffusionModel.load(path, device=device)
            model.denoiser.eval()
            _cache[key] = model
        return _cache[key]
