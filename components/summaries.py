"""Plain-language summaries shown above each tab's raw numbers (which stay in a closed "Details" section), and the
honest verdicts (MMD² read by its standard error; a negative MMD² explained) with the numbers they rest on.  Pure
functions of plain values; the tabs call them.  The guidance tab's words (its verdict against the tilted target, the
classifier's re-check) are in components/guidance/view.py."""

from __future__ import annotations

import math

__all__ = [
    "fmt",
    "describe_mmd2",
    "DETECTABLE_SE",
    "CLEAR_SE",
    "ROUGH_ESS",
    "stopped_text",
]


DETECTABLE_SE = 2  # a difference within this many standard errors is not detectable (MMD² from 0, guided reward from
# the tilted target's)
CLEAR_SE = 10  # ... beyond this many: clearly different (in between: close, but detectably different)
ROUGH_ESS = 30  # a tilted target carried by fewer effective data points is rough (its standard error too)


def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}g}"


def describe_mmd2(v: float | None, se: float | None, what: str = "the data") -> str:
    """MMD² in words, read by its own standard error (adiff.eval.metrics.mmd2_estimate): "no detectable difference"
    within ``DETECTABLE_SE`` standard errors of 0 (a negative unbiased estimate explained, not shown as a negative
    'distance'), "close" up to ``CLEAR_SE`` standard errors, "clearly different" beyond.  The SE is in the text."""
    if v is None:
        return ""
    if se is None or not math.isfinite(se):
        return f"distance to {what}: MMD² = {fmt(v, 2)} (no standard error, so no verdict)."
    head = f"distance to {what}: MMD² = {fmt(v, 2)} ± {fmt(se, 2)} (one standard error)"
    if v <= DETECTABLE_SE * se:
        below = (
            ", below 0: the unbiased estimate scatters around 0 when the two sets are as alike as two draws of the "
            "same data, so read it as 0"
            if v < 0
            else ""
        )
        return f"{head}{below}: within {DETECTABLE_SE:g} standard errors of 0, no detectable difference from {what}."
    z = f"{v / se:.2g} standard errors above 0" if se > 0 else "above 0 with no scatter"
    if v <= CLEAR_SE * se:
        return f"{head}: close to {what}, but {z}: a small difference these samples can detect."
    return f"{head}: {z}, clearly different from {what}."


def stopped_text(kind: str, progress: str | None) -> str:
    where = f" {progress}" if progress else ""
    return f"■ **stopped**{where}. What was drawn so far stays on screen; press the button again to start over."
