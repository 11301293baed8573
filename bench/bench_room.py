"""A room's /generate (or /guided_generate) without Gradio: N sessions run the reverse tab's handler (or the guidance
tab's) at once, in one process, through one AppContext and its sampling engine (what the app does, minus Gradio's
queue, streams and the other tabs' calls).

    python bench/bench_room.py [--tab reverse|guidance] [--runs 30] [--workers 2] [--threads 1]
                               [--out bench/results/bench_room.txt]

Each run is the tab's default request (reverse: moons, DPM-Solver++ 25 steps, 500 points; guidance: moons, the
distance-to-target reward at λ = 2 by DPS, DDIM 20 steps, 300 points) with its own seed, released together by a
barrier; per run the seconds to its first message, to the result (reverse: the trajectory on file, the first Done;
guidance: the figure) and to the end (reverse: the measured Done, with MMD² to the data).  Beside bench_app.py --workshop (the same requests through Gradio) and
bench_engine.py (the engine alone), this says which share of a room's time is the app's handler and which is
Gradio's.  The app itself runs torch at cores / max-heavy-jobs threads with cores / threads engine workers
(app.py's engine_workers): the defaults here match a 2-core machine.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import torch
from app_client import pct
from common import base_parser, print_footer, print_header, setup

from components.context import AppContext
from components.guidance import handlers as guidance
from components.guidance.handlers import GuidedRequest
from components.reverse import handlers
from components.reverse.requests import GenerateRequest
from components.reward_picker import DEFAULT_EXPRESSION
from tests.app_helpers import guided_inputs, preset_dir_with_fallbacks


def tab_run(ctx: AppContext, session, tab: str, seed: int):
    """(the handler's generator for the tab's default request with this seed, the view type that marks its result)"""
    if tab == "guidance":
        inputs = guided_inputs(expression=DEFAULT_EXPRESSION, seed=seed)
        req = GuidedRequest.parse(ctx, session, *inputs)
        return guidance.guided_generate(ctx, session, req), guidance.Result
    req = GenerateRequest.parse(ctx, session, "moons", "dpmpp_2m", 25, 0.0, seed, 500, "any", 1.0)
    return handlers.generate(ctx, session, req), handlers.Done


def one_room(ctx: AppContext, runs: int, tab: str) -> dict[int, tuple[float, float, float]]:
    out: dict[int, tuple[float, float, float]] = {}
    barrier = threading.Barrier(runs)

    def run(i: int) -> None:
        session = ctx.store.get(None)
        views, result = tab_run(ctx, session, tab, 1000 + i)
        barrier.wait()
        t0 = time.perf_counter()
        first = done = None
        for view in views:
            now = time.perf_counter() - t0
            first = now if first is None else first
            if isinstance(view, result) and done is None:
                done = now
        out[i] = (first, done, time.perf_counter() - t0)
        ctx.store.drop(session.key)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def main() -> int:
    ap = base_parser(__doc__, "bench_room")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--tab", choices=("reverse", "guidance"), default="reverse", help="whose default request")
    ap.add_argument("--workers", type=int, default=2, help="engine workers (app.py: cores / torch threads)")
    ap.set_defaults(threads=1)
    args = ap.parse_args()
    device = setup(args)
    print_header(
        f"bench_room: N sessions' default request through the {args.tab} tab's handler, no Gradio", device, args
    )
    with preset_dir_with_fallbacks(Path(tempfile.mkdtemp())):
        ctx = AppContext(device="cpu", engine_workers=args.workers)
        try:
            session = ctx.store.get(None)  # warm: the preset, its field cache
            list(tab_run(ctx, session, args.tab, 1)[0])
            t0 = time.perf_counter()
            room = one_room(ctx, args.runs, args.tab)
            wall = time.perf_counter() - t0
            stats = ctx.engine.stats()
        finally:
            ctx.close()
    first, done, measured = ([v[k] for v in room.values()] for k in range(3))
    print(
        f"\n{args.runs} runs, torch threads {torch.get_num_threads()}, engine workers {args.workers}: all done in {wall:.2f} s"
    )
    names = ("trajectory on file", "measured (MMD²)") if args.tab == "reverse" else ("result", "end")
    for name, xs in (("first message", first), (names[0], done), (names[1], measured)):
        print(f"  {name:20s} p50 {pct(xs, 0.5):.2f} s  p95 {pct(xs, 0.95):.2f} s  max {max(xs):.2f} s")
    print(
        f"  engine: {stats.rounds} rounds, {stats.vjp_rounds} VJP rounds, {stats.rows} rows, "
        f"busy {stats.busy_seconds:.2f} s"
    )
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
