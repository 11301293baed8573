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

from .common import ModelInfo, schedule_curve, score_grid, tile_array
from .figures import COLORS, LABELS, SCHEDULE_COLORS

__all__ = ["NUM_PATHS", "FIELD_GRID", "FIELD_NOTE", "ideal_mixture", "field_eps", "player_static",
           "trajectory_arrays", "frame_labels", "image_specs"]  # fmt: skip

NUM_PATHS = 6  # highlighted particles
FIELD_GRID = 17  # score-field arrows per side
FIELD_NOTE = ("Arrows: the score s = −ε̂/σ_t on a 17×17 grid, pointing where the noisy data gets denser. Lengths are "
              "normalised per frame: length ∝ √(|s| / max|s|), so the longest arrow is the frame's max |s| (in the "
              "frame label); hover a panel to read s and |s| at a point.")  # fmt: skip


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
    return GaussianMixture([1.0], gmm.means[label: label + 1], gmm.covs[label: label + 1])


def field_eps(model, label: int | str | None, cfg_scale: float | None, n: int):
    """The noise predictor drawn as the score field: for one class, that class (with CFG); otherwise unconditional."""
    label = label if isinstance(label, int) else None
    use_cfg = cfg_scale is not None and label is not None and model.is_conditional
    return model.noise_predictor(label, n, cfg_scale=cfg_scale if use_cfg else None)


def player_static(model, info: ModelInfo, title: str, ideal: bool, num_samples: int) -> dict:
    """What the player needs once per run: panels, layer styles, the schedule curve, the legend and notes."""
    sch = model.noise_schedule
    curve = schedule_curve(sch, model.cfg.diffusion.noise_schedule, max_points=250)
    schedule = {"name": curve["name"], "T": curve["T"], "t": [0] + curve["t"], "abar": [1.0] + curve["abar"],
                "sigma": [0.0] + curve["noise"], "color": SCHEDULE_COLORS.get(curve["name"], COLORS["x_t"])}  # fmt: skip
    if info.kind == "images":
        H = W = None  # set by the caller from the tiles (see trajectory_arrays)
        layers = {"x_t": {"type": "image", "lo": -1.0, "hi": 1.0, "cmap": "gray", "h": H, "w": W},
                  "x0_pred": {"type": "image", "lo": -1.0, "hi": 1.0, "cmap": "gray", "h": H, "w": W},
                  "eps": {"type": "image", "lo": -3.0, "hi": 3.0, "cmap": "rdbu", "h": H, "w": W}}  # fmt: skip
        panels = [[{"title": "x_t", "color": COLORS["x_t"], "layers": ["x_t"]},
                   {"title": "predicted x̂₀ = (x_t − σ_t ε̂) / √ᾱ_t", "color": COLORS["x0_pred"], "layers": ["x0_pred"]},
                   {"title": "predicted noise ε̂ (red −, blue +)", "color": COLORS["eps"], "layers": ["eps"]}]]  # fmt: skip
        return {"title": title, "range": list(PLOT_RANGE), "panels": panels, "layers": layers, "schedule": schedule,
                "legend": [], "notes": ["Ink is black, background white; the noise panel shows ε̂ from −3 (red) to +3 (blue)."]}
    g = {"n": FIELD_GRID, "lo": PLOT_RANGE[0] + (PLOT_RANGE[1] - PLOT_RANGE[0]) / FIELD_GRID / 2,
         "hi": PLOT_RANGE[1] - (PLOT_RANGE[1] - PLOT_RANGE[0]) / FIELD_GRID / 2}  # fmt: skip
    dot = 2.4 if num_samples > 800 else 3.0
    layers = {
        "score": {"type": "field", "color": COLORS["score"], **g},
        "x_t": {"type": "points", "color": COLORS["x_t"], "size": dot, "opacity": 0.6},
        "paths": {"type": "paths", "of": "x_t", "count": min(NUM_PATHS, num_samples), "color": COLORS["path"],
                  "head": COLORS["x_t"]},
        "x0_pred": {"type": "points", "color": COLORS["x0_pred"], "size": dot, "opacity": 0.75},
        "eps": {"type": "points", "color": COLORS["eps"], "size": dot, "opacity": 0.75},
    }  # fmt: skip
    panels = [[{"title": "x_t and the score s = −ε̂/σ_t", "color": COLORS["x_t"], "layers": ["score", "x_t", "paths"]},
               {"title": "predicted x̂₀", "color": COLORS["x0_pred"], "layers": ["x0_pred"]},
               {"title": "predicted noise ε̂", "color": COLORS["eps"], "layers": ["eps"]}]]  # fmt: skip
    legend = [[LABELS["x_t"], COLORS["x_t"]], [LABELS["x0_pred"], COLORS["x0_pred"]], [LABELS["eps"], COLORS["eps"]],
              ["score arrows", COLORS["score"]], ["particle paths", COLORS["path"]]]  # fmt: skip
    if ideal:
        layers.update({"ideal_score": {"type": "field", "color": COLORS["ideal"], **g},
                       "ideal_x0": {"type": "points", "color": COLORS["ideal"], "size": dot, "opacity": 0.75},
                       "ideal_eps": {"type": "points", "color": COLORS["ideal"], "size": dot, "opacity": 0.75}})  # fmt: skip
        panels.append([{"title": "ideal: x_t and the exact score", "color": COLORS["ideal"], "layers": ["ideal_score", "x_t"]},
                       {"title": "ideal: predicted x̂₀", "color": COLORS["ideal"], "layers": ["ideal_x0"]},
                       {"title": "ideal: noise ε*", "color": COLORS["ideal"], "layers": ["ideal_eps"]}])  # fmt: skip
        legend.append(["ideal (exact) denoiser", COLORS["ideal"]])
    return {"title": title, "range": list(PLOT_RANGE), "panels": panels, "layers": layers, "schedule": schedule,
            "legend": legend, "notes": [FIELD_NOTE]}


