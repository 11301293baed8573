"""Tab 4, compare: the widgets and their wiring (handlers.py does the work, view.py and figures.py draw it).

The same x_T through two choices side by side: two solvers, two step counts, or two models of the same data (e.g. the
VP moons preset and the rectified-flow moons preset).  Each side is a model picker and solver controls (ids
``cmp-a-preset``, ``cmp-a-sampler``, ``cmp-a-steps``; ``cmp-b-...``); the seed, the sample count and the class are
shared.  Both rows stream into one player while they run; afterwards one slider scrubs both in the browser.  Per
side: NFE, the MMD² of the samples to fresh data, path straightness, and a quality-against-NFE figure.
API: /compare (streams player messages, like /generate), /compare_stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from adiff.samplers import solvers_for

from ..choices import label_choices
from ..columns import MAIN, controls_column, intro, lesson_column, result_column, tab_row
from ..context import AppContext, ModelInfo
from ..controls import ClassCFG, ModelPicker, RunStop, SeedCount, SolverControls
from ..figures import make_message_figure
from ..follow import follow_model, follow_solver, link_model
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink, join, link_row, merge
from ..player import player_component, wire_player_run
from ..summaries import stopped_text
from ..wiring import RUNNING, endpoint
from . import handlers, view
from .handlers import CompareRequest, Done, Live
from .lessons import LESSONS

__all__ = ["build"]

PREFIX = "cmp"
OPENING = (("a", "ddim", 100), ("b", "dpmpp_2m", 10))  # both sides open on moons: DDIM-100 against DPM-Solver++-10
INTRO = """### Compare: the same noise, two choices
Both sides start from **the same x_T** (same seed, same points) and differ in one choice: the solver, the number of
steps, or the model (e.g. **moons**, a variance-preserving ε model, against **moons-flow**, a rectified flow).  One
slider scrubs both.  Per side: **NFE** (network calls: the cost), **MMD²** to fresh data (≈ 0: as good as data), and
**path straightness** (mean path length / mean displacement: 1 = straight lines).  What lets a solver take few steps
is a velocity that changes slowly along each path, which a bending path can still have: the curves below show it."""


@dataclass
class Side:
    """One side's controls: its model picker and its solver controls (no η), ids from ``cmp-<key>``."""

    key: str
    picker: ModelPicker
    solver: SolverControls

    @classmethod
    def build(cls, ctx: AppContext, key: str, model, info: ModelInfo, solver: str, steps: int) -> Side:
        prefix = f"{PREFIX}-{key}"
        with gr.Group():
            picker = ModelPicker.build(
                ctx, prefix, label=f"{key.upper()}: model", info=None, describe=False, field=f"model_{key}"
            )
            fields = (f"solver_{key}", f"steps_{key}")
            controls = SolverControls.build(model, info, prefix, eta=False, fields=fields, prefer=(solver, steps))
        return cls(key, picker, controls)


def _side_tab(ctx: AppContext, key: str, model, info: ModelInfo, solver: str, steps: int) -> Side:
    with gr.Tab(f"Side {key.upper()}", id=f"cmp-side-{key}", elem_id=f"cmp-side-{key}"):
        return Side.build(ctx, key, model, info, solver, steps)


def _render_compare(out: Live | Done):
    """(player, status, summary, trajectory file, quality figure).  While sampling: the same status line, a running
    summary, no file and a placeholder figure in every message, not gr.skip() (see wiring.py)."""
    if isinstance(out, Live):
        return out.message, view.SAMPLING_TEXT, RUNNING, None, make_message_figure(view.QUALITY_WAIT_TEXT)
    return out.message, out.text, out.summary, out.data_path, out.figure


def _render_stop(out):
    where, summary = out
    return stopped_text("compare", where), summary


