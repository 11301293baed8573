"""The forward tab's lessons (components/lesson.py), each checked through the tab's own handler on several seeds."""

from __future__ import annotations

import torch

from adiff.eval.metrics import mmd2

from ..lesson import Lesson, Outcome
from .handlers import ForwardRequest, forward_data

__all__ = ["LESSONS"]


def _points(d: dict) -> torch.Tensor:
    return torch.tensor([d["x"], d["y"]], dtype=torch.float32).T


def _blob(ctx, seed) -> Outcome:
    """At t = T the moons are gone: x_t is as close to N(0, I) as another draw of N(0, I) is."""
    f = forward_data(ctx, ForwardRequest.of("moons", "linear", 1000, 1000, 1000, seed))
    x = _points(f.data["x_t"])
    g = torch.Generator().manual_seed(10_000 + seed)
    d_noise = mmd2(x, torch.randn(1000, 2, generator=g))
    d_data = mmd2(x, _points(f.data["data"]))
    return Outcome(
        d_noise < 2e-3 and d_data > 20 * max(d_noise, 1e-4), {"mmd2_to_N01": d_noise, "mmd2_to_data": d_data}
    )


def _cosine_keeps(ctx, seed) -> Outcome:
    """At t = 250, cosine's x_t is closer to the data than linear's."""
    out = {}
    for name in ("linear", "cosine"):
        f = forward_data(ctx, ForwardRequest.of("moons", name, 1000, 250, 1000, seed))
        out[name] = {"abar_t": f.summary["abar_t"], "mmd2": mmd2(_points(f.data["x_t"]), _points(f.data["data"]))}
    ok = out["cosine"]["abar_t"] > out["linear"]["abar_t"] and out["cosine"]["mmd2"] < out["linear"]["mmd2"]
    return Outcome(ok, out)


def _flow_smaller(ctx, seed) -> Outcome:
    f = forward_data(ctx, ForwardRequest.of("8gaussians", "linear", 1000, 500, 1000, seed))
    vp, flow = f.summary["x_t_std"], f.summary["flow"]["x_t_std"]
    return Outcome(flow < 0.85 * vp, {"vp_std": vp, "flow_std": flow})


LESSONS = [
    Lesson(
        "forward",
        "Drag **t** to 1000 on moons",
        "the two moons blur into one round blob: q(x_T) ≈ N(0, I), as close to it as another draw of noise",
        "at t = 1000, MMD²(x_t, N(0, I)) < 2e-3 and 20 × smaller than MMD²(x_t, data)",
        _blob,
        {"dataset": "moons", "schedule": "linear", "t": 1000},
    ),
    Lesson(
        "forward",
        "Keep t = 250 and switch to **cosine**",
        "more of the moons survive: cosine destroys the signal slowly early on",
        "at t = 250: ᾱ_t and closeness to the data (MMD²) both favour cosine over linear",
        _cosine_keeps,
        {"dataset": "moons", "schedule": "cosine", "t": 250},
    ),
    Lesson(
        "forward",
        "Pick **8gaussians** and drag **t** to 500",
        "the shaded contours are the exact densities of q(x_t); the flow cloud (right) is smaller than the VP one: "
        "α² + σ² = ½ mid-way, each point on a straight line from x₀ to ε",
        "at t = 500: std of the flow's x_t < 0.85 × std of the VP x_t",
        _flow_smaller,
        {"dataset": "8gaussians", "t": 500},
    ),
]
