"""What the trajectory player shows of a reverse-diffusion run: the panels and layer styles (``player_static``) and
the per-frame arrays (``trajectory_arrays``: x_t, the predicted x0 and noise, the learned score field and, for a known
Gaussian mixture, the exact denoiser's), with the frame labels.  Tensors in, plain data out (components/player.py
encodes it); the reverse tab uses it for its live frames and for the whole trajectory, and a second panel (another
solver side by side) can use it the same way."""

from __future__ import annotations

import numpy as np
import torch

from adiff.data import PLOT_RANGE, gaussian_mixture_for
from adiff.data.gmm import GaussianMixture
from adiff.diffusion import Predictor

from .arrays import score_grid, tile_array
from .context import ModelInfo
from .curves import process_curve
from .figures import COLORS, LABELS, SCHEDULE_COLORS
from .player import player_payload
from .score_fields import FIELD_GRID, Fields

__all__ = [
    "NUM_PATHS",
    "FIELD_GRID",
    "FIELD_NOTE",
    "VELOCITY_NOTE",
    "ideal_mixture",
    "player_static",
    "trajectory_arrays",
    "frame_labels",
    "trajectory_payload",
    "image_specs",
    "player_schedule",
    "solid_at",
    "process_text",
    "shows_velocity",
    "fmt_t",
]

NUM_PATHS = 6  # highlighted particles
FIELD_NOTE = (
    "Arrows: the score s = −ε̂/σ_t on a 17×17 grid, pointing where the noisy data gets denser. Lengths are "
    "normalised per frame: length ∝ √(|s| / max|s|), so the longest arrow is the frame's max |s| (in the "
    "frame label); hover a panel to read s and |s| at a point."
)
VELOCITY_NOTE = (
    "Velocity arrows: −v̂, the direction the sampler moves x_t as t falls (a flow: −v̂ = x̂₀ − ε̂, the "
    "straight line from the noise to the predicted data; v-prediction: −v̂ = σ_t x̂₀ − α_t ε̂ = −dx_t/dφ "
    "with α_t = cos φ, σ_t = sin φ).  Normalised per frame like the score."
)


def fmt_t(t) -> str:
    """A process time for people: a VP step as an integer (a fractional one, e.g. on the Karras grid, to 0.1), a
    flow's t in [0, 1] with 3 decimals."""
    t = float(t)
    if t.is_integer():
        return str(int(t))
    return f"{t:.1f}" if t > 2 else f"{t:.3f}"


def shows_velocity(model) -> bool:
    """Models that predict a velocity (v-prediction, a flow's velocity) also show the velocity field."""
    return model.prediction_type in ("v_prediction", "velocity")


def process_text(model) -> str:
    """One line naming the model's process and prediction type, e.g. for the reverse tab's model description."""
    ptype = {
        "epsilon": "ε (noise)",
        "sample": "x₀ (clean sample)",
        "v_prediction": "v = α_t ε − σ_t x₀",
        "velocity": "velocity v = ε − x₀",
    }.get(model.prediction_type, model.prediction_type)
    d = model.cfg.diffusion
    if model.process.name == "flow":
        shift = f", shift {d.flow_shift:g}" if d.flow_shift and d.flow_shift != 1 else ""
        return f"rectified flow x_t = (1 − t) x₀ + t ε, t ∈ [0, 1]{shift} · predicts {ptype}"
    return f"variance preserving, {d.noise_schedule} schedule, T = {model.num_diffusion_steps} · predicts {ptype}"


def player_schedule(process, name: str | None = None, max_points: int = 250) -> dict:
    """The player's schedule strip for any process: t from 0 to T (a VP schedule's steps; a flow's T = 1), the solid
    curve (ᾱ_t for VP, α_t = 1 − t for a flow) and σ_t (from ``common.process_curve``)."""
    c = process_curve(process, name, max_points)
    if process.name == "flow":
        return {"name": "rectified flow", "T": 1, "t": c["t"], "abar": c["alpha"], "sigma": c["noise"], "solid": "α"}
    return {
        "name": f"{c['name']} schedule",
        "T": c["T"],
        "t": [0] + c["t"],
        "abar": [1.0] + c["abar"],
        "sigma": [0.0] + c["noise"],
        "solid": "ᾱ",
    }


def solid_at(process, t) -> float:
    """The schedule strip's solid curve at t: ᾱ_t = α_t² (VP) or α_t (flow)."""
    a, _ = process.coefficients(t)
    return float(a) if process.name == "flow" else float(a) ** 2


