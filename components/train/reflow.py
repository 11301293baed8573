"""Tab 9, train: straighten a flow in the app (reflow, Liu et al. 2022; issue 24, item 1).

``reflow`` couples ``pairs`` noises x₁ with where the source flow's ODE takes them (adiff.steering.reflow.couple,
DPM-Solver++ with ``ode_steps`` steps; progress after each tenth), then trains a copy of the source on the straight
lines between them (reflow_progressive: warm start, as Liu et al. do), streaming the loss.  The student is this
session's "my model" from the start (Stop keeps it as it is; the Train tab's run and a reflow stop each other), with
the source's data identity, so the Compare tab takes "source vs my model".  Before and after: the straightness of the
20-step Euler paths (from the same 500 noises) and the MMD² of one Euler step's samples to the data.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from adiff.steering.reflow import Coupling, couple, path_straightness_of, reflow_progressive

from ..context import MY_MODEL, AppContext, ModelInfo
from ..fields import as_choice, as_int, field_error
from ..limits import LIMITS
from ..state import Session
from ..streaming import Throttle
from .shared import TAB, adopt

__all__ = ["REFLOW_SOURCES", "REFLOW_DEFAULTS", "ReflowRequest", "ReflowProgress", "reflow"]

REFLOW_SOURCES = ["moons-flow", "checkerboard-flow", MY_MODEL]
# What the section opens with: about 5 s of one CPU core for moons-flow (the lesson measures what they do)
REFLOW_DEFAULTS = {"source": "moons-flow", "pairs": 1000, "ode_steps": 10, "steps": 120, "seed": 0}
SAMPLER = "dpmpp_2m"  # the coupling's ODE solver (DPM-Solver++(2M), Lu et al. 2022)
BATCH = 256
PARTS = 10  # the coupling reports its progress after each tenth of the pairs
PROBE = 500  # noises whose Euler paths measure the straightness (reflow_progressive's probe, seed + 1)
CURVE_POINTS = 100


@dataclass(frozen=True)
class ReflowRequest:
    source: str
    teacher: Any = field(repr=False)  # the source flow (a DiffusionModel)
    info: ModelInfo = field(repr=False)
    data: str | None  # the source's data identity ("my model" inherits it: compare checks it)
    pairs: int
    ode_steps: int
    num_steps: int
    seed: int

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, source, pairs, ode_steps, num_steps, seed) -> ReflowRequest:
        source = as_choice(source, "reflow_source", REFLOW_SOURCES)
        teacher, info = ctx.model(source, session, "reflow_source")
        if teacher.process.name != "flow":
            raise field_error(
                "reflow_source",
                f"{source!r} is a {teacher.process.name} model; reflow straightens a flow: train one with "
                "process = rectified flow, or pick moons-flow",
            )
        if info.kind != "points":
            raise field_error("reflow_source", f"{source!r} makes images; the in-app reflow is for 2-D data")
        data = session.trained_info.get("data", info.dataset) if source == MY_MODEL else info.dataset
        return cls(
            source,
            teacher,
            info,
            data,
            as_int(pairs, "reflow_pairs", 100, LIMITS.reflow_pairs),
            as_int(ode_steps, "reflow_ode_steps", 2, LIMITS.reflow_ode_steps),
            as_int(num_steps, "reflow_steps", 1, LIMITS.reflow_steps),
            as_int(seed, "seed", 0, LIMITS.seed),
        )


@dataclass(frozen=True)
class ReflowProgress:
    """One message: the status (coupling, training, done, stopped or replaced) and the loss curve (None: as it was)."""

    status: dict
    history: dict | None


def _one_step(ctx: AppContext, model, info: ModelInfo, seed: int) -> list[float] | None:
    """[MMD², SE] of one Euler step's samples (x₀ = x₁ − v̂(x₁, 1)) to the data; None without reference data."""
    n = LIMITS.reflow_eval_points
    with torch.no_grad():
        x, _ = model.generate(n, seed=seed, sampler="euler", num_steps=1, keep_every=10**9)
    est = ctx.mmd2_to_data(info, x, None, n, seed)
    return None if est is None else [est.value, est.se]


