"""Tab 6 (guidance)'s views: samples in, the figure's panels, the figure and words out (pure; no widgets, no
sessions).

* ``panel`` / ``panel_titles`` / ``target_title`` / ``figure_title`` / ``figure``: the side-by-side figure over the
  reward (components/reward_figures.py draws it).
* ``guidance_verdict``: the guided mean reward against the tilted target's: over, under or on target (within 2
  standard errors of the difference), never on target when the classifier was fooled.
* ``classifier_check_text``: the classifier reward's second check in words.
* ``summary_text`` / ``live_text``: a finished run and a running one in words.
"""

from __future__ import annotations

import math

import torch

from adiff.data import PLOT_RANGE

from ..arrays import count_nonfinite, points, tile_images
from ..reward_figures import make_guidance_figure
from ..rewards import NO_REWARD
from ..summaries import DETECTABLE_SE, ROUGH_ESS, fmt

__all__ = [
    "panel",
    "panel_titles",
    "target_title",
    "figure_title",
    "figure",
    "guidance_verdict",
    "classifier_check_text",
    "summary_text",
    "live_text",
]


# ---------------------------------------------------------------------------------------------- the figure
def panel(kind: str, key: str, title: str, x: torch.Tensor, mean_reward: float | None) -> dict:
    """One panel of the figure: samples x [N, 2] (points) or [N, 1, S, S] (images, tiled), the mean reward and how
    many samples are NaN or infinite."""
    samples = {"points": points(x)} if kind == "points" else {"z": tile_images(x)}
    return {"key": key, "title": title, **samples, "mean_reward": mean_reward, "nonfinite": count_nonfinite(x)}


def panel_titles(has_reward: bool, lam: float, mode: str, recurrence: int, label, cfg: float) -> tuple[str, str]:
    """(left, middle) panel titles: with a reward, λ = 0 against λ (at the same CFG weight); without, w = 1 against w."""
    lam_txt = f"λ = {lam:g}, {mode}" + (f", recurrence {recurrence}" if recurrence > 1 else "")
    base = "unguided (λ = 0)" if has_reward else "w = 1 (plain conditional)"
    guided = f"guided ({lam_txt})" if has_reward else f"CFG w = {cfg:g}"
    if label is not None and has_reward:
        base += f", w = {cfg:g}"
        guided += f", w = {cfg:g}"
    return base, guided


def target_title(lam: float) -> str:
    return f"target p·e^(λr), λ = {lam:g}"


def figure_title(source: str, reward: str, has_reward: bool) -> str:
    return f"{source}: reward {reward}" if has_reward else f"{source}: classifier-free guidance"


def figure(kind: str, reward_grid: dict | None, panels: list[dict], title: str):
    """The panels side by side (over the reward's heatmap for 2-D models)."""
    return make_guidance_figure(
        {"kind": kind, "reward": reward_grid, "range": PLOT_RANGE, "panels": panels, "title": title}
    )


# ---------------------------------------------------------------------------------------------- verdicts
def _rough(ess: float | None) -> str:
    if ess is None or ess >= ROUGH_ESS:
        return ""
    return f" (the target rests on only ~{ess:.0f} effective data points, so it is rough)"


def _in_se(gap: float, se: float) -> str:
    """The gap in standard errors, in words: "3.1 SE" (or "exactly 0" / "∞ SE" when there is no scatter)."""
    if se > 0:
        return f"{abs(gap) / se:.1f} SE"
    return "exactly 0" if gap == 0 else "∞ SE"


