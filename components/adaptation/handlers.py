"""Tab 8, adaptation: the handlers, plain functions of (ctx, session, request) that yield view data (no widgets).

* ``adapt``: fine-tune this session's own copy of a model towards p(x)·exp(λ r(x)) (adiff.steering.adaptation),
  yielding an ``Update`` per due step: the curves and status at most every ``LIMITS.stream_interval_s``, the buffer
  and before/after figures at most every ``LIMITS.figure_interval_s`` (components/streaming.py), and both at the
  last step.  Start again with the same settings continues the same run; other settings start a new one.
* ``stop`` / ``reset``: where the run got to; back to the base weights with an empty buffer.

Long-job rules (components/state.py): no lock is held across a yield; each step runs under ``session.lock`` and
first checks that its call is the session's current "adapt" run (``session.runs``) and its run the tab's current
one, so Start again, Reset, Stop, or a cancelled generator left suspended never have two loops step one model.
A call that another took over ends with a "stopped" update.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from adiff.data import PLOT_RANGE
from adiff.steering.adaptation import AdaptationConfig, Adapter

from ..arrays import reward_grid
from ..context import AppContext, ModelInfo
from ..fields import as_bool, as_float, as_int, field_error
from ..limits import LIMITS
from ..rewards import EXPRESSION, build_reward
from ..state import Session
from ..streaming import Throttle
from ..summaries import stopped_text
from . import view

__all__ = [
    "TabDefaults",
    "KIND_DEFAULTS",
    "DEFAULTS",
    "SAMPLE_STEPS",
    "AdaptationRun",
    "AdaptationState",
    "state_of",
    "AdaptRequest",
    "Update",
    "adapt",
    "stop",
    "reset",
]

TAB = "adaptation"
RUN_KIND = "adapt"  # the session's run registry (Session.new_run / is_current / stop_runs)
DEFAULTS = AdaptationConfig()  # the library's defaults (immutable)
SAMPLE_STEPS = 25  # DDIM steps of fresh and evaluation samples: live on a CPU (the library's default is 50)
CURVES = ("step", "reward_mean", "reward_max", "loss", "distance_to_data", "distance_to_target")


@dataclass(frozen=True)
class TabDefaults:
    """What the tab starts a model of one kind with; measured on the shipped presets (BENCHMARKS.md, Adaptation)."""

    guidance_scale: float  # lambda
    num_steps: int
    learning_rate: float
    batch_size: int
    buffer_capacity: int
    warmup_steps: int  # not a widget: Adam's first steps jolt a large model (see AdaptationConfig.warmup_steps)


KIND_DEFAULTS = {
    # moons, 8gaussians, swissroll, checkerboard with r = x: on the target within about 100 steps
    "points": TabDefaults(2.0, 100, DEFAULTS.learning_rate, DEFAULTS.batch_size, DEFAULTS.buffer_capacity, 0),
    # glyphs with r = brightness (std 0.10 over the data): lambda = 2 moves the target's mean by only 0.02
    "images": TabDefaults(10.0, 30, 2e-4, 64, 300, 10),
}


# ---------------------------------------------------------------------------------------------- state
@dataclass
class AdaptationRun:
    """A session's adaptation: its own model copy, the Adapter and the curves so far."""

    key: tuple  # what it was made for; a Start with other settings makes a new run
    adapter: Any  # adiff.steering.adaptation.Adapter
    model: Any  # this session's copy of the model (the preset stays shared and read-only)
    info: ModelInfo
    reward: Any
    reward_grid: dict | None  # the reward on a grid (2-D models), for the heatmaps
    base_mean_reward: float  # the reward's mean over the base model's samples ("before")
    history: dict = field(default_factory=lambda: {k: [] for k in CURVES})  # one entry per step, written under lock
    last_event: Any = None


@dataclass
class AdaptationState:
    """This tab's part of a session: the current run (None before a Start and after Reset) and how far it got."""

    run: AdaptationRun | None = None
    progress: str | None = None
    # The figures last sent (curves, buffer, gallery, before_after), sent again with every update instead of "stays
    # as it is" (gr.skip()): an update then a value leaves a copy of the component in the session (see wiring.py).
    shown: dict = field(default_factory=dict)


def _update(st: AdaptationState, text: str, status: dict, **parts) -> Update:
    """An Update with ``parts`` and, for the figures not in it, those last sent."""
    st.shown.update({k: v for k, v in parts.items() if v is not None})
    return Update(text, status, **st.shown)


def state_of(session: Session) -> AdaptationState:
    return session.tab(TAB, AdaptationState)


