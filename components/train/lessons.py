"""The Train tab's lessons (components/lesson.py), each checked through the tab's own handlers on several seeds.

Measured first (5 seeds, one CPU thread): tiny on moons, 300 steps: a tenth into the run the learned score's arrows
point as at the end (mean cosine 0.92-0.95) while the samples' MMD² is 3.8-7.3x the last frame's (0.17-0.19 against
0.023-0.049).  Reflow of moons-flow with the section's defaults (1000 pairs, 10 ODE steps, 120 steps, 4.5-6 s CPU):
one Euler step's MMD² 0.62-0.64 before, 0.0008-0.0022 (SE 0.0004-0.0008) after; straightness 1.74-1.85 -> 1.005-1.007
(2000 pairs, 20 ODE steps, 300 steps: 0.0002-0.0014 after, straightness 1.0015-1.0022, ~9 s CPU).
"""

from __future__ import annotations

import numpy as np

from adiff.eval.metrics import mmd2

from ..lesson import Lesson, Outcome
from .handlers import TrainRequest, train
from .reflow import REFLOW_DEFAULTS, ReflowRequest, reflow
from .shared import state_of

__all__ = ["LESSONS"]

FILM_RUN = {"dataset": "moons", "size": "tiny", "steps": 300, "process": "vp", "prediction": "epsilon"}


def _film(ctx, seed: int):
    """A run of the film lesson's settings through the tab's handler (a fresh session): its film."""
    session = ctx.store.get(None)
    try:
        r = FILM_RUN
        settings = (r["size"], False, r["steps"], 256, 2e-3, seed, r["process"], r["prediction"])
        req = TrainRequest.parse(ctx, session, r["dataset"], "linear", 1000, *settings)
        for _ in train(ctx, session, req):
            pass
        return state_of(session).film
    finally:
        ctx.store.drop(session.key)


def _field_before_samples(ctx, seed) -> Outcome:
    """A tenth into the run the field points as it will at the end (mean cosine with the last frame's arrows > 0.9),
    while the samples' MMD² to the data is still more than 3x the last frame's."""
    film = _film(ctx, seed)
    k = film.steps.index(FILM_RUN["steps"] // 10)
    F = np.stack(film.fields)  # [K, G*G, 2]
    cos = (F[k] * F[-1]).sum(-1) / (np.linalg.norm(F[k], axis=-1) * np.linalg.norm(F[-1], axis=-1) + 1e-12)
    data, _ = ctx.dataset("moons", 2000, 10_000 + seed)
    early, last = mmd2(film.samples[k], data[:400]), mmd2(film.samples[-1], data[:400])
    numbers = {"step": film.steps[k], "cos": round(float(cos.mean()), 3), "mmd_early": early, "mmd_last": last}
    return Outcome(bool(cos.mean() > 0.9 and early > 3 * last), numbers)


def _reflow_one_step(ctx, seed) -> Outcome:
    """Reflow of moons-flow with the section's defaults: one Euler step's MMD² falls from above 0.5 to below 0.005,
    and the paths' straightness to below 1.01."""
    session = ctx.store.get(None)
    d = REFLOW_DEFAULTS
    try:
        req = ReflowRequest.parse(ctx, session, d["source"], d["pairs"], d["ode_steps"], d["steps"], seed)
        *_, last = reflow(ctx, session, req)
    finally:
        ctx.store.drop(session.key)
    s = last.status
    before, after = s["before"], s["after"]
    holds = before["mmd2_1step"][0] > 0.5 and after["mmd2_1step"][0] < 0.005 and after["straightness"] < 1.01
    return Outcome(bool(s["status"] == "done" and holds), {"before": before, "after": after})


LESSONS = [
    Lesson(
        "train",
        "Train **tiny** on moons for 300 steps and play the **film**",
        "the arrows point at the moons within the first tenth of the run; the samples take much longer to sharpen "
        "(a low loss is not yet good samples)",
        "a tenth into the run: mean cosine of the score arrows with the last frame's > 0.9, and the samples' MMD² "
        "> 3 × the last frame's",
        _field_before_samples,
        link=FILM_RUN,
    ),
    Lesson(
        "train",
        "Open **Straighten a flow**, keep moons-flow and press **Straighten**",
        "one Euler step lands on the moons: its MMD² to the data falls from about 0.63 to below 0.005, and the "
        "paths' straightness from about 1.8 to 1.00",
        "one-step Euler MMD² > 0.5 before and < 0.005 after; straightness < 1.01 after",
        _reflow_one_step,
    ),
]
