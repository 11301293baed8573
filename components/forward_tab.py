"""Tab 2, the forward process: a dataset noised at a t slider, x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε, with the schedule's
curve and a marker at t.  2-D: the data and the marginal q(x_t) as scatters (plus the exact density for
8gaussians), and beside it the rectified-flow path x_t = (1 − t/T) x₀ + (t/T) ε from the same x₀ and the same ε;
the marker plot shows α and σ of both.  Glyphs: a strip of x_t at several t.  API: /forward."""

from __future__ import annotations

import math

import gradio as gr
import torch

from adiff.data import IMAGE_DATASETS, PLOT_RANGE, TOY_2D_DATASETS, dataset_info, gaussian_mixture_for
from adiff.diffusion.schedules import make_schedule

from .arrays import finite_list, grid, points, tile_images
from .context import AppContext
from .curves import curve_at, flow_curve, schedule_curve
from .fields import as_bool, as_choice, as_int, user_errors
from .figures import make_forward_figure, make_process_marker_figure
from .help import try_this
from .limits import LIMITS
from .links import LinkParams, TabLink, link_row
from .summaries import forward_text
from .validation import dropdown, number, radio, slider

__all__ = ["build", "forward", "forward_data"]

DATASETS = list(TOY_2D_DATASETS) + list(IMAGE_DATASETS)
SCHEDULE_NAMES = ["linear", "cosine", "sigmoid"]
INTRO = """### Forward process: how noise destroys data
Pick a dataset and drag **t**. Every point (or image) becomes **x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε** with fresh
noise ε ~ N(0, I).  The whole cloud is a sample of the marginal **q(x_t)**, which tends to N(0, I) as t → T.
For 2-D sets the right panel shows **rectified flow** at the same slider position (its time is t/T) with the
same x₀ and the same ε: **x_t = (1 − t/T) · x₀ + (t/T) · ε**, each point moving on a straight line from its data
point to its noise point.  Mid-way the flow cloud is smaller (α² + σ² = ½ at t/T = ½)."""

FLOW_FORMULA = "x_t = (1 - t) x_0 + t eps, t = step / T"  # Liu et al. 2022, eq. 1


def _density(gmm, alpha: float, sigma: float) -> dict:
    """The exact log-density of x_t = alpha x_0 + sigma eps for mixture data on a 60 x 60 grid."""
    pts, xs, ys = grid(60)
    logq = gmm.marginal(alpha, sigma).log_prob(pts).float().reshape(60, 60).clamp(min=-12)
    return {"x": xs, "y": ys, "z": [finite_list(r, 3) for r in logq]}


