"""The forward tab's views: the data and its noised copies (VP, and the flow beside it) as a figure, the schedule
with a marker at t, and the numbers at t in words."""

from __future__ import annotations

import math

from ..figure_json import FigureJSON
from ..plotting import (
    COLORS,
    DEFAULT_RANGE,
    IMAGE_COLORSCALE,
    SCHEDULE_COLORS,
    _color_titles,
    _figure,
    _fmt,
    _grid,
    _heat,
    _image_grid,
    _on,
    _scatter,
)
from ..schedule_figures import make_process_marker_figure
from ..summaries import fmt
from .handlers import Forward

__all__ = ["make_forward_figure", "forward_text", "outputs"]


def make_forward_figure(data: dict) -> FigureJSON:
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


def forward_text(s: dict) -> str:
    t, abar = s["t"], s["abar_t"]
    if t == 0:
        return "t = 0: x_t is the clean data itself."
    share = f"{abar:.1%}" if abar >= 0.001 else f"{abar:.1e}"
    verdict = (
        "mostly signal"
        if abar > 0.7
        else "signal and noise alike"
        if abar > 0.3
        else "mostly noise"
        if abar > 0.01
        else "practically pure noise: q(x_t) ≈ N(0, I)"
    )
    text = (
        f"At t = {t} of {s['T']} ({s['schedule']}): ᾱ_t = {fmt(abar)}, so {share} of the variance is signal and "
        f"σ_t = {fmt(s['sigma_t'])}: {verdict}. The noised cloud has std {fmt(s['x_t_std'])}."
    )
    f = s.get("flow")
    if f:
        a, sg = f["alpha_t"], f["sigma_t"]
        text += (
            f"\n\nRectified flow at t = {fmt(f['t'])}: α = {fmt(a)}, σ = {fmt(sg)} (α + σ = 1), so "
            f"{a * a / (a * a + sg * sg):.1%} of its variance is signal; α² + σ² = {fmt(a * a + sg * sg)}, and its "
            f"cloud has std {fmt(f['x_t_std'])}. Each point sits on the straight line from its x₀ to its ε."
        )
    return text


def outputs(f: Forward) -> tuple:
    """(figure, schedule figure with the marker at t, summary, summary in words): what /forward answers."""
    s = f.summary
    curves = [{**f.curve, "key": s["schedule"]}] + ([f.curve["flow"]] if "flow" in f.curve else [])
    title = f"α and σ at t = {s['t']} of {s['T']}" + (
        f" (flow: t/T = {s['flow']['t']:.3g})" if "flow" in s else f" ({s['schedule']})"
    )
    marker = make_process_marker_figure(curves, s["t"], s["T"], title)
    return make_forward_figure(f.data), marker, s, forward_text(s)
