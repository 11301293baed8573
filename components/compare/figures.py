"""Tab 4, compare: the quality-against-NFE figure (pure): sample quality (MMD² to fresh data) against NFE, one line
per model and solver, with the two runs just made marked."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from ..plotting import _axis, _figure, _fmt

__all__ = ["make_quality_figure", "SOLVER_COLORS", "MMD_FLOOR"]

SOLVER_COLORS = {"ddpm": "#7F7F7F", "ddim": "#0072B2", "dpmpp_2m": "#009E73", "euler": "#E69F00", "heun": "#CC79A7"}
MMD_FLOOR = 1e-5  # values below (the unbiased estimate can be <= 0) are drawn here, on the log axis
_DASHES = ("solid", "dash", "dot")


def make_quality_figure(curves: Sequence[dict], runs: Sequence[tuple], height: int = 420) -> go.Figure:
    """curves: [{"source", "rows": [{"solver", "steps", "nfe", "mmd2"}], "floor": [MMD² of data vs data, ...]}];
    runs: [(side, source, solver, nfe, mmd2 or None)] marked as large symbols.  Log-log axes; MMD² ≤ 1e-5 (or below
    0, which the unbiased estimate allows) is drawn at 1e-5 and its hover gives the value."""
    traces = []
    for ci, c in enumerate(curves):
        by_solver: dict[str, list] = {}
        for r in c["rows"]:
            by_solver.setdefault(r["solver"], []).append(r)
        for name, rows in by_solver.items():
            rows = sorted(rows, key=lambda r: r["nfe"])
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{c['source']} · {name}",
                    "x": [r["nfe"] for r in rows],
                    "y": [max(r["mmd2"], MMD_FLOOR) for r in rows],
                    "customdata": [[r["steps"], r["mmd2"]] for r in rows],
                    "line": {
                        "color": SOLVER_COLORS.get(name, "#333"),
                        "width": 2.5,
                        "dash": _DASHES[ci % len(_DASHES)],
                    },
                    "marker": {"size": 7},
                    "hovertemplate": f"{c['source']} · {name}<br>NFE %{{x}} (%{{customdata[0]}} steps)<br>"
                    "MMD² = %{customdata[1]:.2e}<extra></extra>",
                }
            )
    floors = [abs(v) for c in curves for v in c.get("floor", [])]
    if floors:
        top = max(max(floors), MMD_FLOOR)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "data vs data (noise of one figure)",
                "x": [1, 1000],
                "y": [top, top],
                "line": {"color": "#999", "width": 1.5, "dash": "dot"},
                "hovertemplate": f"two fresh draws of the data: |MMD²| up to {top:.1e}<extra></extra>",
            }
        )
    for side, source, solver, nfe, v in runs:
        if v is None:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": f"{side}: {source} · {solver}",
                "x": [nfe],
                "y": [max(v, MMD_FLOOR)],
                "text": [side],
                "textposition": "top center",
                "marker": {
                    "symbol": "star",
                    "size": 18,
                    "color": SOLVER_COLORS.get(solver, "#333"),
                    "line": {"color": "black", "width": 1.5},
                },
                "hovertemplate": f"run {side}: NFE %{{x}}, MMD² = {_fmt(v, 3)}<extra></extra>",
            }
        )
    if not traces:
        title = "Quality against NFE: for 2-D models with known data (no MMD² for images)"
    else:
        title = "Quality against NFE: MMD² to fresh data (lower is better; ≈ 0 = as good as data)"
    layout = {
        "xaxis": _axis(type="log", title={"text": "NFE (network calls)"}, range=[0.6, 3.05]),
        "yaxis": _axis(type="log", title={"text": "MMD² to data"}, exponentformat="power"),
    }
    return _figure(traces, layout, height, title)
