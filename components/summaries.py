"""Plain-language summaries shown above each tab's raw numbers (which stay in a closed "Details" section), and the
honest verdicts: a negative MMD² explained, guidance that over-shoots its tilted target, a classifier that may be
fooled.  Pure functions of plain values; the tabs call them."""

from __future__ import annotations

import math

__all__ = [
    "fmt",
    "describe_mmd2",
    "stopped_text",
    "live_text",
    "reverse_done_text",
    "guidance_verdict",
    "classifier_check_text",
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


def live_text(what: str, step: int, steps: int, t: int | None, sigma: float | None, elapsed: float) -> str:
    at = f" · t = {t}" + (f", σ_t = {sigma:.3f}" if sigma is not None else "") if t is not None else ""
    return f"… **{what}** · step {step} of {steps}{at} · {elapsed:.1f} s"


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


def guidance_verdict(
    base: float | None,
    guided: float | None,
    target: float | None,
    guided_se: float,
    target_se: float,
    ess: float | None,
    lam: float,
    recurrence: int,
) -> tuple[str, str]:
    """Compare the guided mean reward with the tilted target's: ("over" | "under" | "on" | "", words).

    The target's mean reward is E_{p·e^{λr}}[r] estimated from reweighted data; a gap counts when it is more than
    twice the combined standard error and more than 10% of the distance the target lies from the unguided mean."""
    if guided is None or target is None or base is None:
        return "", ""
    gap = guided - target
    se = math.sqrt(guided_se**2 + target_se**2)
    span = abs(target - base)
    lam_sign = 1.0 if lam >= 0 else -1.0
    if abs(gap) <= max(2 * se, 0.1 * span, 1e-9):
        return "on", (
            f"on target: guided mean reward {fmt(guided)} vs the tilted target's {fmt(target)} (± {fmt(2 * se, 2)})."
        )
    rough = (
        f" (the target rests on only ~{ess:.0f} effective data points, so it is rough)"
        if ess is not None and ess < 30
        else ""
    )
    if gap * lam_sign > 0:
        advice = "try recurrence 3 or a smaller λ" if recurrence < 3 else "try a smaller λ"
        return "over", (
            f"over-shoots p·e^{{λr}}: guided mean reward {fmt(guided)} is past the tilted target's "
            f"{fmt(target)}{rough}. The sampler pushes further than the distribution it aims at "
            f"(samples may leave the data: reward hacking); {advice}."
        )
    advice = "try recurrence 3 or a larger λ" if recurrence < 3 else "try a larger λ"
    return "under", (
        f"under-shoots p·e^{{λr}}: guided mean reward {fmt(guided)} falls short of the tilted "
        f"target's {fmt(target)}{rough}; {advice}."
    )


def classifier_check_text(
    digit: int, base_agree: float, guided_agree: float, recheck_agree: float, base_recheck: float, t_check: int
) -> tuple[bool, str]:
    """The second check of the glyph classifier reward: does the classifier still read the requested digit after
    the guided images are re-noised to t_check and denoised by the model without guidance?"""
    fooled = guided_agree >= 0.5 and recheck_agree < 0.5 * guided_agree
    head = (
        f"Classifier reads '{digit}' in {guided_agree:.0%} of guided images (unguided: {base_agree:.0%}). "
        f"Second check, re-noised to t = {t_check} and denoised without guidance: {recheck_agree:.0%} "
        f"(unguided: {base_recheck:.0%})."
    )
    if fooled:
        return True, (
            f"⚠ {head} The classifier's confidence rose but the re-check disagrees: the guidance likely "
            "found pixels that fool the classifier rather than drawing the digit (reward hacking). Look at "
            "the images; try a smaller λ, recurrence 3, or CFG with the class instead."
        )
    return False, f"✓ {head} The re-check agrees: the images themselves changed, not just the classifier's opinion."


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
