"""What the sampling engine reports about itself (SamplingEngine.stats)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineStats"]


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine (see SamplingEngine.stats)."""

    rounds: int  # forward calls made (one per network per round)
    vjp_rounds: int  # batched vector-Jacobian calls (reward guidance)
    rows: int  # rows served by those calls
    rows_last_call: int  # rows of the most recent call
    max_rows_call: int  # the most rows one call has had
    queued_calls: int  # calls waiting for a round now
    queued_rows: int  # their rows (the queue depth)
    computing_rows: int  # rows in the call being computed now
    open_runs: int  # sessions open now
    waiting_runs: int  # of those, the ones waiting for an answer
    seconds_per_row: float | None  # measured cost of a row (moving average over calls, all networks); None: no call yet
    busy_seconds: float  # time spent in network calls (busy / wall time = how much of the time the engine computed)
    failed_calls: int  # calls answered with an error (their run's own)

    @property
    def mean_rows_per_call(self) -> float:
        return self.rows / max(1, self.rounds + self.vjp_rounds)
