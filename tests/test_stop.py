"""Stop ends a sampling run on the server, not only in the page (issue 22 item 5: "Stop or a closed tab removes a
run's rows at the next round").  Gradio's cancel stops reading a run's generator, but the thread computing it goes
on until its next yield, and a throttled run yields about a dozen times in all (DDPM-1000: every ~80 steps).  The tab's
stop handler cancels the run's engine session, so the run ends at its next network call and its rows leave the
engine; a run started afterwards in the same session is not affected, and the endpoint ends a cancelled run quietly."""

from __future__ import annotations

import pytest

from adiff.serving import RunCancelled
from components.compare import handlers as compare
from components.guidance import handlers as guidance
from components.reverse import handlers as reverse
from components.reverse.requests import GenerateRequest
from components.wiring import endpoint
from tests.app_helpers import app_context


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    with app_context(tmp_path_factory.mktemp("presets")) as c:
        yield c


def _step_of(progress: str) -> int:
    """'at step 12 of 1000 (t = ...)' / 'A at step 3 of 1000, ...' / 'at guided step 5 of 1000' -> 12 / 3 / 5."""
    words = progress.replace(",", " ").split()
    return int(words[words.index("of") - 1])


def _reverse(ctx, session, sampler="ddpm", steps=1000):
    req = GenerateRequest.parse(ctx, session, "moons", sampler, steps, 0.0, 0, 200, "any", 1.0)
    return reverse.generate(ctx, session, req), lambda: reverse.state_of(session).progress, reverse.stop


def _compare(ctx, session):
    req = compare.CompareRequest.parse(ctx, session, "moons", "ddpm", 1000, "moons", "ddim", 1000, 0, 200, "any")
    return compare.compare(ctx, session, req), lambda: compare.state_of(session).progress, compare.stop


def _guidance(ctx, session):
    req = guidance.GuidedRequest.parse(
        ctx, session, "moons", "distance_to_target", "", "", 2.0, "dps", 1, "any", 1.0, "ddpm", 1000, 0, 100
    )
    run = guidance.guided_generate(ctx, session, req)
    next(run)  # "sampling unguided": before the engine session opens
    return run, lambda: guidance.state_of(session).progress, guidance.stop


@pytest.mark.parametrize("start", [_reverse, _compare, _guidance], ids=["reverse", "compare", "guidance"])
def test_stop_ends_the_run_at_its_next_network_call(ctx, start):
    session = ctx.store.get(None)
    try:
        run, progress, stop = start(ctx, session)
        next(run)  # the run is sampling: its first streamed message
        assert ctx.engine.stats().open_runs >= 1
        where, summary = stop(ctx, session, None)
        assert summary["status"] == "stopped" and where == progress()
        at = _step_of(where)
        with pytest.raises(RunCancelled):
            for _ in run:  # a thread Gradio no longer reads: it ends instead of sampling to step 1000
                pass
        assert _step_of(progress()) <= at + 2 < 1000, (where, progress())
        assert ctx.engine.stats().open_runs == 0  # its rows left the engine
        later, _, _ = _reverse(ctx, session, "ddim", 5)  # Stop does not reach a run started after it
        assert isinstance(list(later)[-1], reverse.Done)
    finally:
        ctx.store.drop(session.key)


def test_the_endpoint_ends_a_cancelled_run_quietly(ctx):
    """What Gradio runs: a handler that raises RunCancelled ends the stream with what it sent, and no error."""

    def handle(ctx, session, req):
        yield "first"
        raise RunCancelled("the run was cancelled")

    callback = endpoint(ctx, None, handle)
    assert list(callback(None)) == ["first"]
