"""The learned score (and velocity) field on the player's fixed grid, and the cache that shares it across sessions.

A field on the grid depends on the model, t, the class and the CFG weight, never on the seed, so a room of thirty
sampling the same preset at the same steps needs each field once (issue 22: "only sampling costs").  ``FieldCache``
(one per app, on the AppContext) keeps them, bounded; ``Fields`` is what a run hands the view: its model, class, CFG,
the run's network function (an engine session, so a miss is one batched call among the others) and the cache with
its key (None for a model whose weights may change, e.g. "my model")."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from adiff.data import PLOT_RANGE

from .arrays import grid

__all__ = ["FIELD_GRID", "FieldCache", "Fields", "field_condition"]

FIELD_GRID = 17  # score-field arrows per side


class FieldCache:
    """key -> (score [G*G, 2], velocity [G*G, 2] or None), least recently used first out beyond ``max_entries``
    (thread-safe; values are read-only numpy arrays shared by every session)."""

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key, compute: Callable[[], tuple]) -> tuple:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return hit
            self.misses += 1
        value = compute()
        for a in value:
            if a is not None:
                a.setflags(write=False)
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def field_condition(model, label: int | str | None, cfg_scale: float | None) -> tuple[int | None, float | None]:
    """The fields are drawn for one class (with CFG) or unconditionally: the (label, cfg_scale) the predictor takes."""
    label = label if isinstance(label, int) else None
    use_cfg = cfg_scale is not None and label is not None and model.is_conditional
    return label, cfg_scale if use_cfg else None


@dataclass
class Fields:
    """A run's fields: ``grids(ts)`` -> (score [K, G*G, 2], velocity [K, G*G, 2] or None), zero at t = 0."""

    model: Any
    label: int | str | None = None
    cfg_scale: float | None = None
    network: Any = None  # the run's network function (an engine session), or None for the model's own
    cache: FieldCache | None = None  # shared across sessions; only for models whose weights never change
    key: Any = None  # the model's identity in the cache (a preset's name)

    @property
    def velocity(self) -> bool:
        """Models that predict a velocity (v-prediction, a flow's velocity) also show the velocity field."""
        return self.model.prediction_type in ("v_prediction", "velocity")

    def predictor(self):
        label, cfg = field_condition(self.model, self.label, self.cfg_scale)
        return self.model.predictor(label, FIELD_GRID * FIELD_GRID, cfg_scale=cfg, network=self.network)

    def _one(self, predict, x: torch.Tensor, t) -> tuple:
        proc = self.model.process
        with torch.no_grad():
            p = predict(x, t)
        score = (-p.eps.float().cpu() / max(proc.coefficients(t)[1], 1e-6)).numpy()
        vel = (-proc.velocity(p.x0, p.eps, t)).float().cpu().numpy() if self.velocity else None
        return score, vel

    def grids(self, ts) -> tuple[np.ndarray, np.ndarray | None]:
        pts, _, _ = grid(FIELD_GRID, PLOT_RANGE)
        x = pts.to(self.model.device)
        score = np.zeros((len(ts), pts.shape[0], 2))
        vel = np.zeros_like(score) if self.velocity else None
        predict = None
        label, cfg = field_condition(self.model, self.label, self.cfg_scale)
        for i, t in enumerate(ts):
            if t <= 0:
                continue
            if self.cache is None or self.key is None:
                predict = predict or self.predictor()
                s, v = self._one(predict, x, t)
            else:
                s, v = self.cache.get(
                    (self.key, label, cfg, float(t)), lambda t=t: self._one(predict or self.predictor(), x, t)
                )
            score[i] = s
            if vel is not None:
                vel[i] = v
        return score, vel