def forward_data(
    ctx: AppContext, dataset, schedule, num_steps, t, num_points, seed, show_flow=True
) -> tuple[dict, dict, dict]:
    """Validated inputs -> (figure data, curve data, summary).  With ``show_flow`` (2-D sets), the rectified-flow
    path at flow time t/T from the same x0 and noise: data["flow"], curve["flow"] and summary["flow"]."""
    dataset = as_choice(dataset, "dataset", DATASETS)
    schedule = as_choice(schedule, "schedule", SCHEDULE_NAMES)
    T = as_int(num_steps, "num_steps", 2, LIMITS.train_T)
    t = as_int(t, "t", 0, T)
    seed = as_int(seed, "seed", 0, LIMITS.seed)
    show_flow = as_bool(show_flow, "show_flow")
    images = dataset in IMAGE_DATASETS
    n = as_int(num_points, "num_points", 1, LIMITS.forward_images if images else LIMITS.forward_points)
    sch = make_schedule(schedule, T)
    x0, _ = ctx.dataset(dataset, n, seed)
    g = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(x0.shape, generator=g)
    abar = 1.0 if t == 0 else float(sch.alphas_cumprod[t - 1])
    sigma = math.sqrt(1 - abar)
    x_t = sch.q_sample(x0, t, noise)
    summary = {
        "dataset": dataset,
        "schedule": schedule,
        "T": T,
        "t": t,
        "abar_t": abar,
        "sigma_t": sigma,
        "snr": abar / (1 - abar) if abar < 1 else None,
        "x_t_mean": x_t.mean().item(),
        "x_t_std": x_t.std().item(),
        "alpha_t": math.sqrt(abar),
        "formula": "x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps",
        "about": dataset_info(dataset).description,
    }
    if images:
        ts = sorted(set([round(T * k / 6) for k in range(7)] + [t]))
        cols = [{"t": s, "z": tile_images(sch.q_sample(x0, s, noise), cols=1), "selected": s == t} for s in ts]
        data = {"kind": "images", "t": t, "T": T, "columns": cols}
    else:
        data = {
            "kind": "points",
            "t": t,
            "T": T,
            "abar": abar,
            "sigma": sigma,
            "data": points(x0),
            "x_t": points(x_t),
            "range": PLOT_RANGE,
        }
        gmm = gaussian_mixture_for(dataset)
        if gmm is not None:
            data["density"] = _density(gmm, math.sqrt(abar), sigma)
    curve = curve_at(schedule_curve(sch, schedule, max_points=250), sch, t)
    if show_flow and not images:
        u = t / T  # the flow's time at the same slider position
        x_flow = (1 - u) * x0 + u * noise  # the same x0 and eps as the VP cloud (Liu et al. 2022, eq. 1)
        data["flow"] = {"t": u, "alpha": 1 - u, "sigma": u, "x_t": points(x_flow)}
        if gmm is not None:
            data["flow"]["density"] = _density(gmm, 1 - u, u)
        curve["flow"] = {**flow_curve(1.0, 200), "key": "flow", "alpha_at": 1 - u, "noise_at": u}
        summary["flow"] = {
            "t": u,
            "alpha_t": 1 - u,
            "sigma_t": u,
            "snr": ((1 - u) / u) ** 2 if u > 0 else None,
            "x_t_mean": x_flow.mean().item(),
            "x_t_std": x_flow.std().item(),
            "formula": FLOW_FORMULA,
        }
    return data, curve, summary


def forward(ctx: AppContext, dataset, schedule, num_steps, t, num_points, seed, show_flow=True):
    data, curve, summary = forward_data(ctx, dataset, schedule, num_steps, t, num_points, seed, show_flow)
    curves = [{**curve, "key": schedule}] + ([curve["flow"]] if "flow" in curve else [])
    title = f"α and σ at t = {summary['t']} of {summary['T']}" + (
        f" (flow: t/T = {summary['flow']['t']:.3g})" if "flow" in summary else f" ({schedule})"
    )
    marker = make_process_marker_figure(curves, summary["t"], summary["T"], title)
    return make_forward_figure(data), marker, summary, forward_text(summary)


