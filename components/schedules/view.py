"""The schedules tab's views: the overlaid curves as a figure, and the warnings in words."""

from __future__ import annotations

from ..schedule_figures import make_schedule_figure
from .handlers import FLOW, Curves

__all__ = ["warnings_text", "outputs"]


def warnings_text(c: Curves) -> str:
    """Every schedule's warnings (terminal SNR, the 0.999 clip, few steps), and the flow's path in one line."""
    lines = [f"- ⚠ **{name}**: {w}" for name, s in c.summary.items() if name != FLOW for w in s["warnings"]]
    md = "\n".join(lines) if lines else f"✓ No warnings: every schedule ends near pure noise with T = {c.T} steps."
    flow = c.summary.get(FLOW)
    if flow:
        where = (
            f"u = {flow['snr_one_at']:.2f} of the even grid (shift {c.shift:g} maps it to t = 0.50)"
            if c.shift != 1.0
            else "t = 0.50"
        )
        md += (
            f"\n\n**flow**: α + σ = 1 at every t; α² + σ² falls to {flow['min_alpha2_plus_sigma2']:.2f} mid-way; "
            f"SNR = 1 at {where}."
        )
    return md


def outputs(c: Curves) -> tuple:
    """(figure, warnings, summary): what /schedule_curves answers."""
    return make_schedule_figure(c.curves), warnings_text(c), c.summary
