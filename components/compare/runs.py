"""Compare: one side's run while it goes (its frames, path straightness, progress and time) and the lockstep that
advances two runs so that a 10-step and a 100-step run finish together."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from adiff.eval.metrics import StraightnessMeter
from adiff.samplers import TrajectoryRecorder

from ..limits import LIMITS

__all__ = ["SideRun", "lockstep"]


@dataclass
class SideRun:
    """One side while it runs: the frames kept, path straightness over every step, how far it got, its time."""

    choice: Any  # the side's handlers.SideChoice (its steps, its label)
    steps: Iterator  # the progressive run
    rec: TrajectoryRecorder = field(init=False)
    meter: StraightnessMeter = field(default_factory=StraightnessMeter)
    done: int = 0
    last: Any = None  # the last step's record
    seconds: float = 0.0

    def __post_init__(self):
        self.rec = TrajectoryRecorder(max(1, math.ceil(self.choice.steps / LIMITS.frames)))

    @property
    def finished(self) -> bool:
        return self.done >= self.choice.steps

    def advance(self) -> None:
        t0 = time.monotonic()
        step = next(self.steps)
        self.rec.add(step)
        if self.last is None:
            self.meter.add(step.x_t)
        self.meter.add(step.x_prev)
        self.last, self.done = step, self.done + 1
        self.seconds += time.monotonic() - t0


def lockstep(runs: Sequence[SideRun]) -> Iterator[SideRun]:
    """Advance the runs one step at a time, each step to the run that has done the smaller share of its own run (the
    first on ties), so a 10-step and a 100-step run finish together; yields the run that moved."""
    while True:
        todo = [r for r in runs if not r.finished]
        if not todo:
            return
        r = min(todo, key=lambda r: r.done / r.choice.steps)
        r.advance()
        yield r
