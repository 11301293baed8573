"""Tab 9, train: the "Straighten a flow (reflow)" section (reflow.py does the work): the source flow, the pairs, the
source's ODE steps per pair, the training steps, Run and Stop, and a status line that follows the run.  API: /reflow
(streaming), /reflow_stop."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..controls import RunStop
from ..fields import named
from ..limits import LIMITS
from ..wiring import EVENT, endpoint
from . import handlers, reflow, view
from .figures import make_loss_figure
from .reflow import REFLOW_DEFAULTS, REFLOW_SOURCES, ReflowProgress, ReflowRequest

__all__ = ["Section"]

ABOUT = """Reflow (Liu et al. 2022) couples noises x₁ with where the flow's ODE takes them, x̂₀, and trains a copy of
the flow on the straight lines between them: its paths straighten, and one Euler step x₀ = x₁ − v̂(x₁, 1) lands near
where the whole ODE did.  The result becomes **my model**."""


def _number(field: str, elem_id: str, value, lo, hi, label: str) -> gr.Number:
    return gr.Number(
        value, minimum=lo, maximum=hi, precision=0, label=label, elem_id=elem_id, elem_classes=named(field)
    )


@dataclass
class Section:
    source: gr.Dropdown
    pairs: gr.Number
    ode_steps: gr.Number
    steps: gr.Number
    run: RunStop
    status: gr.Markdown

    @classmethod
    def build(cls) -> Section:
        """The section's widgets (in the controls column; ``wire`` connects them once the figures exist)."""
        d = REFLOW_DEFAULTS
        with gr.Accordion("Straighten a flow (reflow)", open=False, elem_id="trr-section"):
            gr.Markdown(ABOUT)
            source = gr.Dropdown(
                REFLOW_SOURCES,
                value=d["source"],
                label="Flow to straighten",
                elem_id="trr-source",
                elem_classes=named("reflow_source"),
            )
            with gr.Row():
                pairs = _number("reflow_pairs", "trr-pairs", d["pairs"], 100, LIMITS.reflow_pairs, "Pairs")
                ode = _number("reflow_ode_steps", "trr-ode", d["ode_steps"], 2, LIMITS.reflow_ode_steps, "ODE steps")
                steps = _number("reflow_steps", "trr-steps", d["steps"], 1, LIMITS.reflow_steps, "Training steps")
            run = RunStop.build("trr", "Straighten", run_id="reflow")
            status = gr.Markdown("", elem_id="trr-status", elem_classes=["adiff-status"])
        return cls(source, pairs, ode, steps, run, status)

    def wire(self, ctx, seed: gr.Number, loss_plot: gr.Plot, summary: gr.JSON) -> None:
        """/reflow streams into the status line, the loss figure and the JSON; Stop cancels it and ends the run (the
        Train tab's /train_stop: a reflow is a run of this tab)."""

        def render(out: ReflowProgress):
            fig = gr.skip() if out.history is None else make_loss_figure(out.history)
            return view.reflow_text(out.status), fig, out.status

        event = self.run.click(
            self.status,
            endpoint(ctx, ReflowRequest.parse, reflow.reflow, render),
            [self.source, self.pairs, self.ode_steps, self.steps, seed],
            [self.status, loss_plot, summary],
            api_name="reflow",
            **EVENT,
            **ctx.heavy,
        )
        self.run.stop.click(None, None, None, cancels=[event], api_visibility="private").then(
            endpoint(ctx, None, handlers.stop, lambda s: (view.reflow_text(s), s), name="reflow_stop"),
            None,
            [self.status, summary],
            api_name="reflow_stop",
            **ctx.instant,
        )
