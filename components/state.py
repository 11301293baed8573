"""Per-session state: every visitor has a Session of their own, kept in a SessionStore made by ``build_app``.

Gradio's ``gr.State`` must be deep-copyable and is hidden from the API, and module-level variables are shared by
every visitor; so big per-visitor objects (a model being adapted or trained, the last trajectory, temporary files)
live in a dict keyed by ``request.session_hash``.  The store is bounded (least recently used sessions are dropped
beyond ``max_sessions``, idle ones after ``ttl_s``) and ``demo.unload`` drops a session when its tab closes.
Presets are never stored here: they are shared, read-only models (``adiff.presets.load_preset``).

Long jobs (adaptation, training) never hold a lock across a ``yield``: each step runs under ``session.lock`` and
checks that its run is still the session's current one (``session.runs[kind]``), so pressing Start again, Reset,
or a cancelled generator left suspended by Stop can never have two loops mutate one model at the same time.

Each tab keeps its own state in the session (``session.tab(name, factory)``: a small dataclass defined by the tab's
folder), so adding a tab never adds a field here.  What several tabs share stays on the Session: the session's own
model ("my model", made by the Train tab and sampled by the others), the run registry and the private folder.
Every run writes its files into a folder of its own (``session.run_folder``) and only a delivered run's older
siblings are removed (``session.delivered``), so any number of parallel calls in one session never read or delete
each other's files.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Session", "SessionStore", "return_free_memory", "return_free_memory_now_and_then"]


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


_TRIM_LOCK = threading.Lock()  # the heap is the process's: so is when it was last trimmed
_trim = {"last": 0.0, "pending": False}


def return_free_memory_now_and_then(min_interval_s: float = 2.0) -> None:
    """return_free_memory() now, or, if it ran less than ``min_interval_s`` ago (anywhere in the process), once that
    interval is over (one timer at a time).  Called when a session closes and when an event's callback ends: while
    sessions stay open, heavy requests otherwise left their freed heap with glibc (issue 23, bench_hostile)."""
    with _TRIM_LOCK:
        wait = _trim["last"] + min_interval_s - time.monotonic()
        if wait > 0:
            if not _trim["pending"]:
                _trim["pending"] = True
                timer = threading.Timer(wait, _deferred_trim)
                timer.daemon = True
                timer.start()
            return
        _trim["last"] = time.monotonic()
    return_free_memory()


def _deferred_trim() -> None:
    with _TRIM_LOCK:
        _trim["pending"] = False
        _trim["last"] = time.monotonic()
    return_free_memory()


@dataclass
class Session:
    key: str
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    trained: Any = None  # "my model": the DiffusionModel trained or loaded in the Train tab
    trained_info: dict = field(default_factory=dict)  # dataset, steps, ... of ``trained``
    runs: dict = field(default_factory=dict)  # kind -> id of the current run of that kind
    _tabs: dict = field(default_factory=dict, repr=False)  # tab name -> that tab's state object
    _workdir: str | None = None
    _run_ids: Any = field(default_factory=lambda: itertools.count(1), repr=False)
    _delivered: dict = field(default_factory=dict, repr=False)  # kind -> run folders whose results were delivered
    _sampling: dict = field(default_factory=dict, repr=False)  # kind -> engine sessions of its runs in progress

    def tab(self, name: str, factory: Callable[[], Any]):
        """This session's state for tab ``name`` (made by ``factory`` on first use)."""
        with self.lock:
            state = self._tabs.get(name)
            if state is None:
                state = self._tabs[name] = factory()
            return state

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

    @contextmanager
    def sampling(self, kind: str, engine, model) -> Iterator[Any]:
        """One sampling run's engine session (adiff.serving) for ``model``, which ``stop_sampling(kind)`` ends.

        Gradio's cancel stops reading a run's generator, but the thread computing it goes on to its next yield (a
        throttled run yields a dozen times in all); cancelling its engine session ends it at its next network call
        (RunCancelled, which components.wiring.endpoint ends quietly) and takes its rows out of the next round."""
        with engine.session(model) as net:
            with self.lock:
                self._sampling.setdefault(kind, set()).add(net)
            try:
                yield net
            finally:
                with self.lock:
                    self._sampling[kind].discard(net)

    def stop_sampling(self, kind: str | None = None) -> None:
        """End every sampling run of ``kind`` in progress (every kind: None) at its next network call; runs started
        afterwards are not affected."""
        with self.lock:
            nets = [n for k, ns in self._sampling.items() if kind in (None, k) for n in ns]
        for net in nets:
            net.cancel()

    @property
    def workdir(self) -> Path:
        """A private temporary folder for this session's files (GIFs, checkpoints), removed with the session."""
        with self.lock:
            if self._workdir is None or not Path(self._workdir).is_dir():
                self._workdir = tempfile.mkdtemp(prefix="adiff-session-")
            return Path(self._workdir)

    def run_folder(self, kind: str) -> Path:
        """A new folder for one run's files, unique in this session (parallel runs never share a name)."""
        with self.lock:
            folder = self.workdir / f"{kind}-{next(self._run_ids)}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        return folder

    def delivered(self, kind: str, folder: Path, keep: int = 1) -> None:
        """``folder``'s result reached the browser (its event has moved past the yield that sent it): remove the
        folders of older delivered runs of ``kind`` beyond the ``keep`` most recent.  A run still in flight is never
        touched, so a parallel call's files stay until it has sent them."""
        with self.lock:
            done = self._delivered.setdefault(kind, [])
            done.append(Path(folder))
            old, self._delivered[kind] = done[:-keep], done[-keep:]
        for f in old:
            shutil.rmtree(f, ignore_errors=True)

    def close(self) -> None:
        """Release everything: models, tab states, files."""
        for kind in list(self.runs):
            self.stop_runs(kind)
        self.stop_sampling()
        with self.lock:
            tabs, self._tabs = list(self._tabs.values()), {}
            self.trained, self.trained_info, self._delivered = None, {}, {}
        for state in tabs:
            close = getattr(state, "close", None)
            if close is not None:
                close()
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

    def _released(self) -> None:
        """After sessions were closed: return the freed memory to the OS (at most every 2 s)."""
        return_free_memory_now_and_then()

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
