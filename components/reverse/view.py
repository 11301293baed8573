"""The reverse tab's views: tensors of a run in, the player's messages, plotly figures and words out (pure; no
widgets, no sessions).

* ``live`` / ``final_payload`` / ``pointer``: the player's messages (components/player.py's format): one light
  frame while sampling, the whole trajectory once at the end, and the pointer that tells the page to fetch it.
* ``frame_data`` / ``frame_figure`` / ``curve_figure``: any stored frame as a plotly figure (for /frame).
* ``done_text``: the finished run in words.
"""

from __future__ import annotations

import math

import torch

from adiff.data import PLOT_RANGE
from adiff.diffusion import Predictor

from ..arrays import count_nonfinite, points, score_field, tile_images
from ..figures import make_frame_figure, make_schedule_marker_figure
from ..player import live_message, time_value
from ..score_fields import FIELD_GRID, Fields
from ..summaries import describe_mmd2
from ..trajectory_view import (
    fmt_t,
    frame_labels,
    image_specs,
    player_schedule,
    solid_at,
    trajectory_arrays,
    trajectory_payload,
)

__all__ = ["frame_data", "frame_figure", "curve_figure", "live", "final_payload", "pointer", "done_text", "paths_from"]


# ---------------------------------------------------------------------------------------------- the player
def live(model, kind: str, static: dict, step, run_id: str, seq: int, ideal, fields) -> dict:
    """One step of a run as a light player message (the static parts only in the first, ``seq`` 0)."""
    arrays = trajectory_arrays(
        model, kind, [step.t], step.x_t[None], step.x0_pred[None], step.eps_pred[None], ideal=ideal, fields=fields
    )
    if kind == "images" and seq == 0:
        image_specs(static, arrays)
    text = frame_labels([step.t], [step.noise_level], arrays, f"sampling: step {step.index + 1} of {step.num_steps} · ")
    frame = {k: v[0] for k, v in arrays.items()}
    alpha = solid_at(model.process, step.t)
    return live_message(run_id, kind, static, frame, step.t, step.noise_level, text[0], seq, alpha=alpha)


def final_payload(model, kind: str, static: dict, traj, run_id: str, ideal, fields, nonfinite: int) -> dict:
    """The whole trajectory as the player's payload; samples that ended NaN or infinite are named in the notes."""
    arrays = trajectory_arrays(
        model, kind, traj.timesteps, traj.x, traj.x0_pred, traj.eps_pred, ideal=ideal, fields=fields
    )
    if kind == "images":
        image_specs(static, arrays)
    if nonfinite:
        n = traj.x.shape[1]
        static["title"] += f" · ⚠ {nonfinite} of {n} samples are NaN or infinite (not drawn)"
        static["notes"] = [
            *static["notes"],
            f"⚠ {nonfinite} of {n} samples ended NaN or infinite: the model's output overflowed. They are not drawn "
            "and not in the statistics.",
        ]
    return trajectory_payload(model, kind, static, arrays, traj, run_id)


def pointer(run_id: str, count: int) -> dict:
    """The last message of a run: the player keeps the last live frame on screen until it has fetched the file."""
    return {"v": 1, "id": run_id, "live": False, "file": "trajectory", "count": count}


# ---------------------------------------------------------------------------------------------- /frame
def paths_from(history, upto: int | None = None) -> list[dict]:
    """history [S, P, 2] (or a list of [P, 2]) -> P paths up to step ``upto``, each subsampled to <= 60 points."""
    if history is None or len(history) == 0:
        return []
    h = torch.stack(list(history[: upto + 1] if upto is not None else history))  # [S, P, 2]
    stride = max(1, math.ceil(h.shape[0] / 60))
    idx = list(range(0, h.shape[0], stride))
    if idx[-1] != h.shape[0] - 1:
        idx.append(h.shape[0] - 1)
    h = h[idx]
    return [points(h[:, p]) for p in range(h.shape[1])]


def _ideal_frame(ideal, proc, t, x_t) -> dict:
    """The exact denoiser's x̂₀, ε̂ and score at the frame's x_t (clean data at t = 0)."""
    ptype = "epsilon" if proc.name == "vp" else "velocity"
    star = Predictor(ideal.model_fn(proc, ptype), proc, ptype)
    if t <= 0:
        return {"x0_pred": points(x_t), "eps": points(torch.zeros_like(x_t))}
    with torch.no_grad():
        p = star(x_t.detach().to(torch.float64).cpu(), t)
    score = score_field(lambda x, tt: star(x.double(), tt).eps, proc, t, FIELD_GRID, PLOT_RANGE, "cpu")
    return {"x0_pred": points(p.x0), "eps": points(p.eps), "score": score}


