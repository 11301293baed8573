"""The sampling engine: concurrent sampling runs share one network call per round.

Each run is an ordinary sampling loop in its own thread (DiffusionModel.generate_progressive with its own solver,
solver state and generator); its network function is an ``EngineSession`` that hands each call (x_t, t, labels) to
the engine and waits.  A round takes what is queued (when every open run is waiting, when ``max_rows`` rows are
queued, or ``max_wait_ms`` after the oldest call came) and runs one forward per network over the concatenation, with
a time per row (adiff.serving.batch), then hands each run its rows.  The call that completes a round computes it in
its own thread (a run alone pays no hand-off between threads); the engine's thread starts rounds that come due by
time.  Runs at different steps, with different solvers, classes or CFG share a call (CFG's two halves are just more
rows); different models, or a model's EMA and raw weights, get a call each.  Runs that differentiate through the
network (reward guidance) get their VJPs batched among themselves (adiff.serving.session).

Results do not depend on load: a row's output depends on that row alone, and all randomness stays in the runs.
A run that raises, is cancelled or feeds NaN affects nobody else: a malformed call fails in its own thread
(batch.check_request), a call that raises is retried request by request so that only the bad one gets the error,
and NaN rows stay in their rows.  Tensors stay on the device: batching reads shapes, never values.

    engine = SamplingEngine(max_wait_ms=5, max_rows=8192)
    with engine.session(model) as net:                 # in each run's thread
        for rec in model.generate_progressive(500, seed=s, network=net):
            ...
    engine.stats(); engine.estimate_wait(rows=500, model=model)
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from .batch import (
    Network,
    Request,
    check_request,
    compute_isolated,
    forward_rows,
    forward_rows_graph,
    split_by_graph,
    split_requests,
    vjp_rows,
)
from .session import EngineSession, RunCancelled
from .stats import EngineStats

__all__ = ["SamplingEngine", "EngineStats", "EngineSession", "RunCancelled"]
log = logging.getLogger(__name__)

_COST_DECAY = 0.8  # seconds-per-row estimates: exponential moving average over calls (weight of the old value)


def _check_settings(max_wait_ms, max_rows, workers, vjp_wait_ms) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ValueError(f"workers must be an integer in 1..64, got {workers!r}")
    for name, wait in (("max_wait_ms", max_wait_ms), ("vjp_wait_ms", vjp_wait_ms)):
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 1000:
            raise ValueError(f"{name} must be a number in [0, 1000], got {wait!r}")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"max_rows must be a positive integer or None, got {max_rows!r}")


class SamplingEngine:
    """Dynamic batching of network calls across concurrent sampling runs (see the module docstring).

    max_wait_ms: how long a queued call may wait for others before its round starts (a round starts at once when
    every open run is waiting).  vjp_wait_ms: the same for a VJP round on the CPU (at once when no open run still
    owes a VJP; see ``vjp``).  max_rows: the most rows one call takes (None: everything queued); a single call
    larger than that runs alone.  workers: threads that compute a round's forward together, each on a share of its
    runs (at least ``MIN_SHARE_ROWS`` rows each): for a CPU with several cores, with torch.set_num_threads(1) (a
    small network's ops scale poorly across cores, and not at all where the cores are shared); keep 1 on a GPU.  The
    engine thread starts here; ``close()`` (or leaving a with-block) stops it."""

    def __init__(
        self, max_wait_ms: float = 5.0, max_rows: int | None = 8192, workers: int = 1, vjp_wait_ms: float = 50.0
    ):
        _check_settings(max_wait_ms, max_rows, workers, vjp_wait_ms)
        self.vjp_wait = vjp_wait_ms / 1000.0
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="adiff-engine-worker") if workers > 1 else None
        self.max_wait = max_wait_ms / 1000.0
        self.max_rows = max_rows if max_rows is not None else math.inf
        self._cond = threading.Condition()
        self._compute_lock = threading.Lock()  # one network call at a time (the engine's rounds and the VJP rounds)
        self._queue: deque[Request] = deque()
        self._vjp_queue: deque[Request] = deque()
        self._sessions: set[EngineSession] = set()
        self._closed = False
        self._rounds_out = 0  # forward rounds taken and not yet answered
        self._round_end = 0.0  # when the last forward round ended
        self._computing: tuple[int, float, Any] = (0, 0.0, None)  # (rows, start time, network key) of the call now
        self._cost: dict[tuple, float] = {}  # network key -> seconds per row
        self._counts = {"rounds": 0, "vjp_rounds": 0, "rows": 0, "last": 0, "max": 0, "failed": 0, "busy": 0.0}
        self._thread = threading.Thread(target=self._loop, name="adiff-sampling-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the runs' side
    @contextlib.contextmanager
    def session(self, model, use_ema: bool = True):
        """A run's network function for ``model`` (its EMA weights, or its raw weights with use_ema=False), open
        for the with-block: ``with engine.session(model) as net: model.generate_progressive(..., network=net)``."""
        s = EngineSession(self, Network.of(model, use_ema))
        with self._cond:
            if self._closed:
                raise RuntimeError("the sampling engine is closed")
            self._sessions.add(s)
        try:
            yield s
        finally:
            self.cancel(s)
            with self._cond:
                self._sessions.discard(s)
                self._cond.notify_all()

    def open_runs(self) -> int:
        """The runs with a session open now (one read, no lock: for a throttle that asks every step)."""
        return len(self._sessions)

    def call(self, session: EngineSession, x: torch.Tensor, t, labels=None, grad: bool = False):
        """Queue one forward of ``session``'s network and wait for its rows (the session calls this).  grad: the run
        will ask for the VJP (ServedNetwork): the forward is kept with autograd, and the answer is (rows, graph,
        index) for ``vjp``."""
        b = check_request(session.network, x, t, labels)
        req = Request(session, x.detach(), t, labels, b, grad=grad)
        with self._cond:
            self._enqueue(self._queue, req)
            session.grad_calls += int(grad)
            session.last_rows = b
            # The call that completes a round computes it in its own thread (no hand-off to the engine thread and
            # back); the engine thread starts the rounds that come due by max_wait instead.
            batch = self._take_round() if self._round_due() <= 0 else None
            if self._queue:
                self._cond.notify_all()
        if batch:
            self._run_round(batch)
        req.answered.wait()  # its own event: an answer wakes only its run
        return _outcome(req)

    def vjp(self, session: EngineSession, x, t, labels, cotangent: torch.Tensor, graph=None, index: int = 0):
        """v^T d net(x) / d x for a call made with autograd (ServedNetwork.backward calls this).  The VJP round runs
        in a waiting caller's thread, not the engine's: a backward pass runs inside the autograd engine (on a GPU, in
        its one worker thread per device), and waiting there on another thread's autograd call would deadlock; a
        backward run from within a backward is reentrant, which autograd supports (as activation checkpointing)."""
        b = check_request(session.network, x, t, labels)
        if not torch.is_tensor(cotangent) or cotangent.shape != x.shape:
            raise ValueError(f"cotangent must have the shape of x {list(x.shape)}, got {list(cotangent.shape)}")
        req = Request(session, x, t, labels, b, cotangent=cotangent, graph=graph, graph_index=index)
        # Waiting for other runs' VJPs pays only where they can come meanwhile: on a GPU the autograd worker that
        # would run them is this thread.  On the CPU each run computes its reward's gradient in Python between its
        # forward and its VJP, thirty of them one after another under the GIL: a VJP round that starts before they
        # all came uses the graph up, and the late runs pay a forward again.  With 30 guided runs a 5 ms wait cut
        # each step's VJPs into ~6 rounds; ``vjp_wait_ms`` = 50 keeps them to one or two (bench_room.py --tab
        # guidance: 13.6 -> 7.0 s with the graph-wise shares of ``_compute``).
        deadline = req.submitted + (0.0 if x.is_cuda else self.vjp_wait)
        with self._cond:
            self._enqueue(self._vjp_queue, req)
            session.grad_calls = max(0, session.grad_calls - 1)
            self._cond.notify_all()  # callers waiting for owed VJPs look again
        while (batch := self._await_vjp(req, deadline)) is not None:
            self._serve_safely(batch, vjp=True)
        return _outcome(req)

    def cancel(self, session: EngineSession) -> None:
        """End a run: its queued calls leave the queue, its waiting calls raise RunCancelled (see EngineSession)."""
        with self._cond:
            session.cancelled = True
            session.grad_calls = 0
            for req in list(session.requests):
                if not req.taken:
                    (self._vjp_queue if req.cotangent is not None else self._queue).remove(req)
                self._finish(req, error=RunCancelled("the run was cancelled"))
            self._cond.notify_all()

    # ------------------------------------------------------------------ what the app reads
    def stats(self) -> EngineStats:
        with self._cond:
            c = self._counts
            queued = list(self._queue) + list(self._vjp_queue)
            costs = list(self._cost.values())
            return EngineStats(
                rounds=c["rounds"],
                vjp_rounds=c["vjp_rounds"],
                rows=c["rows"],
                rows_last_call=c["last"],
                max_rows_call=c["max"],
                queued_calls=len(queued),
                queued_rows=sum(r.rows for r in queued),
                computing_rows=self._computing[0],
                open_runs=len(self._sessions),
                waiting_runs=sum(1 for s in self._sessions if s.requests),
                seconds_per_row=sum(costs) / len(costs) if costs else None,
                busy_seconds=c["busy"],
                failed_calls=c["failed"],
            )

    def estimate_wait(self, rows: int = 0, model=None, use_ema: bool = True, calls: int = 1) -> float | None:
        """Seconds until a new run's call of ``rows`` rows of ``model`` (not yet made) would be answered: the rest of
        the call being computed, then a round holding the next call of every open run (their queued rows, or the size
        of their last call) and its own rows, each row at its network's measured seconds per row.  calls: the run's
        network calls (1: until its first step; its NFE: until it ends, if the others keep running that long, an
        upper bound).  None until a call has been measured.  On a GPU the measured cost is the host's side of a call
        (kernels run asynchronously), so the estimate is low there."""
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
            raise ValueError(f"calls must be a positive integer, got {calls!r}")
        with self._cond:
            if not self._cost:
                return None
            fallback = sum(self._cost.values()) / len(self._cost)
            n, start, key = self._computing
            now = max(0.0, n * self._cost.get(key, fallback) - (time.perf_counter() - start)) if n else 0.0
            mine = self._cost.get(Network.of(model, use_ema).key, fallback) if model is not None else fallback
            per_round = rows * mine
            for s in self._sessions:
                queued = sum(r.rows for r in s.requests if not r.taken)
                per_round += (queued or s.last_rows) * self._cost.get(s.network.key, fallback)
            return now + calls * per_round

    def close(self) -> None:
        """Stop the engine thread; queued and later calls raise RuntimeError."""
        with self._cond:
            self._closed = True
            for req in (*self._queue, *self._vjp_queue):
                self._finish(req, error=RuntimeError("the sampling engine is closed"))
            self._queue.clear()
            self._vjp_queue.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def __enter__(self) -> SamplingEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the queue (self._cond held)
    def _enqueue(self, queue: deque, req: Request) -> None:
        if self._closed:
            raise RuntimeError("the sampling engine is closed")
        if req.session.cancelled:
            raise RunCancelled("the run was cancelled")
        queue.append(req)
        req.session.requests.add(req)

    def _finish(self, req: Request, result=None, error=None) -> None:
        if req.done:  # cancelled meanwhile: the answer is dropped
            return
        req.done, req.result, req.error = True, result, error
        req.session.requests.discard(req)
        req.answered.set()
        self._counts["failed"] += error is not None and not isinstance(error, RunCancelled)

    def _take(self, queue: deque, key=None) -> list[Request]:
        """The oldest queued calls (of network ``key``, or of any network) up to max_rows rows (at least one)."""
        taken, rows = [], 0
        for req in list(queue):
            if key is not None and req.session.network.key != key:
                continue
            if taken and rows + req.rows > self.max_rows:
                break
            taken.append(req)
            rows += req.rows
        for req in taken:
            queue.remove(req)
            req.taken = True
        return taken

    def _round_due(self) -> float:
        """Seconds until the queued calls make a round (<= 0: now; inf: when the round in progress ends).  Now when
        max_rows rows are queued.  Otherwise never while a round is in progress: the calls that come meanwhile join
        the next round (were in-flight runs counted as waiting, runs that drifted apart would keep separate, smaller
        rounds); then when every open run is waiting, or max_wait after the oldest call came or the last round ended,
        whichever is later."""
        if sum(r.rows for r in self._queue) >= self.max_rows:
            return 0.0
        if self._rounds_out:
            return math.inf
        if all(s.requests for s in self._sessions if not s.cancelled):
            return 0.0
        return max(self._queue[0].submitted, self._round_end) + self.max_wait - time.perf_counter()

    def _take_round(self) -> list[Request]:
        self._rounds_out += 1
        return self._take(self._queue)

    def _run_round(self, batch: list[Request]) -> None:
        try:
            self._serve_safely(batch)
        finally:
            with self._cond:
                self._rounds_out -= 1
                self._round_end = time.perf_counter()
                if self._queue:
                    self._cond.notify_all()  # the engine thread times the next round

    def _next_round(self) -> list[Request] | None:
        """Wait for a round's calls (None when the engine closes)."""
        with self._cond:
            while not self._closed:
                due = self._round_due() if self._queue else math.inf
                if due <= 0:
                    return self._take_round()
                self._cond.wait(None if due == math.inf else max(1e-4, due))
            return None

    def _await_vjp(self, req: Request, deadline: float) -> list[Request] | None:
        """Wait until ``req`` is answered (None), or until its VJP round is due: then take the round, to compute it in
        this thread.  Due: at the deadline, or when no open run still owes the VJP of a forward made with autograd."""
        with self._cond:
            while not (req.done or req.taken):
                now = time.perf_counter()
                owed = any(s.grad_calls for s in self._sessions if not s.cancelled)
                if now >= deadline or not owed:
                    return self._take(self._vjp_queue, req.session.network.key)
                self._cond.wait(deadline - now)
        req.answered.wait()  # another caller computes the round that took it
        return None

    # ------------------------------------------------------------------ computing
    def _loop(self) -> None:
        while (batch := self._next_round()) is not None:
            self._run_round(batch)

    def _serve_safely(self, batch: list[Request], vjp: bool = False) -> None:
        """_serve, and should it fail itself (not a run's call: those are isolated), every request gets the error:
        the thread that computes (the engine's, or a run's) always returns and nobody waits forever."""
        try:
            self._serve(batch, vjp)
        except Exception as e:
            log.exception("sampling engine round failed")
            with self._cond:
                for req in batch:
                    self._finish(req, error=e)
                self._cond.notify_all()

    def _serve(self, batch: list[Request], vjp: bool) -> None:
        """One call per network among ``batch`` (forwards kept with autograd apart); answers every request (its rows
        or its own error)."""
        groups: dict[tuple, list[Request]] = {}
        for req in batch:
            groups.setdefault((req.session.network.key, req.grad), []).append(req)
        # forwards without autograd first: a plain sampling step is answered before the round's guided forwards
        # (which cost more per row and keep a graph), so its run goes on meanwhile
        for (key, grad), reqs in sorted(groups.items(), key=lambda group: group[0][1]):
            compute = vjp_rows if vjp else forward_rows_graph if grad else forward_rows
            net, rows = reqs[0].session.network, sum(r.rows for r in reqs)
            with self._compute_lock:
                start = time.perf_counter()
                with self._cond:
                    self._computing = (rows, start, key)
                answers = self._compute(net, reqs, compute)
                seconds = time.perf_counter() - start
            with self._cond:
                self._computing = (0, 0.0, None)
                for req, (out, err) in zip(reqs, answers):
                    self._finish(req, out, err)
                self._account(key, rows, seconds, vjp, grad)  # answers wake their runs (their events)

    def _compute(self, net: Network, reqs: list[Request], compute) -> list[tuple]:
        """compute_isolated over the workers' shares of a round, in parallel, answers in the requests' order.  A
        forward (with autograd or not) is cut by rows; a VJP round by graph (each kept graph's one backward in one
        share; a CPU backward runs in the thread that calls it).  On a GPU a VJP round stays whole: it runs inside
        the autograd worker, which another thread's backward would wait for."""
        if self._pool is None:
            shares = [reqs]
        elif compute is vjp_rows:
            shares = [reqs] if net.device.type == "cuda" else split_by_graph(reqs, self.workers)
        else:
            shares = split_requests(reqs, self.workers)
        others = [self._pool.submit(compute_isolated, net, share, compute) for share in shares[1:]]
        parts = [compute_isolated(net, shares[0], compute)] + [job.result() for job in others]
        answer = {id(r): a for share, part in zip(shares, parts) for r, a in zip(share, part)}
        return [answer[id(r)] for r in reqs]  # the shares may regroup the requests (split_by_graph)

    def _account(self, key, rows: int, seconds: float, vjp: bool, grad: bool) -> None:
        c = self._counts
        c["vjp_rounds" if vjp else "rounds"] += 1
        c["rows"] += rows
        c["last"], c["max"] = rows, max(c["max"], rows)
        c["busy"] += seconds
        if not (vjp or grad):  # the cost of a plain forward row (what most rows are)
            old = self._cost.get(key)
            new = seconds / max(rows, 1)
            self._cost[key] = new if old is None else _COST_DECAY * old + (1 - _COST_DECAY) * new


def _outcome(req: Request) -> torch.Tensor:
    if req.error is not None:
        raise req.error
    return req.result
