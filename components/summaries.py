"""Plain-language summaries shown above each tab's raw numbers (which stay in a closed "Details" section), and the
honest verdicts (a negative MMD² explained).  Pure functions of plain values; the tabs call them.  The guidance tab's
words (its verdict against the tilted target, the classifier's re-check) are in components/guidance/view.py."""

from __future__ import annotations

import math

__all__ = [
    "fmt",
    "describe_mmd2",
    "stopped_text",
    "reverse_done_text",
]


def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}g}"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def describe_mmd2(v: float | None, what: str = "the data") -> str:
    """MMD² in words; a negative unbiased estimate is explained rather than shown as a negative 'distance'."""
    if v is None:
        return ""
    if v < 0:
        return (
            f"distance to {what}: MMD² = {fmt(v, 2)}, just below 0. The unbiased estimate scatters around 0 when "
            "the two sets are as alike as two draws of the same data, so read it as 0: no detectable difference."
        )
    if v < 1e-3:
        return f"distance to {what}: MMD² = {fmt(v, 2)}, about 0: hard to tell the samples from {what}."
    if v < 2e-2:
        return f"distance to {what}: MMD² = {fmt(v, 2)}: close, with visible differences."
    return f"distance to {what}: MMD² = {fmt(v, 2)}: clearly different from {what}."


def stopped_text(kind: str, progress: str | None) -> str:
    where = f" {progress}" if progress else ""
    return f"■ **stopped**{where}. What was drawn so far stays on screen; press the button again to start over."


def reverse_done_text(s: dict) -> str:
    nfe = f", {s['nfe']} NFE" if s.get("nfe") not in (None, s["num_steps"]) else ""
    lines = [
        f"✓ **done**: {s['num_samples']} samples of **{s['preset']}** in {s['elapsed_s']:.1f} s "
        f"({s['sampler']}, {s['num_steps']} steps{nfe}, seed {s['seed']}). Drag the frame slider or press "
        f"▶ Play: the {s['num_frames']} frames play in your browser."
    ]
    if s.get("nonfinite_samples"):
        lines.append(
            f"⚠ **{s['nonfinite_samples']} of {s['num_samples']} samples are NaN or infinite** (the model's "
            "output overflowed): they are not drawn and not in the statistics."
        )
    if s.get("mmd2_to_data") is not None:
        lines.append(_cap(describe_mmd2(s["mmd2_to_data"])))
    return "\n\n".join(lines)
