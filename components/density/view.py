"""The density tab's views: log-densities on the grid in, the side-by-side heatmaps and the words out (pure; no
widgets, no sessions).

* ``figure``: the model's log p_theta and the data's log p on the plot grid, on one colour scale that runs from the
  top of the two maps down to ``LIMITS.density_clip_nats`` below it, and their difference where either shows
  (both clipped there, so it is what the eye compares: red where the model puts density the data does not have).
  Rows not computed yet are left blank (the map fills in while it streams).
* ``off_data_mass``: the share of the model's probability (a Riemann sum over the grid) that lies where the data's
  density is below that floor: the mass the model puts between the modes.
* ``nll_text`` / ``done_text`` / ``progress_text``: the held-out NLL beside the data's own, and a run, in words.
"""

from __future__ import annotations

import math

import torch

from ..arrays import finite_list
from ..figure_json import FigureJSON
from ..limits import LIMITS
from ..plotting import _figure, _grid, _on
from ..summaries import DETECTABLE_SE, fmt

__all__ = ["DATA_KINDS", "figure", "off_data_mass", "nll_text", "done_text", "progress_text"]

DENSITY_COLORSCALE = "Viridis"  # log p: dark far below the top, yellow at the top
# model - data: blue where the model's log-density is the lower, white where they agree, red where it is the higher
DIFF_COLORSCALE = [[0.0, "#2166AC"], [0.5, "#FFFFFF"], [1.0, "#B2182B"]]
DIFF_NATS = 5.0  # the difference's colour scale spans +-this many nats (beyond it: full colour)
# what the data's log-density is, by dataset kind (adiff.eval.likelihood.data_log_density)
DATA_KINDS = {"exact": "the exact mixture density", "kde": "a kernel density estimate"}


# ---------------------------------------------------------------------------------------------- the figure
def _rows(v: torch.Tensor | None, n: int) -> list | None:
    """[n*n] (grid order: x fastest) -> n rows of n (row = y), None where not finite or not computed yet."""
    if v is None:
        return None
    return [finite_list(v[r * n : (r + 1) * n], 3) for r in range(n)]


def _heatmap(z, axes: list[float], name: str, hover: str, scale, zmin: float, zmax: float, panel: int) -> dict:
    return _on(
        {
            "type": "heatmap",
            "x": axes,
            "y": axes,
            "z": z,
            "colorscale": scale,
            "zmin": zmin,
            "zmax": zmax,
            "showscale": False,
            "zsmooth": "best",
            "name": name,
            "hovertemplate": f"{name}<br>x = %{{x:.2f}}, y = %{{y:.2f}}<br>{hover} = %{{z:.2f}}<extra></extra>",
        },
        panel,
    )


def top_of(model_lp: torch.Tensor | None, data_lp: torch.Tensor | None) -> float | None:
    """The top of the colour scale: the largest finite log-density of either map (None before any is known)."""
    tops = [float(v[torch.isfinite(v)].max()) for v in (model_lp, data_lp) if v is not None and torch.isfinite(v).any()]
    return max(tops) if tops else None


def figure(model_lp, data_lp, axes: list[float], title: str, data_kind: str | None) -> FigureJSON:
    """model_lp, data_lp [n*n] float64 on the grid ``axes`` x ``axes`` (NaN: not computed yet; data_lp None: the
    data's density is unknown) -> the model's and the data's maps on one scale, and their clipped difference."""
    n = len(axes)
    top = top_of(model_lp, data_lp)
    zmax = top if top is not None else 0.0
    zmin = zmax - LIMITS.density_clip_nats
    titles = ["model: log p_θ(x)"]
    traces = [_heatmap(_rows(model_lp, n), axes, "model log p_θ", "log p_θ", DENSITY_COLORSCALE, zmin, zmax, 1)]
    if data_lp is not None:
        titles += [
            f"data: log p(x) ({'exact' if data_kind == 'exact' else 'kernel estimate'})",
            "model − data (red: the model's higher)",
        ]
        traces.append(_heatmap(_rows(data_lp, n), axes, "data log p", "log p", DENSITY_COLORSCALE, zmin, zmax, 2))
        diff = model_lp.clamp(min=zmin) - data_lp.clamp(min=zmin)  # NaN stays NaN: not computed yet
        d = DIFF_NATS
        traces.append(_heatmap(_rows(diff, n), axes, "model − data", "difference", DIFF_COLORSCALE, -d, d, 3))
    lo, hi = axes[0] - (axes[1] - axes[0]) / 2, axes[-1] + (axes[1] - axes[0]) / 2
    layout = _grid(1, len(titles), titles, hspace=0.05, square=True, rng=(lo, hi))
    return _figure(traces, layout, 440, title, legend=False)


