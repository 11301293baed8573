"""The trajectory buffer's input checks (adiff.steering.buffer): every value of an add, a capacity, a temperature or a
restored state is checked here before the buffer changes, and a bad one raises ValueError naming the field."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = ["check_int", "check_temperature", "checked_batch", "check_metadata", "checked_tensors"]


def check_int(field: str, v, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo or (hi is not None and v > hi):
        rng = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{field} must be an integer {rng}, got {v!r}")
    return int(v)


def check_temperature(v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) or float(v) <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {v!r}")
    return float(v)


def checked_batch(item_shape, items, rewards, metadata, _field: str = "items", _reward_field: str = "rewards"):
    """TrajectoryBuffer.add_batch's input (``item_shape``: the buffer's, None while empty), every value checked before anything changes -> (data [N, *item_shape] float32 CPU,
    rewards [N] float64, item_shape)."""
    if not isinstance(items, torch.Tensor) or not (
        items.is_floating_point() or items.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
    ):
        got = f"a {items.dtype} tensor" if isinstance(items, torch.Tensor) else type(items).__name__
        raise ValueError(f"{_field} must be a real-valued torch.Tensor, got {got}")
    if items.dim() < 1:
        raise ValueError(f"{_field} must have shape [N, *item_shape], got shape {tuple(items.shape)}")
    n_new = items.shape[0]
    shape = tuple(items.shape[1:])
    if item_shape is not None and shape != item_shape:
        dims = ", ".join(str(d) for d in item_shape)
        if _field == "items":
            raise ValueError(
                f"{_field} must have shape [N, {dims}] like the items in the buffer, got shape {tuple(items.shape)}"
            )
        raise ValueError(f"{_field} must have shape [{dims}] like the items in the buffer, got shape {shape}")
    try:
        r = torch.as_tensor(rewards, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{_reward_field} must be {n_new} finite numbers, got {rewards!r}") from err
    if _field == "items" and tuple(r.shape) != (n_new,):
        raise ValueError(f"{_reward_field} must have shape [N] = ({n_new},), got shape {tuple(r.shape)}")
    r = r.reshape(n_new)
    if not torch.isfinite(r).all():
        bad = r[~torch.isfinite(r)][0].item()
        raise ValueError(
            f"{_reward_field} must be finite, got {bad!r}"
            + ("" if _field != "items" else f" at position {int((~torch.isfinite(r)).nonzero()[0])}")
        )
    check_metadata(metadata, n_new)
    data = items.detach().to(device="cpu", dtype=torch.float32)  # [N, *item_shape]
    if not torch.isfinite(data).all():
        raise ValueError(f"{_field} must be finite, got a tensor with NaN or inf values")
    return data, r, shape


def check_metadata(metadata, n_new: int) -> None:
    if metadata is None:
        return
    if isinstance(metadata, (str, bytes, dict)) or not isinstance(metadata, Sequence) or len(metadata) != n_new:
        raise ValueError(f"metadata must be a list of {n_new} dicts (or None), got {metadata!r}")
    for i, m in enumerate(metadata):
        if m is not None and not isinstance(m, dict):
            raise ValueError(f"metadata[{i}] must be a dict or None, got {type(m).__name__}")


def checked_tensors(state: dict, capacity: int, step: int) -> tuple:
    """A state dict's item shape and tensors, checked against each other, the capacity and the step ->
    (item_shape or None, samples [N, *item_shape] or None, rewards [N] float64, age [N] long, N)."""
    shape = state["item_shape"]
    if shape is not None:
        if not isinstance(shape, (list, tuple)) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise ValueError(f"item_shape must be a list of non-negative ints or None, got {shape!r}")
        shape = tuple(shape)
    samples, rewards, age = state["samples"], state["rewards"], state["age"]
    if not all(isinstance(t, torch.Tensor) for t in (samples, rewards, age)):
        raise ValueError("samples, rewards and age must be tensors")
    n = rewards.shape[0] if rewards.dim() == 1 else -1
    if n < 0 or tuple(age.shape) != (n,) or n > capacity:
        raise ValueError(
            f"rewards and age must have shape [N] with N <= capacity={capacity}, got "
            f"{tuple(rewards.shape)} and {tuple(age.shape)}"
        )
    if shape is None and n > 0:
        raise ValueError("item_shape is None but the state holds items")
    if shape is not None and tuple(samples.shape) != (n, *shape):
        raise ValueError(f"samples must have shape {(n, *shape)}, got {tuple(samples.shape)}")
    rewards = rewards.detach().to("cpu", torch.float64)
    age = age.detach().to("cpu", torch.long)
    if not torch.isfinite(rewards).all():
        raise ValueError("rewards must be finite")
    if n and (age.min() < 0 or age.max() >= step or age.unique().numel() != n):
        raise ValueError(f"age must hold distinct values in 0..step-1 = 0..{step - 1}")
    samples = samples.detach().to("cpu", torch.float32).clone() if shape is not None else None
    if samples is not None and not torch.isfinite(samples).all():
        raise ValueError("samples must be finite")
    return shape, samples, rewards, age, n