# ---------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class AdaptRequest:
    base: Any = field(repr=False)  # the chosen model (a shared preset or the session's own)
    info: ModelInfo
    reward: Any = field(repr=False)  # the Reward
    num_steps: int  # steps of this call
    config: AdaptationConfig
    key: tuple  # the run it continues when equal to the current run's

    @classmethod
    def parse(
        cls,
        ctx: AppContext,
        session: Session,
        preset,
        reward,
        expression,
        reward_params,
        num_steps,
        learning_rate,
        batch_size,
        buffer_capacity,
        replay_share,
        guided_sampling,
        guidance_scale,
        seed,
    ) -> AdaptRequest:
        base, info = ctx.model(preset, session)
        reward_fn = build_reward(reward, expression, reward_params, info.kind)
        steps = as_int(num_steps, "num_steps", 1, LIMITS.adapt_steps)
        lr = as_float(learning_rate, "learning_rate", 1e-6, 1e-2)
        bs = as_int(batch_size, "batch_size", 4, LIMITS.adapt_batch)
        cap = as_int(buffer_capacity, "buffer_capacity", 1, LIMITS.buffer_capacity)
        replay = as_float(replay_share, "replay_share", 0.0, 1.0)
        guided = as_bool(guided_sampling, "guided_sampling")
        if guided and replay == 0:
            raise field_error(
                "replay_share",
                "must be > 0 with guidance during adaptation (guided samples are shown, not trained on), got 0",
            )
        lam = as_float(guidance_scale, "guidance_scale", -LIMITS.guidance_scale, LIMITS.guidance_scale)
        settings = dict(
            learning_rate=lr,
            batch_size=bs,
            guidance_scale=lam,
            replay_share=replay,
            buffer_share=min(DEFAULTS.buffer_share, 1.0 - replay),
            buffer_capacity=cap,
            guided_sampling=guided,
            sample_steps=SAMPLE_STEPS,
            eval_samples=256 if info.kind != "images" else 36,
            seed=as_int(seed, "seed", 0, LIMITS.seed),
            warmup_steps=KIND_DEFAULTS[info.kind].warmup_steps,
        )
        config = AdaptationConfig(**settings)
        config.validate()
        exact = (expression if reward == EXPRESSION else None, reward_params or "")
        key = (preset, id(base), reward, *exact, tuple(sorted(settings.items())))
        return cls(base, info, reward_fn, steps, config, key)


# ---------------------------------------------------------------------------------------------- view data
@dataclass(frozen=True)
class Update:
    """What changes on the page; None: that output stays as it is."""

    text: str
    status: dict
    curves: Any = None
    buffer: Any = None
    gallery: list | None = None
    before_after: Any = None


# ---------------------------------------------------------------------------------------------- handlers
def _new_run(ctx: AppContext, session: Session, req: AdaptRequest, rid: int) -> AdaptationRun | None:
    """This session's own copy of the model, its Adapter and the 'before' samples (None: another call took over)."""
    info = req.info
    images = info.kind == "images"
    with session.lock:
        if not session.is_current(RUN_KIND, rid):
            return None
        model = req.base.clone()  # this session's own copy; the preset stays shared and read-only
        data = ctx.dataset(info.dataset, 2000 if images else 5000, 0) if info.dataset else None
        adapter = Adapter(model, req.reward, req.config, data=data, sample_kwargs=info.sample_kwargs)
        grid = reward_grid(req.reward, 70, PLOT_RANGE) if not images else None
        base_mean = view.mean_reward(req.reward, adapter.base_samples)
        run = state_of(session).run = AdaptationRun(req.key, adapter, model, info, req.reward, grid, base_mean)
        return run


def _step(session: Session, run: AdaptationRun, it, rid: int, due: Callable[[], bool]) -> tuple[Any, dict | None]:
    """One step under the session's lock, recorded in the run's history: (the event, a copy of the history when
    ``due()`` says an update is due after it), or (None, None) when another call took over."""
    with session.lock:
        if not session.is_current(RUN_KIND, rid) or state_of(session).run is not run:
            return None, None
        ev = run.last_event = next(it)
        for k in CURVES:
            run.history[k].append(getattr(ev, k))
        return ev, ({k: list(v) for k, v in run.history.items()} if due() else None)


