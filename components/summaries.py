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
    "adaptation_text",
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


def adaptation_text(s: dict) -> str:
    state = {"running": "… **adapting**", "done": "✓ **done**", "preparing": "… **preparing**"}.get(
        s.get("status"), s.get("status", "")
    )
    if "reward_mean" not in s:
        return f"{state}: copying the model and drawing the 'before' samples…"
    gain = (s["reward_mean"] - s["base_mean_reward"]) if s.get("base_mean_reward") is not None else None
    parts = [
        f"{state}: step {s['step']} ({s['steps_this_run']} of {s['of']} in this run, {s['elapsed_s']:.0f} s). "
        f"Mean reward of fresh samples {fmt(s['reward_mean'])}"
        + (f" ({'+' if gain >= 0 else ''}{fmt(gain, 2)} since the base model)" if gain is not None else "")
        + "."
    ]
    for key, what in (("distance_to_data", "the data"), ("distance_to_target", "the tilted target")):
        if s.get(key) is None:
            continue
        first = s.get(key + "_first")
        trend = f" It was {fmt(first, 2)} after the first step." if first is not None and s["step"] > 1 else ""
        parts.append(_cap(describe_mmd2(s[key], what)) + trend)
    if s.get("distance_to_target") is not None:
        parts.append(
            "The adapted model should move away from the data towards the tilted target: the first distance "
            "may grow while the second falls."
        )
    parts.append(f"Buffer: {s['buffer_size']} samples kept; {s['reward_queries']} reward queries so far.")
    return "\n\n".join(parts)
