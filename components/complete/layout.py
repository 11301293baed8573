"""Tab 7, complete: the widgets and their wiring (handlers.py does the work, view.py draws it).

Keep some pixels (the top half, left half or top quarter of a real held-out digit, or your own strokes on the app's
canvas) and let an image model sample the rest (RePaint, with the posterior correction); the trajectory plays in the
shared player beside the kept part, and the completions come with the class the shipped digit classifier reads.
API: /complete (streams player messages), /complete_stop.
"""

from __future__ import annotations

import gradio as gr

from adiff.data import IMAGE_DATASETS
from adiff.presets import preset_spec
from adiff.samplers import solvers_for

from ..columns import MAIN, controls_column, intro, lesson_column, result_column, tab_row
from ..context import MY_MODEL, AppContext
from ..controls import ModelPicker, RunStop, SeedCount, SolverControls, recurrence_slider
from ..fields import named
from ..figures import make_message_figure
from ..follow import follow_model, follow_solver, link_model
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink, join, link_row, merge
from ..player import player_component, wire_player_run
from ..summaries import stopped_text
from ..train.own_layout import drawing_canvas
from ..wiring import endpoint
from . import handlers
from .handlers import KEEPS, CompleteRequest, Done, Live
from .lessons import LESSONS

__all__ = ["build"]

PREFIX = "cp"
INTRO = """### Complete it: keep some pixels, let the model draw the rest
Inpainting (RePaint, Lugmayr et al. 2022).  At every step the kept pixels of x_t are the kept image noised by the
forward process, **q(x_t | x₀ kept)**, and the model's step fills in the others; the **posterior correction** also
moves the other pixels' x̂₀ towards what the kept ones imply (Rozet et al. 2024), and **recurrence** repeats each step,
re-noised in between, so that the two parts agree.  The model is asked for no class (its unconditional branch): the
kept pixels alone decide, and an independent digit classifier reads what came out."""
EMPTY_TEXT = "Press Complete: the kept part and the completions appear here, each with the class the classifier reads."
KEEP_INFO = (
    "halves and quarter: of a real held-out digit; my strokes: the ink you draw below (their box: the blank around "
    "it, too)"
)


def _render_complete(out: Live | Done):
    """(player, status, figure, summary, trajectory file)."""
    if isinstance(out, Live):
        return out.message, out.text if out.first else gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return out.message, out.text, out.figure, out.summary, out.data_path


def _render_stop(out):
    where, summary = out
    return stopped_text("complete", where), summary


def _keep_controls():
    """What is kept."""
    keep = gr.Radio(
        choices=list(KEEPS),
        value="top half",
        label="What you keep (the model samples the rest)",
        info=KEEP_INFO,
        elem_id=f"{PREFIX}-keep",
        elem_classes=named("keep"),
    )
    return keep


def _digit_controls():
    """The real digit (class, held-out example) and the canvas for the strokes."""
    with gr.Row():
        digit = gr.Number(
            value=0,
            minimum=0,
            maximum=9,
            precision=0,
            label="Digit",
            elem_id=f"{PREFIX}-digit",
            elem_classes=named("digit"),
        )
        example = gr.Number(
            value=0,
            minimum=0,
            maximum=LIMITS.complete_examples - 1,
            precision=0,
            label="Example",
            info="a held-out one",
            elem_id=f"{PREFIX}-example",
            elem_classes=named("example"),
        )
    with gr.Accordion("Draw what you keep", open=False, elem_id=f"{PREFIX}-draw"):
        gr.Markdown("Drawn onto the model's pixels (8×8 digits, 16×16 glyphs): a pixel at least half covered is ink.")
        canvas = drawing_canvas("Your strokes", f"{PREFIX}-sketch", 40)
    return digit, example, canvas


