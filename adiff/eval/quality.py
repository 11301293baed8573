"""Sample quality against the number of network evaluations (NFE): the curve the compare view draws.

For each solver and NFE budget, sample N points from the same seed and measure the unbiased MMD² to fresh data
(adiff.eval.metrics.mmd2).  Heun spends 2 NFE per step but 1 on its last (Karras et al. 2022, Alg. 1), so a budget
of n NFE is ⌈(n + 1) / 2⌉ Heun steps.  The result is plain data (JSON-able); the shipped presets keep theirs in
assets/presets/NAME.nfe.json (written by ``python -m adiff.cli.quality --preset NAME``), so the app shows them at
once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

from ..samplers import SOLVERS, solvers_for
from .metrics import mmd2

__all__ = ["NFE_GRID", "steps_for_nfe", "quality_against_nfe"]

NFE_GRID = (5, 10, 20, 50, 100, 200)


def steps_for_nfe(solver: str, nfe: int, max_steps: int) -> int:
    """The most steps whose NFE is at most ``nfe`` (at least 1), capped at the process's ``max_steps``."""
    s = SOLVERS[solver]
    steps = max(1, min(int(nfe), max_steps))
    while steps > 1 and s.nfe(steps) > nfe:
        steps -= 1
    return steps


def quality_against_nfe(
    model,
    reference: Callable[[int], torch.Tensor],
    solvers: Iterable[str] | None = None,
    nfes: Iterable[int] = NFE_GRID,
    n: int = 1000,
    seed: int = 0,
    condition=None,
    progress: Callable[[str], None] | None = None,
    **sample_kwargs,
) -> dict:
    """MMD² to fresh data (``reference(m)`` -> m data points, a new draw per call) for every solver in ``solvers``
    (default: all of the model's process) at every NFE budget, from the same seed.  Also the floor: MMD² between
    two fresh data draws of the same size (0 in expectation; its spread is the noise of one figure)."""
    names = list(solvers) if solvers is not None else solvers_for(model.process)
    rows, t0 = [], time.time()
    for name in names:
        seen = set()
        for budget in nfes:
            steps = steps_for_nfe(name, budget, model.max_sampling_steps)
            if steps in seen:
                continue
            seen.add(steps)
            x, _ = model.generate(
                n, condition=condition, seed=seed, sampler=name, num_steps=steps, keep_every=10**9, **sample_kwargs
            )
            rows.append(
                {
                    "solver": name,
                    "steps": steps,
                    "nfe": SOLVERS[name].nfe(steps),
                    "mmd2": mmd2(x.float().cpu(), reference(n)),
                }
            )
            if progress is not None:
                progress(f"{name} {steps} steps")
    floor = [mmd2(reference(n), reference(n)) for _ in range(3)]
    return {"n": n, "seed": seed, "rows": rows, "floor": floor, "seconds": round(time.time() - t0, 1)}
