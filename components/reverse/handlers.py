"""The reverse tab's handlers: plain functions of (ctx, session, request) that yield view data (no widgets).

* ``generate``: sample a model with a solver, yield a ``Live`` player message per due step (components/streaming.py)
  and a ``Done`` at the end (the whole trajectory as a JSON file the player fetches, the GIF, the summary).  An
  identical request on a shipped preset is answered from the result cache (components/result_cache.py).
* ``show_frame``: any stored frame of the session's last run as a plotly figure (for API users).
* ``stop``: where the cancelled run got to.
* ``model_changed`` / ``solver_changed``: what the controls become for a model or a solver.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adiff.data import PLOT_RANGE
from adiff.samplers import SOLVERS, TrajectoryRecorder, solvers_for

from ..arrays import finite_rows
from ..choices import condition_for, parse_label
from ..context import AppContext, ModelInfo
from ..fields import as_choice, as_float, as_int, field_error
from ..gif import trajectory_gif
from ..limits import LIMITS
from ..player import time_value
from ..result_cache import REUSED_TEXT, FinishedRun, preset_key
from ..state import Session
from ..streaming import Throttle
from ..trajectory_view import NUM_PATHS, fmt_t, ideal_mixture, player_static
from . import view

__all__ = [
    "ReverseState",
    "StoredTrajectory",
    "GenerateRequest",
    "FrameRequest",
    "Live",
    "Done",
    "generate",
    "show_frame",
    "stop",
    "parse_model",
    "parse_solver",
]

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
    files: tuple[str, str] | None = None  # the last delivered run's GIF and player JSON


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
        eta = as_float(eta, "eta", 0.0, 1.0) if "eta" in SOLVERS[sampler].options else 0.0
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


def parse_model(ctx: AppContext, session: Session, preset):
    """The chosen model and its ModelInfo (for the controls that follow it)."""
    return ctx.model(preset, session)


def parse_solver(ctx: AppContext, session: Session, preset, sampler):
    model, _ = ctx.model(preset, session)
    return model, as_choice(sampler, "sampler", solvers_for(model.process))


# ---------------------------------------------------------------------------------------------- view data
@dataclass(frozen=True)
class Live:
    """A frame while sampling; ``first`` for the run's first message (the status line is written once)."""

    message: dict
    first: bool
    text: str = ""


@dataclass(frozen=True)
class Done:
    message: dict  # the pointer to the whole trajectory's file
    text: str
    summary: dict
    gif_path: str
    data_path: str


# ---------------------------------------------------------------------------------------------- handlers
def _reuse(session: Session, req: GenerateRequest, hit: FinishedRun, folder: Path, t0: float) -> Done:
    """An identical earlier request's result, in this run's own files."""
    run_id = folder.name
    gif_path, data_path = hit.write_files(folder, run_id, "trajectory.gif")
    ideal = ideal_mixture(req.info, req.label)
    stored = StoredTrajectory(
        hit.trajectory, req.model, req.info.source, req.info.kind, req.label, req.cfg, hit.paths, ideal
    )
    state_of(session).trajectory = stored
    summary = {**hit.summary, "elapsed_s": round(time.time() - t0, 2), "reused": True}
    text = view.done_text(summary) + "\n\n" + REUSED_TEXT
    return Done(view.pointer(run_id, stored.num_frames), text, summary, gif_path, data_path)


def _summary(req: GenerateRequest, traj, final, t0: float) -> dict:
    n = req.num_samples
    return {
        **req.summary(),
        "status": "done",
        "step": req.num_steps,
        "t": 0,
        "num_frames": len(traj),
        "frame": len(traj) - 1,
        "elapsed_s": round(time.time() - t0, 2),
        "nonfinite_samples": n - len(final),
        "sample_mean": final.mean(0).flatten()[:4].tolist() if len(final) else None,
        "sample_std": float(final.std()) if len(final) >= 2 else None,
        "reused": False,
    }


def _deliver(session: Session, folder: Path, done: Done) -> Done:
    state_of(session).files = (done.gif_path, done.data_path)
    return done