def ideal_mixture(info: ModelInfo, label: int | str | None) -> GaussianMixture | None:
    """The exact data distribution when it is a known Gaussian mixture (8gaussians), restricted to a class
    (None for per-sample classes, where no single mixture is the ideal)."""
    if info.dataset is None or info.kind != "points" or isinstance(label, str):
        return None
    gmm = gaussian_mixture_for(info.dataset)
    if gmm is None or label is None:
        return gmm
    if label >= gmm.num_components:
        return None
    return GaussianMixture([1.0], gmm.means[label : label + 1], gmm.covs[label : label + 1])


def player_static(model, info: ModelInfo, title: str, ideal: bool, num_samples: int) -> dict:
    """What the player needs once per run: panels, layer styles, the schedule curve, the legend and notes."""
    schedule = player_schedule(model.process, model.cfg.diffusion.noise_schedule)
    key = "flow" if model.process.name == "flow" else schedule["name"].split()[0]
    schedule["color"] = SCHEDULE_COLORS.get(key, COLORS["x_t"])
    if info.kind == "images":
        H = W = None  # set by the caller from the tiles (see trajectory_arrays)
        layers = {
            "x_t": {"type": "image", "lo": -1.0, "hi": 1.0, "cmap": "gray", "h": H, "w": W},
            "x0_pred": {"type": "image", "lo": -1.0, "hi": 1.0, "cmap": "gray", "h": H, "w": W},
            "eps": {"type": "image", "lo": -3.0, "hi": 3.0, "cmap": "rdbu", "h": H, "w": W},
        }
        panels = [
            [
                {"title": "x_t", "color": COLORS["x_t"], "layers": ["x_t"]},
                {"title": "predicted x̂₀ = (x_t − σ_t ε̂) / √ᾱ_t", "color": COLORS["x0_pred"], "layers": ["x0_pred"]},
                {"title": "predicted noise ε̂ (red −, blue +)", "color": COLORS["eps"], "layers": ["eps"]},
            ]
        ]
        return {
            "title": title,
            "range": list(PLOT_RANGE),
            "panels": panels,
            "layers": layers,
            "schedule": schedule,
            "legend": [],
            "notes": ["Ink is black, background white; the noise panel shows ε̂ from −3 (red) to +3 (blue)."],
        }
    g = {
        "n": FIELD_GRID,
        "lo": PLOT_RANGE[0] + (PLOT_RANGE[1] - PLOT_RANGE[0]) / FIELD_GRID / 2,
        "hi": PLOT_RANGE[1] - (PLOT_RANGE[1] - PLOT_RANGE[0]) / FIELD_GRID / 2,
    }
    dot = 2.4 if num_samples > 800 else 3.0
    layers = {
        "score": {"type": "field", "color": COLORS["score"], **g},
        "x_t": {"type": "points", "color": COLORS["x_t"], "size": dot, "opacity": 0.6},
        "paths": {
            "type": "paths",
            "of": "x_t",
            "count": min(NUM_PATHS, num_samples),
            "color": COLORS["path"],
            "head": COLORS["x_t"],
        },
        "x0_pred": {"type": "points", "color": COLORS["x0_pred"], "size": dot, "opacity": 0.75},
        "eps": {"type": "points", "color": COLORS["eps"], "size": dot, "opacity": 0.75},
    }
    panels = [
        [
            {"title": "x_t and the score s = −ε̂/σ_t", "color": COLORS["x_t"], "layers": ["score", "x_t", "paths"]},
            {"title": "predicted x̂₀", "color": COLORS["x0_pred"], "layers": ["x0_pred"]},
            {"title": "predicted noise ε̂", "color": COLORS["eps"], "layers": ["eps"]},
        ]
    ]
    legend = [
        [LABELS["x_t"], COLORS["x_t"]],
        [LABELS["x0_pred"], COLORS["x0_pred"]],
        [LABELS["eps"], COLORS["eps"]],
        ["score arrows", COLORS["score"]],
        ["particle paths", COLORS["path"]],
    ]
    notes = [FIELD_NOTE]
    if shows_velocity(model):
        layers["velocity"] = {"type": "field", "color": COLORS["velocity"], **g}
        panels[0].append(
            {"title": "x_t and the velocity −v̂", "color": COLORS["velocity"], "layers": ["velocity", "x_t"]}
        )
        legend.append(["velocity arrows −v̂", COLORS["velocity"]])
        notes.append(VELOCITY_NOTE)
    if ideal:
        layers.update(
            {
                "ideal_score": {"type": "field", "color": COLORS["ideal"], **g},
                "ideal_x0": {"type": "points", "color": COLORS["ideal"], "size": dot, "opacity": 0.75},
                "ideal_eps": {"type": "points", "color": COLORS["ideal"], "size": dot, "opacity": 0.75},
            }
        )
        panels.append(
            [
                {"title": "ideal: x_t and the exact score", "color": COLORS["ideal"], "layers": ["ideal_score", "x_t"]},
                {"title": "ideal: predicted x̂₀", "color": COLORS["ideal"], "layers": ["ideal_x0"]},
                {"title": "ideal: noise ε*", "color": COLORS["ideal"], "layers": ["ideal_eps"]},
            ]
        )
        legend.append(["ideal (exact) denoiser", COLORS["ideal"]])
    return {
        "title": title,
        "range": list(PLOT_RANGE),
        "panels": panels,
        "layers": layers,
        "schedule": schedule,
        "legend": legend,
        "notes": notes,
    }


