"""The compare tab's lessons (components/lesson.py), each checked through the tab's own handler on several seeds."""

from __future__ import annotations

from ..lesson import Lesson, Outcome
from .handlers import CompareRequest, compare

__all__ = ["LESSONS"]

N = 500  # samples per side, as the tab opens


def _run(ctx, seed: int, a: tuple, b: tuple) -> dict:
    """Both sides' summaries for (model, solver, steps) pairs, through the tab's own handler."""
    session = ctx.store.get(None)
    try:
        req = CompareRequest.parse(ctx, session, *a, *b, seed, N, "any")
        *_, done = compare(ctx, session, req)
        return done.summary
    finally:
        ctx.store.drop(session.key)


def _second_order(ctx, seed) -> Outcome:
    s = _run(ctx, seed, ("moons-flow", "euler", 5), ("moons-flow", "dpmpp_2m", 5))
    a, b = s["a"]["mmd2_to_data"], s["b"]["mmd2_to_data"]
    return Outcome(s["a"]["nfe"] == s["b"]["nfe"] and b < a / 2, {"euler_5": a, "dpmpp_2m_5": b})


def _flow_bends(ctx, seed) -> Outcome:
    s = _run(ctx, seed, ("moons", "euler", 10), ("moons-flow", "euler", 10))
    vp, flow = s["a"]["straightness"], s["b"]["straightness"]
    return Outcome(flow > vp + 0.3, {"vp_straightness": vp, "flow_straightness": flow})


def _ddpm_jitters(ctx, seed) -> Outcome:
    s = _run(ctx, seed, ("moons", "ddim", 50), ("moons", "ddpm", 1000))
    ddim, ddpm = s["a"]["straightness"], s["b"]["straightness"]
    return Outcome(ddpm > 10 and ddim < 1.5, {"ddim_50": ddim, "ddpm_1000": ddpm})


LESSONS = [
    Lesson(
        "compare",
        "Compare **moons-flow** with Euler 5 steps against DPM-Solver++ 5",
        "the same noise and the same 5 network calls, but DPM-Solver++ lands on the moons: its MMD² is several "
        "times smaller (it reuses the previous x̂₀ to take a second-order step)",
        "same NFE; MMD²(DPM-Solver++ 5) < ½ MMD²(Euler 5)",
        _second_order,
        {
            "model_a": "moons-flow",
            "solver_a": "euler",
            "steps_a": 5,
            "model_b": "moons-flow",
            "solver_b": "dpmpp_2m",
            "steps_b": 5,
        },
    ),
    Lesson(
        "compare",
        "Compare **moons** (VP, ε) with **moons-flow** (rectified flow), both Euler 10",
        "the flow's paths are *not* straighter (about 1.8 against 1.3): only its training paths (1 − t)x₀ + tε are "
        "straight lines; the sampled paths follow their average, which bends (Liu et al.'s reflow straightens it)",
        "straightness(flow) > straightness(VP) + 0.3",
        _flow_bends,
        {
            "model_a": "moons",
            "solver_a": "euler",
            "steps_a": 10,
            "model_b": "moons-flow",
            "solver_b": "euler",
            "steps_b": 10,
        },
    ),
    Lesson(
        "compare",
        "Set one side to **DDPM** (1000 steps) against DDIM 50",
        "DDPM's paths jitter (fresh noise at every step): straightness far above 1, while DDIM's stay smooth",
        "straightness(DDPM 1000) > 10 and straightness(DDIM 50) < 1.5",
        _ddpm_jitters,
        {
            "model_a": "moons",
            "solver_a": "ddim",
            "steps_a": 50,
            "model_b": "moons",
            "solver_b": "ddpm",
            "steps_b": 1000,
        },
    ),
]
