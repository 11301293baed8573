"""Tab 3, reverse diffusion: the widgets and their wiring (handlers.py does the work, view.py draws it).

Sample a model with a solver from the samplers' registry, watch the frames stream in, then scrub and play the
trajectory in the browser (components/player.py): x_t, the predicted x0 and the predicted noise side by side; for 2-D
the learned score field and a few particle paths, and for 8gaussians the exact denoiser at the same x_t; the current
t on the schedule curve; the trajectory as an animated GIF.  While sampling a light player message goes out only when
the throttle says so (components/streaming.py); the whole trajectory is sent once at the end, as a JSON file the
player fetches.  API: /generate (streams player messages), /generate_stop, /frame (a plotly figure of any frame).
"""

from __future__ import annotations

import gradio as gr

from adiff.samplers import solvers_for

from ..columns import MAIN, controls_column, intro, lesson_column, result_column, tab_row
from ..context import AppContext
from ..controls import ClassCFG, ModelPicker, RunStop, SeedCount, SolverControls
from ..follow import follow_model, follow_solver, link_model
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink, join, link_row, merge
from ..player import player_component, wire_player_run
from ..summaries import stopped_text
from ..wiring import EVENT, RUNNING, endpoint
from . import handlers
from .handlers import Done, Live
from .lessons import LESSONS
from .requests import FrameRequest, GenerateRequest

__all__ = ["build"]

PREFIX = "rev"
INTRO = """### Reverse diffusion: from noise to data
x_t = α_t x₀ + σ_t ε.  Whatever the network predicts (ε, x₀, v = α_t ε − σ_t x₀, or a flow's velocity ε − x₀), one
conversion gives the **predicted noise ε̂** and the **predicted clean sample x̂₀ = (x_t − σ_t ε̂) / α_t**, and the
**score ∇log p_t(x_t) ≈ −ε̂ / σ_t** (arrows).  A solver steps x_t towards x̂₀ (DDPM adds fresh noise; DDIM, DPM-Solver++,
Euler and Heun follow the probability-flow ODE).  Press **Generate**: the frames stream in; then drag the frame
slider or press **▶ Play** (both run in your browser)."""


def _render_generate(out: Live | Done):
    """(player, status, summary, GIF, trajectory file); the GIF is made when asked for (its own button).  While
    sampling: the same status line, a running summary and no files in every message, not gr.skip() (see wiring.py:
    an update then a value leaves a copy of the component in the session)."""
    if isinstance(out, Live):
        return out.message, out.text, RUNNING, None, None
    return out.message, out.text, out.summary, out.gif_path, out.data_path


def _render_stop(out):
    where, summary = out
    return stopped_text("reverse", where), summary


def build(ctx: AppContext) -> TabLink:
    first, first_info = ctx.model("moons", None)  # the tab opens on moons: its solvers and defaults
    with gr.Tab("3 · Reverse", id="reverse"):
        with tab_row():
            with controls_column():
                picker = ModelPicker.build(ctx, PREFIX)
                solver = SolverControls.build(first, first_info, PREFIX)
                seeds = SeedCount.build(PREFIX)
                klass = ClassCFG.build(PREFIX)
                run = RunStop.build(PREFIX, "Generate")
            with result_column():
                status = gr.Markdown(
                    "Press **Generate**: the frames stream in as the sampler runs.",
                    elem_id="rev-status",
                    elem_classes=["adiff-status"],
                )
                player = player_component(
                    "rev-player",
                    elem_classes=[MAIN],
                    empty_text="Press Generate: the frames stream in here as the "
                    "sampler runs; then drag the frame slider or press ▶ Play.",
                )
                with gr.Accordion("Details: the numbers (JSON) and the GIF", open=False):
                    summary = gr.JSON(label="status", elem_id="rev-summary", max_height=320)
                    with gr.Row():
                        gif_btn = gr.Button("Make an animated GIF", size="sm", scale=0, elem_id="rev-gif-btn")
                        gif = gr.File(label="Trajectory as an animated GIF", elem_id="rev-gif", height=90)
                    data_file = gr.File(
                        label="Trajectory as JSON (what the player plays; decode with components.player)",
                        elem_id="rev-trajectory",
                        height=90,
                    )
                link_btn, link_box = link_row("reverse")
            with lesson_column():
                intro(INTRO, "reverse")
                render("reverse", LESSONS)
        with gr.Row(visible=False):  # the /frame endpoint: a plotly figure of any stored frame, for API users
            frame = gr.Number(value=0, minimum=0, maximum=LIMITS.frames, precision=0, label="Frame")
            frame_plot, frame_curve, frame_summary = gr.Plot(), gr.Plot(), gr.JSON()

    inputs = [picker.dropdown, solver.solver, solver.steps, solver.eta, seeds.seed, seeds.count, klass.label, klass.cfg]
    wire_player_run(
        ctx,
        run,
        "rev-player",
        endpoint(ctx, GenerateRequest.parse, handlers.generate, _render_generate),
        inputs,
        [player, status, summary, gif, data_file],
        status,
        data_file,
        endpoint(ctx, None, handlers.stop, _render_stop, name="stop"),
        [status, summary],
        "generate",
    )
    gif_btn.click(
        endpoint(ctx, None, handlers.trajectory_gif_file, name="trajectory_gif"),
        None,
        gif,
        api_name="trajectory_gif",
        **ctx.light,
    )
    frame.change(
        endpoint(ctx, FrameRequest.parse, handlers.show_frame),
        frame,
        [frame_plot, frame_curve, frame_summary],
        api_name="frame",
        **EVENT,
        **ctx.light,
    )
    groups = [picker, solver, seeds, klass]
    follow_model(ctx, groups)
    follow_solver(ctx, picker, solver)

    fields = {
        "preset": picker.dropdown,
        "sampler": solver.solver,
        "steps": solver.steps,
        "eta": solver.eta,
        "seed": seeds.seed,
        "n": seeds.count,
        "label": klass.label,
        "cfg": klass.cfg,
    }

    def apply_link(q: LinkParams, request) -> dict:
        """A link's values, through the same code as choosing them in the page: the model first (the solver menu,
        step limit and classes follow it), then each value checked against what that model offers."""
        out, model, _ = link_model(ctx, q, request, groups, first, None)
        s = q.choice("sampler", solvers_for(model.process))
        if s is not None:
            merge(out, solver.solver, s)
            join(out, solver.on_solver(model, s))
        return q.fill(
            out,
            [
                ("steps", solver.steps, "int", 1, model.max_sampling_steps),
                ("seed", seeds.seed, "int", 0, LIMITS.seed),
                ("n", seeds.count, "int", 1, LIMITS.points),
                ("eta", solver.eta, "float", 0.0, 1.0),
                ("cfg", klass.cfg, "float", 0.0, LIMITS.cfg_scale),
                ("label", klass.label, "text", 8),
            ],
        )

    return TabLink("reverse", fields, apply_link, link_btn, link_box, [picker.about, solver.help])
