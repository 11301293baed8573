"""The streaming throttle (components/streaming.py): when a run's next update is due, alone and in a full room."""

from __future__ import annotations

import pytest

from components.streaming import Throttle


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sent_at(throttle: Throttle, clock: Clock, steps: int, dt: float) -> list[int]:
    """Step through ``steps`` steps of ``dt`` seconds each; the indices whose update was due."""
    due = []
    for i in range(steps):
        clock.now += dt
        if throttle.due(i):
            due.append(i)
    return due


def test_a_run_alone_sends_its_first_step_then_one_update_per_interval():
    clock = Clock()
    throttle = Throttle(100, interval_s=0.25, messages=None, clock=clock)
    due = sent_at(throttle, clock, 100, 0.0625)  # 6.25 s in all (binary fractions: no rounding at the edges)
    assert due[0] == 0
    assert all(b - a == 4 for a, b in zip(due, due[1:]))  # every 0.25 s = every 4 steps of 1/16 s
    assert throttle.sent == len(due) == 25


def test_a_slow_run_spaces_its_updates_to_about_messages_in_all():
    clock = Clock()
    throttle = Throttle(50, interval_s=0.2, messages=10, clock=clock)
    due = sent_at(throttle, clock, 50, 1.0)  # a 50 s run: 10 messages, not 250
    assert due[0] == 0 and 9 <= len(due) <= 11


@pytest.mark.parametrize("runs", [1, 5, 30])
def test_runs_in_progress_share_the_stream_rate(runs):
    """n runs at once send at most one update per n / rate seconds each: the room's messages per second stay at the
    rate however many stream; a run alone keeps its own interval."""
    clock = Clock()
    throttle = Throttle(200, interval_s=0.2, messages=None, clock=clock, sharing=lambda: runs, rate=15.0)
    due = sent_at(throttle, clock, 200, 0.05)  # 10 s
    gaps = [(b - a) * 0.05 for a, b in zip(due, due[1:])]
    assert due[0] == 0
    assert min(gaps) >= max(0.2, runs / 15.0) - 1e-9
    assert min(gaps) < max(0.2, runs / 15.0) + 0.05 + 1e-9  # not sparser than that either
    assert len(due) * runs / 10.0 <= 15.0 + runs / 10.0  # the room's rate: at most ~15 updates per second


def test_the_sharing_count_is_asked_as_it_changes():
    clock, runs = Clock(), [30]
    throttle = Throttle(400, interval_s=0.25, messages=None, clock=clock, sharing=lambda: runs[0], rate=15.0)
    full = sent_at(throttle, clock, 96, 0.0625)  # 6 s in a room of thirty: one update per 2 s
    runs[0] = 1  # the others finished: back to one per 0.25 s
    alone = sent_at(throttle, clock, 96, 0.0625)
    assert len(full) == 3
    assert 23 <= len(alone) <= 24
