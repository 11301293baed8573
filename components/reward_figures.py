"""Samples side by side over a heatmap of the reward: the guidance tab's unguided, guided and tilted-target panels and
the adaptation tab's before/after panels (``make_guidance_figure``), and the reward heatmap itself
(``reward_heatmap``, also under the adaptation buffer).  Pure: plain data in, a plotly figure out; the house style
comes from components/plotting.py."""

from __future__ import annotations

from .figure_json import FigureJSON
from .plotting import (
    _MARKER,
    DEFAULT_RANGE,
    IMAGE_COLORSCALE,
    REWARD_COLORSCALE,
    _color_titles,
    _figure,
    _fmt,
    _grid,
    _heat,
    _image_grid,
    _on,
    _outside,
    _scatter,
)

__all__ = ["reward_heatmap", "make_guidance_figure"]


def reward_heatmap(grid: dict, showscale: bool, n: int) -> dict:
    """The reward r(x) on a grid {"x", "y", "z"} as a heatmap trace of subplot ``n`` (with its colour bar when
    ``showscale``)."""
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


def make_guidance_figure(data: dict) -> FigureJSON:
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
        return _figure(traces, layout, 480, data.get("title"), legend=False)
    layout = _grid(1, len(panels), titles, hspace=0.05, square=True, rng=rng)
    _color_titles(layout, [p["key"] for p in panels])
    traces = []
    for i, p in enumerate(panels, start=1):
        if data.get("reward"):
            traces.append(reward_heatmap(data["reward"], showscale=i == len(panels), n=i))
        size = 4 if p["key"] == "target" else _MARKER
        traces.append(_on(_scatter(p["points"], p["key"], name=p["title"].split("<br>")[0], size=size, opacity=0.8), i))
    return _figure(traces, layout, 440, data.get("title"))  # the squares fill a column of about 800 px
