"""The density tab's lessons (components/lesson.py), each checked through the tab's own handler.

Both run 8gaussians at 16 ODE steps on the 40 x 40 grid: the map is computed once (the app's result cache) and the
held-out NLL once per seed; the NLL moves by <= 3e-3 nats from 16 to 64 steps (adiff/eval/likelihood.py), and the
share of probability between the modes was 0.034 % at 16 steps, 0.032 % at 32 (this handler, seed 1; the data's own
0.002 %).  Measured first (bench/results/bench_density.txt, 2,000 held-out points per seed): 8gaussians' gap to the
data's own NLL 0.010 to 0.017 nats, each > 2 SE.  Not a lesson: moons (VP) against moons-flow, whose NLLs agree
within their noise (gaps to the kernel estimate -0.004 to 0.014 and -0.006 to 0.004 nats)."""

from __future__ import annotations

import math

from ..lesson import Lesson, Outcome
from .handlers import DensityRequest, estimate

__all__ = ["LESSONS"]

STEPS, GRID = 16, 40
# the data's entropy: 8 barely overlapping components of std 0.25, log 8 + log(2 pi e sigma^2) (Cover & Thomas 8.4)
ENTROPY_8G = math.log(8) + math.log(2 * math.pi * math.e * 0.25**2)


def _run(ctx, seed: int, preset: str = "8gaussians") -> dict:
    """A run through the tab's own handler (a fresh session; the app's cache keeps the preset's map): its summary."""
    session = ctx.store.get(None)
    try:
        req = DensityRequest.parse(ctx, session, preset, STEPS, GRID, seed)
        *_, done = estimate(ctx, session, req)
        return done.summary
    finally:
        ctx.store.drop(session.key)


def _near_entropy(ctx, seed) -> Outcome:
    """The held-out NLL sits just above the data's own on the same points (a paired gap in (0, 0.05) nats) and
    within 0.15 nats of the entropy."""
    s = _run(ctx, seed)
    holds = 0 < s["gap"] < 0.05 and abs(s["nll"] - ENTROPY_8G) < 0.15
    return Outcome(holds, {"nll": s["nll"], "data_nll": s["data_nll"], "gap": s["gap"], "gap_se": s["gap_se"]})


def _between_modes(ctx, seed) -> Outcome:
    """Where the data's density is > 10 nats below its peak, the model puts more than 5 times the data's own share
    of probability, yet under 0.1 %."""
    s = _run(ctx, seed)
    m, d = s["off_data_mass"], s["data_off_data_mass"]
    return Outcome(5 * d < m < 1e-3, {"model_share_off_data": m, "data_share_off_data": d})


LESSONS = [
    Lesson(
        "density",
        "Pick **8gaussians**, set **ODE steps = 16** and estimate",
        f"its held-out NLL is within 0.05 nats of what the data's own density scores on the same points (about "
        f"{ENTROPY_8G:.2f} nats, the data's entropy log 8 + log(2πe·0.25²)), and above it: on average no model "
        "beats the true density",
        "0 < NLL − data's NLL on the same 1,000 points < 0.05 nats, and |NLL − entropy| < 0.15",
        _near_entropy,
        {"preset": "8gaussians", "steps": STEPS, "grid": GRID},
    ),
    Lesson(
        "density",
        "Estimate **8gaussians** again and look at the third panel",
        "red between and around the modes: the model spreads a little probability where the data has almost none "
        "(more than 5 times the data's own share there, though under 0.1 %): it smooths over gaps it was never shown",
        "model's probability where the data's log p < its peak − 10 nats > 5 × the data's there, and < 1e-3",
        _between_modes,
        {"preset": "8gaussians", "steps": STEPS, "grid": GRID},
        deterministic=True,
    ),
]
