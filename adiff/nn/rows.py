"""How a denoiser's batch is cut for inference: the time conditioning once per distinct time, then the rows in chunks
(adiff.nn.denoisers' ``DenoiserNetwork._trunk``).

A batch's rows may be at one time (t [1], shared), at a time each (t [B]), or at a few times picked by an index (a
table t [K] and t_index [B]: the sampling engine's rounds, adiff.serving).  The adaLN modulations are computed once
per distinct time (``per_time``) and given to the rows (``per_row``); without autograd the rows then run in chunks of
``CHUNK_TOKENS`` tokens, and rows at a few times run time by time (``time_groups``, ``chunks``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

__all__ = ["CHUNK_TOKENS", "chunks", "per_row", "per_time", "time_groups"]

MAX_LOOPED_TIMES = 64


def per_time(fn: Callable, c: torch.Tensor, t_index: torch.Tensor | None) -> torch.Tensor:
    """fn(c) for c [K, ...] holding one entry per distinct time of a batch whose rows pick theirs by t_index.  Up to
    MAX_LOOPED_TIMES entries go one at a time, so that every row gets bit for bit the numbers of a call where its
    time is the only one (a matmul over K rows may round differently from one over 1 row); K tiny calls per layer."""
    if t_index is None or not 1 < c.shape[0] <= MAX_LOOPED_TIMES:
        return fn(c)
    return torch.cat([fn(c[k : k + 1]) for k in range(c.shape[0])])


def per_row(v: torch.Tensor, t_index: torch.Tensor | None, rows: slice = slice(None)) -> torch.Tensor:
    """v [K, ...] computed once per distinct time -> [b, ...] for the batch's ``rows`` (all by default), whose times are
    t_index[rows].  Without t_index, v is one row shared by the batch (kept as it is) or one row per batch row."""
    if t_index is not None:
        return v.index_select(0, t_index[rows])
    return v if v.shape[0] == 1 else v[rows]


# A forward over more tokens than this runs in row chunks, so that a chunk's activations (the MLP's 4x-wide hidden
# above all) stay in a core's L2 cache: the moons network (2 tokens, width 64) over 7,500 rows on each of two threads,
# with TanhGELU, 19.2 -> 13.7 us per row; 1,024-3,072 tokens measured best (30 /generate through the app: 2,048 beat
# 1,024, 4,096 and 8,192; with the fused MLP layer 2,048-4,096 within 2 %).  Each row's numbers do not depend on the
# chunk (tests/test_model.py).  Inference only.
CHUNK_TOKENS = 2048


def _slices(n: int, step: int, start: int = 0) -> list[slice]:
    """Rows start..start+n in slices of at most ``step``."""
    return [slice(i, min(i + step, start + n)) for i in range(start, start + n, step)] or [slice(start, start)]


def time_groups(t_index: torch.Tensor | None, x: torch.Tensor, step: int):
    """(order, rows per time) to run rows at several times time by time, or None to run them as they come.  order: the
    rows sorted by time (stable), or None where they already are.  Only on the CPU (reading t_index on a GPU would
    wait for it) and where the chunks stay large: at least a quarter of ``step`` rows each on average (a round of the
    app's sampling engine holds a few runs at two or three steps; per-row times, as a training batch's, come as they
    are).  Copying the time's modulation rows to each row took a tenth of the moons network's forward."""
    if t_index is None or x.device.type != "cpu":
        return None
    B = t_index.shape[0]
    counts = torch.bincount(t_index).tolist()
    if sum(-(-n // step) for n in counts if n) * step > 4 * max(B, 1):
        return None
    sorted_already = B < 2 or bool((t_index[1:] >= t_index[:-1]).all())
    order = None if sorted_already else torch.sort(t_index, stable=True).indices
    return order, counts


def chunks(x: torch.Tensor, t_index: torch.Tensor | None, mods: list, tokens_per_row: int):
    """(order, the chunks) for an inference forward over x [B, ...]: order (the rows' order, or None: as they are; see
    ``time_groups``), and each chunk's (rows of x taken in that order, its modulation rows: each of ``mods`` [K, .]
    per row, or one row shared by a chunk of one time)."""
    B, step = x.shape[0], max(1, CHUNK_TOKENS // tokens_per_row)
    groups = time_groups(t_index, x, step)
    if groups is None:
        return None, ((r, [per_row(m, t_index, r) for m in mods]) for r in _slices(B, step))
    order, counts = groups
    starts = [sum(counts[:k]) for k in range(len(counts))]
    by_time: Iterator = (
        (r, [m[k : k + 1] for m in mods]) for k, n in enumerate(counts) for r in _slices(n, step, starts[k])
    )
    return order, by_time
