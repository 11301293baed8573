"""Tab 2, the forward process: the widgets and their wiring.  A dataset noised at a t slider,
x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε, with the schedule's curve and a marker at t.  2-D: the data and the marginal q(x_t) as
scatters (plus the exact density for 8gaussians), and beside it the rectified-flow path x_t = (1 − t/T) x₀ + (t/T) ε
from the same x₀ and the same ε; the marker plot shows α and σ of both.  Images: a strip of x_t at several t.
API: /forward."""

from __future__ import annotations

import gradio as gr

from adiff.data import IMAGE_DATASETS

from ..columns import MAIN, controls_column, intro, lesson_column, result_column, tab_row
from ..context import AppContext
from ..fields import UserError, as_int, named
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink, link_row
from ..wiring import EVENT, endpoint
from . import handlers, view
from .handlers import DATASETS, DEFAULTS, SCHEDULE_NAMES, ForwardRequest
from .lessons import LESSONS

__all__ = ["build"]

INTRO = """### Forward process: how noise destroys data
Pick a dataset and drag **t**. Every point (or image) becomes **x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε** with fresh
noise ε ~ N(0, I).  The whole cloud is a sample of the marginal **q(x_t)**, which tends to N(0, I) as t → T.
For 2-D sets the right panel shows **rectified flow** at the same slider position (its time is t/T) with the
same x₀ and the same ε: **x_t = (1 − t/T) · x₀ + (t/T) · ε**, each point moving on a straight line from its data
point to its noise point.  Mid-way the flow cloud is smaller (α² + σ² = ½ at t/T = ½)."""


def _controls():
    dataset = gr.Dropdown(
        choices=DATASETS,
        value="moons",
        label="Dataset",
        info="2-D toy sets, 16×16 glyphs, or real 8×8 handwritten digits",
        elem_id="fwd-dataset",
        elem_classes=named("dataset"),
    )
    t = gr.Slider(
        minimum=0,
        maximum=1000,
        value=250,
        step=1,
        label="t",
        info="x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε: drag to add noise",
        elem_id="fwd-t",
        elem_classes=named("t"),
    )
    schedule = gr.Radio(
        choices=SCHEDULE_NAMES,
        value="linear",
        label="Schedule",
        info="how β_t grows with t (see the schedules tab)",
        elem_id="fwd-schedule",
        elem_classes=named("schedule"),
    )
    steps = gr.Number(
        value=1000,
        minimum=2,
        maximum=LIMITS.train_T,
        precision=0,
        label="T",
        info="number of diffusion steps",
        elem_id="fwd-T",
        elem_classes=named("num_steps"),
    )
    with gr.Row():
        n = gr.Number(
            value=1000,
            minimum=1,
            maximum=LIMITS.forward_points,
            precision=0,
            label="Samples",
            info=f"points (≤ {LIMITS.forward_points}) or image rows (≤ {LIMITS.forward_images})",
            elem_id="fwd-n",
            elem_classes=named("num_points"),
        )
        seed = gr.Number(
            value=0,
            minimum=0,
            maximum=LIMITS.seed,
            precision=0,
            label="Seed",
            info="the same seed gives the same data and noise",
            elem_id="fwd-seed",
            elem_classes=named("seed"),
        )
    show_flow = gr.Checkbox(
        True,
        label="Rectified flow beside VP",
        elem_id="fwd-flow",
        info="2-D sets: x_t = (1 − t/T) x₀ + (t/T) ε, same x₀ and ε",
        elem_classes=named("show_flow"),
    )
    return dataset, schedule, steps, t, n, seed, show_flow


def _on_dataset(name):
    """A dataset's own sample count: image rows for images, points for 2-D sets."""
    return gr.update(value=4 if name in IMAGE_DATASETS else 1000)


def _read_steps(ctx, session, num_steps, t):
    return as_int(num_steps, "num_steps", 2, LIMITS.train_T), t


