"""The prioritised trajectory buffer: the best samples (or whole trajectories) seen during adaptation.

Each item is a tensor of one fixed shape (fixed by the first item added: a sample [*data_shape] or a trajectory
[K, *data_shape]), stored detached on the CPU as float32, with its reward, its age and optional metadata.

Priorities are a softmax of z-scored rewards,

    z_i = (r_i - mean(r)) / (std(r) + eps),    p_i = softmax(z / temperature)_i,

so they never overflow (the original design used exp(reward), which overflows near reward 710) and do not depend
on the scale of the reward (with exp(reward), a reward range of a few hundred put all the weight on one item).
When the buffer is full, the item with the lowest reward is evicted (ties: the oldest); a new item whose reward
is below everything in a full buffer is not kept.  ``add_batch`` ends in exactly the state that adding the
items one by one would (same rows, same order).
"""

from __future__ import annotations

import heapq
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .buffer_checks import check_int, check_temperature, checked_batch, checked_tensors

__all__ = ["TrajectoryBuffer", "BufferSample", "BufferSnapshot", "MAX_CAPACITY"]

MAX_CAPACITY = 100_000
_EPS = 1e-8  # added to the reward std before z-scoring
_MIN_PRIORITY = 1e-300  # floor for sampling, so multinomial without replacement can always draw b items


@dataclass(frozen=True)
class BufferSample:
    """A draw from the buffer. samples [b, *item_shape] float32 (CPU), rewards [b] float32, indices [b] long
    (rows of the buffer at the time of the draw, as in ``priorities()``), priorities [b] float32."""

    samples: torch.Tensor
    rewards: torch.Tensor
    indices: torch.Tensor
    priorities: torch.Tensor
    metadata: tuple = ()  # one dict (or None) per drawn item


@dataclass(frozen=True)
class BufferSnapshot:
    """A copy of the contents sorted by reward, best first (ties: youngest first); never aliases the buffer.
    samples [N, *item_shape] float32, rewards [N] float32, priorities [N] float32, age [N] long,
    indices [N] long (rows in the buffer), metadata: one dict (or None) per item, step: the buffer's counter."""

    samples: torch.Tensor
    rewards: torch.Tensor
    priorities: torch.Tensor
    age: torch.Tensor
    indices: torch.Tensor
    metadata: tuple
    step: int


def _priorities64(rewards: torch.Tensor, temperature: float) -> torch.Tensor:
    """rewards [N] float64 -> softmax of z-scored rewards / temperature [N] float64 (empty for N = 0)."""
    if rewards.numel() == 0:
        return rewards.clone()
    z = (rewards - rewards.mean()) / (rewards.std(unbiased=False) + _EPS)
    return torch.softmax(z / temperature, dim=0)