def build(ctx: AppContext) -> TabLink:
    first, first_info = ctx.model("digits", None)
    images = [s for s in ctx.sources() if s == MY_MODEL or preset_spec(s).dataset in IMAGE_DATASETS]
    with gr.Tab("7 · Complete", id="complete"):
        with tab_row():
            with controls_column():
                picker = ModelPicker.build(
                    ctx, PREFIX, value="digits", info="an image model: digits, glyphs or yours", choices=images
                )
                keep = _keep_controls()
                fix = gr.Checkbox(
                    value=True,
                    label="Posterior correction",
                    info="off: RePaint's plain replacement",
                    elem_id=f"{PREFIX}-correction",
                    elem_classes=named("correction"),
                )
                rec = recurrence_slider(PREFIX)
                digit, example, canvas = _digit_controls()
                with gr.Accordion("Sampler", open=False):
                    solver = SolverControls.build(first, first_info, PREFIX, eta=False)
                seeds = SeedCount.build(PREFIX, points=8, images=8)
                run = RunStop.build(PREFIX, "Complete", run_id="complete")
            with result_column():
                status = gr.Markdown(
                    "Press **Complete**: the frames stream in as the model fills in the pixels you did not keep.",
                    elem_id=f"{PREFIX}-status",
                    elem_classes=["adiff-status"],
                )
                plot = gr.Plot(
                    make_message_figure(EMPTY_TEXT),
                    show_label=False,
                    elem_id=f"{PREFIX}-figure",
                    elem_classes=["adiff-figure", MAIN],
                )
                player = player_component(
                    f"{PREFIX}-player", empty_text="Press Complete: the frames of the completions stream in here."
                )
                with gr.Accordion("Details: the numbers (JSON) and the trajectory", open=False):
                    summary = gr.JSON(label="readings and settings", elem_id=f"{PREFIX}-summary", max_height=320)
                    data_file = gr.File(label="Trajectory as JSON", elem_id=f"{PREFIX}-trajectory", height=90)
                link_btn, link_box = link_row("complete")
            with lesson_column():
                intro(INTRO, "complete")
                render("complete", LESSONS)

    fields = {  # the API's order: CompleteRequest.parse's
        "preset": picker.dropdown,
        "keep": keep,
        "digit": digit,
        "example": example,
        "drawing": canvas,
        "correction": fix,
        "sampler": solver.solver,
        "steps": solver.steps,
        "rec": rec,
        "seed": seeds.seed,
        "n": seeds.count,
    }
    wire_player_run(
        ctx,
        run,
        f"{PREFIX}-player",
        endpoint(ctx, CompleteRequest.parse, handlers.complete, _render_complete),
        list(fields.values()),
        [player, status, plot, summary, data_file],
        status,
        data_file,
        endpoint(ctx, None, handlers.stop, _render_stop, name="stop"),
        [status, summary],
        "complete",
    )
    groups = [picker, solver, seeds]
    follow_model(ctx, groups)
    follow_solver(ctx, picker, solver)
    del fields["drawing"]  # a drawing is not a link's: it stays in the page

    def apply_link(q: LinkParams, request) -> dict:
        """A link's values, through the same code as choosing them in the page (the model first)."""
        out, model, _ = link_model(ctx, q, request, groups, first, None, images)
        s = q.choice("sampler", solvers_for(model.process))
        if s is not None:
            merge(out, solver.solver, s)
            join(out, solver.on_solver(model, s))
        return q.fill(
            out,
            [
                ("keep", keep, "choice", list(KEEPS)),
                ("digit", digit, "int", 0, 9),
                ("example", example, "int", 0, LIMITS.complete_examples - 1),
                ("correction", fix, "bool"),
                ("rec", rec, "int", 1, LIMITS.recurrence),
                ("steps", solver.steps, "int", 1, model.max_sampling_steps),
                ("seed", seeds.seed, "int", 0, LIMITS.seed),
                ("n", seeds.count, "int", 1, LIMITS.images),
            ],
        )

    return TabLink("complete", fields, apply_link, link_btn, link_box, [picker.about, solver.help])