def _measure(ctx: AppContext, req: ReflowRequest, model) -> dict:
    probe = torch.randn((PROBE, 2), generator=torch.Generator().manual_seed(req.seed + 1))
    return {
        "straightness": round(path_straightness_of(model, probe), 4),
        "mmd2_1step": _one_step(ctx, model, req.info, req.seed),
    }


def _couple(req: ReflowRequest, current, status: dict):
    """The pairs, in PARTS parts (each its own seed); yields a ReflowProgress after each; returns the Coupling (None: the run
    stopped)."""
    step = max(2, math.ceil(req.pairs / PARTS))
    parts = []
    for i, lo in enumerate(range(0, req.pairs, step)):
        n = max(2, min(step, req.pairs - lo))
        if not current():
            return None
        parts.append(couple(req.teacher, n, SAMPLER, req.ode_steps, seed=req.seed * 1000 + i))
        yield ReflowProgress({**status, "status": "coupling", "pairs_done": lo + n}, None)
    first = parts[0]
    labels = None if first.labels is None else torch.cat([p.labels for p in parts])
    x_T, x0 = torch.cat([p.x_T for p in parts]), torch.cat([p.x0 for p in parts])
    return Coupling(x_T, x0, labels, SAMPLER, req.ode_steps, first.nfe, round(sum(p.seconds for p in parts), 2))


def reflow(ctx: AppContext, session: Session, req: ReflowRequest):
    """Reflow the source; the student becomes this session's 'my model'.  Yields ReflowProgress."""
    t0 = time.time()
    status = {"source": req.source, "pairs": req.pairs, "ode_steps": req.ode_steps, "of": req.num_steps}
    status["before"] = _measure(ctx, req, req.teacher)
    student = req.teacher.clone()
    info = {
        "dataset": req.info.dataset,
        "data": req.data,
        "description": f"reflow of {req.source} ({req.pairs} pairs, {req.num_steps} steps)",
        "sample_kwargs": dict(req.info.sample_kwargs),
        "steps": 0,
    }
    rid, minfo = adopt(ctx, session, student, info)

    def current() -> bool:
        return session.is_current(TAB, rid) and session.trained is student

    coupling = yield from _couple(req, current, status)
    if coupling is None:
        yield ReflowProgress(_ended(session, student, status, 0), None)
        return
    history = {"step": [], "loss": [], "ylabel": "velocity MSE", "title": "reflow: L = E |(x₁ − x̂₀) − v_θ(x_t, t)|²"}
    every, throttle = max(1, math.ceil(req.num_steps / CURVE_POINTS)), Throttle(req.num_steps)
    it = reflow_progressive(student, coupling, req.num_steps, batch_size=BATCH, seed=req.seed)
    while True:
        with session.lock:  # never held across a yield
            ev = next(it, None) if current() else False
        if ev is False:
            yield ReflowProgress(_ended(session, student, status, info["steps"]), _copy(history))
            return
        if ev is None:
            break
        info["steps"], last = ev.step, ev.step == req.num_steps
        if ev.step % every == 0 or last:
            history["step"].append(ev.step)
            history["loss"].append(ev.loss)
        if throttle.due(ev.step - 1, force=last):
            status.update(status="training", step=ev.step, loss=ev.loss, elapsed_s=round(time.time() - t0, 1))
            yield ReflowProgress(dict(status), _copy(history))
    with session.lock:
        status["after"] = _measure(ctx, req, student)
    status.update(status="done", step=req.num_steps, elapsed_s=round(time.time() - t0, 1), use_as=minfo.source)
    yield ReflowProgress(dict(status), _copy(history))


def _copy(history: dict) -> dict:
    return {k: list(v) if isinstance(v, list) else v for k, v in history.items()}


def _ended(session: Session, student, status: dict, step: int) -> dict:
    """A run that Stop ended ("stopped": the student so far stays "my model") or a newer run took over."""
    state = "stopped" if session.trained is student else "replaced"
    return {**status, "status": state, "step": step}