class TrajectoryBuffer:
    """A bounded, reward-prioritised store of samples or trajectories (see the module docstring).

    capacity: how many items it keeps, 1..100_000.  temperature: > 0; lower concentrates sampling on the best.
    ``step`` counts the items ever offered (kept or not); an item's ``age`` is the value of ``step`` when it was
    offered (0 for the first), so a larger age means a younger item.
    """

    def __init__(self, capacity: int, temperature: float = 1.0):
        self._capacity = check_int("capacity", capacity, 1, MAX_CAPACITY)
        self._temperature = check_temperature(temperature)
        self.clear()

    # ------------------------------------------------------------------ basic state
    def clear(self) -> None:
        """Remove every item and forget the item shape; capacity and temperature stay."""
        self._n = 0
        self._step = 0
        self._item_shape: tuple[int, ...] | None = None
        self._store = torch.empty(0)  # [allocated, *item_shape] float32; rows >= _n are unused
        self._rewards = torch.empty(0, dtype=torch.float64)  # [allocated]
        self._ages = torch.empty(0, dtype=torch.long)  # [allocated]
        self._metadata: list[dict | None] = []  # [_n]

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = check_temperature(value)

    @property
    def step(self) -> int:
        """How many items have been offered to the buffer since it was made or cleared."""
        return self._step

    @property
    def item_shape(self) -> tuple[int, ...] | None:
        """The shape every item must have (None until the first item is added)."""
        return self._item_shape

    def size(self) -> int:
        return self._n

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (
            f"TrajectoryBuffer(size={self._n}, capacity={self._capacity}, temperature={self._temperature:g}, "
            f"item_shape={self._item_shape})"
        )

    def rewards(self) -> torch.Tensor:
        """Rewards of the items in row order, [N] float32 (a copy)."""
        return self._rewards[: self._n].float()

    def priorities(self) -> torch.Tensor:
        """Sampling probabilities in row order, [N] float32, summing to 1 (empty when the buffer is)."""
        return _priorities64(self._rewards[: self._n], self._temperature).float()

    # ------------------------------------------------------------------ adding
    def add(self, trajectory: torch.Tensor, reward: float, metadata: dict | None = None) -> bool:
        """Offer one item (a tensor of the buffer's item shape) with its reward; True if it was kept."""
        if not isinstance(trajectory, torch.Tensor):
            raise ValueError(f"trajectory must be a torch.Tensor, got {type(trajectory).__name__}")
        if isinstance(reward, torch.Tensor):
            if reward.numel() != 1:
                raise ValueError(f"reward must be a single number, got a tensor of shape {tuple(reward.shape)}")
            reward = reward.item()
        if isinstance(reward, bool) or not isinstance(reward, numbers.Real):
            raise ValueError(f"reward must be a finite number, got {reward!r}")
        if metadata is not None and not isinstance(metadata, dict):
            raise ValueError(f"metadata must be a dict or None, got {type(metadata).__name__}")
        kept = self.add_batch(
            trajectory.unsqueeze(0),
            torch.tensor([float(reward)], dtype=torch.float64),
            None if metadata is None else [metadata],
            _field="trajectory",
            _reward_field="reward",
        )
        return bool(kept[0])

    def _plan(self, new_r: list, base: int) -> tuple[dict[int, int], int]:
        """Simulate the one-by-one adds of rewards ``new_r`` (ages base, base + 1, ...) on a heap of (reward, age,
        row) -> ({row: index of the new item that ends up there}, rows in use after)."""
        n = self._n
        placed: dict[int, int] = {}
        heap: list[tuple[float, int, int]] = []
        if n > 0:
            # only the len(new_r) lowest items can be evicted by len(new_r) adds (see tests): the heap needs no more
            cur_r, cur_a = self._rewards[:n], self._ages[:n]
            k = min(n, len(new_r))
            order = torch.argsort(cur_a, stable=True)
            order = order[torch.argsort(cur_r[order], stable=True)][:k]  # lowest (reward, age) first
            heap = [(float(cur_r[i]), int(cur_a[i]), int(i)) for i in order]  # already sorted: a valid heap
        for j, rj in enumerate(new_r):
            age = base + j
            if n < self._capacity:
                row, n = n, n + 1
            elif rj >= heap[0][0]:  # (rj, age) > (r_min, age_min): ages are unique and increasing
                row = heapq.heappop(heap)[2]
            else:
                continue  # below everything in a full buffer
            placed[row] = j
            heapq.heappush(heap, (rj, age, row))
        return placed, n

    def add_batch(
        self,
        items: torch.Tensor,
        rewards,
        metadata: Sequence[dict | None] | None = None,
        *,
        _field: str = "items",
        _reward_field: str = "rewards",
    ) -> torch.Tensor:
        """Offer N items at once: items [N, *item_shape], rewards [N] (tensor or sequence of numbers), optional
        metadata (one dict or None per item).  Returns kept [N] bool: True where the item is in the buffer after
        the call.  Ends in the same state as N calls of ``add``; invalid input raises ValueError and changes nothing.
        """
        # ---- validate everything before touching the state
        data, r, shape = checked_batch(self._item_shape, items, rewards, metadata, _field, _reward_field)
        n_new = data.shape[0]
        if n_new == 0:
            return torch.zeros(0, dtype=torch.bool)

        # ---- plan: simulate the one-by-one adds on a heap of (reward, age, row)
        base = self._step
        placed, n = self._plan(r.tolist(), base)

        # ---- apply
        if self._item_shape is None:
            self._item_shape = shape
            self._store = torch.empty((0, *shape), dtype=torch.float32)
        self._reserve(n)
        rows = torch.tensor(list(placed.keys()), dtype=torch.long)
        js = torch.tensor(list(placed.values()), dtype=torch.long)
        if rows.numel():
            self._store[rows] = data[js]
            self._rewards[rows] = r[js]
            self._ages[rows] = js + base
        self._metadata.extend([None] * (n - len(self._metadata)))
        for row, j in placed.items():
            self._metadata[row] = None if metadata is None or metadata[j] is None else dict(metadata[j])
        self._n = n
        self._step = base + n_new
        kept = torch.zeros(n_new, dtype=torch.bool)
        kept[js] = True
        return kept

    def _reserve(self, n: int) -> None:
        """Grow the allocated rows geometrically (up to capacity) so that n rows fit."""
        have = self._store.shape[0]
        if n <= have:
            return
        new = min(self._capacity, max(n, 16, 2 * have))
        store = torch.empty((new, *self._item_shape), dtype=torch.float32)
        rewards = torch.zeros(new, dtype=torch.float64)
        ages = torch.zeros(new, dtype=torch.long)
        store[: self._n] = self._store[: self._n]
        rewards[: self._n] = self._rewards[: self._n]
        ages[: self._n] = self._ages[: self._n]
        self._store, self._rewards, self._ages = store, rewards, ages

    # ------------------------------------------------------------------ reading
    def _empty_sample(self) -> BufferSample:
        if self._item_shape is None:
            raise ValueError("cannot sample from an empty buffer whose item shape is not known yet: add items first")
        e = torch.zeros(0)
        return BufferSample(torch.empty((0, *self._item_shape)), e, torch.zeros(0, dtype=torch.long), e.clone())

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> BufferSample:
        """Draw b = min(batch_size, size) distinct items with probability proportional to priority (successive
        draws without replacement), using a CPU ``generator`` if given.  Returns stacked copies."""
        batch_size = check_int("batch_size", batch_size, 0)
        b = min(batch_size, self._n)
        if b == 0:
            return self._empty_sample()
        p = _priorities64(self._rewards[: self._n], self._temperature)
        idx = torch.multinomial(p.clamp(min=_MIN_PRIORITY), b, replacement=False, generator=generator)  # [b]
        meta = tuple(None if self._metadata[i] is None else dict(self._metadata[i]) for i in idx.tolist())
        return BufferSample(self._store[idx].clone(), self._rewards[idx].float(), idx, p[idx].float(), meta)

    def _view(self, order: torch.Tensor) -> BufferSnapshot:
        p = _priorities64(self._rewards[: self._n], self._temperature)
        return BufferSnapshot(
            samples=self._store[order].clone(),
            rewards=self._rewards[order].float(),
            priorities=p[order].float(),
            age=self._ages[order].clone(),
            indices=order.clone(),
            metadata=tuple(None if self._metadata[i] is None else dict(self._metadata[i]) for i in order.tolist()),
            step=self._step,
        )

    def _best_order(self) -> torch.Tensor:
        n = self._n
        order = torch.argsort(self._ages[:n], descending=True, stable=True)  # youngest first among equal rewards
        return order[torch.argsort(self._rewards[:n][order], descending=True, stable=True)]

    def snapshot(self) -> BufferSnapshot:
        """All items, best reward first, as copies (safe to hand to a display while adaptation goes on)."""
        if self._item_shape is None:
            e = torch.zeros(0)
            return BufferSnapshot(
                torch.zeros(0),
                e,
                e.clone(),
                torch.zeros(0, dtype=torch.long),
                torch.zeros(0, dtype=torch.long),
                (),
                self._step,
            )
        return self._view(self._best_order())

    def best(self, k: int) -> BufferSnapshot:
        """The min(k, size) items with the highest rewards, best first (a snapshot of them)."""
        k = check_int("k", k, 0)
        snap = self.snapshot()
        if k >= self._n:
            return snap
        return BufferSnapshot(
            snap.samples[:k],
            snap.rewards[:k],
            snap.priorities[:k],
            snap.age[:k],
            snap.indices[:k],
            snap.metadata[:k],
            snap.step,
        )

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, numbers and lists (copies): capacity, temperature, step, item_shape (list or None),
        samples [N, *item_shape] float32, rewards [N] float64, age [N] long, metadata (list of dict or None)."""
        n = self._n
        return {
            "capacity": self._capacity,
            "temperature": self._temperature,
            "step": self._step,
            "item_shape": None if self._item_shape is None else list(self._item_shape),
            "samples": self._store[:n].clone() if self._item_shape is not None else torch.zeros(0),
            "rewards": self._rewards[:n].clone(),
            "age": self._ages[:n].clone(),
            "metadata": [None if m is None else dict(m) for m in self._metadata[:n]],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` (capacity and temperature included); on invalid input nothing changes."""
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict, got {type(state).__name__}")
        want = {"capacity", "temperature", "step", "item_shape", "samples", "rewards", "age", "metadata"}
        missing, extra = sorted(want - set(state)), sorted(set(state) - want)
        if missing or extra:
            raise ValueError(f"state keys must be {sorted(want)}; missing {missing}, unexpected {extra}")
        capacity = check_int("capacity", state["capacity"], 1, MAX_CAPACITY)
        temperature = check_temperature(state["temperature"])
        step = check_int("step", state["step"], 0)
        shape, samples, rewards, age, n = checked_tensors(state, capacity, step)
        meta = state["metadata"]
        if (
            not isinstance(meta, (list, tuple))
            or len(meta) != n
            or any(m is not None and not isinstance(m, dict) for m in meta)
        ):
            raise ValueError(f"metadata must be a list of {n} dicts (or None)")
        # ---- all checked: commit
        self._capacity, self._temperature, self._step = capacity, temperature, step
        self._item_shape = shape
        self._n = n
        self._store = samples if samples is not None else torch.empty(0)
        self._rewards = rewards.clone()
        self._ages = age.clone()
        self._metadata = [None if m is None else dict(m) for m in meta]

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TrajectoryBuffer:
        buf = cls(1)
        buf.load_state_dict(state)
        return buf
