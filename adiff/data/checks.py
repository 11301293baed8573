"""Argument checks shared by the dataset makers (datasets.py, drawings.py): how many samples, which seed, and the
generator a seed makes."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import torch

__all__ = ["MAX_SAMPLES", "_check_n", "_check_seed", "_generator"]

MAX_SAMPLES = 200_000  # upper bound on n accepted by make_dataset


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, Integral) or not 1 <= int(n) <= MAX_SAMPLES:
        raise ValueError(f"n must be an integer in 1..{MAX_SAMPLES}, got {n!r}")
    return int(n)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be an integer in 0..2**63-1, got {seed!r}")
    return int(seed)


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    return g