def _link_side(ctx: AppContext, q: LinkParams, request, out: dict, side: Side, groups: list, model, info):
    """A link's model, solver and steps of one side, through the same code as choosing them: the model first (the
    solver menu and step limit follow it, and for side A the class and sample count), then the solver, then the steps
    checked against that model.  Returns the side's model and ModelInfo."""
    key = side.key
    updates, model, info = link_model(ctx, q, request, groups, model, info)
    out.update(updates)
    s = q.choice(f"solver_{key}", solvers_for(model.process))
    if s is not None:
        merge(out, side.solver.solver, s)
        join(out, side.solver.on_solver(model, s))
    q.fill(out, [(f"steps_{key}", side.solver.steps, "int", 1, model.max_sampling_steps)])
    return model, info


def build(ctx: AppContext) -> TabLink:
    first, first_info = ctx.model("moons", None)  # both sides open on moons
    with gr.Tab("4 · Compare", id="compare"):
        with tab_row():
            with controls_column():
                # side A and side B in two tabs: both sides' settings do not fit one column above the fold
                with gr.Tabs(elem_id="cmp-sides"):
                    a, b = (_side_tab(ctx, key, first, first_info, s, k) for key, s, k in OPENING)
                seeds = SeedCount.build(PREFIX, seed_info="the shared x_T")
                klass = ClassCFG.build(PREFIX, cfg=False)
                run = RunStop.build(PREFIX, "Compare", run_id="go")
            with result_column():
                player = player_component(
                    "cmp-player",
                    elem_classes=[MAIN],
                    empty_text="Press Compare: side A and side B start from the same noise.",
                )
                status = gr.Markdown(
                    "Press **Compare**: both rows stream in, then one slider scrubs both.",
                    elem_id="cmp-status",
                    elem_classes=["adiff-status"],
                )
                curve = gr.Plot(
                    label="Quality against NFE", show_label=False, elem_id="cmp-curve", elem_classes=["adiff-figure"]
                )
                with gr.Accordion("Details: the numbers (JSON)", open=False):
                    summary = gr.JSON(label="status", elem_id="cmp-summary", max_height=320)
                    data_file = gr.File(
                        label="Both trajectories as JSON (what the player plays)", elem_id="cmp-trajectory", height=90
                    )
                link_btn, link_box = link_row("compare")
            with lesson_column():
                intro(INTRO, "compare")
                render("compare", LESSONS)

    inputs = [a.picker.dropdown, a.solver.solver, a.solver.steps, b.picker.dropdown, b.solver.solver, b.solver.steps]
    wire_player_run(
        ctx,
        run,
        "cmp-player",
        endpoint(ctx, CompareRequest.parse, handlers.compare, _render_compare),
        [*inputs, seeds.seed, seeds.count, klass.label],
        [player, status, summary, data_file, curve],
        status,
        data_file,
        endpoint(ctx, None, handlers.stop, _render_stop, name="stop"),
        [status, summary],
        "compare",
    )
    groups_a, groups_b = [a.picker, a.solver, seeds, klass], [b.picker, b.solver]  # side A's model sets the class
    for side, groups in ((a, groups_a), (b, groups_b)):
        follow_model(ctx, groups)
        follow_solver(ctx, side.picker, side.solver)

    fields = {
        "model_a": a.picker.dropdown,
        "solver_a": a.solver.solver,
        "steps_a": a.solver.steps,
        "model_b": b.picker.dropdown,
        "solver_b": b.solver.solver,
        "steps_b": b.solver.steps,
        "seed": seeds.seed,
        "n": seeds.count,
        "label": klass.label,
    }

    def apply_link(q: LinkParams, request) -> dict:
        """A link's values, through the same code as choosing them in the page: each side's model, solver and steps,
        then the seed, the sample count (its limit follows model A's kind) and a class that model A offers."""
        out: dict = {}
        _, info = _link_side(ctx, q, request, out, a, groups_a, first, first_info)
        _link_side(ctx, q, request, out, b, groups_b, first, first_info)
        return q.fill(
            out,
            [
                ("seed", seeds.seed, "int", 0, LIMITS.seed),
                ("n", seeds.count, "int", 1, LIMITS.images if info.kind == "images" else LIMITS.points),
                ("label", klass.label, "choice", label_choices(info)),
            ],
        )

    return TabLink("compare", fields, apply_link, link_btn, link_box, [a.solver.help, b.solver.help])
