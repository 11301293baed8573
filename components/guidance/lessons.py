"""The guidance tab's lessons (components/lesson.py), each checked through the tab's own handler on several seeds."""

from __future__ import annotations

from ..lesson import Lesson, Outcome
from .handlers import GuidedRequest, guided_generate

__all__ = ["LESSONS"]


def _run(
    ctx, seed: int, preset="moons", reward="distance_to_target", params="", lam=2.0, rec=1, label="any", cfg=1.0, n=300
) -> dict:
    """A run's summary through the tab's own handler (the tab's solver: DDIM 20), in a fresh session."""
    session = ctx.store.get(None)
    try:
        req = GuidedRequest.parse(
            ctx, session, preset, reward, "", params, lam, "dps", rec, label, cfg, "ddim", 20, seed, n
        )
        *_, result = guided_generate(ctx, session, req)
        return result.summary
    finally:
        ctx.store.drop(session.key)


def _numbers(s: dict) -> dict:
    keys = ("versus_target", "unguided_mean_reward", "guided_mean_reward", "target_mean_reward")
    return {k: s.get(k) for k in keys}


def _overshoots(ctx, seed) -> Outcome:
    s = _run(ctx, seed)
    return Outcome(s["versus_target"] == "over", _numbers(s))


def _recurrence(ctx, seed) -> Outcome:
    one, three = _run(ctx, seed), _run(ctx, seed, rec=3)
    target = one["target_mean_reward"]
    gap1, gap3 = abs(one["guided_mean_reward"] - target), abs(three["guided_mean_reward"] - target)
    return Outcome(gap3 < gap1, {"gap_recurrence_1": gap1, "gap_recurrence_3": gap3, "target": target})


def _fooled(ctx, seed) -> Outcome:
    s = _run(
        ctx,
        seed,
        preset="glyphs",
        reward="classifier_logprob",
        params='{"digit": 7}',
        lam=5.0,
        label="each",
        cfg=2.0,
        n=16,
    )
    c = s["classifier_check"]
    ok = c["unguided_agree"] <= 0.2 and c["guided_agree"] >= 0.75 and c["guided_recheck"] < c["guided_agree"]
    return Outcome(ok, c)


LESSONS = [
    Lesson(
        "guidance",
        "Press **Generate guided** (λ = 2)",
        "the guided mean reward lands past the tilted target's (right panel): DPS pushes further than the "
        "distribution p·e^{λr} it aims at, and the summary says it over-shoots",
        "the verdict is 'over' (guided − target beyond 2 standard errors, on the reward's side)",
        _overshoots,
        {"preset": "moons", "reward": "distance_to_target", "lam": 2, "rec": 1},
    ),
    Lesson(
        "guidance",
        "Keep λ = 2 and set **recurrence 3**",
        "the guided mean reward moves towards the target's: repeating each step, re-noised in between, lets the "
        "samples settle back towards the data",
        "|guided − target| with recurrence 3 < with recurrence 1 (the same seed)",
        _recurrence,
        {"preset": "moons", "reward": "distance_to_target", "lam": 2, "rec": 3},
    ),
    Lesson(
        "guidance",
        'Model **glyphs**, reward classifier_logprob with `{"digit": 7}`, λ = 5',
        "the classifier reads a 7 in most guided images (1 in 16 unguided), but the second check (re-noise, denoise "
        "without guidance, classify again) keeps fewer: part of the push only fooled the classifier",
        "unguided ≤ 20 % read as 7, guided ≥ 75 %, and the re-check below the guided share",
        _fooled,
        {
            "preset": "glyphs",
            "reward": "classifier_logprob",
            "params": '{"digit": 7}',
            "lam": 5,
            "label": "each",
            "cfg": 2,
        },
    ),
]
