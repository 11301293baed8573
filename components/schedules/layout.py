"""Tab 1, noise schedules: the widgets and their wiring.  Pick schedules and T, see α, σ, β_t and log-SNR overlaid
on a shared normalised time axis t/T, with the rectified-flow path beside the VP schedules, edit a custom schedule
(checked as you type), and read the warnings people keep tripping on (terminal SNR far from 0, cosine betas at the
clip, too few steps).  API: /schedule_curves."""

from __future__ import annotations

import gradio as gr

from ..columns import MAIN, controls_column, intro, lesson_column, result_column, tab_row
from ..context import AppContext
from ..fields import UserError, named
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink, link_row
from ..wiring import EVENT, endpoint
from . import handlers, view
from .handlers import CHOICES, DEFAULT_CHOICES, DEFAULT_CUSTOM, CurvesRequest, check_custom_values
from .lessons import LESSONS

__all__ = ["build"]

INTRO = """### Noise schedules
The forward process adds Gaussian noise in T steps: **x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε**, ε ~ N(0, I), with
**ᾱ_t = ∏ₛ₌₁ᵗ (1 − β_s)**.  A schedule is the choice of β_1..β_T.  What matters is how fast the signal fraction ᾱ_t
falls, and that it reaches ~0 at t = T, so that sampling can start from pure noise.
**Rectified flow** (olive) is a straight path: **x_t = (1 − t) · x₀ + t · ε**, so α + σ = 1 (α² + σ² dips to ½: not
variance preserving).  Notice its **log-SNR = 2·log((1 − t)/t)**: 0 at t = ½ like cosine's (within about 1), while
linear crosses 0 at t/T ≈ 0.26; a flow shift s lowers the whole curve by 2·log s (more time at high noise)."""


def _controls():
    schedules = gr.CheckboxGroup(
        choices=CHOICES,
        value=DEFAULT_CHOICES,
        label="Schedules",
        info="linear: β from 1e-4 to 0.02 (× 1000/T) · cosine: ᾱ_t ∝ cos²((t/T + s)/(1 + s) · π/2) · "
        "sigmoid: ᾱ_t follows a sigmoid · custom: your own σ_t · flow: the rectified-flow path x_t = (1 − t) x₀ + t ε",
        elem_id="sched-names",
        elem_classes=named("schedules"),
    )
    steps = gr.Number(
        value=1000,
        minimum=2,
        maximum=LIMITS.schedule_T,
        precision=0,
        label="T (number of steps)",
        info="t runs 1..T; t = 0 is clean data. Try T = 20.",
        elem_id="sched-T",
        elem_classes=named("num_steps"),
    )
    shift = gr.Number(
        value=1.0,
        minimum=0.1,
        maximum=10.0,
        label="Flow shift s",
        info="flow only: t = s·u / (1 + (s − 1)·u) on an even grid u (Esser et al. 2024; SD3 uses s = 3). 1 = no shift.",
        elem_id="sched-shift",
        elem_classes=named("flow_shift"),
    )
    with gr.Accordion("Custom schedule: your own σ_t (tick custom above)", open=False):
        custom = gr.Textbox(
            DEFAULT_CUSTOM,
            label="Custom schedule: noise levels σ = √(1 − ᾱ)",
            lines=2,
            info="numbers in (0, 1), strictly increasing, spread evenly over t = 1..T (linearly interpolated)",
            elem_id="sched-custom",
            elem_classes=named("custom_values"),
        )
        custom_status = gr.Markdown(check_custom_values(DEFAULT_CUSTOM), elem_id="sched-custom-status")
    return schedules, steps, custom, custom_status, shift


def build(ctx: AppContext) -> TabLink:
    with gr.Tab("1 · Schedules", id="schedules"):
        with tab_row():
            with controls_column():
                schedules, steps, custom, custom_status, shift = _controls()
                with gr.Row(elem_classes=["adiff-actions"]):
                    plot_btn = gr.Button("Plot", variant="primary", elem_id="sched-plot")
            with result_column():
                fig, md, summary = view.outputs(
                    handlers.curves(CurvesRequest.of(DEFAULT_CHOICES, 1000, DEFAULT_CUSTOM))
                )
                warnings = gr.Markdown(md, elem_id="sched-warnings", elem_classes=["adiff-status"])
                plot = gr.Plot(
                    fig,
                    label="Schedules against t",
                    show_label=False,
                    elem_id="sched-figure",
                    elem_classes=["adiff-figure", MAIN],
                )
                with gr.Accordion("Details: terminal SNR, max β, warnings (JSON)", open=False):
                    summary_json = gr.JSON(summary, label="summary")
                link_btn, link_box = link_row("schedules")
            with lesson_column():
                intro(INTRO, "schedules")
                render("schedules", LESSONS)

    fn = endpoint(ctx, CurvesRequest.parse, handlers.schedule_curves, view.outputs)
    outputs = [plot, warnings, summary_json]
    inputs = [schedules, steps, custom, shift]
    plot_btn.click(fn, inputs, outputs, api_name="schedule_curves", **EVENT, **ctx.light)
    schedules.input(fn, inputs, outputs, api_visibility="private", **EVENT, **ctx.light)
    for box in (steps, shift):
        box.submit(fn, inputs, outputs, api_visibility="private", **EVENT, **ctx.light)
    gr.on(
        [custom.change, steps.change],
        check_custom_values,
        [custom, steps],
        custom_status,
        api_visibility="private",
        trigger_mode="always_last",
        **EVENT,
        **ctx.light,
    )

    def apply_link(q: LinkParams, request) -> dict:
        out = {}
        names = q.choices("schedules", CHOICES)
        T = q.int("T", 2, LIMITS.schedule_T)
        text = q.text("custom", LIMITS.custom_chars)
        s = q.float("shift", 0.1, 10.0)
        for comp, value in ((schedules, names), (steps, T), (shift, s), (custom, text)):
            if value is not None:
                out[comp] = value
        if text is not None:
            out[custom_status] = check_custom_values(text, T or 1000)
        try:
            req = CurvesRequest.of(names or DEFAULT_CHOICES, T or 1000, text or DEFAULT_CUSTOM, 1.0 if s is None else s)
            out.update(zip(outputs, view.outputs(handlers.curves(req))))
        except UserError as e:
            q.problems.append(e.message)
        return out

    fields = {"schedules": schedules, "T": steps, "custom": custom, "shift": shift}
    return TabLink("schedules", fields, apply_link, link_btn, link_box, [custom_status, *outputs])
