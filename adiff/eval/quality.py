"""Sample quality against the number of network evaluations (NFE): the curve the compare view draws.

For each solver and NFE budget, sample ``draws`` independent sets of N points (one batch from one seed, split in
``draws``) and measure the unbiased MMD² of each to its own fresh data draw (adiff.eval.metrics.mmd2); a point of
the curve is the mean over the draws with its standard error.  One draw of MMD² at N = 2000 scatters by 1e-4 to
3e-4, as much as the differences between solvers, so a single draw is not a curve (moons DDPM-100 once measured
above DDPM-50).  The floor is the same figure for two fresh data draws: 0 in expectation.

Heun spends 2 NFE per step but 1 on its last (Karras et al. 2022, Alg. 1), so a budget of n NFE is ⌈(n + 1) / 2⌉
Heun steps.  The result is plain data (JSON-able); the shipped presets keep theirs in assets/presets/NAME.nfe.json
(written by ``python -m adiff.cli.quality --preset NAME``), so the app shows them at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence

import torch

from ..samplers import SOLVERS, solvers_for
from .metrics import mmd2

__all__ = ["NFE_GRID", "DRAWS", "NOISE_SE", "steps_for_nfe", "mean_se", "within_noise", "quality_against_nfe"]

NFE_GRID = (5, 10, 20, 50, 100)  # the shipped curves' budgets (200 NFE added nothing visible and cost the most)
DRAWS = 5  # independent draws per point of a curve
NOISE_SE = 2.0  # a mean within this many standard errors of 0 is "within noise of 0"


def steps_for_nfe(solver: str, nfe: int, max_steps: int) -> int:
    """The most steps whose NFE is at most ``nfe`` (at least 1), capped at the process's ``max_steps``."""
    s = SOLVERS[solver]
    steps = max(1, min(int(nfe), max_steps))
    while steps > 1 and s.nfe(steps) > nfe:
        steps -= 1
    return steps


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard error of the mean) of independent draws; the error is NaN for a single draw."""
    v = torch.tensor(list(values), dtype=torch.float64)
    if v.numel() == 0:
        raise ValueError("mean_se needs at least one value, got none")
    return float(v.mean()), (float(v.std() / v.numel() ** 0.5) if v.numel() > 1 else float("nan"))


def within_noise(mean: float, se: float | None, k: float = NOISE_SE) -> bool:
    """True when a mean MMD² is no more than ``k`` standard errors above 0 (the unbiased estimate's expectation is
    >= 0, so a negative mean is noise too).  Without a finite error (one draw) nothing is called noise."""
    if se is None or not math.isfinite(se):
        return False
    return mean <= k * se


def _repeat(condition, n: int, draws: int):
    """The condition for ``draws`` stacked draws of n: a per-sample tensor [n] is repeated, a class or None kept."""
    if isinstance(condition, torch.Tensor) and condition.dim() > 0:
        if condition.shape[0] != n:
            raise ValueError(f"condition must have one entry per sample ({n}), got shape {tuple(condition.shape)}")
        return condition.repeat(draws)
    return condition


def quality_against_nfe(
    model,
    reference: Callable[[int], torch.Tensor],
    solvers: Iterable[str] | None = None,
    nfes: Iterable[int] = NFE_GRID,
    n: int = 1000,
    seed: int = 0,
    condition=None,
    progress: Callable[[str], None] | None = None,
    draws: int = DRAWS,
    **sample_kwargs,
) -> dict:
    """MMD² to fresh data (``reference(m)`` -> m data points [m, 2], a new draw per call) for every solver in
    ``solvers`` (default: all of the model's process) at every NFE budget: per point ``mmd2`` (mean of ``draws``
    draws of n), ``mmd2_se`` and ``mmd2_draws``.  Every point starts from the same seed.  Also the floor, MMD²
    between two fresh data draws of the same size, as ``floor`` (the draws), ``floor_mmd2`` and ``floor_mmd2_se``.
    ``condition``: None (the null class of a conditional model), a class, or one class per sample [n]."""
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    names = list(solvers) if solvers is not None else solvers_for(model.process)
    cond = _repeat(condition, n, draws)
    rows, t0 = [], time.time()
    for name in names:
        seen = set()
        for budget in nfes:
            steps = steps_for_nfe(name, budget, model.max_sampling_steps)
            if steps in seen:
                continue
            seen.add(steps)
            x, _ = model.generate(
                n * draws, condition=cond, seed=seed, sampler=name, num_steps=steps, keep_every=10**9, **sample_kwargs
            )
            values = [mmd2(xk, reference(n)) for xk in x.float().cpu().split(n)]  # [draws] of [n, 2] each
            mean, se = mean_se(values)
            nfe = SOLVERS[name].nfe(steps)
            rows.append({"solver": name, "steps": steps, "nfe": nfe, "mmd2": mean, "mmd2_se": se, "mmd2_draws": values})
            if progress is not None:
                progress(f"{name} {steps} steps")
    floor = [mmd2(reference(n), reference(n)) for _ in range(draws)]
    floor_mean, floor_se = mean_se(floor)
    return {
        "n": n,
        "draws": draws,
        "seed": seed,
        "rows": rows,
        "floor": floor,
        "floor_mmd2": floor_mean,
        "floor_mmd2_se": floor_se,
        "seconds": round(time.time() - t0, 1),
    }