def _on_steps(ctx, session, req):
    """The t slider follows T (and says so when t had to move)."""
    T, t = req
    if t is not None and int(t) > T:
        gr.Info(f"t: {int(t)} is beyond the new T = {T}, so t is now {T}")
    return gr.update(maximum=T, value=min(int(t or 0), T))


def build(ctx: AppContext) -> TabLink:
    first = view.outputs(handlers.forward_data(ctx, ForwardRequest.of(*DEFAULTS)))
    with gr.Tab("2 · Forward", id="forward"):
        with tab_row():
            with controls_column():
                dataset, schedule, steps, t, n, seed, show_flow = _controls()
            with result_column():
                summary_md = gr.Markdown(first[3], elem_id="fwd-summary-text", elem_classes=["adiff-status"])
                plot = gr.Plot(
                    first[0],
                    label="Data and noised data",
                    show_label=False,
                    elem_id="fwd-figure",
                    elem_classes=["adiff-figure", MAIN],
                )
                curve_plot = gr.Plot(
                    first[1],
                    label="Schedule at t",
                    show_label=False,
                    elem_id="fwd-curve",
                    elem_classes=["adiff-figure"],
                )
                with gr.Accordion("Details: the numbers at t (JSON)", open=False):
                    summary = gr.JSON(first[2], label="summary", max_height=320)
                link_btn, link_box = link_row("forward")
            with lesson_column():
                intro(INTRO, "forward")
                render("forward", LESSONS)

    fn = endpoint(ctx, ForwardRequest.parse, handlers.forward, view.outputs)
    inputs = [dataset, schedule, steps, t, n, seed, show_flow]
    outputs = [plot, curve_plot, summary, summary_md]
    t.input(fn, inputs, outputs, api_name="forward", trigger_mode="always_last", **EVENT, **ctx.light)
    for comp in (schedule, seed, show_flow):
        comp.input(fn, inputs, outputs, api_visibility="private", trigger_mode="always_last", **EVENT, **ctx.light)
    n.submit(fn, inputs, outputs, api_visibility="private", **EVENT, **ctx.light)
    dataset.input(_on_dataset, dataset, n, api_visibility="private", **EVENT, **ctx.instant).then(
        fn, inputs, outputs, api_visibility="private", **EVENT, **ctx.light
    )
    steps.submit(
        endpoint(ctx, _read_steps, _on_steps),
        [steps, t],
        t,
        api_visibility="private",
        **EVENT,
        **ctx.instant,
    ).then(fn, inputs, outputs, api_visibility="private", **EVENT, **ctx.light)

    def apply_link(q: LinkParams, request) -> dict:
        v = {
            "dataset": q.choice("dataset", DATASETS),
            "schedule": q.choice("schedule", SCHEDULE_NAMES),
            "T": q.int("T", 2, LIMITS.train_T),
            "t": q.int("t", 0, LIMITS.train_T),
            "n": q.int("n", 1, LIMITS.forward_points),
            "seed": q.int("seed", 0, LIMITS.seed),
            "flow": q.bool("flow"),
        }
        images = (v["dataset"] or DEFAULTS[0]) in IMAGE_DATASETS
        defaults = dict(zip(v, DEFAULTS))
        defaults["n"] = 4 if images else DEFAULTS[4]
        args = [defaults[k] if val is None else val for k, val in v.items()]
        try:
            figs = dict(zip(outputs, view.outputs(handlers.forward_data(ctx, ForwardRequest.of(*args)))))
        except UserError as e:
            q.problems.append(e.message)
            figs = {}
        comps = {"dataset": dataset, "schedule": schedule, "T": steps, "n": n, "seed": seed, "flow": show_flow}
        out = {comps[k]: val for k, val in v.items() if k in comps and val is not None}
        if v["t"] is not None or v["T"] is not None:
            out[t] = gr.update(value=args[3], maximum=args[2])
        return {**out, **figs}

    fields = {"dataset": dataset, "schedule": schedule, "T": steps, "t": t, "n": n, "seed": seed, "flow": show_flow}
    return TabLink("forward", fields, apply_link, link_btn, link_box, outputs)