def trajectory_arrays(model, kind: str, ts, x, x0, eps, *, label=None, cfg_scale=None, ideal=None) -> dict:
    """K frames of tensors ([K, B, ...]) -> the player's layers as numpy arrays (score fields computed here, in one
    batched call per field)."""
    if kind == "images":
        return {"x_t": np.stack([tile_array(f) for f in x]), "x0_pred": np.stack([tile_array(f) for f in x0]),
                "eps": np.stack([tile_array(f) for f in eps])}  # fmt: skip
    proc = model.process
    G = FIELD_GRID * FIELD_GRID
    out = {"x_t": x.detach().float().cpu().numpy(), "x0_pred": x0.detach().float().cpu().numpy(),
           "eps": eps.detach().float().cpu().numpy(),
           "score": score_grid(field_eps(model, label, cfg_scale, G), proc, ts, FIELD_GRID, PLOT_RANGE, model.device)}
    if ideal is not None:
        star = Predictor(ideal.model_fn(proc, "sample"), proc, "sample")  # the exact posterior mean, any process
        xt = x.detach().to(torch.float64).cpu()  # [K, B, 2]
        e, x0_star = torch.zeros_like(xt), xt.clone()
        with torch.no_grad():
            for k, t in enumerate(ts):
                if t > 0:
                    p = star(xt[k], t)
                    x0_star[k], e[k] = p.x0, p.eps
        out.update(ideal_x0=x0_star.numpy(), ideal_eps=e.numpy(),
                   ideal_score=score_grid(lambda pts, t: star(pts.double(), t).eps, proc, ts, FIELD_GRID, PLOT_RANGE, "cpu"))
    return out


def frame_labels(ts, sigmas, arrays: dict, prefix: str = "") -> list[str]:
    tops = None
    if "score" in arrays:
        tops = np.sqrt((np.asarray(arrays["score"]) ** 2).sum(-1)).max(-1)
    K = len(ts)
    out = []
    for k, (t, s) in enumerate(zip(ts, sigmas)):
        extra = f" · max |s| = {tops[k]:.3g}" if tops is not None and t > 0 else ""
        out.append(f"{prefix}t = {t} · σ_t = {float(s):.3f}{extra}" + ("" if prefix else f" · frame {k + 1} of {K}"))
    return out


def image_specs(static: dict, arrays: dict) -> None:
    for name, arr in arrays.items():
        static["layers"][name]["h"], static["layers"][name]["w"] = int(arr.shape[-2]), int(arr.shape[-1])
