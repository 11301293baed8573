"""The reverse tab's handlers: plain functions of (ctx, session, request) that yield view data (no widgets).

* ``generate``: sample a model with a solver through the app's sampling engine, yield a ``Live`` player message per
  due step (components/streaming.py), a ``Done`` as soon as the whole trajectory is on file (a JSON file the player
  fetches), and the ``Done`` again with the distance to the data.
* ``trajectory_gif_file``: the last trajectory as an animated GIF, made when asked for.  An
  identical request on a shipped preset is answered from the result cache (components/result_cache.py).
* ``show_frame``: any stored frame of the session's last run as a plotly figure (for API users).
* ``stop``: where the cancelled run got to.

The requests they take (and the tab's part of a session) are in requests.py.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adiff.data import PLOT_RANGE
from adiff.samplers import TrajectoryRecorder

from ..arrays import finite_rows
from ..choices import condition_for
from ..context import AppContext
from ..fields import field_error
from ..gif import trajectory_gif
from ..limits import LIMITS
from ..player import time_value
from ..result_cache import REUSED_TEXT, FinishedRun
from ..state import Session
from ..streaming import Throttle
from ..trajectory_view import NUM_PATHS, fmt_t, ideal_mixture, player_static
from . import view
from .requests import TAB, FrameRequest, GenerateRequest, StoredTrajectory, state_of

__all__ = [
    "Live",
    "Done",
    "generate",
    "show_frame",
    "stop",
]


# ---------------------------------------------------------------------------------------------- view data
@dataclass(frozen=True)
class Live:
    """A frame while sampling; ``first`` for the run's first message; ``text``, the status line, in every message."""

    message: dict
    first: bool
    text: str = ""


@dataclass(frozen=True)
class Done:
    message: dict  # the pointer to the whole trajectory's file
    text: str
    summary: dict
    data_path: str
    gif_path: str | None = None  # the GIF is made when asked for (/trajectory_gif), not on every run


# ---------------------------------------------------------------------------------------------- handlers
def _store(session: Session, req: GenerateRequest, traj, paths, folder: Path, data_path: str) -> None:
    st = state_of(session)
    st.trajectory = StoredTrajectory(
        traj, req.model, req.info.source, req.info.kind, req.label, req.cfg, paths, ideal_mixture(req.info, req.label)
    )
    st.files = (None, data_path)


def _reuse(session: Session, req: GenerateRequest, hit: FinishedRun, folder: Path, t0: float) -> Done:
    """An identical earlier request's result, in this run's own file."""
    data_path = hit.write_file(folder, folder.name)
    _store(session, req, hit.trajectory, hit.paths, folder, data_path)
    summary = {**hit.summary, "elapsed_s": round(time.time() - t0, 2), "reused": True}
    text = view.done_text(summary) + "\n\n" + REUSED_TEXT
    return Done(view.pointer(folder.name, len(hit.trajectory)), text, summary, data_path)


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


def generate(ctx: AppContext, session: Session, req: GenerateRequest):
    """Sample; yield a Live message per due step, a Done as soon as the trajectory is on file, and the Done again
    with the distance to the data once it is measured.  The network calls go through the app's sampling engine
    (adiff.serving: one batched call per round for every run in progress), so a run's samples do not depend on
    who else is sampling."""
    t0 = time.time()
    folder = session.run_folder(TAB)
    with ctx.results.single_flight(req.cache_key()) as hit:  # the same request in flight: wait for it, then reuse
        if hit is not None:
            yield _reuse(session, req, hit, folder, t0)
            session.delivered(TAB, folder)
            return
        st = state_of(session)
        with session.sampling(TAB, ctx.engine, req.model) as net:
            run = _Run(ctx, req, folder, net)
            st.progress = "before the first step"
            for step in run.steps():
                st.progress = f"at step {step.index + 1} of {req.num_steps} (t = {fmt_t(step.t)})"
                live = run.live(step)
                if live is not None:
                    yield live
            done, payload_chars, final = run.finish(session, t0)
        st.progress = "after the last step"
        yield done  # the player has its file: the distance to the data follows
        measured = _measured(ctx, req, run, done, payload_chars, final)  # and the result cache has it
    yield measured
    session.delivered(TAB, folder)  # the browser has this run's files: older runs' may go


