"""Pure plotly figure builders: ``make_*_figure(data) -> go.Figure``.

They take plain Python data (dicts of lists and numbers, made from tensors by ``components.common``), never
tensors or models, and have no side effects, so they are unit-tested on their own.  The colours, sizes and the
dict-assembling helpers they share are in ``components.plotting`` (re-exported here: ``figures.COLORS`` etc.).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

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
    "make_forward_figure",
    "make_frame_figure",
    "make_guidance_figure",
    "make_adaptation_figure",
    "make_buffer_figure",
    "make_before_after_figure",
]


# ---------------------------------------------------------------------------------------------- forward process
def make_forward_figure(data: dict) -> go.Figure:
    """The forward process at one t.

    points: {"kind": "points", "t", "T", "abar", "sigma", "data": {"x","y"}, "x_t": {"x","y"},
             "density": optional {"x": [...], "y": [...], "z": [[...]]} (exact log q(x_t) on a grid), "range",
             "flow": optional {"t", "alpha", "sigma", "x_t", "density"} (the rectified-flow path: a third panel)}
    images: {"kind": "images", "t", "T", "columns": [{"t", "z": 2-D list, "selected": bool}]}
    """
    t = data["t"]
    if data["kind"] == "images":
        cols = data["columns"]
        layout = _image_grid(
            len(cols), [f"<b>t = {c['t']}</b>" if c.get("selected") else f"t = {c['t']}" for c in cols], hspace=0.012
        )
        traces = [
            _on(_heat(c["z"], IMAGE_COLORSCALE, -1.0, 1.0, f"x_t at t = {c['t']}", hover="pixel"), i + 1)
            for i, c in enumerate(cols)
        ]
        _color_titles(layout, ["x_t" if c.get("selected") else None for c in cols])
        return _figure(
            traces, layout, 560, f"x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε at several t (the chosen t = {t} in blue)", legend=False
        )
    rng = data.get("range", DEFAULT_RANGE)
    flow = data.get("flow")
    titles = ["data x₀ ~ p(x₀)", f"x_t ~ q(x_t) at t = {t}: ᾱ_t = {_fmt(data['abar'])}, σ_t = {_fmt(data['sigma'])}"]
    if flow:
        titles = [
            "data x₀ ~ p(x₀)",
            f"VP at t = {t}:<br>α = √ᾱ_t = {_fmt(math.sqrt(data['abar']))}, σ = {_fmt(data['sigma'])}",
            f"rectified flow at t = {_fmt(flow['t'])}:<br>α = 1 − t = {_fmt(flow['alpha'])}, σ = t = {_fmt(flow['sigma'])}",
        ]
    layout = _grid(1, len(titles), titles, hspace=0.06 if flow else 0.08, square=True, rng=rng)
    _color_titles(layout, ["data", "x_t"] + (["x_t"] if flow else []))
    if flow:
        layout["annotations"][2]["font"]["color"] = SCHEDULE_COLORS["flow"]
    traces = [_on(_scatter(data["data"], "data"), 1)]
    if data.get("density"):
        traces.append(_density_trace(data["density"], 2, True))
    traces.append(_on(_scatter(data["x_t"], "x_t", name=f"x_t (t = {t})"), 2))
    if flow:
        if flow.get("density"):
            traces.append(_density_trace(flow["density"], 3, False))
        traces.append(_on(_scatter(flow["x_t"], "x_t", name=f"flow x_t (t = {_fmt(flow['t'])})", opacity=0.6), 3))
    return _figure(traces, layout, 440 if flow else 560)  # three squares need less height than two


def _density_trace(dens: dict, n: int, showlegend: bool) -> dict:
    """The exact log-density of x_t (a mixture's) as filled contours in the x_t colour, on subplot n."""
    return _on(
        {
            "type": "contour",
            "x": list(dens["x"]),
            "y": list(dens["y"]),
            "z": dens["z"],
            "name": "exact log q(x_t)",
            "colorscale": [[0, "rgba(0,114,178,0)"], [1, "rgba(0,114,178,0.35)"]],
            "showscale": False,
            "contours": {"coloring": "fill", "showlines": True},
            "line": {"width": 1, "color": COLORS["x_t"]},
            "ncontours": 12,
            "hovertemplate": "log q(x_t) = %{z:.2f}<extra></extra>",
            "showlegend": showlegend,
            "legendgroup": "density",
        },
        n,
    )


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


def make_frame_figure(frame: dict) -> go.Figure:
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


# ---------------------------------------------------------------------------------------------- guidance
def _reward_heatmap(grid: dict, showscale: bool, n: int) -> dict:
    tr = {
        "type": "heatmap",
        "x": list(grid["x"]),
        "y": list(grid["y"]),
        "z": grid["z"],
        "colorscale": REWARD_COLORSCALE,
        "showscale": showscale,
        "name": "reward r(x)",
        "zsmooth": "fast",
        "hovertemplate": "r(%{x:.2f}, %{y:.2f}) = %{z:.3g}<extra></extra>",
    }
    if showscale:
        tr["colorbar"] = {"title": {"text": "r(x)"}, "len": 0.8, "thickness": 16}
    return _on(tr, n)


def make_guidance_figure(data: dict) -> go.Figure:
    """Samples side by side over the reward.

    points: {"kind": "points", "reward": optional {"x","y","z"} (grid), "range",
             "panels": [{"key": "base"|"steered"|"target", "title", "points": {"x","y"}, "mean_reward"}], "title"}
    images: {"kind": "images", "panels": [{"key", "title", "z": 2-D list (tiled grid), "mean_reward"}], "title"}
    """
    panels = data["panels"]
    rng = data.get("range", DEFAULT_RANGE)
    titles = []
    for p in panels:
        lines = [p["title"]]
        if p.get("nonfinite"):
            lines.append(
                f"⚠ {p['nonfinite']} samples NaN or infinite" + (" (not drawn)" if data["kind"] == "points" else "")
            )
        if p.get("mean_reward") is not None:
            lines.append(f"mean reward {_fmt(p.get('mean_reward'))}")
        if data["kind"] == "points":
            out = _outside(p["points"], rng)
            if out:
                lines.append(f"{out} of {len(p['points']['x'])} outside the view")
        titles.append("<br>".join(lines))
    if data["kind"] == "images":
        layout = _image_grid(len(panels), titles, hspace=0.04)
        _color_titles(layout, [p["key"] for p in panels])
        traces = [
            _on(_heat(p["z"], IMAGE_COLORSCALE, -1.0, 1.0, p["title"], hover="pixel"), i + 1)
            for i, p in enumerate(panels)
        ]
        return _figure(traces, layout, 620, data.get("title"), legend=False)
    layout = _grid(1, len(panels), titles, hspace=0.05, square=True, rng=rng)
    _color_titles(layout, [p["key"] for p in panels])
    traces = []
    for i, p in enumerate(panels, start=1):
        if data.get("reward"):
            traces.append(_reward_heatmap(data["reward"], showscale=i == len(panels), n=i))
        size = 4 if p["key"] == "target" else _MARKER
        traces.append(_on(_scatter(p["points"], p["key"], name=p["title"].split("<br>")[0], size=size, opacity=0.8), i))
    return _figure(traces, layout, 700, data.get("title"))  # tall enough that the squares fill the width


# ---------------------------------------------------------------------------------------------- adaptation
def make_adaptation_figure(history: dict) -> go.Figure:
    """history: {"step": [...], "reward_mean": [...], "reward_max": [...], "loss": [...],
    "distance_to_data": [...], "distance_to_target": [...] (optional)} -> three panels of live curves."""
    steps = list(history.get("step", []))
    if not steps:
        return make_message_figure(
            "Press Start: reward, loss and distance-to-data curves appear here, one point per step."
        )
    layout = _grid(
        1,
        3,
        ["reward of samples (λ = 0, fixed seed)", "loss (weighted ε-MSE + anchor)", "distance to data (MMD²)"],
        hspace=0.08,
    )
    _color_titles(layout, ["reward", "loss", "distance"])
    mode = "lines+markers" if len(steps) < 40 else "lines"
    traces = []

    def line(key, name, color, dash="solid", n=1):
        if history.get(key):
            traces.append(
                _on(
                    {
                        "type": "scatter",
                        "x": steps,
                        "y": list(history[key]),
                        "mode": mode,
                        "name": name,
                        "line": {"color": color, "width": 3.5, "dash": dash},
                        "marker": {"size": 7},
                        "hovertemplate": f"{name}<br>step %{{x}}<br>%{{y:.4g}}<extra></extra>",
                    },
                    n,
                )
            )

    line("reward_mean", "mean reward", COLORS["reward"])
    line("reward_max", "max reward", COLORS["reward"], "dot")
    line("loss", "loss", COLORS["loss"], n=2)
    line("distance_to_data", "to the data", COLORS["distance"], n=3)
    line("distance_to_target", "to the tilted target", COLORS["target"], "dash", n=3)
    for n in (1, 2, 3):
        layout[_ref(n)[2]]["title"] = {"text": "adaptation step"}
    return _figure(traces, layout, 430)


def make_buffer_figure(data: dict) -> go.Figure:
    """The trajectory buffer (points): {"points": {"x","y"}, "priority": [...], "reward": [...], "range",
    "reward_grid": optional {"x","y","z"}, "capacity": int}; markers coloured by priority."""
    n = len(data["points"]["x"])
    if n == 0:
        return make_message_figure("The buffer is empty: it fills with the best fresh samples as adaptation runs.")
    rng = data.get("range", DEFAULT_RANGE)
    layout = _grid(1, 1, None, square=True, rng=rng)
    traces = []
    if data.get("reward_grid"):
        traces.append(_reward_heatmap(data["reward_grid"], showscale=False, n=1))
    pr, rw = list(data["priority"]), list(data["reward"])
    traces.append(
        {
            "type": "scatter",
            "x": list(data["points"]["x"]),
            "y": list(data["points"]["y"]),
            "mode": "markers",
            "name": "buffer",
            "customdata": [[r, p] for r, p in zip(rw, pr)],
            "marker": {
                "color": pr,
                "colorscale": PRIORITY_COLORSCALE,
                "size": 8,
                "showscale": True,
                "line": {"color": "#333333", "width": 0.5},
                "colorbar": {"title": {"text": "priority"}, "thickness": 16},
            },
            "hovertemplate": "x = %{x:.3f}, y = %{y:.3f}<br>reward %{customdata[0]:.4g}<br>priority %{customdata[1]:.3g}<extra></extra>",
        }
    )
    size, cap = data.get("size", n), data.get("capacity")
    shown = f"{n} best of {size}" if size > n else f"{n}"
    return _figure(
        traces,
        layout,
        560,
        f"buffer: {shown} samples{f' (capacity {cap})' if cap else ''} · colour = priority",
        legend=False,
    )


def make_before_after_figure(data: dict) -> go.Figure:
    """Samples from the same seed before and after adaptation; the schema of ``make_guidance_figure`` with panel
    keys "base" (before) and "steered" (after)."""
    return make_guidance_figure(data)
