"""Tab 1, noise schedules: pick schedules and T, see ᾱ_t, σ_t, β_t and log-SNR overlaid, edit a custom schedule,
and read the warnings users keep tripping on (terminal SNR far from 0, cosine betas at the clip, too few steps).
API: /schedule_curves."""
from __future__ import annotations

import math
import re

import gradio as gr

from adiff.diffusion.schedules import SCHEDULES, make_schedule, validate_custom_values

from .common import LIMITS, AppContext, schedule_curve
from .figures import make_schedule_figure
from .validation import as_int, as_text, checkbox_group, field_error, number, user_errors

__all__ = ["build", "schedule_curves", "parse_custom_values", "check_custom_values", "DEFAULT_CUSTOM"]

DEFAULT_CUSTOM = "0.01, 0.1, 0.3, 0.6, 0.9, 0.99, 0.9999"
INTRO = """### Noise schedules
The forward process adds Gaussian noise in T steps: **x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε**, ε ~ N(0, I), with
**ᾱ_t = ∏ₛ₌₁ᵗ (1 − β_s)**.  A schedule is the choice of β_1..β_T.  What matters is how fast the signal fraction ᾱ_t
falls, and that it reaches ~0 at t = T, so that sampling can start from pure noise."""


def parse_custom_values(text) -> list[float]:
    """'0.01, 0.1 0.5' -> [0.01, 0.1, 0.5]; errors name the entry: custom_values[2] = 'abc' is not a number."""
    text = as_text(text, "custom_values", LIMITS.custom_chars)
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise field_error("custom_values", "is empty: give noise levels σ in (0, 1), strictly increasing, e.g. " + DEFAULT_CUSTOM)
    vals = []
    for i, p in enumerate(parts):
        try:
            vals.append(float(p))
        except ValueError:
            raise field_error("custom_values", f"entry {i} = {p!r} is not a number") from None
    try:
        return validate_custom_values(vals, field="custom_values")
    except ValueError as e:
        raise gr.Error(str(e), print_exception=False) from None


def check_custom_values(text) -> str:
    """Live validation message for the custom-schedule editor (never raises)."""
    try:
        vals = parse_custom_values(text)
    except gr.Error as e:
        return f"✗ {e.message}"
    return f"✓ {len(vals)} noise levels from {vals[0]:g} to {vals[-1]:g}, interpolated to T steps."


def _summary(schedule, name: str) -> dict:
    abar_T = float(schedule.alphas_cumprod[-1])
    return {
        "T": schedule.num_steps,
        "abar_T": abar_T,
        "sigma_T": math.sqrt(1 - abar_T),
        "terminal_snr": abar_T / (1 - abar_T),
        "max_beta": float(schedule.betas.max()),
        "warnings": schedule.warnings(),
    }


def schedule_curves(schedules, num_steps, custom_values):
    """Curves of the chosen schedules at T = num_steps -> (figure, warnings markdown, summary)."""
    if isinstance(schedules, str):
        schedules = [s for s in re.split(r"[,\s]+", schedules) if s]
    if not isinstance(schedules, (list, tuple)) or not schedules:
        raise field_error("schedules", f"pick at least one of {list(SCHEDULES)}")
    for s in schedules:
        if s not in SCHEDULES:
            raise field_error("schedules", f"must be among {list(SCHEDULES)}, got {s!r}")
    T = as_int(num_steps, "num_steps", 2, LIMITS.schedule_T)
    curves, summary, lines = [], {}, []
    for name in dict.fromkeys(schedules):  # unique, in order
        custom = parse_custom_values(custom_values) if name == "custom" else None
        sch = make_schedule(name, T, custom)
        curves.append(schedule_curve(sch, name))
        summary[name] = _summary(sch, name)
        for w in summary[name]["warnings"]:
            lines.append(f"- ⚠ **{name}**: {w}")
    md = "\n".join(lines) if lines else "✓ No warnings: every schedule ends near pure noise with T = %d steps." % T
    return make_schedule_figure(curves), md, summary


def build(ctx: AppContext) -> None:
    with gr.Tab("1 · Noise schedules", id="schedules"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                schedules = checkbox_group(
                    "schedules", choices=list(SCHEDULES), value=["linear", "cosine"], label="Schedules",
                    info="linear: β from 1e-4 to 0.02 · cosine: ᾱ_t ∝ cos²((t/T + s)/(1 + s) · π/2) · "
                         "sigmoid: ᾱ_t follows a sigmoid · custom: your own σ_t", elem_id="sched-names",
                )  # fmt: skip
                steps = number("num_steps", value=1000, minimum=2, maximum=LIMITS.schedule_T, precision=0,
                               label="T (number of steps)", info="t runs 1..T; t = 0 is clean data. Try T = 20.",
                               elem_id="sched-T")  # fmt: skip
                custom = gr.Textbox(DEFAULT_CUSTOM, label="Custom schedule: noise levels σ = √(1 − ᾱ)", lines=2,
                                    info="numbers in (0, 1), strictly increasing, spread evenly over t = 1..T "
                                         "(linearly interpolated)", elem_id="sched-custom")  # fmt: skip
                custom_status = gr.Markdown(check_custom_values(DEFAULT_CUSTOM), elem_id="sched-custom-status")
                plot_btn = gr.Button("Plot", variant="primary", elem_id="sched-plot")
            with gr.Column(scale=3):
                fig, md, summary = schedule_curves(["linear", "cosine"], 1000, DEFAULT_CUSTOM)
                plot = gr.Plot(fig, label="Schedules against t", show_label=False, elem_id="sched-figure")
                warnings = gr.Markdown(md, elem_id="sched-warnings")
                with gr.Accordion("Numbers (terminal SNR, max β, warnings)", open=False):
                    summary_json = gr.JSON(summary, label="summary")
        fn = user_errors(schedule_curves)
        outputs = [plot, warnings, summary_json]
        plot_btn.click(fn, [schedules, steps, custom], outputs, api_name="schedule_curves", **ctx.light)
        schedules.change(fn, [schedules, steps, custom], outputs, api_visibility="private", **ctx.light)
        steps.submit(fn, [schedules, steps, custom], outputs, api_visibility="private", **ctx.light)
        custom.change(check_custom_values, custom, custom_status, api_visibility="private", trigger_mode="always_last",
                      **ctx.light)  # fmt: skip
