"""Figures of schedules and processes: the Schedules tab's 2x2 grid (α, σ, β_t, log-SNR against the shared
normalised time t/T, the rectified flow beside the VP schedules) and the marker plots of α/ᾱ and σ at the current t
(Forward and Reverse tabs).  Pure functions of plain data, re-exported by ``components.figures``."""

from __future__ import annotations

from collections.abc import Sequence

from .figure_json import FigureJSON
from .plotting import (
    COLORS,
    FONT_SIZE,
    SCHEDULE_COLORS,
    _axis,
    _figure,
    _grid,
    _on,
    _ref,
    make_message_figure,
)

__all__ = ["make_schedule_figure", "make_schedule_marker_figure", "make_process_marker_figure"]


# ---------------------------------------------------------------------------------------------- schedules
_SCHEDULE_PANELS = (
    ("alpha", "signal α: √ᾱ_t (VP), 1 − t (flow)", "α"),
    ("noise", "noise σ: √(1 − ᾱ_t) (VP), t (flow)", "σ"),
    ("beta", "β_t: noise added at step t (VP only; log scale)", "β_t"),
    ("log_snr", "log-SNR = 2·log(α / σ)", "log-SNR"),
)


def _schedule_trace(c: dict, key: str, short: str, k: int, dash: str) -> dict:
    """One schedule's curve on panel k + 1, against the shared time axis t/T (flow: its time t, or the even grid
    position u when a shift maps u to t)."""
    name, flow = c["name"], c.get("process") == "flow"
    color = SCHEDULE_COLORS.get(c.get("key", name), COLORS["x_t"])
    x = list(c["u"]) if "u" in c else [round(t / c["T"], 6) for t in c["t"]]
    if flow:
        shifted = c.get("shift", 1.0) != 1.0
        where = "u = %{x:.3f}, t = %{customdata:.3f}" if shifted else "t = %{x:.3f}"
    else:
        where = "t/T = %{x:.3f} (t = %{customdata})"
    return _on(
        {
            "type": "scatter",
            "x": x,
            "y": list(c[key]),
            "customdata": list(c["t"]),
            "mode": "lines",
            "name": name,
            "legendgroup": name,
            "showlegend": k == 0,
            "line": {"color": color, "width": 4.5 if flow else 3.5, "dash": dash},
            "hovertemplate": f"<b>{name}</b><br>{where}<br>{short} = %{{y:.5g}}<extra></extra>",
        },
        k + 1,
    )


def make_schedule_figure(curves: Sequence[dict]) -> FigureJSON:
    """curves: VP [{"name": "linear", "T", "t": [...], "u": t/T, "alpha", "abar", "noise", "beta", "log_snr"}] and
    flow {"name", "process": "flow", "shift", "t", "u", "alpha", "noise", "log_snr"} (``common.flow_curve``).
    A 2x2 grid (α, σ, β_t, log-SNR) against the shared normalised time t/T in [0, 1], one colour per schedule, the
    schedules overlaid; the flow has no β_t."""
    if not curves:
        return make_message_figure("Pick at least one schedule.")
    layout = _grid(2, 2, [p[1] for p in _SCHEDULE_PANELS], hspace=0.1, vspace=0.17)
    traces = []
    for i, c in enumerate(curves):
        dash = "solid" if c.get("process") == "flow" else ("solid", "dash", "dot", "dashdot")[i % 4]
        traces += [
            _schedule_trace(c, key, short, k, dash) for k, (key, _, short) in enumerate(_SCHEDULE_PANELS) if key in c
        ]
    for n in (1, 2):
        layout[_ref(n)[3]]["range"] = [-0.03, 1.03]
    layout[_ref(3)[3]].update(
        type="log", exponentformat="power"
    )  # β spans 1e-4..0.999: a log axis shows every schedule
    for n in (1, 2, 3, 4):
        layout[_ref(n)[2]]["range"] = [0, 1]
    for n in (3, 4):
        layout[_ref(n)[2]]["title"] = {"text": "t/T (flow: t, or u when shifted)"}  # fits a panel 300 px wide
    return _figure(traces, layout, 560)


