"""The schedules tab's lessons (components/lesson.py): what to try, what you will notice, and the check on what
the tab computes.  The schedules are deterministic: one run decides each claim."""

from __future__ import annotations

from ..lesson import Lesson, Outcome
from .handlers import DEFAULT_CUSTOM, CurvesRequest, curves

__all__ = ["LESSONS"]


def _summary(names, T=1000, shift=1.0) -> dict:
    return curves(CurvesRequest.of(names, T, DEFAULT_CUSTOM, shift)).summary


def _cosine_later(ctx, seed) -> Outcome:
    c = curves(CurvesRequest.of(["linear", "cosine"], 1000, DEFAULT_CUSTOM, 1.0))
    half = {cv["name"]: min(range(len(cv["u"])), key=lambda i, cv=cv: abs(cv["u"][i] - 0.5)) for cv in c.curves}
    mid = {cv["name"]: cv["abar"][half[cv["name"]]] for cv in c.curves}
    clip = c.summary["cosine"]["max_beta"]
    return Outcome(mid["cosine"] > 3 * mid["linear"] and clip >= 0.999 - 1e-6, {"abar_at_half": mid, "max_beta": clip})


def _few_steps(ctx, seed) -> Outcome:
    s = _summary(["linear"], T=20)["linear"]
    warned = " ".join(s["warnings"])
    ok = "only T = 20 steps" in warned and "0.999 clip" in warned and s["abar_T"] < 1e-4
    return Outcome(ok, {"warnings": s["warnings"], "abar_T": s["abar_T"]})


def _log_snr(ctx, seed) -> Outcome:
    s = _summary(["linear", "cosine", "flow"])
    shifted = _summary(["flow"], shift=3.0)["flow"]["log_snr_at"]["0.5"]
    one = {k: s[k]["snr_one_at"] for k in ("linear", "cosine", "flow")}
    ok = abs(one["cosine"] - 0.5) < 0.01 and abs(one["flow"] - 0.5) < 0.01 and abs(one["linear"] - 0.26) < 0.02
    return Outcome(ok and abs(shifted + 2.1972) < 1e-3, {"snr_one_at": one, "flow_shift3_log_snr_at_half": shifted})


LESSONS = [
    Lesson(
        "schedules",
        "Tick **cosine** beside linear",
        "its ᾱ_t falls later: half-way (t/T = ½) cosine keeps about half of the signal, linear less than a tenth; "
        "and its last β_t hits the 0.999 clip",
        "ᾱ at t/T = ½: cosine > 3 × linear; cosine's max β = 0.999",
        _cosine_later,
        {"schedules": "linear,cosine"},
        deterministic=True,
    ),
    Lesson(
        "schedules",
        "Set **T = 20** and press Plot",
        "x_T is still pure noise (β is rescaled by 1000/T), but the warnings say each reverse step is large and the "
        "last β_t hits the 0.999 clip",
        "linear at T = 20: ᾱ_T < 1e-4, warnings 'only T = 20 steps' and '0.999 clip'",
        _few_steps,
        {"schedules": "linear", "T": 20},
        deterministic=True,
    ),
    Lesson(
        "schedules",
        "Look at **log-SNR**, then set **Flow shift** to 3 and press Plot",
        "flow (olive) and cosine cross 0 at t/T = ½, linear already at ≈ 0.26; with shift 3 the flow's curve drops "
        "by 2·log 3 ≈ 2.2 (more of its time at high noise)",
        "SNR = 1 at u = 0.50 (cosine, flow), 0.26 (linear); shift 3: log-SNR at u = ½ is −2.197",
        _log_snr,
        {"schedules": "linear,cosine,flow", "shift": 3},
        deterministic=True,
    ),
]