def _measured(ctx: AppContext, req: GenerateRequest, run, done: Done, payload_chars: int, final) -> Done:
    """The finished run with its distance to the data (2-D models), cached for an identical request later."""
    summary = dict(done.summary)
    d = ctx.mmd2_to_data(req.info, final, req.label, 500, 123)
    if d is not None:
        summary.update(mmd2_to_data=d.value, mmd2_se=d.se)
    key = req.cache_key()
    if key is not None:
        cached = FinishedRun(run.traj, run.paths, run.payload, payload_chars, summary)
        ctx.results.put(key, cached, cached.nbytes())
    return Done(done.message, view.done_text(summary), summary, done.data_path)


class _Run:
    """One run's sampling loop and what it shows: the static player parts, the recorder, the throttle, the learned
    fields (through the run's engine session, shared across sessions for a preset)."""

    def __init__(self, ctx: AppContext, req: GenerateRequest, folder: Path, net):
        self.req, self.folder, self.net, self.id = req, folder, net, folder.name
        self.engine = ctx.engine
        info, n = req.info, req.num_samples
        title = f"{info.source} · {req.sampler}, {req.num_steps} steps ({req.nfe} NFE) · seed {req.seed} · {n} samples"
        self.ideal = ideal_mixture(info, req.label)
        self.static = player_static(req.model, info, title, self.ideal is not None, n)
        self.fields = ctx.fields_for(req.model, info, req.label, req.cfg, net)
        self.rec = TrajectoryRecorder(max(1, math.ceil(req.num_steps / LIMITS.frames)))
        self.throttle = Throttle(req.num_steps, sharing=ctx.engine.open_runs)
        self.text = ""  # the status line while sampling (see live)
        self.traj = self.paths = self.payload = None

    def steps(self):
        req, info = self.req, self.req.info
        n = req.num_samples
        for step in req.model.generate_progressive(
            n,
            condition=condition_for(req.label, n, info.num_classes),
            seed=req.seed,
            sampler=req.sampler,
            num_steps=req.num_steps,
            eta=req.eta,
            cfg_scale=req.cfg,
            clip_x0=info.sample_kwargs.get("clip_x0"),
            network=self.net,
        ):
            self.rec.add(step)
            yield step

    def live(self, step) -> Live | None:
        if not self.throttle.due(step.index):
            return None
        req = self.req
        seq = self.throttle.sent - 1
        message = view.live(req.model, req.info.kind, self.static, step, self.id, seq, self.ideal, self.fields)
        if seq == 0:  # written once: with whom it shares the calls, and about how long it has left
            others = self.engine.stats().open_runs - 1
            rest = self.engine.estimate_wait(req.num_samples, req.model, calls=max(1, req.nfe - step.nfe))
            self.text = view.sampling_text(req.sampler, req.num_steps, others, rest)
        return Live(message, seq == 0, self.text)

    def finish(self, session: Session, t0: float) -> tuple[Done, int, Any]:
        """The whole trajectory: the player's JSON file and the summary -> (Done, the file's length, the finite
        samples)."""
        req, info = self.req, self.req.info
        traj = self.traj = self.rec.finish()
        self.paths = traj.x[:, : min(NUM_PATHS, req.num_samples)].clone() if info.kind == "points" else None
        final = finite_rows(traj.final)  # NaN or infinite samples are counted, not averaged, and the player says so
        nonfinite = req.num_samples - len(final)
        self.payload = view.final_payload(
            req.model, info.kind, self.static, traj, self.id, self.ideal, self.fields, nonfinite
        )
        text = json.dumps(self.payload, separators=(",", ":"))
        data_path = self.folder / "trajectory.json"
        data_path.write_text(text)
        _store(session, req, traj, self.paths, self.folder, str(data_path))
        summary = _summary(req, traj, final, t0)
        words = (
            view.done_text(summary) + "\n\n" + view.MEASURING_TEXT if info.kind == "points" else view.done_text(summary)
        )
        return Done(view.pointer(self.id, len(traj)), words, summary, str(data_path)), len(text), final


def trajectory_gif_file(ctx: AppContext, session: Session, req: None) -> str:
    """The session's last trajectory as an animated GIF (made now, in its own folder)."""
    stored = state_of(session).trajectory
    if stored is None:
        raise field_error("gif", "no trajectory yet: press Generate first")
    folder = session.run_folder("gif")
    path = trajectory_gif(
        stored.trajectory, stored.kind, folder / f"trajectory-{stored.source.replace(' ', '_')}.gif", PLOT_RANGE
    )
    return str(path)


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
    """Where the cancelled run got to: (words, summary).  Every run of this tab in progress ends at its next network
    call."""
    session.stop_sampling(TAB)
    where = state_of(session).progress
    return where, {"status": "stopped", "at": where}
