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
    "forward_text",
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


def forward_text(s: dict) -> str:
    t, abar = s["t"], s["abar_t"]
    if t == 0:
        return "t = 0: x_t is the clean data itself."
    share = f"{abar:.1%}" if abar >= 0.001 else f"{abar:.1e}"
    verdict = (
        "mostly signal"
        if abar > 0.7
        else "signal and noise alike"
        if abar > 0.3
        else "mostly noise"
        if abar > 0.01
        else "practically pure noise: q(x_t) ≈ N(0, I)"
    )
    text = (
        f"At t = {t} of {s['T']} ({s['schedule']}): ᾱ_t = {fmt(abar)}, so {share} of the variance is signal and "
        f"σ_t = {fmt(s['sigma_t'])}: {verdict}. The noised cloud has std {fmt(s['x_t_std'])}."
    )
    f = s.get("flow")
    if f:
        a, sg = f["alpha_t"], f["sigma_t"]
        text += (
            f"\n\nRectified flow at t = {fmt(f['t'])}: α = {fmt(a)}, σ = {fmt(sg)} (α + σ = 1), so "
            f"{a * a / (a * a + sg * sg):.1%} of its variance is signal; α² + σ² = {fmt(a * a + sg * sg)}, and its "
            f"cloud has std {fmt(f['x_t_std'])}. Each point sits on the straight line from its x₀ to its ε."
        )
    return text
