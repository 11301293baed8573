"""Tab 4, compare: the handlers, plain functions of (ctx, session, request) that yield view data (no widgets).

* ``compare``: both choices from the same x_T.  A model draws x_T first from its seeded generator, so the same seed
  and the same data shape give the same points (the summary checks it: ``same_x_T``).  The two runs advance in
  lockstep (``lockstep``: each step goes to the side that has done the smaller share of its run), a ``Live`` player
  message goes out when the throttle says so (components/streaming.py), and a ``Done`` ends the run: both
  trajectories as one JSON file the player fetches, per side NFE, MMD² to fresh data and path straightness
  (adiff.eval.metrics), and the quality-against-NFE figure (a preset's shipped curve, computed here for other models).
* ``stop``: where the cancelled run got to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import adiff.presets
from adiff.eval.quality import quality_against_nfe
from adiff.samplers import SOLVERS, solvers_for

from ..choices import condition_for, parse_label
from ..context import MY_MODEL, AppContext, ModelInfo
from ..fields import as_choice, as_int, field_error
from ..limits import LIMITS
from ..state import Session
from ..streaming import Throttle
from . import view
from .figures import make_quality_figure
from .runs import SideRun, lockstep

__all__ = [
    "CompareState",
    "SideChoice",
    "CompareRequest",
    "SideRun",
    "Live",
    "Done",
    "lockstep",
    "compare",
    "stop",
]

TAB = "compare"
CURVE_NFES = (5, 10, 20, 50)  # the on-demand curve of a model without a shipped one (CURVE_N points each)
CURVE_N = 1000
MMD_N = 1000  # samples (and fresh data points) per MMD^2


@dataclass
class CompareState:
    """This tab's part of a session: how far the current run got (for Stop) and the last delivered run's file."""

    progress: str | None = None
    data_path: str | None = None  # the player JSON of the last delivered run


def state_of(session: Session) -> CompareState:
    return session.tab(TAB, CompareState)


# ---------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class SideChoice:
    """One side's choice: the model, its solver and step count."""

    key: str  # "a" | "b"
    model: Any = field(repr=False)
    info: ModelInfo
    solver: str
    steps: int
    data: str | None = None  # what the model was trained on: a dataset's name, own data with its fingerprint, None

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, key: str, preset, solver, steps) -> SideChoice:
        with session.lock:  # "my model" and what it was trained on, read together
            model, info = ctx.model(preset, session, f"model_{key}")
            data = session.trained_info.get("data", info.dataset) if info.source == MY_MODEL else info.dataset
        solver = as_choice(solver, f"solver_{key}", solvers_for(model.process))
        steps = as_int(steps, f"steps_{key}", 1, model.max_sampling_steps)
        return cls(key, model, info, solver, steps, data)

    @property
    def source(self) -> str:
        return self.info.source

    @property
    def nfe(self) -> int:
        return SOLVERS[self.solver].nfe(self.steps)

    @property
    def name(self) -> str:
        return f"{self.key.upper()} · {self.source} · {self.solver} {self.steps} steps ({self.nfe} NFE)"

    def progressive(self, n: int, label, seed: int, network=None) -> Iterator:
        """This side's sampling run: one record per step (adiff's progressive loop), from x_T drawn with ``seed``; a
        conditional model samples with its preset's CFG scale.  ``network``: the run's engine session."""
        info = self.info
        cfg = info.sample_kwargs.get("cfg_scale", 1.0) if (info.conditional and label is not None) else None
        return self.model.generate_progressive(
            n,
            condition=condition_for(label, n, info.num_classes),
            seed=seed,
            sampler=self.solver,
            num_steps=self.steps,
            cfg_scale=cfg,
            clip_x0=info.sample_kwargs.get("clip_x0"),
            network=network,
        )


def _same_data(a: SideChoice, b: SideChoice) -> None:
    """Both sides must make the same data: the same shape and classes (the same x_T, one MMD² reference), and the
    same training data by name or fingerprint (a model of 'my images' with 10 classes is no model of glyphs)."""
    if tuple(a.model.data_shape) != tuple(b.model.data_shape):
        raise field_error(
            "model_b",
            f"{b.source!r} makes data of shape {list(b.model.data_shape)}, {a.source!r} of "
            f"{list(a.model.data_shape)}; compare two models of the same data",
        )
    if a.info.num_classes != b.info.num_classes:
        raise field_error(
            "model_b",
            f"{b.source!r} has {b.info.num_classes or 'no'} classes, {a.source!r} "
            f"{a.info.num_classes or 'none'}; compare two models of the same data",
        )
    if a.source == b.source:
        return
    for side in (a, b):
        if side.data is None:
            raise field_error(
                f"model_{side.key}",
                f"what {side.source!r} was trained on is not recorded (a checkpoint without its dataset), so it "
                "cannot be paired with another model; compare it with itself",
            )
    if a.data != b.data:
        raise field_error(
            "model_b",
            f"{b.source!r} was trained on {b.data}, {a.source!r} on {a.data}; compare two models of the same data",
        )


@dataclass(frozen=True)
class CompareRequest:
    a: SideChoice
    b: SideChoice
    seed: int
    num_samples: int
    label: int | str | None  # None (any), "each" or a class (the models' preset CFG scale applies)

    @classmethod
    def parse(
        cls,
        ctx: AppContext,
        session: Session,
        model_a,
        solver_a,
        steps_a,
        model_b,
        solver_b,
        steps_b,
        seed,
        num_samples,
        class_label,
    ) -> CompareRequest:
        a = SideChoice.parse(ctx, session, "a", model_a, solver_a, steps_a)
        b = SideChoice.parse(ctx, session, "b", model_b, solver_b, steps_b)
        _same_data(a, b)
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        n = as_int(num_samples, "num_samples", 1, LIMITS.points if a.info.kind == "points" else LIMITS.images)
        return cls(a, b, seed, n, parse_label(class_label, a.info))

    @property
    def sides(self) -> tuple[SideChoice, SideChoice]:
        return self.a, self.b

    @property
    def kind(self) -> str:
        return self.a.info.kind


