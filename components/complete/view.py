"""Tab 7 (complete)'s views: tensors of a run in, the player's messages, the completions figure and words out (pure;
no widgets, no sessions).

* ``player_static`` / ``kept_tile`` / ``live`` / ``final_payload`` / ``write_payload``: the trajectory in the shared
  player (components/player.py): the kept pixels, x_t, the predicted x̂₀ and the predicted noise side by side.
* ``completions_figure``: the kept part beside the final completions, each with the class the classifier reads.
* ``done_text`` / ``running_text``: words.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..arrays import tile_array, tile_images
from ..player import live_message
from ..plotting import COLORS, FONT_SIZE, IMAGE_COLORSCALE, _figure, _heat, _image_grid, _on
from ..reverse.view import pointer
from ..trajectory_view import frame_labels, image_specs, solid_at, trajectory_arrays, trajectory_payload
from ..trajectory_view import player_static as reverse_static

__all__ = [
    "KEPT_LO",
    "player_static",
    "kept_tile",
    "live",
    "final_payload",
    "write_payload",
    "pointer",
    "completions_figure",
    "headline",
    "done_text",
    "running_text",
]

KEPT_LO = -3.0  # the kept part is drawn on a grey scale from KEPT_LO (white) to +1 (black): kept blank (-1) is grey
KEPT_COLOR = "#555555"
KEPT_NOTE = (
    "Kept pixels: black = ink, grey = blank; white = what the model completes. The kept pixels of x_t are the kept "
    "image noised by the forward process at every step; at t = 0 they are the kept image exactly."
)


def player_static(model, info, title: str, recurrence: int) -> dict:
    """The reverse tab's image player (x_t, x̂₀, ε̂) with the kept part as a first panel."""
    static = reverse_static(model, info, title, False, 1)
    static["layers"]["kept"] = {"type": "image", "lo": KEPT_LO, "hi": 1.0, "cmap": "gray", "h": None, "w": None}
    static["panels"][0].insert(0, {"title": "kept pixels", "color": KEPT_COLOR, "layers": ["kept"]})
    notes = [KEPT_NOTE]
    if recurrence > 1:
        notes.append(f"Each step is repeated {recurrence} times, re-noised in between; the frames show the last.")
    static["notes"] = [*static["notes"], *notes]
    return static


