"""The reverse tab's requests and its part of a session: ``GenerateRequest`` and ``FrameRequest`` check the raw
values of /generate and /frame (``parse``); ``ReverseState`` (``state_of(session)``) keeps the last finished run for
/frame and Stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adiff.samplers import SOLVERS, solvers_for

from ..choices import parse_label
from ..context import AppContext, ModelInfo
from ..fields import as_choice, as_float, as_int, field_error
from ..limits import LIMITS
from ..result_cache import preset_key
from ..state import Session

__all__ = ["TAB", "StoredTrajectory", "ReverseState", "state_of", "GenerateRequest", "FrameRequest"]

TAB = "reverse"


@dataclass
class StoredTrajectory:
    """A finished reverse-diffusion run, kept for /frame."""

    trajectory: Any  # adiff.samplers.Trajectory (CPU tensors [K, B, ...])
    model: Any  # the DiffusionModel that made it (for the score field at any frame)
    source: str  # preset name or "my model"
    kind: str  # "points" | "images"
    condition: Any  # None, an int label or "each"
    cfg_scale: float | None
    paths: Any  # [K, P, 2] positions of the highlighted particles (points only)
    ideal: Any = None  # adiff.data.gmm.GaussianMixture for the ideal model, or None

    @property
    def num_frames(self) -> int:
        return len(self.trajectory)


@dataclass
class ReverseState:
    """This tab's part of a session: the last finished run and how far the current one got (for Stop)."""

    trajectory: StoredTrajectory | None = None
    progress: str | None = None
    files: tuple[str | None, str] | None = None  # the last delivered run's GIF (once asked for) and player JSON


def state_of(session: Session) -> ReverseState:
    return session.tab(TAB, ReverseState)


# ---------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class GenerateRequest:
    model: Any = field(repr=False)
    info: ModelInfo
    sampler: str
    num_steps: int
    eta: float
    seed: int
    num_samples: int
    label: int | str | None  # None (any), "each" or a class
    cfg: float | None  # classifier-free guidance weight (conditional runs only)

    @classmethod
    def parse(
        cls,
        ctx: AppContext,
        session: Session,
        preset,
        sampler,
        num_steps,
        eta,
        seed,
        num_samples,
        class_label,
        cfg_scale,
    ) -> GenerateRequest:
        model, info = ctx.model(preset, session)
        sampler = as_choice(sampler, "sampler", solvers_for(model.process))
        steps = as_int(num_steps, "num_steps", 1, model.max_sampling_steps)
        eta = as_float(eta, "eta", 0.0, 1.0) if "eta" in SOLVERS[sampler].option_names else 0.0
        n = as_int(num_samples, "num_samples", 1, LIMITS.points if info.kind == "points" else LIMITS.images)
        label = parse_label(class_label, info)
        cfg = None
        if info.conditional and label is not None:
            cfg = as_float(cfg_scale, "cfg_scale", 0.0, LIMITS.cfg_scale)
        return cls(model, info, sampler, steps, eta, as_int(seed, "seed", 0, LIMITS.seed), n, label, cfg)

    @property
    def nfe(self) -> int:
        return SOLVERS[self.sampler].nfe(self.num_steps)

    def cache_key(self) -> tuple | None:
        return preset_key(
            self.info.source,
            "generate",
            sampler=self.sampler,
            num_steps=self.num_steps,
            eta=self.eta,
            seed=self.seed,
            num_samples=self.num_samples,
            class_label=self.label,
            cfg_scale=self.cfg,
            device=str(self.model.device),
        )

    def summary(self) -> dict:
        return {
            "preset": self.info.source,
            "sampler": self.sampler,
            "num_steps": self.num_steps,
            "eta": self.eta,
            "seed": self.seed,
            "num_samples": self.num_samples,
            "class_label": self.label,
            "cfg_scale": self.cfg,
            "T": self.model.max_sampling_steps,
            "nfe": self.nfe,
            "process": self.model.process.name,
            "prediction_type": self.model.prediction_type,
        }


@dataclass(frozen=True)
class FrameRequest:
    stored: StoredTrajectory
    index: int

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, frame_index) -> FrameRequest:
        stored = state_of(session).trajectory
        if stored is None:
            raise field_error("frame_index", "no trajectory yet: press Generate first")
        return cls(stored, as_int(frame_index, "frame_index", 0, stored.num_frames - 1))