# ---------------------------------------------------------------------------------------------- view data
@dataclass(frozen=True)
class Live:
    """Both rows' latest states while sampling; ``first`` for the run's first message (the status is written once)."""

    message: dict
    first: bool


@dataclass(frozen=True)
class Done:
    message: dict  # the pointer to the whole pair's file
    text: str
    summary: dict
    data_path: str
    figure: Any  # the quality-against-NFE plotly figure


# ---------------------------------------------------------------------------------------------- handlers
def compare(ctx: AppContext, session: Session, req: CompareRequest):
    """Run both choices from the same x_T, yielding a Live message per due step and a Done at the end.  Each side's
    network calls go through the app's sampling engine (batched with every other run in progress)."""
    st = state_of(session)
    folder = session.run_folder(TAB)
    n, kind = req.num_samples, req.kind
    static = view.pair_static(req.sides, kind, n)
    with (
        session.sampling(TAB, ctx.engine, req.a.model) as net_a,
        session.sampling(TAB, ctx.engine, req.b.model) as net_b,
    ):
        runs = [SideRun(s, s.progressive(n, req.label, req.seed, net)) for s, net in zip(req.sides, (net_a, net_b))]
        a, b = runs
        throttle = Throttle(req.a.steps + req.b.steps, sharing=ctx.engine.open_runs)
        st.progress = "before the first step"
        for _ in lockstep(runs):
            st.progress = f"A at step {a.done} of {a.choice.steps}, B at step {b.done} of {b.choice.steps}"
            if a.last is None or b.last is None or not throttle.due(a.done + b.done - 1):
                continue
            yield Live(view.live(folder.name, kind, static, runs, throttle.sent - 1), throttle.sent == 1)
    done = _finish(ctx, req, runs, static, folder)
    st.progress = "after the last step"
    yield done
    st.data_path = done.data_path
    session.delivered(TAB, folder)  # the browser has this run's file: older runs' may go


def _side_stats(ctx: AppContext, run: SideRun, traj, label) -> dict:
    s, final = run.choice, traj.final
    d = ctx.mmd2_to_data(s.info, final, label, MMD_N, 321)
    return {
        "model": s.source,
        "process": s.model.process.name,
        "prediction_type": s.model.prediction_type,
        "solver": s.solver,
        "steps": s.steps,
        "nfe": traj.nfe or s.nfe,
        "seconds": round(run.seconds, 2),
        "straightness": run.meter.value,
        "mmd2_to_data": None if d is None else d.value,
        "mmd2_se": None if d is None else d.se,
        "sample_std": float(final.std()),
        "finite": bool(torch.isfinite(final).all()),
    }


def _finish(ctx: AppContext, req: CompareRequest, runs: list[SideRun], static: dict, folder: Path) -> Done:
    """Both trajectories in one player file, the statistics per side and the quality-against-NFE figure."""
    trajs = [r.rec.finish() for r in runs]
    same = bool(torch.equal(trajs[0].x[0], trajs[1].x[0]))
    payload = view.final_payload(folder.name, req.kind, static, req.sides, trajs)
    data_path = folder / "compare.json"
    data_path.write_text(json.dumps(payload, separators=(",", ":")))
    stats = [_side_stats(ctx, r, tr, req.label) for r, tr in zip(runs, trajs)]
    curves = quality_curves(ctx, req.sides, req.label)
    summary = {
        "status": "done",
        "seed": req.seed,
        "num_samples": req.num_samples,
        "class_label": req.label,
        "same_x_T": same,
        "num_frames": payload["frames"]["count"],
        "a": stats[0],
        "b": stats[1],
        "curves": [{"model": c["source"], "points": len(c["rows"])} for c in curves],
    }
    figure = make_quality_figure(curves, view.marks(req.sides, stats))
    pointer = view.pointer(folder.name, summary["num_frames"])
    return Done(pointer, view.done_text(same, req.sides, stats), summary, str(data_path), figure)


def quality_curves(ctx: AppContext, sides: Sequence[SideChoice], label) -> list[dict]:
    """The quality-against-NFE curve of each distinct model: a preset's shipped one (adiff.presets.preset_curve),
    else computed here for the chosen solvers (CURVE_N points, CURVE_NFES) when the model's data are known 2-D
    points."""
    out, seen = [], set()
    for s in sides:
        if s.source in seen or s.info.kind != "points" or s.info.dataset is None:
            continue
        seen.add(s.source)
        curve = adiff.presets.preset_curve(s.source)
        if curve is None:
            seeds = iter(range(7000, 8000))
            ref = lambda m, d=s.info.dataset: ctx.dataset(d, m, next(seeds))[0]  # noqa: E731  (fresh data per call)
            names = sorted({x.solver for x in sides if x.source == s.source})
            curve = quality_against_nfe(
                s.model,
                ref,
                names,
                CURVE_NFES,
                CURVE_N,
                seed=0,
                condition=condition_for(label, CURVE_N, s.info.num_classes),
                clip_x0=s.info.sample_kwargs.get("clip_x0"),
            )
        out.append({"source": s.source, **curve})
    return out


def stop(ctx: AppContext, session: Session, req: None):
    """Where the cancelled run got to: (where, summary).  Every run of this tab in progress ends at its next network
    call."""
    session.stop_sampling(TAB)
    where = state_of(session).progress
    return where, {"status": "stopped", "at": where}