def frame_data(
    model,
    kind: str,
    t,
    x_t,
    x0_pred,
    eps,
    *,
    label=None,
    cfg_scale=None,
    ideal=None,
    paths=None,
    index=0,
    num_frames=None,
) -> dict:
    """Tensors of one frame -> the data ``make_frame_figure`` takes (score fields computed here; "nonfinite" counts
    the samples of x_t that are NaN or infinite, which the figure leaves out and names)."""
    head = {"t": time_value(t), "index": index, "num_frames": num_frames, "nonfinite": count_nonfinite(x_t)}
    if kind == "images":
        return {
            "kind": "images",
            **head,
            "x_t": tile_images(x_t),
            "x0_pred": tile_images(x0_pred),
            "eps": tile_images(eps),
        }
    frame = {
        "kind": "points",
        **head,
        "range": PLOT_RANGE,
        "x_t": points(x_t),
        "x0_pred": points(x0_pred),
        "eps": points(eps),
        "paths": paths or [],
    }
    proc = model.process
    if t > 0:
        predict = Fields(model, label, cfg_scale).predictor()
        frame["score"] = score_field(lambda x, tt: predict(x, tt).eps, proc, t, FIELD_GRID, PLOT_RANGE, model.device)
    if ideal is not None:
        frame["ideal"] = _ideal_frame(ideal, proc, t, x_t)
    return frame


def frame_figure(stored, k: int):
    """Frame ``k`` of a stored run as a plotly figure."""
    tr = stored.trajectory
    data = frame_data(
        stored.model,
        stored.kind,
        tr.timesteps[k],
        tr.x[k],
        tr.x0_pred[k],
        tr.eps_pred[k],
        label=stored.condition,
        cfg_scale=stored.cfg_scale,
        ideal=stored.ideal,
        paths=paths_from(stored.paths, k) if stored.paths is not None else None,
        index=k,
        num_frames=len(tr),
    )
    return make_frame_figure(data)


def curve_figure(model, t):
    """The schedule strip (any process) with t marked, as a plotly figure."""
    c = player_schedule(model.process, model.cfg.diffusion.noise_schedule)
    key = "flow" if model.process.name == "flow" else model.cfg.diffusion.noise_schedule  # its colour
    curve = {
        "name": key,
        "t": c["t"],
        "abar": c["abar"],
        "noise": c["sigma"],
        "abar_at": solid_at(model.process, t),
        "noise_at": float(model.process.coefficients(t)[1]),
    }
    title = f"{c['name']} · t = {fmt_t(t)} of {c['T']}"
    return make_schedule_marker_figure(curve, time_value(t), title=title, solid=c["solid"])


# ---------------------------------------------------------------------------------------------- words
def done_text(s: dict) -> str:
    """A finished (or reused) run in words, with its distance to the data when there is one."""
    nfe = f", {s['nfe']} NFE" if s.get("nfe") not in (None, s["num_steps"]) else ""
    lines = [
        f"✓ **done**: {s['num_samples']} samples of **{s['preset']}** in {s['elapsed_s']:.1f} s "
        f"({s['sampler']}, {s['num_steps']} steps{nfe}, seed {s['seed']}). Drag the frame slider or press "
        f"▶ Play: the {s['num_frames']} frames play in your browser."
    ]
    if s.get("nonfinite_samples"):
        lines.append(
            f"⚠ **{s['nonfinite_samples']} of {s['num_samples']} samples are NaN or infinite** (the model's "
            "output overflowed): they are not drawn and not in the statistics."
        )
    if s.get("mmd2_to_data") is not None:
        d = describe_mmd2(s["mmd2_to_data"], s.get("mmd2_se"))
        lines.append(d[:1].upper() + d[1:])
    return "\n\n".join(lines)


MEASURING_TEXT = "… measuring the distance to the data"
SAMPLING_TEXT = (
    "… **sampling** ({sampler}, {steps} steps): the frames stream into the player below, its label says which step"
)


def sampling_text(sampler: str, steps: int, others: int, remaining: float | None) -> str:
    """The status line of a run's first frame: with how many other runs it shares the network calls, and about how
    long it has left (the engine's estimate: every open run's next call, at the measured cost per row)."""
    text = SAMPLING_TEXT.format(sampler=sampler, steps=steps)
    if others:
        text += f"; sharing each network call with {others} other run{'s' if others > 1 else ''}"
    if remaining is not None and remaining >= 1.0:
        text += f", about {remaining:.0f} s to go"
    return text
