"""The one streaming throttle: when a long loop's next update is due.

A run's first step is always sent (and any step the caller forces, e.g. its last); after it, at most one update per ``interval_s`` and, when
``messages`` is set, about that many in the whole run (the interval grows to the run's expected length divided by
``messages``, measured as it goes), so a slow run (a busy CPU, a big model) does not flood the page.  ``sharing``
(a sampling run: the engine's ``open_runs``) says how many runs stream at once: they share ``LIMITS.stream_rate``
updates per second, so a room of thirty gets a frame every two seconds each, and its runs finish sooner, instead of
the server spending its CPU on messages."""

from __future__ import annotations

import time
from collections.abc import Callable

from .limits import LIMITS

__all__ = ["Throttle"]


class Throttle:
    """``due(index)`` for steps 0..total-1 of a loop: whether to send an update now."""

    def __init__(
        self,
        total: int,
        interval_s: float = LIMITS.stream_interval_s,
        messages: int | None = LIMITS.stream_messages,
        clock: Callable[[], float] = time.monotonic,
        sharing: Callable[[], int] | None = None,
        rate: float = LIMITS.stream_rate,
    ):
        self.total, self.interval_s, self.messages, self.clock = max(1, int(total)), interval_s, messages, clock
        self.sharing, self.rate = sharing, rate
        self.started = clock()
        self.last_sent: float | None = None
        self.sent = 0

    def due(self, index: int, force: bool = False) -> bool:
        """True for the first step, for ``force``, and whenever the interval has passed since the last update; each
        True counts as sent."""
        now = self.clock()
        if not (self.last_sent is None or force):
            interval = self.interval_s
            if self.messages:
                expected = (now - self.started) / (index + 1) * self.total  # the whole run's length, so far
                interval = max(interval, expected / self.messages)
            if self.sharing is not None:
                interval = max(interval, self.sharing() / self.rate)
            if now - self.last_sent < interval:
                return False
        self.last_sent, self.sent = now, self.sent + 1
        return True
