"""Pure plotly figure builders: ``make_*_figure(data) -> FigureJSON``.

They take plain Python data (dicts of lists and numbers, made from tensors by ``components.common``), never
tensors or models, and have no side effects, so they are unit-tested on their own.  The colours, sizes and the
dict-assembling helpers they share are in ``components.plotting`` (re-exported here: ``figures.COLORS`` etc.).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .figure_json import FigureJSON
from .plotting import (  # noqa: F401  (the style constants are re-exported for the tabs and the tests)
    _MARKER,
    COLORS,
    DEFAULT_RANGE,
    EPS_COLORSCALE,
    FONT_SIZE,
    IMAGE_COLORSCALE,
    LABELS,
    PRIORITY_COLORSCALE,
    REWARD_COLORSCALE,
    SCHEDULE_COLORS,
    _axis,
    _color_titles,
    _figure,
    _fmt,
    _grid,
    _heat,
    _image_grid,
    _on,
    _outside,
    _ref,
    _scatter,
    make_message_figure,
)
from .schedule_figures import make_process_marker_figure, make_schedule_figure, make_schedule_marker_figure  # noqa: F401

__all__ = [
    "COLORS",
    "SCHEDULE_COLORS",
    "REWARD_COLORSCALE",
    "PRIORITY_COLORSCALE",
    "IMAGE_COLORSCALE",
    "EPS_COLORSCALE",
    "FONT_SIZE",
    "LABELS",
    "DEFAULT_RANGE",
    "make_message_figure",
    "make_schedule_figure",
    "make_schedule_marker_figure",
    "make_process_marker_figure",
    "make_frame_figure",
]


# ---------------------------------------------------------------------------------------------- reverse process
def _arrows(field: dict, rng: Sequence[float]) -> tuple[list, list, list]:
    """Line segments with small heads for a vector field {"x","y","u","v"} on a regular grid; lengths are
    compressed (sqrt of |v| / max |v|) and scaled to the grid spacing.  Returns (xs, ys, magnitudes)."""
    xs, ys, us, vs = field["x"], field["y"], field["u"], field["v"]
    mags = [math.hypot(u, v) if (u is not None and v is not None) else float("nan") for u, v in zip(us, vs)]
    finite = [m for m in mags if math.isfinite(m)]
    top = max(finite) if finite else 0.0
    n_side = max(2, round(math.sqrt(len(xs)))) if xs else 2
    spacing = (rng[1] - rng[0]) / n_side
    lx: list = []
    ly: list = []
    ca, sa = math.cos(2.6), math.sin(2.6)
    for x, y, u, v, m in zip(xs, ys, us, vs, mags):
        if not math.isfinite(m) or m <= 0 or top <= 0:
            continue
        length = 0.9 * spacing * math.sqrt(m / top)
        dx, dy = u / m * length, v / m * length
        hx, hy = x + dx, y + dy
        k = 0.35  # head length / arrow length
        lx += [x, hx, None, hx + k * (dx * ca - dy * sa), hx, hx + k * (dx * ca + dy * sa), None]
        ly += [y, hy, None, hy + k * (dx * sa + dy * ca), hy, hy + k * (-dx * sa + dy * ca), None]
    return (
        [round(v, 4) if v is not None else None for v in lx],
        [round(v, 4) if v is not None else None for v in ly],
        mags,
    )


def _field_traces(field: dict, rng, n: int, color: str, name: str) -> list[dict]:
    lx, ly, mags = _arrows(field, rng)
    return [
        _on(
            {
                "type": "scatter",
                "x": lx,
                "y": ly,
                "mode": "lines",
                "line": {"color": color, "width": 1.8},
                "name": name,
                "legendgroup": name,
                "hoverinfo": "skip",
                "opacity": 0.9,
            },
            n,
        ),
        _on(
            {
                "type": "scatter",
                "x": list(field["x"]),
                "y": list(field["y"]),
                "mode": "markers",
                "marker": {"size": 3, "color": color, "opacity": 0.4},
                "showlegend": False,
                "legendgroup": name,
                "name": name,
                "customdata": [
                    [u, v, round(m, 4) if math.isfinite(m) else None] for u, v, m in zip(field["u"], field["v"], mags)
                ],
                "hovertemplate": f"{name}<br>at (%{{x:.2f}}, %{{y:.2f}})<br>s = (%{{customdata[0]:.3g}}, "
                "%{customdata[1]:.3g})<br>|s| = %{customdata[2]:.3g}<extra></extra>",
            },
            n,
        ),
    ]


def make_frame_figure(frame: dict) -> FigureJSON:
    """One frame of a reverse-diffusion trajectory: x_t, the predicted x0 and the predicted noise side by side.

    points: {"kind": "points", "t", "index", "num_frames", "x_t", "x0_pred", "eps": {"x","y"} each,
             "score": optional {"x","y","u","v"} (grid, learned model), "paths": [{"x","y"}...] (highlighted particles),
             "ideal": optional {"x0_pred", "eps", "score"} (the exact denoiser at the same x_t), "range"}
    images: {"kind": "images", "t", "index", "num_frames", "x_t", "x0_pred", "eps": 2-D lists (tiled grids)}
    """
    t = frame["t"]
    head = f"t = {t}" + (f"  ·  frame {frame['index'] + 1} of {frame['num_frames']}" if frame.get("num_frames") else "")
    if frame.get("nonfinite"):
        head += f"  ·  ⚠ {frame['nonfinite']} samples are NaN or infinite" + (
            " (not drawn)" if frame["kind"] == "points" else ""
        )
    if frame["kind"] == "images":
        layout = _image_grid(3, ["x_t", "predicted x₀ = (x_t − σ_t ε̂) / √ᾱ_t", "predicted noise ε̂"], hspace=0.03)
        _color_titles(layout, ["x_t", "x0_pred", "eps"])
        traces = [
            _on(_heat(frame["x_t"], IMAGE_COLORSCALE, -1.0, 1.0, "x_t", hover="pixel"), 1),
            _on(_heat(frame["x0_pred"], IMAGE_COLORSCALE, -1.0, 1.0, "predicted x₀", hover="pixel"), 2),
            _on(_heat(frame["eps"], EPS_COLORSCALE, -3.0, 3.0, "predicted ε", hover="ε"), 3),
        ]
        return _figure(traces, layout, 520, head, legend=False)

    rng = frame.get("range", DEFAULT_RANGE)
    ideal = frame.get("ideal")
    rows = 2 if ideal else 1
    titles = ["x_t and the score −ε̂/σ_t", "predicted x₀", "predicted noise ε̂"]
    if ideal:
        titles = ["learned: " + s for s in titles] + [
            "ideal: x_t and its exact score",
            "ideal: predicted x₀",
            "ideal: predicted noise ε*",
        ]
    layout = _grid(rows, 3, titles, hspace=0.05, vspace=0.09, square=True, rng=rng)
    _color_titles(layout, ["x_t", "x0_pred", "eps"] + (["ideal"] * 3 if ideal else []))
    traces: list[dict] = []
    for r in range(rows):
        src = frame if r == 0 else ideal
        n0 = r * 3 + 1
        if src.get("score"):
            traces += _field_traces(
                src["score"],
                rng,
                n0,
                COLORS["score"] if r == 0 else COLORS["ideal"],
                "score −ε̂/σ_t" if r == 0 else "exact score",
            )
        traces.append(_on(_scatter(frame["x_t"], "x_t", showlegend=r == 0, size=5, opacity=0.6), n0))
        if r == 0:
            for i, p in enumerate(frame.get("paths") or []):
                m = len(p["x"])
                traces.append(
                    _on(
                        {
                            "type": "scatter",
                            "x": list(p["x"]),
                            "y": list(p["y"]),
                            "mode": "lines+markers",
                            "name": "particle paths",
                            "legendgroup": "paths",
                            "showlegend": i == 0,
                            "line": {"color": COLORS["path"], "width": 2},
                            "marker": {
                                "size": [0] * (m - 1) + [12],
                                "color": COLORS["x_t"],
                                "line": {"color": COLORS["path"], "width": 2},
                            },
                            "hovertemplate": "particle path<br>x = %{x:.3f}<br>y = %{y:.3f}<extra></extra>",
                        },
                        n0,
                    )
                )
        traces.append(
            _on(
                _scatter(
                    src["x0_pred"],
                    "x0_pred",
                    name=None if r == 0 else "ideal predicted x₀",
                    color=COLORS["x0_pred"] if r == 0 else COLORS["ideal"],
                ),
                n0 + 1,
            )
        )
        traces.append(
            _on(
                _scatter(
                    src["eps"],
                    "eps",
                    name=None if r == 0 else "ideal ε*",
                    color=COLORS["eps"] if r == 0 else COLORS["ideal"],
                ),
                n0 + 2,
            )
        )
    return _figure(traces, layout, 600 if rows == 1 else 1080, head)