def off_data_mass(model_lp: torch.Tensor, data_lp: torch.Tensor, cell: float) -> tuple[float, float, float]:
    """(the model's mass where the data's log-density is more than ``LIMITS.density_clip_nats`` below its top, the
    data's own mass there, the model's mass on the whole grid): Riemann sums, sum exp(log p) * cell^2."""
    off = data_lp < float(data_lp.max()) - LIMITS.density_clip_nats
    area = cell * cell
    return (
        float(model_lp[off].exp().sum() * area),
        float(data_lp[off].exp().sum() * area),
        float(model_lp.exp().sum() * area),
    )


# ---------------------------------------------------------------------------------------------- words
def figure_title(source: str, num_steps: int, n: int) -> str:
    return f"{source}: log-density on a {n} × {n} grid ({num_steps} ODE steps)"


def progress_text(what: str, share: float | None = None, elapsed: float | None = None) -> str:
    done = f": {share:.0%}" if share is not None else ""
    took = f" ({elapsed:.0f} s so far)" if elapsed else ""
    return f"… **{what}**{done}{took}"


def _gap_verdict(gap: float, se: float, data_kind: str) -> str:
    """The model's NLL minus the data's on the same points, read by its paired standard error."""
    ratio = math.exp(-gap)
    if abs(gap) <= DETECTABLE_SE * se:
        return (
            f"within {DETECTABLE_SE} standard errors of 0: no detectable difference from "
            f"{DATA_KINDS[data_kind]} on these points"
        )
    side = "above" if gap > 0 else "below"
    what = "the true density" if data_kind == "exact" else "the estimate"
    return (
        f"{abs(gap):.3f} ± {se:.3f} nats {side} it: on average the model gives a held-out point {ratio:.0%} of the "
        f"density {what} gives it"
    )


def nll_text(s: dict) -> str:
    """The held-out NLL (± SE) beside the data's own on the same points, in words."""
    head = (
        f"The model's held-out NLL is **{s['nll']:.3f} ± {s['nll_se']:.3f} nats** ({s['heldout_points']:,} fresh "
        f"points of {s['dataset']}, seed {s['seed']})"
    )
    if s.get("data_nll") is None:
        return head + "; the data's own density is not known for this model's data."
    own = "its entropy" if s["data_kind"] == "exact" else "the cross-entropy of a kernel density estimate"
    return (
        f"{head}; the data's own density gives {s['data_nll']:.3f} on the same points ({own}): "
        + _gap_verdict(s["gap"], s["gap_se"], s["data_kind"])
        + "."
    )


def done_text(s: dict) -> str:
    """A finished estimate in words: the NLL, where the model puts mass the data lacks, the cost."""
    lines = [nll_text(s)] if s.get("nll") is not None else []
    if s.get("data_kind") is None:
        lines.append("The data this model was trained on is not a built-in set: no data map and no held-out NLL.")
    if s.get("off_data_mass") is not None:
        lines.append(
            f"The model puts **{fmt(100 * s['off_data_mass'], 2)} %** of its probability where the data's density "
            f"is more than {LIMITS.density_clip_nats:g} nats below its peak (the data itself: "
            f"{fmt(100 * s['data_off_data_mass'], 2)} %): the red between the modes in the third panel."
        )
    reused = " (the map was computed before: reused)" if s.get("map_reused") else ""
    lines.append(
        f"✓ log p_θ by the probability-flow ODE ({s['num_steps']} RK4 steps, exact divergence) on "
        f"{s['grid_size']} × {s['grid_size']} points{reused}, in {fmt(s['elapsed_s'], 3)} s."
    )
    return "\n\n".join(lines)
