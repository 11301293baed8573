"""Tab 5, the learned density: the widgets and their wiring (handlers.py does the work, view.py draws it).

A 2-D model's log p_theta(x) on the plot grid, by the probability-flow ODE with the exact divergence, beside the
data's own log-density (exact for 8gaussians, a kernel estimate otherwise) on one colour scale, and their difference;
the held-out negative log-likelihood in nats beside the data's own on the same points.  The map streams in a chunk of
rows at a time (heavy pool: it is long compute); Stop cancels.  A preset's map and NLL are cached on the app, so the
next visitor gets them at once.  API: /density (streams), /density_stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..columns import controls_column, figure_result, intro, lesson_column, result_column, tab_row
from ..context import AppContext, ModelInfo
from ..controls import ModelPicker, RunStop
from ..fields import named
from ..figures import make_message_figure
from ..follow import follow_model, link_model
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink
from ..summaries import stopped_text
from ..wiring import EVENT, RUNNING, endpoint
from . import handlers
from .handlers import DensityRequest, Progress, Result, default_steps, refusal
from .lessons import LESSONS

__all__ = ["build"]

PREFIX = "dn"
INTRO = """### The learned density: log p_θ(x)
A diffusion model defines a density too.  Its probability-flow ODE carries each point x to noise z, and the density
changes along the way by the divergence of the ODE's velocity u (the instantaneous change of variables, Chen et al.
2018): **log p_θ(x) = log N(z; 0, I) + ∫ div u ds**, computed here exactly (one backward pass per coordinate) with
RK4.  Left: the model's log p_θ on a grid; middle: the data's own (exact for the Gaussian mixture, a kernel estimate
otherwise), on the same colour scale from the top down to 10 nats below it; right: the difference, red where the
model puts density the data does not have.  The **held-out NLL**, −mean log p_θ of fresh data in nats, is the
model's score: the data's own density gives the lowest possible on average (its entropy)."""
EMPTY_TEXT = "Press Estimate the density: the model's log-density fills in row by row, beside the data's."


@dataclass
class DensityControls:
    """The ODE's steps (a model's default follows its process), the grid size, the held-out draw's seed, and a note
    that says why a model cannot be used here."""

    steps: gr.Slider
    grid: gr.Slider
    seed: gr.Number
    note: gr.Markdown

    @classmethod
    def build(cls, model) -> DensityControls:
        steps = gr.Slider(
            minimum=1,
            maximum=LIMITS.density_steps,
            value=default_steps(model),
            step=1,
            label="ODE steps",
            info="RK4 steps of the probability-flow ODE (4 network calls each): fewer is faster and rougher",
            elem_id=f"{PREFIX}-steps",
            elem_classes=named("num_steps"),
        )
        grid = gr.Slider(
            minimum=LIMITS.density_grid_min,
            maximum=LIMITS.density_grid,
            value=LIMITS.density_grid_default,
            step=5,
            label="Grid",
            info="the map has grid × grid points; its cost grows with their number",
            elem_id=f"{PREFIX}-grid",
            elem_classes=named("grid_size"),
        )
        seed = gr.Number(
            value=0,
            minimum=0,
            maximum=LIMITS.seed,
            precision=0,
            label="Seed",
            info=f"which {LIMITS.density_heldout:,} fresh data points the NLL is measured on",
            elem_id=f"{PREFIX}-seed",
            elem_classes=named("seed"),
        )
        note = gr.Markdown("", elem_id=f"{PREFIX}-note")
        return cls(steps, grid, seed, note)

    def updates_for(self, model, info: ModelInfo) -> dict:
        why = refusal(info)
        return {self.steps: gr.update(value=default_steps(model)), self.note: f"⚠ {why}" if why else ""}

    def outputs(self) -> list:
        return [self.steps, self.note]


def _render(out: Progress | Result):
    """(figure, status, summary): while it runs, the running summary (a value, not gr.skip(): see wiring.py)."""
    if isinstance(out, Progress):
        return out.figure if out.figure is not None else gr.skip(), out.text, RUNNING
    return out.figure, out.text, out.summary


def _render_stop(out):
    where, summary = out
    return stopped_text("density", where), summary


def build(ctx: AppContext) -> TabLink:
    first, _ = ctx.model("moons", None)  # the tab opens on moons
    with gr.Tab("5 · Density", id="density"):
        with tab_row():
            with controls_column():
                picker = ModelPicker.build(ctx, PREFIX)
                controls = DensityControls.build(first)
                run = RunStop.build(PREFIX, "Estimate the density", run_id="estimate")
            with result_column():
                status, plot, summary, link_btn, link_box = figure_result(
                    PREFIX,
                    "density",
                    "Press **Estimate the density**: the model's log p_θ on a grid beside the data's, and its "
                    "held-out NLL in nats.",
                    make_message_figure(EMPTY_TEXT),
                    "The learned density",
                    "the numbers",
                )
            with lesson_column():
                intro(INTRO, "density")
                render("density", LESSONS)

    fields = {"preset": picker.dropdown, "steps": controls.steps, "grid": controls.grid, "seed": controls.seed}
    event = run.click(
        status,
        endpoint(ctx, DensityRequest.parse, handlers.estimate, _render),
        list(fields.values()),  # the API's order: preset, num_steps, grid_size, seed
        [plot, status, summary],
        api_name="density",
        **EVENT,
        **ctx.heavy,
    )
    run.stop.click(None, None, None, cancels=[event], api_visibility="private").then(
        endpoint(ctx, None, handlers.stop, _render_stop, name="stop"),
        None,
        [status, summary],
        api_name="density_stop",
        **ctx.instant,
    )
    groups = [picker, controls]
    follow_model(ctx, groups)

    def apply_link(q: LinkParams, request) -> dict:
        """A link's values, through the same code as choosing them in the page: the model first (the step default
        follows it), then each value checked."""
        out, _, _ = link_model(ctx, q, request, groups, None, None)
        return q.fill(
            out,
            [
                ("steps", controls.steps, "int", 1, LIMITS.density_steps),
                ("grid", controls.grid, "int", LIMITS.density_grid_min, LIMITS.density_grid),
                ("seed", controls.seed, "int", 0, LIMITS.seed),
            ],
        )

    return TabLink("density", fields, apply_link, link_btn, link_box, [picker.about, controls.note])