def trajectory_arrays(
    model, kind: str, ts, x, x0, eps, *, label=None, cfg_scale=None, ideal=None, fields: Fields | None = None
) -> dict:
    """K frames of tensors ([K, B, ...]) -> the player's layers as numpy arrays.  The learned fields come from
    ``fields`` (a run's network and the shared cache; default: the model's own network, no cache), one call per t."""
    if kind == "images":
        return {
            "x_t": np.stack([tile_array(f) for f in x]),
            "x0_pred": np.stack([tile_array(f) for f in x0]),
            "eps": np.stack([tile_array(f) for f in eps]),
        }
    proc = model.process
    out = {
        "x_t": x.detach().float().cpu().numpy(),
        "x0_pred": x0.detach().float().cpu().numpy(),
        "eps": eps.detach().float().cpu().numpy(),
    }
    out["score"], velocity = (fields or Fields(model, label, cfg_scale)).grids(ts)
    if velocity is not None:
        out["velocity"] = velocity
    if ideal is not None:
        star = Predictor(ideal.model_fn(proc, "sample"), proc, "sample")  # the exact posterior mean, any process
        xt = x.detach().to(torch.float64).cpu()  # [K, B, 2]
        e, x0_star = torch.zeros_like(xt), xt.clone()
        with torch.no_grad():
            for k, t in enumerate(ts):
                if t > 0:
                    p = star(xt[k], t)
                    x0_star[k], e[k] = p.x0, p.eps
        out.update(
            ideal_x0=x0_star.numpy(),
            ideal_eps=e.numpy(),
            ideal_score=score_grid(lambda pts, t: star(pts.double(), t).eps, proc, ts, FIELD_GRID, PLOT_RANGE, "cpu"),
        )
    return out


def frame_labels(ts, sigmas, arrays: dict, prefix: str = "") -> list[str]:
    """One label per frame: t, σ_t and the frame's largest score (the arrows' scale)."""
    tops = None
    if "score" in arrays:
        tops = np.sqrt((np.asarray(arrays["score"]) ** 2).sum(-1)).max(-1)
    K = len(ts)
    out = []
    for k, (t, s) in enumerate(zip(ts, sigmas)):
        extra = f" · max |s| = {tops[k]:.3g}" if tops is not None and t > 0 else ""
        out.append(
            f"{prefix}t = {fmt_t(t)} · σ_t = {float(s):.3f}{extra}" + ("" if prefix else f" · frame {k + 1} of {K}")
        )
    return out


def trajectory_payload(model, kind: str, static: dict, arrays: dict, traj, run_id: str) -> dict:
    """A finished trajectory's whole player payload (components/player.py): every kept frame's arrays with its t, σ_t,
    label and how solid x_t is drawn at that t."""
    sigmas = traj.noise_levels.tolist()
    return player_payload(
        run_id,
        kind,
        static,
        arrays,
        traj.timesteps,
        sigmas,
        frame_labels(traj.timesteps, sigmas, arrays),
        live=False,
        alpha=[solid_at(model.process, t) for t in traj.timesteps],
    )


def image_specs(static: dict, arrays: dict) -> None:
    for name, arr in arrays.items():
        static["layers"][name]["h"], static["layers"][name]["w"] = int(arr.shape[-2]), int(arr.shape[-1])