def _status(req: AdaptRequest, run: AdaptationRun, ev, h: dict, done: int, t0: float) -> dict:
    return {
        "status": "running" if done < req.num_steps else "done",
        "step": ev.step,
        "steps_this_run": done,
        "of": req.num_steps,
        "reward_mean": ev.reward_mean,
        "reward_max": ev.reward_max,
        "loss": ev.loss,
        "distance_to_data": ev.distance_to_data,
        "distance_to_target": ev.distance_to_target,
        "distance_to_data_se": ev.distance_to_data_se,
        "distance_to_target_se": ev.distance_to_target_se,
        "reward_queries": ev.reward_queries,
        "buffer_size": len(ev.buffer.rewards),
        "base_mean_reward": run.base_mean_reward,
        "elapsed_s": round(time.time() - t0, 2),
        "distance_to_data_first": h["distance_to_data"][0],
        "distance_to_target_first": h["distance_to_target"][0],
    }


def _figures(req: AdaptRequest, run: AdaptationRun, ev) -> dict:
    """The heavy part of an update: the buffer (a figure, or the gallery for images) and before/after."""
    info = run.info
    data = view.buffer_view(ev.buffer, info.kind, run.reward_grid, req.config.buffer_capacity)
    shown = view.before_after(info.kind, run.reward, run.reward_grid, run.adapter.base_samples, ev.samples, ev.step)
    return {
        "buffer": view.make_buffer_figure(data) if data else view.message_figure("Image buffer: see the gallery."),
        "gallery": view.gallery_items(ev.buffer, info.num_classes) if info.kind == "images" else [],
        "before_after": view.make_before_after_figure(shown),
    }


def _taken_over(st: AdaptationState, run: AdaptationRun | None, done: int, steps: int) -> Update:
    """The last update of a call that a Stop, a Reset or a newer Start in the same session took over."""
    step = run.adapter.steps if run is not None else 0
    where = f"after step {step} ({done} of {steps} in this run)"
    text = stopped_text("adapt", where) + " (A Stop, a Reset or another Start in this session took over.)"
    return _update(st, text, {"status": "stopped", "step": step, "steps_this_run": done, "of": steps})


def adapt(ctx: AppContext, session: Session, req: AdaptRequest):
    """Run (or continue) this session's adaptation for ``req.num_steps`` steps, yielding an Update per due step."""
    st, t0, steps = state_of(session), time.time(), req.num_steps
    rid = session.new_run(RUN_KIND)
    with session.lock:
        run = st.run if st.run is not None and st.run.key == req.key else None
    if run is None:
        prep = {"status": "preparing", "preset": req.info.source}
        figure = view.message_figure("Preparing: copying the model, drawing the 'before' samples…")
        yield _update(st, view.adaptation_text(prep), prep, before_after=figure)
        run = _new_run(ctx, session, req, rid)
        if run is None:
            yield _taken_over(st, None, 0, steps)
            return
    it = run.adapter.run(steps)
    light = Throttle(steps, interval_s=LIMITS.stream_interval_s, messages=None)
    heavy = Throttle(steps, interval_s=LIMITS.figure_interval_s, messages=None)
    for done in range(1, steps + 1):
        last = done == steps
        ev, history = _step(session, run, it, rid, partial(light.due, done - 1, force=last))
        if ev is None:
            yield _taken_over(st, run, done - 1, steps)
            return
        st.progress = f"after step {ev.step} ({done} of {steps} in this run)"
        if history is not None:
            figures = _figures(req, run, ev) if heavy.due(done - 1, force=last) else {}
            status = _status(req, run, ev, history, done, t0)
            curves = view.make_adaptation_figure(history)
            yield _update(st, view.adaptation_text(status), status, curves=curves, **figures)


def stop(ctx: AppContext, session: Session, req: None):
    """Stop this session's adaptation: (words, status)."""
    session.stop_runs(RUN_KIND)
    st = state_of(session)
    run = st.run
    return stopped_text("adapt", st.progress), {"status": "stopped", "step": run.adapter.steps if run else 0}


def reset(ctx: AppContext, session: Session, req: None) -> Update:
    """Stop this session's adaptation and restore the base weights; the buffer is emptied."""
    session.stop_runs(RUN_KIND)
    st = state_of(session)
    with session.lock:
        run, st.run = st.run, None
        if run is not None:
            run.adapter.reset()
            for v in run.history.values():
                v.clear()
    return _update(
        st,
        "Reset: the model is back to the base weights and the buffer is empty.",
        {"status": "reset", "had_run": run is not None},
        curves=view.make_adaptation_figure({}),
        buffer=view.message_figure("The buffer is empty."),
        gallery=[],
        before_after=view.message_figure("Reset: the next Start begins from the base model."),
    )
