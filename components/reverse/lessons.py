"""The reverse tab's lessons (components/lesson.py), each checked through the tab's own handler on several seeds."""

from __future__ import annotations

import torch

from adiff.diffusion import Predictor
from adiff.eval.metrics import mmd2

from ..lesson import Lesson, Outcome
from .handlers import GenerateRequest, generate, state_of

__all__ = ["LESSONS"]

N = 500  # samples, as the tab opens


def _run(ctx, seed: int, preset="moons", sampler="dpmpp_2m", steps=25, label="any"):
    """A run through the tab's own handler (a fresh session, no result cache): (summary, stored trajectory)."""
    session = ctx.store.get(None)
    try:
        req = GenerateRequest.parse(ctx, session, preset, sampler, steps, 0.0, seed, N, label, 1.0)
        *_, done = generate(ctx, session, req)
        return done.summary, state_of(session).trajectory
    finally:
        ctx.store.drop(session.key)


def _x0_early_and_late(ctx, seed) -> Outcome:
    """Early on, x̂₀ is a blob at the data's centre (from noise, the data's average is the best guess); it reaches the
    moons (MMD² < 2e-3) at an earlier frame than x_t does."""
    _, st = _run(ctx, seed)
    tr = st.trajectory
    data, _ = ctx.dataset("moons", 2000, 10_000 + seed)
    spread = float(data.std(0).norm())
    early = float(tr.x0_pred[1].std(0).norm()) / spread

    def first_close(frames) -> int:
        return next((k for k in range(len(tr)) if mmd2(frames[k], data[:N]) < 2e-3), len(tr))

    k_x0, k_xt = first_close(tr.x0_pred), first_close(tr.x)
    return Outcome(
        early < 0.5 and k_x0 < k_xt, {"early_spread_ratio": early, "x0_hat_close_at": k_x0, "x_t_close_at": k_xt}
    )


def _few_steps(ctx, seed) -> Outcome:
    few, _ = _run(ctx, seed, steps=5)
    many, _ = _run(ctx, seed, steps=25)
    a, b = few["mmd2_to_data"], many["mmd2_to_data"]
    return Outcome(a > 3 * max(b, 2e-4), {"mmd2_5_steps": a, "mmd2_25_steps": b})


def _ideal(ctx, seed) -> Outcome:
    """The learned x̂₀ lands near the exact denoiser's at the same x_t, half-way through the run."""
    _, st = _run(ctx, seed, preset="8gaussians")
    tr = st.trajectory
    k = (len(tr) - 1) // 2
    proc = st.model.process
    star = Predictor(st.ideal.model_fn(proc, "sample"), proc, "sample")
    with torch.no_grad():
        exact = star(tr.x[k].double(), tr.timesteps[k]).x0.float()
    gap = float((tr.x0_pred[k] - exact).norm(dim=1).median())
    return Outcome(gap < 0.25, {"median_distance_learned_to_exact_x0_hat": gap, "frame": k})


LESSONS = [
    Lesson(
        "reverse",
        "Generate, then drag the frame slider from the first frames to the last",
        "at first x̂₀ (green) is a small blob at the centre: from pure noise the best guess is the data's average. It "
        "spreads onto the moons only in the last quarter of the run, a frame or two before x_t gets there",
        "frame 1: spread of x̂₀ < ½ the data's; x̂₀ is within MMD² 2e-3 of the data at an earlier frame than x_t",
        _x0_early_and_late,
        {"preset": "moons"},
    ),
    Lesson(
        "reverse",
        "Set **Steps = 5** and Generate",
        "the samples land off the moons: their distance to the data (MMD²) is several times that at 25 steps",
        "MMD²(5 steps) > 3 × MMD²(25 steps) (DPM-Solver++, the same seed)",
        _few_steps,
        {"preset": "moons", "sampler": "dpmpp_2m", "steps": 5},
    ),
    Lesson(
        "reverse",
        "Pick **8gaussians** and Generate",
        "a second row shows the exact denoiser at the same x_t: half-way through, the learned x̂₀ lands close to "
        "the exact one",
        "half-way: median |x̂₀(learned) − x̂₀(exact)| < 0.25",
        _ideal,
        {"preset": "8gaussians"},
    ),
]
