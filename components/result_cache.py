"""Reuse the result of an identical deterministic request.

A workshop presses Generate with the same defaults thirty times.  Sampling a shipped preset is a deterministic
function of the request: the start noise x_T and every fresh noise draw (DDPM, DDIM with eta > 0, the recurrence's
re-noising) come from the ``torch.Generator`` seeded with the request's seed (DESIGN.md habit 8), the preset's
weights never change while the app runs (``adiff.presets.load_preset`` hands out one shared, read-only model), and
the figure builders are pure.  So a second request with the same inputs may be answered with the first one's
result.  The model trained in the Train tab ("my model") is never cached: its weights change under the same name.

``ResultCache`` is a small LRU map, bounded both in entries and in bytes (the caller states each value's size),
and thread-safe (Gradio runs callbacks on worker threads).  A plotly figure in a stored value (the value itself,
or an item of a stored tuple) is kept as its JSON text (``figure_json.FigureJSON``), which Gradio sends as it is: a
figure object holds every number as a Python float, about 4.7 times its JSON's length (0.78 MB
against 166 kB), and replacing such entries one by one fragmented the heap, so the app's memory kept rising for
about 150 distinct requests after the cache was full (issue 23; bench/bench_hostile.py).  One lives on the
``AppContext`` (``ctx.results``), so it belongs to one app and is shared by its sessions, like the preset models.
Values must be treated as read-only by every reader: a hit hands the same objects to every session (a rebuilt
figure is a new object, its keys maybe in another order than the stored figure's).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

import adiff.presets

from .figure_json import FigureJSON

__all__ = [
    "ResultCache",
    "request_key",
    "preset_key",
    "FinishedRun",
    "REUSED_TEXT",
    "figure_nbytes",
    "MB",
]

MB = 2**20


def _norm(v: Any) -> Hashable:
    """A hashable, type-stable form of one input: 2 and 2.0 are the same request, True is not 1."""
    if isinstance(v, bool):
        return ("bool", v)  # tagged: True == 1 in Python, but they are different inputs
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        f = float(v)
        return int(f) if f.is_integer() else f
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((str(k), _norm(x)) for k, x in v.items()))
    raise TypeError(f"request_key: an input of type {type(v).__name__} ({v!r}) is not a plain value")


def request_key(endpoint: str, **inputs: Any) -> tuple:
    """The cache key of a request: the endpoint and every input that affects its result, already validated and
    normalised by the callback (e.g. eta = 0 for a solver without eta), as a hashable tuple sorted by name."""
    return (endpoint, *sorted((k, _norm(v)) for k, v in inputs.items()))


def preset_key(source: str, endpoint: str, **inputs: Any) -> tuple | None:
    """``request_key`` for a shipped preset; None (never cached) for any other model, e.g. "my model"."""
    if source not in adiff.presets.PRESETS:
        return None
    return request_key(endpoint, preset=source, **inputs)


REUSED_TEXT = (
    "♻ **reused**: an identical request (same model and settings, same seed) ran before on this server. "
    "Sampling is deterministic given the seed, so this is that run's result, not a new one: change the "
    "seed for new samples."
)


@dataclass(frozen=True)
class FinishedRun:
    """A finished /generate, enough to answer an identical request: the trajectory (for /frame and the GIF), the
    player's JSON payload and the summary.  Each answer writes the session its own copy of the file, under its own
    run id, because a session deletes its previous files when it gets new ones."""

    trajectory: Any  # adiff.samplers.Trajectory (CPU tensors, read-only)
    paths: Any  # [K, P, 2] highlighted particles, or None
    payload: dict  # components.player.player_payload(...) of the whole trajectory
    payload_chars: int  # len(json.dumps(payload)): its share of the cache's bytes
    summary: dict

    def nbytes(self) -> int:
        tr = self.trajectory
        tensors = [tr.x, tr.x0_pred, tr.eps_pred, tr.v_pred, self.paths]
        return (
            sum(t.numel() * t.element_size() for t in tensors if t is not None)
            + self.payload_chars
            + len(json.dumps(self.summary))
        )

    def write_file(self, folder: Path, run_id: str) -> str:
        """This answer's player JSON (with ``run_id``) in ``folder`` -> its path."""
        data_path = Path(folder) / "trajectory.json"
        data_path.write_text(json.dumps({**self.payload, "id": run_id}, separators=(",", ":")))
        return str(data_path)


def figure_nbytes(fig: Any) -> int:
    """About the bytes a plotly figure holds (its JSON's length)."""
    return len(fig.to_json()) if hasattr(fig, "to_json") else len(json.dumps(fig))


def _freeze(value: Any) -> Any:
    if isinstance(value, (go.Figure, FigureJSON)):
        return FigureJSON.of(value)
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """A stored value as it is given out: frozen figures stay frozen (each answer gets a new FigureJSON of the one
    text, so that what an answer rebuilds from it is its own)."""
    if isinstance(value, FigureJSON):
        return FigureJSON(value.text)
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


class ResultCache:
    """key -> value, least recently used first out beyond ``max_entries`` or ``max_bytes`` (thread-safe)."""

    def __init__(self, max_entries: int = 32, max_bytes: int = 64 * MB):
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 0:
            raise ValueError(f"max_entries must be an integer >= 0, got {max_entries!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an integer >= 0, got {max_bytes!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Event] = {}  # key -> set when the run computing it has ended
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable | None) -> Any | None:
        """The value stored under ``key`` (now the most recently used), or None.  ``key`` None is never cached."""
        if key is None:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
        return _thaw(item[0])

    @contextlib.contextmanager
    def single_flight(self, key: Hashable | None, timeout: float = 120.0):
        """A thirty-person room presses Generate with the same defaults at once: the first request computes, the
        others wait for it (up to ``timeout``) instead of sampling the same thing thirty times.  Yields the cached
        value (a hit: waited for, or there already) or None (this caller computes and should ``put`` before leaving
        the block; if it fails, the next waiter computes)."""
        if key is None:
            yield None
            return
        while True:
            with self._lock:
                flight = self._flights.get(key)
                if flight is None:
                    mine = self._flights[key] = threading.Event()
                    break
            flight.wait(timeout)
            hit = self.get(key)
            if hit is not None or not flight.is_set():  # a hit, or the first run is stuck: compute anyway
                yield hit
                return
        hit = self.get(key)
        try:
            yield hit
        finally:
            with self._lock:
                self._flights.pop(key, None)
            mine.set()

    def put(self, key: Hashable | None, value: Any, nbytes: int) -> bool:
        """Store ``value`` (about ``nbytes`` bytes) under ``key``, dropping the least recently used entries until
        both bounds hold.  A value larger than ``max_bytes`` (or key None) is not stored: returns False."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
            raise ValueError(f"nbytes must be an integer >= 0, got {nbytes!r}")
        if key is None or nbytes > self.max_bytes or self.max_entries == 0:
            return False
        value = _freeze(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size
        return True

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def stats(self) -> dict:
        with self._lock:
            return {
                "entries": len(self._items),
                "bytes": self._bytes,
                "hits": self.hits,
                "misses": self.misses,
                "max_entries": self.max_entries,
                "max_bytes": self.max_bytes,
            }
