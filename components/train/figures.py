"""Tab 9, train: its plotly figures (pure builders, like components/figures.py): the live loss curve and a model's
samples (or a dataset's preview: the points of a drawing, a grid of uploaded images)."""

from __future__ import annotations

from ..figure_json import FigureJSON
from ..plotting import (
    COLORS,
    DEFAULT_RANGE,
    IMAGE_COLORSCALE,
    _axis,
    _figure,
    _grid,
    _heat,
    _image_grid,
    _scatter,
    make_message_figure,
)

__all__ = ["make_loss_figure", "make_samples_figure"]


def _line(x, y, name: str, width: float, what: str, opacity: float = 1.0) -> dict:
    """One loss curve (the loss colour; ``width`` tells the batch loss from its average)."""
    return {
        "type": "scatter",
        "x": x,
        "y": list(y),
        "mode": "lines",
        "name": name,
        "line": {"color": COLORS["loss"], "width": width},
        "opacity": opacity,
        "hovertemplate": f"step %{{x}}<br>{what} %{{y:.4f}}<extra></extra>",
    }


def make_loss_figure(history: dict) -> FigureJSON:
    """history: {"step": [...], "loss": [...], "loss_smooth": optional [...], "ylabel", "title": optional (the
    prediction type's loss; default the ε-MSE)} -> the live training loss."""
    steps = list(history.get("step", []))
    if not steps:
        return make_message_figure("Press Train: the loss curve appears here as the model learns.")
    traces = [_line(steps, history["loss"], "batch loss", 1, "loss", opacity=0.4)]
    if history.get("loss_smooth"):
        traces.append(_line(steps, history["loss_smooth"], "smoothed", 3.5, "smoothed loss"))
    ylabel, title = history.get("ylabel", "ε-MSE"), history.get("title", "L = E |ε − ε_θ(x_t, t)|²")
    layout = {
        "xaxis": _axis(title={"text": "training step"}),
        "yaxis": _axis(title={"text": ylabel}, rangemode="tozero"),
    }
    return _figure(traces, layout, 460, title)


def make_samples_figure(data: dict) -> FigureJSON:
    """Samples of a model: {"kind": "points", "points": {"x","y"}, "data": optional {"x","y"}, "title", "range"}
    or {"kind": "images", "z": 2-D list, "title"}.  Without "points", the data alone (a dataset's preview)."""
    title = data.get("title")
    if data["kind"] == "images":
        layout = _image_grid(1, [""])
        name = data.get("name", "sample")
        return _figure(
            [_heat(data["z"], IMAGE_COLORSCALE, -1.0, 1.0, name, hover="pixel")], layout, 460, title, legend=False
        )
    traces = []
    if data.get("data"):
        traces.append(_scatter(data["data"], "data", size=4, opacity=0.35 if data.get("points") else 0.6))
    if data.get("points"):
        traces.append(_scatter(data["points"], "base", name="model samples"))
    layout = _grid(1, 1, None, square=True, rng=data.get("range", DEFAULT_RANGE))
    return _figure(traces, layout, 460, title)
