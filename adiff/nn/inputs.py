"""Checks of what callers hand a model: batches of samples, class conditions, sample shapes.  Every failure is a
ValueError that names the argument and says what was expected."""

from __future__ import annotations

import torch

__all__ = ["check_batch", "labels_for", "check_shape", "MAX_BATCH"]

MAX_BATCH = 100_000


def _dims(data_shape) -> str:
    return ", ".join(map(str, data_shape))


def check_batch(x, data_shape: tuple, device, name: str = "x_0") -> torch.Tensor:
    """x [B, *data_shape], finite floats -> float32 on ``device``."""
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor [B, {_dims(data_shape)}], got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(data_shape) or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [B, {_dims(data_shape)}], got {list(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x.to(device, torch.float32)


def labels_for(condition, batch: int, num_classes: int | None, device) -> torch.Tensor | None:
    """A condition (int, list or LongTensor [B]; None = the null class ``num_classes``) as labels [B] on ``device``;
    None for an unconditional model (``num_classes`` None), which takes no condition.  A float tensor [B, S, E] is an
    embedding context and passes through."""
    if num_classes is None:
        if condition is not None:
            raise ValueError("condition was given but this model is unconditional")
        return None
    n = num_classes
    if condition is None:
        return torch.full((batch,), n, dtype=torch.long, device=device)
    if isinstance(condition, int) and not isinstance(condition, bool):
        condition = torch.full((batch,), condition, dtype=torch.long)
    lab = torch.as_tensor(condition).to(device)
    if lab.is_floating_point() and lab.dim() >= 2:
        return lab
    lab = lab.long().reshape(-1)
    if lab.numel() != batch:
        raise ValueError(f"condition must have {batch} labels, got {lab.numel()}")
    if int(lab.min()) < 0 or int(lab.max()) > n:
        raise ValueError(f"condition labels must be in 0..{n - 1} (or {n} for none), got {lab.unique().tolist()[:8]}")
    return lab


def check_shape(shape, data_shape: tuple) -> tuple:
    """An int B or a shape [B, *data_shape] with 1 <= B <= MAX_BATCH -> the full shape tuple."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape, *data_shape)
    shape = tuple(shape)
    if len(shape) != 1 + len(data_shape) or tuple(shape[1:]) != tuple(data_shape) or not 1 <= shape[0] <= MAX_BATCH:
        raise ValueError(f"shape must be [B, {_dims(data_shape)}] with 1 <= B <= {MAX_BATCH}, got {list(shape)}")
    return shape