def build(ctx: AppContext) -> TabLink:
    fig0, curve0, summary0, text0 = forward(ctx, "moons", "linear", 1000, 250, 1000, 0, True)  # what the tab opens on

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
        images = (v["dataset"] or "moons") in IMAGE_DATASETS
        args = [
            v["dataset"] or "moons",
            v["schedule"] or "linear",
            v["T"] or 1000,
            v["t"] if v["t"] is not None else 250,
            v["n"] or (4 if images else 1000),
            v["seed"] if v["seed"] is not None else 0,
            v["flow"] if v["flow"] is not None else True,
        ]
        try:
            figs = dict(zip([plot, curve_plot, summary, summary_md], forward(ctx, *args)))
        except gr.Error as e:
            q.problems.append(e.message)
            figs = {}
        comps = {"dataset": dataset, "schedule": schedule, "T": steps, "n": n, "seed": seed, "flow": show_flow}
        out = {comps[k]: val for k, val in v.items() if k in comps and val is not None}
        if v["t"] is not None or v["T"] is not None:
            out[t] = gr.update(value=args[3], maximum=args[2])
        return {**out, **figs}

    with gr.Tab("2 · Forward process", id="forward"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_classes=["adiff-controls-col"]):
                dataset = dropdown(
                    "dataset",
                    choices=DATASETS,
                    value="moons",
                    label="Dataset",
                    info="2-D toy sets, 16×16 glyphs, or real 8×8 handwritten digits",
                    elem_id="fwd-dataset",
                )
                schedule = radio(
                    "schedule",
                    choices=SCHEDULE_NAMES,
                    value="linear",
                    label="Schedule",
                    info="how β_t grows with t (see tab 1)",
                    elem_id="fwd-schedule",
                )
                steps = number(
                    "num_steps",
                    value=1000,
                    minimum=2,
                    maximum=LIMITS.train_T,
                    precision=0,
                    label="T",
                    info="number of diffusion steps",
                    elem_id="fwd-T",
                )
                t = slider(
                    "t",
                    bounds=(0, LIMITS.train_T),
                    minimum=0,
                    maximum=1000,
                    value=250,
                    step=1,
                    label="t",
                    info="x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε: drag to add noise",
                    elem_id="fwd-t",
                )
                n = number(
                    "num_points",
                    value=1000,
                    minimum=1,
                    maximum=LIMITS.forward_points,
                    precision=0,
                    label="Samples",
                    info=f"points (≤ {LIMITS.forward_points}) or image rows (≤ {LIMITS.forward_images})",
                    elem_id="fwd-n",
                )
                seed = number(
                    "seed",
                    value=0,
                    minimum=0,
                    maximum=LIMITS.seed,
                    precision=0,
                    label="Seed",
                    info="the same seed gives the same data and noise",
                    elem_id="fwd-seed",
                )
                show_flow = gr.Checkbox(
                    True,
                    label="Rectified flow beside VP",
                    elem_id="fwd-flow",
                    info="2-D sets: x_t = (1 − t/T) x₀ + (t/T) ε, same x₀ and ε",
                )
            with gr.Column(scale=3, elem_classes=["adiff-result-col"]):
                summary_md = gr.Markdown(text0, elem_id="fwd-summary-text", elem_classes=["adiff-status"])
                plot = gr.Plot(
                    fig0,
                    label="Data and noised data",
                    show_label=False,
                    elem_id="fwd-figure",
                    elem_classes=["adiff-figure", "adiff-wide"],
                )
                curve_plot = gr.Plot(
                    curve0, label="Schedule at t", show_label=False, elem_id="fwd-curve", elem_classes=["adiff-figure"]
                )
                with gr.Accordion("Details: the numbers at t (JSON)", open=False):
                    summary = gr.JSON(summary0, label="summary", max_height=320)
                try_this("forward")
                link_btn, link_box = link_row("forward")

        @user_errors
        def run_forward(dataset, schedule, num_steps, t, num_points, seed, show_flow):
            return forward(ctx, dataset, schedule, num_steps, t, num_points, seed, show_flow)

        def on_dataset(name):
            images = name in IMAGE_DATASETS
            return gr.update(value=4 if images else 1000)

        def on_steps(num_steps, t):
            T = as_int(num_steps, "num_steps", 2, LIMITS.train_T)
            if t is not None and int(t) > T:  # say so: the t slider cannot go past the new T
                gr.Info(f"t: {int(t)} is beyond the new T = {T}, so t is now {T}")
            return gr.update(maximum=T, value=min(int(t or 0), T))

        inputs = [dataset, schedule, steps, t, n, seed, show_flow]
        outputs = [plot, curve_plot, summary, summary_md]
        t.input(run_forward, inputs, outputs, api_name="forward", trigger_mode="always_last", **ctx.light)
        for comp in (schedule, seed, show_flow):
            comp.input(run_forward, inputs, outputs, api_visibility="private", trigger_mode="always_last", **ctx.light)
        n.submit(run_forward, inputs, outputs, api_visibility="private", **ctx.light)
        dataset.input(on_dataset, dataset, n, api_visibility="private", **ctx.instant).then(
            run_forward, inputs, outputs, api_visibility="private", **ctx.light
        )
        steps.submit(user_errors(on_steps), [steps, t], t, api_visibility="private", **ctx.instant).then(
            run_forward, inputs, outputs, api_visibility="private", **ctx.light
        )
    fields = {"dataset": dataset, "schedule": schedule, "T": steps, "t": t, "n": n, "seed": seed, "flow": show_flow}
    return TabLink("forward", fields, apply_link, link_btn, link_box, [plot, curve_plot, summary, summary_md])