def generate(ctx: AppContext, session: Session, req: GenerateRequest):
    """Sample; yield a Live message per due step and a Done at the end."""
    t0 = time.time()
    folder = session.run_folder(TAB)
    hit = ctx.results.get(req.cache_key())
    if hit is not None:
        yield _deliver(session, folder, _reuse(session, req, hit, folder, t0))
        session.delivered(TAB, folder)
        return
    st = state_of(session)
    model, info, n = req.model, req.info, req.num_samples
    run_id = folder.name
    title = f"{info.source} · {req.sampler}, {req.num_steps} steps ({req.nfe} NFE) · seed {req.seed} · {n} samples"
    ideal = ideal_mixture(info, req.label)
    static = player_static(model, info, title, ideal is not None, n)
    rec = TrajectoryRecorder(max(1, math.ceil(req.num_steps / LIMITS.frames)))
    throttle = Throttle(req.num_steps)
    st.progress = "before the first step"
    steps = model.generate_progressive(
        n,
        condition=condition_for(req.label, n, info.num_classes),
        seed=req.seed,
        sampler=req.sampler,
        num_steps=req.num_steps,
        eta=req.eta,
        cfg_scale=req.cfg,
        clip_x0=info.sample_kwargs.get("clip_x0"),
    )
    for step in steps:
        rec.add(step)
        st.progress = f"at step {step.index + 1} of {req.num_steps} (t = {fmt_t(step.t)})"
        if throttle.due(step.index):
            message = view.live(model, info.kind, static, step, run_id, throttle.sent - 1, req.label, req.cfg, ideal)
            text = view.SAMPLING_TEXT.format(sampler=req.sampler, steps=req.num_steps)
            yield Live(message, throttle.sent == 1, text)
    yield _deliver(session, folder, _finish(ctx, session, req, rec.finish(), static, folder, ideal, t0))
    session.delivered(TAB, folder)  # the browser has this run's files: older runs' may go


def _finish(ctx, session, req: GenerateRequest, traj, static, folder: Path, ideal, t0: float) -> Done:
    """The whole trajectory: the player's JSON file, the GIF, the summary (with the distance to the data), and the
    result cache entry for an identical request later."""
    info, n, run_id = req.info, req.num_samples, folder.name
    paths = traj.x[:, : min(NUM_PATHS, n)].clone() if info.kind == "points" else None  # [K, P, 2]
    final = finite_rows(traj.final)  # NaN or infinite samples are counted, not averaged, and the player says so
    payload = view.final_payload(req.model, info.kind, static, traj, run_id, req.label, req.cfg, ideal, n - len(final))
    payload_text = json.dumps(payload, separators=(",", ":"))
    data_path = folder / "trajectory.json"
    data_path.write_text(payload_text)
    gif_path = trajectory_gif(traj, info.kind, folder / "trajectory.gif", PLOT_RANGE)
    gif_bytes = gif_path.read_bytes()
    state_of(session).trajectory = StoredTrajectory(
        traj, req.model, info.source, info.kind, req.label, req.cfg, paths, ideal
    )
    summary = _summary(req, traj, final, t0)
    d = ctx.mmd2_to_data(info, final, req.label, 500, 123)
    if d is not None:
        summary.update(mmd2_to_data=d.value, mmd2_se=d.se)
    state_of(session).progress = "after the last step"
    key = req.cache_key()
    if key is not None:
        run = FinishedRun(traj, paths, payload, len(payload_text), gif_bytes, summary)
        ctx.results.put(key, run, run.nbytes())
    return Done(view.pointer(run_id, len(traj)), view.done_text(summary), summary, str(gif_path), str(data_path))


def show_frame(ctx: AppContext, session: Session, req: FrameRequest):
    """Frame ``req.index`` of this session's last trajectory: (figure, schedule figure, summary)."""
    st, k = req.stored, req.index
    t = st.trajectory.timesteps[k]
    summary = {
        "preset": st.source,
        "frame": k,
        "num_frames": st.num_frames,
        "t": time_value(t),
        "sigma_t": float(st.trajectory.noise_levels[k]),
    }
    return view.frame_figure(st, k), view.curve_figure(st.model, t), summary


def stop(ctx: AppContext, session: Session, req: None):
    """Where the cancelled run got to: (words, summary)."""
    where = state_of(session).progress
    return where, {"status": "stopped", "at": where}
