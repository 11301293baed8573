"""Tab 4, compare: the views (pure: tensors and numbers in, the player's messages and words out; no widgets, no
sessions).  The quality-against-NFE figure is in figures.py.

* ``pair_static``: two rows of panels, one per side (x_t with a few particle paths, and x̂₀).
* ``live`` / ``final_payload`` / ``pointer``: the player's messages (components/player.py's format): both rows' latest
  states while sampling, both whole trajectories once at the end (frame k of the shared slider is the same share of
  each run: ``aligned``), and the pointer that tells the page to fetch them.
* ``done_text`` / ``table`` / ``marks``: the finished pair in words, as a table, and as the figure's two stars.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from adiff.data import PLOT_RANGE

from ..arrays import tile_array
from ..player import live_message, player_payload
from ..plotting import COLORS, LABELS
from ..summaries import describe_mmd2, fmt
from ..trajectory_view import NUM_PATHS, fmt_t, image_specs

__all__ = [
    "SAMPLING_TEXT",
    "QUALITY_WAIT_TEXT",
    "pair_static",
    "side_arrays",
    "aligned",
    "live",
    "final_payload",
    "pointer",
    "marks",
    "table",
    "done_text",
]

SAMPLING_TEXT = "… **sampling both sides**: the rows fill at the same pace"
QUALITY_WAIT_TEXT = "Quality against NFE: drawn when both runs end."
SAME_NOTE = (
    "Both rows start from the same x_T. Frame k of the slider is the same share of each run: a 10-step run shows its "
    "step 5 where a 100-step run shows its step 50."
)
_IMAGE = {"type": "image", "lo": -1.0, "hi": 1.0, "cmap": "gray", "h": None, "w": None}


# ---------------------------------------------------------------------------------------------- the player
def _row(side, kind: str, n: int, layers: dict) -> list[dict]:
    """One side's panels (and their layers, added to ``layers``)."""
    k = side.key
    if kind == "images":
        layers[f"{k}_x_t"], layers[f"{k}_x0"] = dict(_IMAGE), dict(_IMAGE)
        first = {"title": f"{side.name}: x_t", "color": COLORS["x_t"], "layers": [f"{k}_x_t"]}
    else:
        dot = 2.4 if n > 800 else 3.0
        layers[f"{k}_x_t"] = {"type": "points", "color": COLORS["x_t"], "size": dot, "opacity": 0.6}
        layers[f"{k}_paths"] = {
            "type": "paths",
            "of": f"{k}_x_t",
            "count": min(NUM_PATHS, n),
            "color": COLORS["path"],
            "head": COLORS["x_t"],
        }
        layers[f"{k}_x0"] = {"type": "points", "color": COLORS["x0_pred"], "size": dot, "opacity": 0.75}
        first = {"title": f"{side.name}: x_t and paths", "color": COLORS["x_t"], "layers": [f"{k}_x_t", f"{k}_paths"]}
    return [first, {"title": f"{k.upper()} · predicted x̂₀", "color": COLORS["x0_pred"], "layers": [f"{k}_x0"]}]


def pair_static(sides: Sequence, kind: str, n: int) -> dict:
    """Two rows of panels, one per side; no schedule strip (the sides may run on different processes: each frame
    label says where each side is)."""
    layers: dict = {}
    panels = [_row(s, kind, n, layers) for s in sides]
    legend = []
    if kind != "images":
        legend = [
            [LABELS["x_t"], COLORS["x_t"]],
            [LABELS["x0_pred"], COLORS["x0_pred"]],
            ["particle paths", COLORS["path"]],
        ]
    return {
        "title": " vs ".join(s.name for s in sides),
        "range": list(PLOT_RANGE),
        "panels": panels,
        "layers": layers,
        "schedule": None,
        "legend": legend,
        "notes": [SAME_NOTE],
    }


def side_arrays(kind: str, key: str, x: torch.Tensor, x0: torch.Tensor) -> dict:
    """Frames [K, B, ...] of one side -> its layers."""
    if kind == "images":
        return {f"{key}_x_t": np.stack([tile_array(f) for f in x]), f"{key}_x0": np.stack([tile_array(f) for f in x0])}
    return {f"{key}_x_t": x.detach().float().cpu().numpy(), f"{key}_x0": x0.detach().float().cpu().numpy()}


def aligned(trajs: Sequence, K: int) -> list[list[int]]:
    """For each side, the frame it shows at each of the K shared slider positions (the same share of its run)."""
    return [[round(k * (len(tr) - 1) / max(1, K - 1)) for k in range(K)] for tr in trajs]


