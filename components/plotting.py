"""The house style and plumbing under ``components.figures``: one colour per quantity, projector-sized text and
markers, and helpers that assemble plotly figures as plain dicts.

Speed: a reverse-diffusion run streams ~30 figures of thousands of points; plotly's per-element validation cost
~0.4 s per figure, so figures are assembled as plain dicts (subplot domains computed by ``_grid``) and kept as those
dicts in a ``FigureJSON`` (components/figure_json.py), which writes them as plotly would, without plotly's objects.
The unit tests re-validate every builder's output with plotly and check it equals plotly's JSON.
Traces are built from Python lists (plotly 7 would encode numpy arrays as base64 blobs that some clients cannot read).

One colour per quantity, in every tab (``COLORS``): x_t is always blue, the predicted x0 green, the predicted noise
vermillion, the data grey, base-model samples sky blue, reward-steered samples wine, the reward a gold colour
scale.  Sizes are for a projector: 16 px text, thick lines, big markers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .figure_json import FigureJSON

# The same colour for the same quantity everywhere (Okabe-Ito based, colour-blind safe).
COLORS: dict[str, str] = {
    "data": "#7F7F7F",  # real data x0 ~ p(x0)
    "x_t": "#0072B2",  # the noisy state x_t
    "x0_pred": "#009E73",  # the model's predicted clean sample x0_hat(x_t)
    "eps": "#D55E00",  # the predicted noise eps_theta(x_t, t)
    "score": "#E69F00",  # the score field -eps / sigma_t
    "velocity": "#CC79A7",  # the reverse velocity field -v_hat (v-prediction and flow models)
    "ideal": "#AA4499",  # the exact (Bayes-optimal) denoiser of a known mixture
    "base": "#56B4E9",  # samples of the base model (unguided, before adaptation)
    "steered": "#882255",  # samples steered by the reward (guided, after adaptation)
    "target": "#222222",  # the tilted target p(x) exp(lambda r(x))
    "reward": "#B8860B",  # reward values (curves); the heatmap uses REWARD_COLORSCALE
    "loss": "#6A3D9A",  # training / adaptation loss
    "distance": "#8C564B",  # distances between sample sets (MMD^2)
    "path": "#111111",  # highlighted particle paths
}
SCHEDULE_COLORS: dict[str, str] = {
    "linear": "#332288",
    "cosine": "#CC6677",
    "sigmoid": "#117733",
    "custom": "#44AA99",
    "flow": "#999933",
}  # the rectified-flow path (Schedules and Forward tabs, player)
LABELS: dict[str, str] = {
    "data": "data x₀",
    "x_t": "x_t",
    "x0_pred": "predicted x₀",
    "eps": "predicted noise ε̂",
    "score": "score −ε̂/σ_t",
    "ideal": "ideal model",
    "base": "base model",
    "steered": "steered",
    "target": "target p·e^(λr)",
}
REWARD_COLORSCALE = [[0.0, "#FFFFFF"], [0.5, "#F6E3A1"], [1.0, "#D4A017"]]
PRIORITY_COLORSCALE = "Plasma"
IMAGE_COLORSCALE = [[0.0, "#FFFFFF"], [1.0, "#000000"]]  # -1 (background) white, +1 (ink) black
EPS_COLORSCALE = "RdBu"
FONT_SIZE = 16
DEFAULT_RANGE = (-3.5, 3.5)
_MARKER = 6
_GRID_COLOR = "#E6E6E6"


# ---------------------------------------------------------------------------------------------- plumbing
def _axis(**kw) -> dict:
    base = {
        "gridcolor": _GRID_COLOR,
        "zeroline": False,
        "linecolor": "#BBBBBB",
        "showline": True,
        "ticks": "outside",
        "tickcolor": "#BBBBBB",
        "automargin": True,
        "title": {"font": {"size": FONT_SIZE}},
    }
    base.update(kw)
    return base


def _ref(n: int) -> tuple[str, str, str, str]:
    """Subplot n (1-based) -> (trace xref, trace yref, layout x key, layout y key)."""
    s = "" if n == 1 else str(n)
    return f"x{s}", f"y{s}", f"xaxis{s}", f"yaxis{s}"


def _grid(
    rows: int,
    cols: int,
    titles: Sequence[str] | None = None,
    hspace: float = 0.06,
    vspace: float = 0.12,
    square: bool = False,
    rng: Sequence[float] | None = None,
) -> dict:
    """Layout dict for a rows x cols grid of subplots (numbered left to right, top to bottom), with titles."""
    w = (1 - hspace * (cols - 1)) / cols
    h = (1 - vspace * (rows - 1)) / rows
    layout: dict[str, Any] = {"annotations": []}
    if titles is not None and cols >= 3:  # three titles side by side in a column of about 800 px
        titles = [_fold(t, 26) if t else t for t in titles]
    for r in range(rows):
        for c in range(cols):
            n = r * cols + c + 1
            xr, yr, xk, yk = _ref(n)
            xd = [round(c * (w + hspace), 6), round(c * (w + hspace) + w, 6)]
            top = 1 - r * (h + vspace)
            yd = [round(max(0.0, top - h), 6), round(min(1.0, top), 6)]
            xa, ya = _axis(domain=xd, anchor=yr), _axis(domain=yd, anchor=xr)
            if rng is not None:
                xa["range"], ya["range"] = list(rng), list(rng)
            if square:
                xa["constrain"] = ya["constrain"] = "domain"
                ya.update(scaleanchor=xr, scaleratio=1)
            layout[xk], layout[yk] = xa, ya
            if titles is not None and n <= len(titles) and titles[n - 1]:
                layout["annotations"].append(  # anchored to its panel: it follows the panel when the page
                    {  # stacks a figure's panels on a narrow screen (assets/fit.js)
                        "text": titles[n - 1],
                        "x": 0.5,
                        "y": 1,
                        "xref": f"{xr} domain",
                        "yref": f"{yr} domain",
                        "xanchor": "center",
                        "yanchor": "bottom",
                        "showarrow": False,
                        "yshift": 4,
                        "font": {"size": FONT_SIZE + 1},
                    }
                )
    return layout


def _figure(traces: list[dict], layout: dict, height: int, title: str | None = None, legend: bool = True) -> FigureJSON:
    if title:  # a figure half a column wide (the Train tab's two) still shows its whole title
        title = _fold(title, 40)
    extra = title.count("<br>") if title else 0  # title lines beyond the first
    top = 96 + 26 * extra if title else 56
    base = {
        "height": height,
        "font": {"size": FONT_SIZE, "family": "Arial, Helvetica, sans-serif"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "margin": {"l": 60, "r": 30, "t": top, "b": 96 if legend else 50},
        "showlegend": legend,
        "hoverlabel": {"font": {"size": FONT_SIZE}},
        "hovermode": "closest",
        # the legend sits at the very bottom, below the axis titles, where it never covers a subplot title
        "legend": {
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 0,
            "yanchor": "bottom",
            "yref": "container",
            "font": {"size": FONT_SIZE - 1},
        },
    }
    if title:
        base["title"] = {
            "text": title,
            "font": {"size": FONT_SIZE + 4},
            "x": 0.01,
            "xanchor": "left",
            "y": 0.985,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 24 * extra},  # plotly lifts a title of several lines by all but one: pushed back down
        }
    base.update(layout)
    if "xaxis" not in base:
        base["xaxis"], base["yaxis"] = _axis(), _axis()
    return FigureJSON(spec={"data": traces, "layout": base})


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}g}"


def _outside(pts: dict, rng: Sequence[float]) -> int:
    """How many points lie outside the square view (or are not finite)."""
    lo, hi = rng
    return sum(1 for x, y in zip(pts["x"], pts["y"]) if x is None or y is None or not (lo <= x <= hi and lo <= y <= hi))


def _on(trace: dict, n: int) -> dict:
    """Place a trace on subplot n."""
    xr, yr, _, _ = _ref(n)
    trace["xaxis"], trace["yaxis"] = xr, yr
    return trace


def _scatter(
    pts: dict,
    key: str,
    name: str | None = None,
    size: int = _MARKER,
    opacity: float = 0.75,
    showlegend: bool = True,
    color: str | None = None,
) -> dict:
    label = name or LABELS.get(key, key)
    return {
        "type": "scatter",
        "x": list(pts["x"]),
        "y": list(pts["y"]),
        "mode": "markers",
        "name": label,
        "marker": {
            "color": color or COLORS.get(key, "#333333"),
            "size": size,
            "opacity": opacity,
            "line": {"width": 0},
        },
        "showlegend": showlegend,
        "legendgroup": label,
        "hovertemplate": f"{label}<br>x = %{{x:.3f}}<br>y = %{{y:.3f}}<extra></extra>",
    }


def _heat(z, colorscale, zmin: float, zmax: float, name: str, hover: str = "value") -> dict:
    return {
        "type": "heatmap",
        "z": z,
        "colorscale": colorscale,
        "zmin": zmin,
        "zmax": zmax,
        "showscale": False,
        "name": name,
        "hovertemplate": f"{name}<br>row %{{y}}, column %{{x}}<br>{hover} = %{{z:.3f}}<extra></extra>",
    }


def _image_grid(n: int, titles: Sequence[str], hspace: float = 0.02) -> dict:
    """Layout for n image panels in one row: hidden axes, y downwards, square pixels."""
    layout = _grid(1, n, titles, hspace=hspace)
    for i in range(1, n + 1):
        xr, _, xk, yk = _ref(i)
        layout[xk].update(visible=False, constrain="domain", showgrid=False)
        layout[yk].update(visible=False, autorange="reversed", scaleanchor=xr, constrain="domain", showgrid=False)
    return layout


def _color_titles(layout: dict, keys: Sequence[str | None]) -> None:
    for ann, key in zip(layout["annotations"], keys):
        if key:
            ann["font"] = {"size": FONT_SIZE + 1, "color": COLORS.get(key, "#333333")}


def _fold(text: str, width: int) -> str:
    """Break each line of a title that is longer than ``width`` characters before its last parenthesis ("samples after
    30 steps<br>(euler 25, seed 0)"): plotly does not wrap titles, and a title wider than its panel is cut off."""
    lines = []
    for line in text.split("<br>"):
        cut = line.rfind(" (")
        lines.append(line[:cut] + "<br>" + line[cut + 1 :] if len(line) > width and cut > 0 else line)
    return "<br>".join(lines)


def _wrap(text: str, width: int = 44) -> str:
    """Break a message into lines of at most ``width`` characters (plotly does not wrap annotations)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def make_message_figure(text: str, height: int = 360) -> FigureJSON:
    """An empty figure that says what to do (instead of a blank plot); the text is wrapped to fit half a screen."""
    layout = {
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "annotations": [
            {
                "text": _wrap(text),
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
                "font": {"size": FONT_SIZE + 2, "color": "#555555"},
            }
        ],
    }
    return _figure([], layout, height, legend=False)