def guidance_verdict(
    base: float | None,
    guided: float | None,
    target: float | None,
    guided_se: float,
    target_se: float,
    ess: float | None,
    lam: float,
    recurrence: int,
    fooled: bool = False,
) -> tuple[str, str]:
    """Compare the guided mean reward with the tilted target's: ("over" | "under" | "on" | "fooled" | "", words).

    The target's mean reward is E_{p·e^{λr}}[r] estimated from reweighted data.  The difference counts as a miss when
    it is more than DETECTABLE_SE (2) times its standard error, sqrt(guided_se² + target_se²) (both sides' sampling
    error, nothing else).  "fooled": the numbers match but the classifier's re-check says the classifier was fooled (reward
    hacking), so the samples are not on target whatever their mean reward."""
    if guided is None or target is None or base is None:
        return "", ""
    gap = guided - target
    se = math.sqrt(guided_se**2 + target_se**2)
    gap_text = f"difference {fmt(gap, 2)} = {_in_se(gap, se)} (SE {fmt(se, 2)})"
    versus = f"guided mean reward {fmt(guided)} vs the tilted target's {fmt(target)}"
    if abs(gap) <= DETECTABLE_SE * se:
        if fooled:
            return "fooled", (
                f"reward hacking, not the tilted target: the mean rewards match ({versus}; {gap_text}), but the "
                "re-check below says the classifier was fooled, so the samples reach the target's reward without "
                "being its samples."
            )
        return "on", f"on target: {versus}; {gap_text}, within {DETECTABLE_SE} standard errors{_rough(ess)}."
    if gap * (1.0 if lam >= 0 else -1.0) > 0:
        advice = "try recurrence 3 or a smaller λ" if recurrence < 3 else "try a smaller λ"
        return "over", (
            f"over-shoots p·e^{{λr}}: {versus}{_rough(ess)}; {gap_text}. The sampler pushes further than the "
            f"distribution it aims at (samples may leave the data: reward hacking); {advice}."
        )
    advice = "try recurrence 3 or a larger λ" if recurrence < 3 else "try a larger λ"
    return "under", f"under-shoots p·e^{{λr}}: {versus}{_rough(ess)}; {gap_text}; {advice}."


def classifier_check_text(
    digit: int, base_agree: float, guided_agree: float, recheck_agree: float, base_recheck: float, t_check
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


# ---------------------------------------------------------------------------------------------- words
def live_text(what: str, step: int, steps: int, t, elapsed: float) -> str:
    """A running run in one line."""
    at = f" · t = {t}" if t is not None else ""
    return f"… **{what}** · step {step} of {steps}{at} · {elapsed:.1f} s"


def _rewards_line(s: dict) -> str | None:
    if s.get("unguided_mean_reward") is not None:
        line = f"Mean reward: unguided **{fmt(s['unguided_mean_reward'])}** → guided **{fmt(s['guided_mean_reward'])}**"
        if s.get("target_mean_reward") is not None:
            line += (
                f"; the tilted target p·e^{{λr}} at λ = {s['guidance_scale']:g} has "
                f"**{fmt(s['target_mean_reward'])}** (from {s['target_effective_samples']:.0f} effective data points)"
            )
        return line + "."
    if s.get("reward") == NO_REWARD and s.get("cfg_scale") is not None:
        return f"Classifier-free guidance only: w = 1 (left) against w = {s['cfg_scale']:g} (right)."
    return None


def summary_text(s: dict, verdict: str, check: str | None) -> str:
    """A finished run in words: the mean rewards against the target's, NaN samples, the verdict, the classifier's
    re-check, clipped gradients, and the settings."""
    lines = [line] if (line := _rewards_line(s)) else []
    bad = s.get("nonfinite_samples") or {}
    if any(bad.values()):
        lines.append(
            f"⚠ **NaN or infinite samples** (the model's output overflowed; not drawn, not in the rewards): "
            f"unguided {bad.get('unguided', 0)}, guided {bad.get('guided', 0)} of {s['num_samples']}."
        )
    if verdict:
        lines.append(("✓ " if s.get("versus_target") == "on" else "⚠ ") + verdict)
    if check:
        lines.append(check)
    if s.get("clipped_fraction", 0) > 0.2:
        lines.append(
            f"{s['clipped_fraction']:.0%} of the guidance gradients were clipped (very large pushes "
            "were capped): λ is large for this reward."
        )
    lines.append(
        f"{s['num_samples']} samples, {s['sampler']} {s['num_steps']} steps, seed {s['seed']}, {s['elapsed_s']:.1f} s."
    )
    return "\n\n".join(lines)