def _where(run) -> str:
    """Where a running side is: its step, t and σ after its last step."""
    t = run.last.t_prev
    sigma = float(run.choice.model.process.coefficients(t)[1])
    return f"{run.choice.key.upper()}: step {run.done} of {run.choice.steps}, t = {fmt_t(t)}, σ = {sigma:.2f}"


def live(run_id: str, kind: str, static: dict, runs: Sequence, seq: int) -> dict:
    """Both sides' latest states (``runs``: objects with ``choice``, ``done`` and ``last``, the last step's record) as
    light player message ``seq`` (the static parts only in message 0)."""
    arrays = {}
    for r in runs:
        one = side_arrays(kind, r.choice.key, r.last.x_prev[None], r.last.x0_pred[None])
        arrays.update({k: v[0] for k, v in one.items()})
    if kind == "images" and seq == 0:
        image_specs(static, {k: v[None] for k, v in arrays.items()})
    text = "sampling: " + " · ".join(_where(r) for r in runs)
    return live_message(run_id, kind, static, arrays, seq, 0.0, text, seq)


def final_payload(run_id: str, kind: str, static: dict, sides: Sequence, trajs: Sequence) -> dict:
    """Both whole trajectories on one slider of K = the longer run's frames (each side's frame nearest the same share
    of its run), every frame labelled with both sides' t and σ."""
    K = max(len(tr) for tr in trajs)
    idx = aligned(trajs, K)
    arrays = {}
    for s, tr, ix in zip(sides, trajs, idx):
        arrays.update(side_arrays(kind, s.key, tr.x[ix], tr.x0_pred[ix]))
    if kind == "images":
        image_specs(static, arrays)
    labels = []
    for k in range(K):
        parts = [
            f"{s.key.upper()}: t = {fmt_t(tr.timesteps[ix[k]])}, σ = {float(tr.noise_levels[ix[k]]):.2f}"
            for s, tr, ix in zip(sides, trajs, idx)
        ]
        labels.append(" · ".join(parts) + f" · frame {k + 1} of {K}")
    return player_payload(run_id, kind, static, arrays, list(range(K)), [0.0] * K, labels, live=False)


def pointer(run_id: str, count: int) -> dict:
    """The last message of a run: the player keeps the last live frame on screen until it has fetched the file."""
    return {"v": 1, "id": run_id, "live": False, "file": "compare", "count": count}


# ---------------------------------------------------------------------------------------------- words
def marks(sides: Sequence, stats: Sequence[dict]) -> list[tuple]:
    """The two runs for the quality figure: (side, model, solver, NFE, MMD² or None)."""
    return [(s.key.upper(), s.source, s.solver, st["nfe"], st.get("mmd2_to_data")) for s, st in zip(sides, stats)]


def _mmd_cell(st: dict) -> str:
    """MMD² to data ± its standard error, for the table."""
    if st.get("mmd2_to_data") is None:
        return fmt(None)
    return f"{fmt(st['mmd2_to_data'], 2)} ± {fmt(st.get('mmd2_se'), 2)}"


def table(sides: Sequence, stats: Sequence[dict]) -> str:
    """Per side NFE, MMD² to data, straightness and time; MMD² in words; which side's paths are straighter."""
    rows = [
        "| side | model | solver | steps | NFE | MMD² to data (± SE) | straightness | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, st in zip(sides, stats):
        rows.append(
            f"| **{s.key.upper()}** | {s.source} | {s.solver} | {s.steps} | {st['nfe']} | "
            f"{_mmd_cell(st)} | {fmt(st['straightness'], 3)} | {st['seconds']:.1f} s |"
        )
    lines = ["\n".join(rows)]
    for s, st in zip(sides, stats):
        if st.get("mmd2_to_data") is not None:
            lines.append(f"**{s.key.upper()}**: {describe_mmd2(st['mmd2_to_data'], st.get('mmd2_se'))}")
    a, b = stats
    if abs(a["straightness"] - b["straightness"]) > 0.02:
        straighter = "A" if a["straightness"] < b["straightness"] else "B"
        lines.append(
            f"**{straighter}**'s paths are straighter ({fmt(min(a['straightness'], b['straightness']), 3)} "
            f"against {fmt(max(a['straightness'], b['straightness']), 3)}; 1 = straight lines)."
        )
    return "\n\n".join(lines)


def done_text(same: bool, sides: Sequence, stats: Sequence[dict]) -> str:
    note = "Both sides started from the same x_T." if same else "⚠ the two sides did not start from the same x_T."
    return f"{note}\n\n{table(sides, stats)}"
