"""Conversions from adiff's tensors to the plain data the figure builders and the player take: finite lists,
points, image tiles, grids over the plot range, the score field on a grid, a reward on a grid."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from adiff.data import PLOT_RANGE
from adiff.diffusion.processes import Process

__all__ = [
    "count_nonfinite",
    "finite_rows",
    "finite_list",
    "points",
    "tile_array",
    "tile_images",
    "grid",
    "score_grid",
    "score_field",
    "reward_grid",
]


def count_nonfinite(x: torch.Tensor) -> int:
    """Samples (rows of x [N, ...]) holding a NaN or an infinity: the figures leave them out and say how many."""
    return int((~torch.isfinite(x.detach().reshape(x.shape[0], -1))).any(1).sum()) if x.numel() else 0


def finite_rows(x: torch.Tensor) -> torch.Tensor:
    """The samples of x [N, ...] whose every value is finite."""
    return x[torch.isfinite(x.detach().reshape(x.shape[0], -1)).all(1)]


def finite_list(a, digits: int = 4) -> list:
    """A 1-D array-like -> list of rounded floats, with None for NaN/inf (plotly leaves a gap)."""
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    ok = np.isfinite(arr)
    out = np.round(np.where(ok, arr, 0.0), digits).tolist()
    if not ok.all():
        out = [v if f else None for v, f in zip(out, ok.tolist())]
    return out


def points(x: torch.Tensor, limit: float = 1e4) -> dict:
    """x [N, 2] -> {"x": [...], "y": [...]} (rounded; far-away points clamped so the JSON stays small)."""
    a = x.detach().float().cpu().clamp(-limit, limit).numpy()
    return {"x": finite_list(a[:, 0]), "y": finite_list(a[:, 1])}


def tile_array(x: torch.Tensor, cols: int | None = None, gap: int = 1, min_size: int = 16) -> np.ndarray:
    """Images [N, 1, H, W] (or [N, H, W]) -> one float array tiling them in a grid, ``gap`` NaN pixels between.

    Images smaller than ``min_size`` pixels a side are enlarged by a whole factor, each pixel repeated
    (nearest-neighbour), so that 8x8 digits show as large, sharp blocks beside 16x16 glyphs and the 1-pixel gaps
    between tiles stay thin."""
    a = x.detach().float().cpu()
    if a.dim() == 4:
        a = a[:, 0]
    k = max(1, math.ceil(min_size / max(a.shape[1:])))
    if k > 1:
        a = a.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2)  # nearest-neighbour upscaling
    N, H, W = a.shape
    cols = cols or max(1, math.ceil(math.sqrt(N)))
    rows = max(1, math.ceil(N / cols))
    canvas = np.full((rows * (H + gap) - gap, cols * (W + gap) - gap), np.nan)
    arr = np.nan_to_num(a.numpy(), nan=0.0, posinf=1e3, neginf=-1e3)
    for i in range(N):
        r, c = divmod(i, cols)
        canvas[r * (H + gap) : r * (H + gap) + H, c * (W + gap) : c * (W + gap) + W] = arr[i]
    return canvas


def tile_images(
    x: torch.Tensor, cols: int | None = None, gap: int = 1, digits: int = 3, min_size: int = 16
) -> list[list]:
    """``tile_array`` as a 2-D list (rounded; None in the gaps) for plotly heatmaps."""
    out = np.round(tile_array(x, cols, gap, min_size), digits)
    return [[None if math.isnan(v) else v for v in row] for row in out.tolist()]


def grid(n: int, rng=PLOT_RANGE) -> tuple[torch.Tensor, list, list]:
    """An n x n grid over rng^2 (cell centres): (points [n*n, 2], xs, ys)."""
    lo, hi = rng
    step = (hi - lo) / n
    c = torch.tensor([lo + step * (i + 0.5) for i in range(n)])
    gx, gy = torch.meshgrid(c, c, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1), c.tolist(), c.tolist()


def score_grid(eps_fn: Callable, process: Process, ts, n: int = 17, rng=PLOT_RANGE, device=None) -> np.ndarray:
    """The score s(x, t) = grad log p_t(x) = -eps(x, t) / sigma_t on an n x n grid (``grid`` order) at each t in
    ``ts`` -> [len(ts), n*n, 2]; zero at t = 0 (clean data has no noise to point against).  One call of ``eps_fn``
    (which takes n*n points) per t: a batch that shares its t is the denoiser's fast path."""
    pts, _, _ = grid(n, rng)
    G = pts.shape[0]
    x = pts.to(device or "cpu")
    out = np.zeros((len(ts), G, 2))
    for i, t in enumerate(ts):
        if t <= 0:
            continue
        with torch.no_grad():
            eps = eps_fn(x, t).float().cpu()
        out[i] = (-eps / max(process.coefficients(t)[1], 1e-6)).numpy()
    return out


def score_field(eps_fn: Callable, process: Process, t, n: int = 17, rng=PLOT_RANGE, device=None) -> dict:
    """``score_grid`` at one t > 0 -> {"x","y","u","v"} lists for the plotly frame figure."""
    pts, _, _ = grid(n, rng)
    s = score_grid(eps_fn, process, [t], n, rng, device)[0]
    return {
        "x": finite_list(pts[:, 0], 3),
        "y": finite_list(pts[:, 1], 3),
        "u": finite_list(s[:, 0]),
        "v": finite_list(s[:, 1]),
    }


def reward_grid(reward: Callable, n: int = 70, rng=PLOT_RANGE) -> dict:
    """r(x) on an n x n grid -> {"x": [n], "y": [n], "z": [n][n]} (z[row = y][col = x])."""
    pts, xs, ys = grid(n, rng)
    with torch.no_grad():
        r = reward(pts).float().reshape(n, n)
    z = [finite_list(row) for row in r]
    return {"x": [round(v, 4) for v in xs], "y": [round(v, 4) for v in ys], "z": z}
