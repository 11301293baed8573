"""Per-session state: every visitor has a Session of their own, kept in a SessionStore made by ``build_app``.

Gradio's ``gr.State`` must be deep-copyable and is hidden from the API, and module-level variables are shared by
every visitor; so big per-visitor objects (a model being adapted or trained, the last trajectory, temporary files)
live in a dict keyed by ``request.session_hash``.  The store is bounded (least recently used sessions are dropped
beyond ``max_sessions``, idle ones after ``ttl_s``) and ``demo.unload`` drops a session when its tab closes.
Presets are never stored here: they are shared, read-only models (``adiff.presets.load_preset``).

Long jobs (adaptation, training) never hold a lock across a ``yield``: each step runs under ``session.lock`` and
checks that its run is still the session's current one (``session.runs[kind]``), so pressing Start again, Reset,
or a cancelled generator left suspended by Stop can never have two loops mutate one model at the same time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Session", "SessionStore", "StoredTrajectory", "return_free_memory"]


def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (macOS, musl, Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


_MALLOC_TRIM = _malloc_trim()  # a function handle, never changed: nothing here is per-visitor state


def return_free_memory() -> None:
    """Hand the heap's free pages back to the OS.  glibc keeps what a finished job freed (figures, trajectories, GIF
    frames) in its per-thread arenas, so the app's RSS drifted up by 10-40 MB between sessions although nothing was
    alive (bench/bench_soak.py; malloc_trim brought it back to a flat line).  A few milliseconds."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass
class StoredTrajectory:
    """A finished reverse-diffusion run, kept for the frame slider and the GIF."""

    trajectory: Any  # adiff.samplers.Trajectory (CPU tensors [K, B, ...])
    model: Any  # the DiffusionModel that made it (for the score field at any frame)
    source: str  # preset name or "my model"
    kind: str  # "points" | "images"
    condition: Any  # None or an int label
    cfg_scale: float | None
    paths: Any  # [K, P, 2] positions of the highlighted particles (points only)
    ideal: Any = None  # adiff.data.gmm.GaussianMixture for the ideal model, or None
    gif_path: str | None = None
    data_path: str | None = None  # the player's JSON of the whole trajectory (sent to the browser as a file)

    @property
    def num_frames(self) -> int:
        return len(self.trajectory)

    def nbytes(self) -> int:
        tr = self.trajectory
        return sum(t.numel() * t.element_size() for t in (tr.x, tr.x0_pred, tr.eps_pred))


@dataclass
class Session:
    key: str
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    trajectory: StoredTrajectory | None = None
    adaptation: Any = None  # components.adaptation_tab.AdaptationRun
    trained: Any = None  # DiffusionModel trained or loaded in the Train tab
    trained_info: dict = field(default_factory=dict)  # dataset, steps, ... of ``trained``
    train_history: dict = field(default_factory=dict)
    own_data: dict = field(default_factory=dict)  # "my drawing" / "my images" -> components.own_data.OwnData
    runs: dict = field(default_factory=dict)  # kind -> id of the current run of that kind
    progress: dict = field(default_factory=dict)  # kind -> plain words on how far its last run got (for "stopped")
    _workdir: str | None = None
    _run_ids: Any = field(default_factory=lambda: itertools.count(1), repr=False)

    def new_run(self, kind: str) -> int:
        """Start a run of ``kind`` ("adapt", "train"); any older run of that kind stops at its next step."""
        with self.lock:
            rid = next(self._run_ids)
            self.runs[kind] = rid
            return rid

    def is_current(self, kind: str, rid: int) -> bool:
        return self.runs.get(kind) == rid

    def stop_runs(self, kind: str) -> None:
        with self.lock:
            self.runs[kind] = next(self._run_ids)

    @property
    def workdir(self) -> Path:
        """A private temporary folder for this session's files (GIFs, checkpoints), removed with the session."""
        if self._workdir is None or not Path(self._workdir).is_dir():
            self._workdir = tempfile.mkdtemp(prefix="adiff-session-")
        return Path(self._workdir)

    def close(self) -> None:
        """Release everything: models, trajectories, files."""
        for kind in list(self.runs):
            self.stop_runs(kind)
        self.trajectory = None
        self.adaptation = None
        self.trained = None
        self.train_history = {}
        self.own_data = {}
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


class SessionStore:
    """session_hash -> Session, thread-safe, bounded (LRU beyond ``max_sessions``, idle sessions after ``ttl_s``)."""

    def __init__(self, max_sessions: int = 200, ttl_s: float = 4 * 3600):
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions!r}")
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._last_trim = 0.0

    def _released(self) -> None:
        """After sessions were closed: return the freed memory to the OS (at most every 2 s)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_trim < 2.0:
                return
            self._last_trim = now
        return_free_memory()

    @staticmethod
    def key_of(request) -> str:
        """The caller's session hash.  A caller without one (a direct call with no request; the queue gives every
        API call one) gets a session of its own, never a shared key: two such callers must not see each other's
        models."""
        key = getattr(request, "session_hash", None) if request is not None else None
        return key or f"anonymous-{uuid.uuid4().hex}"

    def get(self, request) -> Session:
        key = self.key_of(request)
        now = time.time()
        dropped = []
        with self._lock:
            s = self._sessions.get(key)
            if s is None:
                s = self._sessions[key] = Session(key)
            s.last_seen = now
            for k, other in list(self._sessions.items()):
                if k != key and now - other.last_seen > self.ttl_s:
                    dropped.append(self._sessions.pop(k))
            while len(self._sessions) > self.max_sessions:
                oldest = min((v for k, v in self._sessions.items() if k != key), key=lambda v: v.last_seen)
                dropped.append(self._sessions.pop(oldest.key))
        for d in dropped:
            d.close()
        if dropped:
            self._released()
        return s

    def peek(self, key: str) -> Session | None:
        with self._lock:
            return self._sessions.get(key)

    def drop(self, key: str) -> bool:
        with self._lock:
            s = self._sessions.pop(key, None)
        if s is not None:
            s.close()
            self._released()
        return s is not None

    def drop_request(self, request) -> None:
        """For ``demo.unload``: forget the closing tab's session."""
        self.drop(self.key_of(request))

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.close()