def kept_tile(known: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """The kept part [1, 1, H, W] as one upscaled tile, NaN (the player's gap: white) where the model completes."""
    tile = tile_array(known)
    return np.where(tile_array(mask.float()) > 0.5, tile, np.nan)


def _arrays(model, ts, x, x0, eps, kept: np.ndarray) -> dict:
    arrays = trajectory_arrays(model, "images", ts, x, x0, eps)
    arrays["kept"] = np.repeat(kept[None], len(ts), axis=0)
    return arrays


def live(model, static: dict, step, kept: np.ndarray, run_id: str, seq: int) -> dict:
    """One step as a light player message (the static parts only in the first, ``seq`` 0)."""
    arrays = _arrays(model, [step.t], step.x_t[None], step.x0_pred[None], step.eps_pred[None], kept)
    if seq == 0:
        image_specs(static, arrays)
    text = frame_labels(
        [step.t], [step.noise_level], arrays, f"completing: step {step.index + 1} of {step.num_steps} · "
    )
    frame = {k: v[0] for k, v in arrays.items()}
    alpha = solid_at(model.process, step.t)
    return live_message(run_id, "images", static, frame, step.t, step.noise_level, text[0], seq, alpha=alpha)


def final_payload(model, static: dict, traj, kept: np.ndarray, run_id: str) -> dict:
    """The whole trajectory as the player's payload."""
    arrays = _arrays(model, traj.timesteps, traj.x, traj.x0_pred, traj.eps_pred, kept)
    image_specs(static, arrays)
    return trajectory_payload(model, "images", static, arrays, traj, run_id)


def write_payload(folder: Path, payload: dict) -> str:
    path = folder / "trajectory.json"
    path.write_text(json.dumps(payload, separators=(",", ":")))
    return str(path)


# ---------------------------------------------------------------------------------------------- the figure
def _columns(n: int) -> int:
    return min(n, 8 if n > 16 else 4)


def completions_figure(known: torch.Tensor, mask: torch.Tensor, final: torch.Tensor, s: dict):
    """The kept part (left) and the completions (right), each tile labelled with the class read and its
    probability."""
    n = final.shape[0]
    cols = _columns(n)
    kept = [[None if np.isnan(v) else round(float(v), 3) for v in row] for row in kept_tile(known, mask)]
    layout = _image_grid(2, ["what you kept", "completions: the class read · its probability"], hspace=0.04)
    layout["xaxis"]["domain"], layout["xaxis2"]["domain"] = [0.0, 0.22], [0.27, 1.0]
    side = tile_array(final[:1]).shape[0]  # a tile's side in the tiled grid (upscaled small images)
    gap = side // 2  # room under each completion for its label
    tiles = tile_images(final, cols=cols, gap=gap)
    tiles += [[None] * len(tiles[0]) for _ in range(gap)]  # the last row's labels, too, inside the panel
    traces = [
        _on(_heat(kept, IMAGE_COLORSCALE, KEPT_LO, 1.0, "kept", hover="pixel"), 1),
        _on(_heat(tiles, IMAGE_COLORSCALE, -1.0, 1.0, "completion", hover="pixel"), 2),
    ]
    frame = {"type": "rect", "xref": "x", "yref": "y", "x0": -0.5, "y0": -0.5, "x1": side - 0.5, "y1": side - 0.5}
    layout["shapes"] = [{**frame, "line": {"color": "#999999", "width": 1}}]  # the whole image: white is completed
    for i, r in enumerate(s.get("readings") or []):
        row, col = divmod(i, cols)
        good = s.get("true_class") is None or r["class"] == s["true_class"]
        layout["annotations"].append(
            {
                "text": f"{r['class']} · {r['confidence']:.0%}",
                "x": col * (side + gap) + side / 2 - 0.5,
                "y": row * (side + gap) + side - 0.5,
                "xref": "x2",
                "yref": "y2",
                "xanchor": "center",
                "yanchor": "top",
                "showarrow": False,
                "font": {"size": FONT_SIZE - 3, "color": COLORS["x0_pred"] if good else COLORS["eps"]},
            }
        )
    rows = -(-n // cols)
    return _figure(traces, layout, 180 + 110 * rows, headline(s), legend=False)


# ---------------------------------------------------------------------------------------------- words
def headline(s: dict) -> str:
    """ "6 of 8 completions read as 7" (and, for a real digit, how many read as it)."""
    if s.get("readings") is None:
        return f"{s['num_samples']} completions (no shipped classifier reads images of this size)"
    n, top, k = s["num_samples"], s["most_read"], s["most_read_count"]
    line = f"{k} of {n} completion{'s' if n > 1 else ''} read as {top}"
    true = s.get("true_class")
    if true is not None and true != top:
        line += f"; {s['true_class_count']} as {true}, the digit kept"
    return line


def done_text(s: dict) -> str:
    kept = (
        f"the {s['keep']} of a held-out {s['true_class']} (example {s['example']})"
        if s.get("true_class") is not None
        else s["keep"]
    )
    lines = [
        f"✓ **{headline(s)}**. Kept: {kept}, {s['known_pixels']} pixels, reproduced exactly "
        f"(largest difference {s['known_max_error']:.0g}).",
    ]
    if s.get("distinct_classes") is not None:
        k = s["distinct_classes"]
        lines.append(
            "The classifier reads the same class in every completion."
            if k == 1
            else f"The classifier reads {k} different classes among the completions."
        )
    if s.get("kept_alone") is not None:
        a = s["kept_alone"]
        lines.append(f"The kept part alone (blank elsewhere) reads as {a['class']} ({a['confidence']:.0%}).")
    method = "posterior correction" if s["correction"] else "RePaint's replacement"
    rec = f", recurrence {s['recurrence']}" if s["recurrence"] > 1 else ""
    lines.append(
        f"{s['num_samples']} completions, {s['sampler']} {s['num_steps']} steps, {method}{rec}, seed {s['seed']}, "
        f"{s['elapsed_s']:.1f} s. Drag the frame slider or press ▶ Play."
    )
    return "\n\n".join(lines)


def running_text(sampler: str, steps: int) -> str:
    return f"… **completing** ({sampler}, {steps} steps): the frames stream into the player below"
