"""Tab 4, compare: the quality-against-NFE figure (pure): sample quality (MMD² to fresh data) against NFE, one line
per model and solver, with the two runs just made marked.

Each point of a curve is the mean of several independent draws with its standard error (adiff.eval.quality), drawn
with an error bar.  The log axis cannot show 0, and a mean within 2 SE of 0 (negative ones included: the unbiased
estimate scatters around 0) says only "as good as data at this sample size": such points, the data-vs-data floor
among them, are drawn in a labelled "≈ 0" band under the lowest resolved error bar, never at a made-up small value
that would rank them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from adiff.eval.quality import NOISE_SE, mean_se, within_noise

from ..figure_json import FigureJSON
from ..plotting import FONT_SIZE, _axis, _figure

__all__ = ["make_quality_figure", "SOLVER_COLORS", "BAND_NAME", "FLOOR_NAME", "PLOT_PX"]

SOLVER_COLORS = {"ddpm": "#7F7F7F", "ddim": "#0072B2", "dpmpp_2m": "#009E73", "euler": "#E69F00", "heun": "#CC79A7"}
BAND_NAME = f"≈ 0 (within {NOISE_SE:g} SE)"
FLOOR_NAME = "data vs data"
PLOT_PX = 330  # the plotting area's height; the legend's rows come on top (see _legend_rows)
_DASHES = ("solid", "dash", "dot")
_NARROW_PX = 250  # the legend's width on a 390 px phone screen (it starts at the plot's left edge)
_ROW_PX = 25  # one legend row at FONT_SIZE - 1
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _fmt(v: float) -> str:
    return f"{v:.1e}" if math.isfinite(v) else "n/a"


def _point(mean: float, se: float | None) -> tuple[bool, str]:
    """(within noise of 0?, the figure in words for the hover)."""
    se = se if se is not None and math.isfinite(se) else None
    noise = within_noise(mean, se) or (se is None and mean <= 0)
    words = f"{_fmt(mean)} ± {_fmt(se)}" if se is not None else f"{_fmt(mean)} (one draw)"
    return noise, words + (" · within noise of 0" if noise else "")


def _by_solver(curves: Sequence[dict]):
    """(curve index, source, solver, rows sorted by NFE) for every line to draw."""
    for ci, c in enumerate(curves):
        by: dict[str, list] = {}
        for r in c["rows"]:
            by.setdefault(r["solver"], []).append(r)
        for name, rows in by.items():
            yield ci, c["source"], name, sorted(rows, key=lambda r: r["nfe"])


def _run_noise(curves: Sequence[dict], source: str) -> float | None:
    """The spread of one draw (the floor's draws' standard deviation) of the curve of ``source``: a run is one draw."""
    for c in curves:
        if c["source"] == source and len(c.get("floor", [])) > 1:
            _, se = mean_se(c["floor"])
            return se * math.sqrt(len(c["floor"]))
    return None


def _resolved_lows(curves: Sequence[dict], runs: Sequence[tuple]) -> list[float]:
    """The lower ends (mean − SE) of every point that is not within noise of 0: the band goes under them."""
    lows = []
    for _, _, _, rows in _by_solver(curves):
        for r in rows:
            se = r.get("mmd2_se")
            if not _point(r["mmd2"], se)[0]:
                lows.append(r["mmd2"] - (se if se is not None and math.isfinite(se) else 0.0))
    for _, source, _, _, v in runs:
        if v is not None and not _point(v, _run_noise(curves, source))[0]:
            lows.append(v)
    return [v for v in lows if v > 0]


def _band(lows: Sequence[float]) -> tuple[float, float, float]:
    """(bottom, centre, top) of the ≈ 0 band: 0.2 to 0.6 decades under the lowest resolved error bar."""
    top = (min(lows) if lows else 4e-4) / 10**0.2
    bottom = top / 10**0.4
    return bottom, math.sqrt(bottom * top), top


def _y_axis(band: tuple[float, float, float], highs: Sequence[float]) -> dict:
    """A log axis from under the band to over the highest error bar, its ticks at 1, 2, 5 × 10^k above the band
    (decades only when it spans more than 2.5) and "≈ 0" at the band."""
    bottom, centre, top = band
    hi = max([v for v in highs if v > 0] + [top * 10])
    lo_dec, hi_dec = math.log10(bottom) - 0.08, math.log10(hi) + 0.12
    mantissas = (1,) if hi_dec - math.log10(top) > 2.5 else (1, 2, 5)
    vals, text = [centre], ["≈ 0"]
    for k in range(math.floor(math.log10(top)), math.ceil(hi_dec) + 1):
        for m in mantissas:
            v = m * 10.0**k
            if top * 10**0.15 <= v <= 10**hi_dec:
                vals.append(v)
                exp = str(k).translate(_SUPERSCRIPT)
                text.append(f"10{exp}" if m == 1 else f"{m}·10{exp}")
    return _axis(
        type="log",
        title={"text": "MMD² to fresh data"},
        range=[lo_dec, hi_dec],
        tickmode="array",
        tickvals=vals,
        ticktext=text,
    )


def _curve_trace(ci: int, source: str, name: str, rows: list[dict], centre: float) -> dict:
    ys, errs, symbols, custom = [], [], [], []
    for r in rows:
        se = r.get("mmd2_se")
        noise, words = _point(r["mmd2"], se)
        ys.append(centre if noise else r["mmd2"])
        errs.append(0.0 if noise or se is None or not math.isfinite(se) else se)
        symbols.append("circle-open" if noise else "circle")
        custom.append([r["steps"], words, len(r.get("mmd2_draws", [])) or 1])
    color = SOLVER_COLORS.get(name, "#333")
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": f"{source} · {name}",
        "x": [r["nfe"] for r in rows],
        "y": ys,
        "error_y": {"type": "data", "array": errs, "visible": True, "color": color, "thickness": 1.5, "width": 4},
        "customdata": custom,
        "line": {"color": color, "width": 2.5, "dash": _DASHES[ci % len(_DASHES)]},
        "marker": {"size": 8, "symbol": symbols, "line": {"color": color, "width": 2}},
        "hovertemplate": f"{source} · {name}<br>NFE %{{x}} (%{{customdata[0]}} steps)<br>"
        "MMD² = %{customdata[1]}<br>mean ± SE of %{customdata[2]} draws<extra></extra>",
    }


def _x_range(lines: list, runs: Sequence[tuple]) -> list[float]:
    """log10 NFE from 4 to past the largest NFE drawn (at least 158: the shipped curves end at 100)."""
    most = max([r["nfe"] for *_, rows in lines for r in rows] + [run[3] for run in runs] + [100])
    return [0.6, math.log10(most) + 0.2]


def _band_trace(band: tuple[float, float, float], xr: list[float]) -> dict:
    bottom, _, top = band
    x0, x1 = (10**v for v in xr)
    return {
        "type": "scatter",
        "mode": "lines",
        "name": BAND_NAME,
        "x": [x0, x1, x1, x0, x0],
        "y": [bottom, bottom, top, top, bottom],
        "fill": "toself",
        "fillcolor": "rgba(0, 0, 0, 0.07)",
        "line": {"width": 0},
        "hoverinfo": "skip",
    }


def _floor_trace(curves: Sequence[dict], centre: float, xr: list[float]) -> dict | None:
    """The data against fresh data: 0 in expectation; its mean ± SE over the draws (the first curve's)."""
    c = next((c for c in curves if len(c.get("floor", [])) > 1), None)
    if c is None:
        return None
    mean, se = mean_se(c["floor"])
    noise, words = _point(mean, se)
    y = centre if noise else mean
    x0, x1 = (10**v for v in xr)
    return {
        "type": "scatter",
        "mode": "lines",
        "name": FLOOR_NAME,
        "x": [x0, x1],
        "y": [y, y],
        "line": {"color": "#555", "width": 2, "dash": "dot"},
        "hovertemplate": f"two fresh draws of the data ({c['n']} points, {len(c['floor'])} draws): MMD² = {words}"
        "<extra></extra>",
    }


def _run_trace(curves: Sequence[dict], run: tuple, centre: float) -> dict:
    side, source, solver, nfe, v = run  # A's letter above its star, B's below: the two often share a point
    noise_sd = _run_noise(curves, source)
    noise, words = _point(v, noise_sd)
    spread = f"<br>one draw; the spread of one draw is about {_fmt(noise_sd)}" if noise_sd else ""
    return {
        "type": "scatter",
        "mode": "markers+text",
        "name": f"{side}: {source} · {solver}",
        "x": [nfe],
        "y": [centre if noise else v],
        "text": [side],
        "showlegend": False,  # the letter beside the star names it; the status table above says A and B
        "textposition": "bottom center" if side == "B" else "top center",
        "marker": {
            "symbol": "star",
            "size": 18,
            "color": SOLVER_COLORS.get(solver, "#333"),
            "line": {"color": "black", "width": 1.5},
        },
        "hovertemplate": f"run {side}: NFE %{{x}}, MMD² = {words}{spread}<extra></extra>",
    }


def _legend_rows(names: Sequence[str], width: int = _NARROW_PX) -> int:
    """Rows a horizontal legend of these entries takes at ``width`` px (about 0.55 em a character, 40 px for the
    symbol and gap): the figure grows by that much, so the plot keeps PLOT_PX on a phone."""
    rows, used = 1, 0.0
    for name in names:
        w = 40 + 0.55 * (FONT_SIZE - 1) * len(name)
        if used and used + w > width:
            rows, used = rows + 1, 0.0
        used += w
    return rows


def make_quality_figure(curves: Sequence[dict], runs: Sequence[tuple], height: int | None = None) -> FigureJSON:
    """curves: [{"source", "n", "rows": [{"solver", "steps", "nfe", "mmd2", "mmd2_se", "mmd2_draws"}], "floor": [MMD²
    of data vs data per draw]}] (adiff.eval.quality.quality_against_nfe plus the source's name); runs: [(side, source,
    solver, nfe, mmd2 or None)], one draw each, marked as large stars.  Log-log axes, error bars of ± 1 SE; points
    within noise of 0 (adiff.eval.quality.within_noise; for a run, against the spread of one floor draw) are drawn
    as open circles in the labelled ≈ 0 band.  ``height`` defaults to PLOT_PX plus the legend's rows on a phone."""
    runs = [r for r in runs if r[4] is not None]
    band = _band(_resolved_lows(curves, runs))
    lines = list(_by_solver(curves))
    xr = _x_range(lines, runs)
    traces = [_curve_trace(ci, source, name, rows, band[1]) for ci, source, name, rows in lines]
    if traces:
        floor = _floor_trace(curves, band[1], xr)
        traces = [_band_trace(band, xr)] + ([floor] if floor else []) + traces
    traces += [_run_trace(curves, run, band[1]) for run in runs]
    if not traces:
        title = "Quality against NFE: for 2-D models with known data (no MMD² for images)"
    else:
        title = "Quality against NFE"
    highs = [r["mmd2"] + (r.get("mmd2_se") or 0.0) for *_, rows in lines for r in rows] + [r[4] for r in runs]
    legend = _legend_rows([t["name"] for t in traces if t.get("showlegend", True)])
    ticks = [v for v in (5, 10, 20, 50, 100, 200, 500, 1000) if v <= 10 ** xr[1]]
    layout = {
        "xaxis": _axis(type="log", title={"text": "NFE (network calls)"}, range=xr, tickmode="array", tickvals=ticks),
        "yaxis": _y_axis(band, highs),
        "margin": {"l": 70, "r": 20, "t": 60, "b": 80 + _ROW_PX * legend},
        # right under the axis title (on a wide screen the rows saved are blank space below it, not a squeezed plot)
        "legend": {
            "orientation": "h",
            **{"x": 0, "xanchor": "left", "y": -75 / PLOT_PX, "yref": "paper", "yanchor": "top"},
            "font": {"size": FONT_SIZE - 1},
        },
    }
    return _figure(traces, layout, height or 60 + PLOT_PX + 80 + _ROW_PX * legend, title)
