"""The Complete tab's lessons (components/lesson.py), each checked through the tab's own handler on several seeds
(digits preset, 8 completions, DPM-Solver++ 25 steps; measured first: bench/results/bench_complete.txt)."""

from __future__ import annotations

from ..lesson import Lesson, Outcome
from .handlers import CompleteRequest, complete

__all__ = ["LESSONS"]


def _run(ctx, seed: int, keep="top half", digit=0, correction=True, rec=1, n=8) -> dict:
    """A run's summary through the tab's own handler, in a fresh session."""
    session = ctx.store.get(None)
    try:
        req = CompleteRequest.parse(
            ctx, session, "digits", keep, digit, 0, None, correction, "dpmpp_2m", 25, rec, seed, n
        )
        *_, done = complete(ctx, session, req)
        return done.summary
    finally:
        ctx.store.drop(session.key)


def _numbers(s: dict) -> dict:
    return {k: s.get(k) for k in ("true_class_count", "most_read", "distinct_classes", "counts")}


def _top_half(ctx, seed) -> Outcome:
    s = _run(ctx, seed)
    return Outcome(s["true_class_count"] >= s["num_samples"] / 2, _numbers(s))


def _quarter(ctx, seed) -> Outcome:
    half, quarter = _run(ctx, seed), _run(ctx, seed, keep="top quarter")
    ok = quarter["true_class_count"] < half["true_class_count"] and (
        quarter["distinct_classes"] >= half["distinct_classes"]
    )
    return Outcome(ok, {"top half": _numbers(half), "top quarter": _numbers(quarter)})


def _recurrence(ctx, seed) -> Outcome:
    one = _run(ctx, seed, keep="left half", digit=7, correction=False)
    five = _run(ctx, seed, keep="left half", digit=7, correction=False, rec=5)
    return Outcome(
        five["true_class_count"] > one["true_class_count"], {"rec 1": _numbers(one), "rec 5": _numbers(five)}
    )


LESSONS = [
    Lesson(
        "complete",
        "Keep the **top half of a 0** and press **Complete**",
        "at least half of the 8 completions read as 0: the kept loop's top pulls the rest round",
        "completions read as 0 ≥ 4 of 8",
        _top_half,
        {"preset": "digits", "keep": "top half", "digit": 0, "example": 0, "correction": "true", "rec": 1},
    ),
    Lesson(
        "complete",
        "Keep only its **top quarter**",
        "fewer completions read as 0, and the classifier reads at least as many different classes: two rows of "
        "pixels leave many digits possible",
        "(read as 0 with the top quarter) < (with the top half), distinct classes ≥ (the same seed)",
        _quarter,
        {"preset": "digits", "keep": "top quarter", "digit": 0, "example": 0, "correction": "true", "rec": 1},
    ),
    Lesson(
        "complete",
        "Keep the **left half of a 7**, posterior correction off, then **recurrence 5**",
        "more completions read as 7 than with recurrence 1: re-noising and repeating each step lets the generated "
        "half agree with the kept one (RePaint's resampling)",
        "(read as 7 with recurrence 5) > (with recurrence 1), plain replacement, the same seed",
        _recurrence,
        {"preset": "digits", "keep": "left half", "digit": 7, "example": 0, "correction": "false", "rec": 5},
    ),
]
