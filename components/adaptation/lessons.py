"""The adaptation tab's lessons (components/lesson.py), each checked through the tab's own handler on several seeds
(short runs: the links set 30 steps, which is what the claims are checked at)."""

from __future__ import annotations

from ..lesson import Lesson, Outcome
from .handlers import DEFAULTS, AdaptRequest, adapt

__all__ = ["LESSONS"]

STEPS = 30


def _run(ctx, seed: int, lam: float) -> dict:
    """The last status of a STEPS-step run (moons, r = x) through the tab's own handler, in a fresh session."""
    session = ctx.store.get(None)
    try:
        req = AdaptRequest.parse(
            ctx,
            session,
            "moons",
            "x_coordinate",
            "",
            "",
            STEPS,
            DEFAULTS.learning_rate,
            DEFAULTS.batch_size,
            DEFAULTS.buffer_capacity,
            0.0,
            False,
            lam,
            seed,
        )
        *_, last = adapt(ctx, session, req)
        return last.status
    finally:
        ctx.store.drop(session.key)


def _numbers(s: dict) -> dict:
    keys = ("base_mean_reward", "reward_mean", "distance_to_data_first", "distance_to_data")
    return {k: s.get(k) for k in (*keys, "distance_to_target_first", "distance_to_target")}


def _towards_target(ctx, seed) -> Outcome:
    s = _run(ctx, seed, 2.0)
    ok = (
        s["reward_mean"] > s["base_mean_reward"] + 0.5
        and s["distance_to_target"] < s["distance_to_target_first"] / 2
        and s["distance_to_data"] > s["distance_to_data_first"]
    )
    return Outcome(ok, _numbers(s))


def _other_way(ctx, seed) -> Outcome:
    s = _run(ctx, seed, -2.0)
    return Outcome(s["reward_mean"] < s["base_mean_reward"] - 0.5, _numbers(s))


LESSONS = [
    Lesson(
        "adaptation",
        f"Press **Start** ({STEPS} steps, r = x, λ = 2)",
        "the mean reward (left) climbs, the distance to the tilted target falls, and the distance to the data "
        "grows: the adapted model moves away from the data towards p·e^{λr}, as it should",
        "after 30 steps: mean reward > base + 0.5, distance to the target < ½ its first value, distance to the "
        "data > its first value",
        _towards_target,
        {"preset": "moons", "reward": "x_coordinate", "lam": 2, "steps": STEPS, "replay": 0},
    ),
    Lesson(
        "adaptation",
        "**Reset**, set λ = −2 and Start",
        "the model learns to move the other way: its samples' mean reward falls below the base model's",
        "after 30 steps at λ = −2: mean reward < base − 0.5",
        _other_way,
        {"preset": "moons", "reward": "x_coordinate", "lam": -2, "steps": STEPS, "replay": 0},
    ),
]