def _marker_figure(
    curves: Sequence[dict], t, T, title: str, height: int, xlabel: str = "t", yrange: Sequence[float] = (-0.05, 1.08)
) -> FigureJSON:
    """Signal and noise coefficients of one or more processes against t (0..T), a vertical line at t and, per
    process, two markers with their values.  curves: [{"name", "color", "x", "signal", "noise", "symbol" (e.g. "ᾱ"),
    "at": (signal, noise) or None}]; the first curve's markers come last (the reverse tab's frame marker)."""
    traces: list[dict] = []
    many = len(curves) > 1
    for c in curves:
        prefix = f"{c['name']}: " if many else ""
        for key, what, dash in (("signal", f"{c['symbol']}_t (signal)", "solid"), ("noise", "σ_t (noise)", "dash")):
            traces.append(
                {
                    "type": "scatter",
                    "x": list(c["x"]),
                    "y": list(c[key]),
                    "mode": "lines",
                    "name": prefix + what,
                    "line": {"color": c["color"], "width": 3.5, "dash": dash},
                    "hovertemplate": f"{prefix}t = %{{x}}<br>{what.split(' ')[0]} = %{{y:.4g}}<extra></extra>",
                }
            )
    traces.insert(
        2,
        {
            "type": "scatter",
            "x": [t, t],
            "y": list(yrange),
            "mode": "lines",
            "name": f"t = {t}",
            "showlegend": False,
            "line": {"color": COLORS["x_t"], "width": 2},
            "hoverinfo": "skip",
        },
    )
    side = "right" if t < 0.7 * T else "left"
    for c in reversed(curves):
        if c.get("at") is None:
            continue
        a, s = c["at"]
        upper, lower = f"top {side}", f"bottom {side}"  # the larger value's label above, the smaller's below
        traces.append(
            {
                "type": "scatter",
                "x": [t, t],
                "y": [a, s],
                "mode": "markers+text",
                "name": f"{c['name']} at t",
                "showlegend": False,
                "marker": {
                    "color": COLORS["x_t"],
                    "size": 14,
                    "line": {"color": c["color"] if many else "white", "width": 2},
                },
                "text": [f"{c['symbol']}={a:.3f}", f"σ={s:.3f}"],
                "textposition": [upper, lower] if a >= s else [lower, upper],
                "textfont": {"size": FONT_SIZE, "color": c["color"] if many else COLORS["x_t"]},
                "hovertemplate": f"{c['name'] + ', ' if many else ''}t = %{{x}}<br>%{{y:.4g}}<extra></extra>",
            }
        )
    layout = {"xaxis": _axis(title={"text": xlabel}, range=[0, T * 1.02]), "yaxis": _axis(range=list(yrange))}
    return _figure(traces, layout, height, title)


def make_schedule_marker_figure(
    curve: dict, t, title: str | None = None, height: int = 320, solid: str = "ᾱ"
) -> FigureJSON:
    """curve: {"name", "t": [...], "abar": [...], "noise": [...], "abar_at", "noise_at"}; the solid curve (ᾱ_t, or
    a flow's α_t with ``solid="α"``) and σ_t against t with the current t marked (a vertical line and two markers in
    the x_t colour)."""
    T = max(curve["t"]) if curve["t"] else 1
    a, s = curve.get("abar_at"), curve.get("noise_at")
    color = SCHEDULE_COLORS.get(curve["name"], SCHEDULE_COLORS.get(curve["name"].split()[0], COLORS["x_t"]))
    c = {
        "name": curve["name"],
        "color": color,
        "x": curve["t"],
        "signal": curve["abar"],
        "noise": curve["noise"],
        "symbol": solid,
        "at": None if a is None or s is None else (a, s),
    }
    return _marker_figure([c], t, T, title or f"{curve['name']} schedule · t = {t} of {T}", height)


def make_process_marker_figure(
    curves: Sequence[dict], t: int, T: int, title: str | None = None, height: int = 400
) -> FigureJSON:
    """The coefficients α(t), σ(t) of x_t = α x₀ + σ ε for several processes against the VP step t = 0..T, with t
    marked: curves [{"name", "key" (colour: a schedule name or "flow"), "t": [...], "alpha": [...], "noise": [...],
    "alpha_at", "noise_at"}]; a flow curve's "t" is its own time in [0, 1] and is drawn at t·T (the same slider)."""
    cs = []
    for c in curves:
        scale = T if c.get("process") == "flow" else 1
        at = (c["alpha_at"], c["noise_at"]) if c.get("alpha_at") is not None else None
        cs.append(
            {
                "name": c["name"],
                "color": SCHEDULE_COLORS.get(c.get("key", c["name"]), COLORS["x_t"]),
                "x": [round(v * scale, 6) for v in c["t"]],
                "signal": c["alpha"],
                "noise": c["noise"],
                "symbol": "α",
                "at": at,
            }
        )
    # room above 1 and below 0 for the value labels of two processes
    return _marker_figure(
        cs,
        t,
        T,
        title or f"α and σ at t = {t} of {T}",
        height,
        "t" + (" (the flow's time is t/T)" if len(cs) > 1 else ""),
        (-0.15, 1.2),
    )
