"""Tab 1, noise schedules: pick schedules and T, see α, σ, β_t and log-SNR overlaid on a shared normalised time
axis t/T, with the rectified-flow path beside the VP schedules, edit a custom schedule, and read the warnings users
keep tripping on (terminal SNR far from 0, cosine betas at the clip, too few steps).  API: /schedule_curves."""

from __future__ import annotations

import math
import re

import gradio as gr

from adiff.diffusion.schedules import SCHEDULES, make_schedule, validate_custom_values

from .context import AppContext
from .curves import flow_curve, schedule_curve
from .fields import as_float, as_int, as_text, field_error, user_errors
from .figures import make_schedule_figure
from .help import try_this
from .limits import LIMITS
from .links import LinkParams, TabLink, link_row
from .validation import checkbox_group, number

__all__ = [
    "build",
    "schedule_curves",
    "parse_custom_values",
    "custom_schedule",
    "check_custom_values",
    "DEFAULT_CUSTOM",
    "CHOICES",
    "FLOW",
]

DEFAULT_CUSTOM = "0.01, 0.1, 0.3, 0.6, 0.9, 0.99, 0.9999"
FLOW = "flow"  # the rectified-flow path, drawn beside the VP schedules
CHOICES = list(SCHEDULES) + [FLOW]
DEFAULT_CHOICES = ["linear", "cosine", FLOW]
# Rectified flow: Liu et al. 2022, eq. 1 (x_t = (1 - t) x_0 + t eps); its SNR is ((1 - t) / t)^2, so
# log-SNR = 2 log((1 - t) / t) = -2 logit(t).  Cosine: abar = cos^2(pi u / 2) (s -> 0; Nichol & Dhariwal 2021, eq. 17)
# gives log-SNR = -2 log tan(pi u / 2), 0 at u = 1/2 like the flow's and within ~1 nat of it on [0.05, 0.95] at T = 1000;
# linear (Ho et al. 2020) crosses 0 at u = 0.26.  Shift (Esser et al. 2024, eq. 23): t = s u / (1 + (s - 1) u) gives
# (1 - t) / t = (1 - u) / (s u), i.e. the log-SNR curve moved down by 2 log s.
INTRO = """### Noise schedules
The forward process adds Gaussian noise in T steps: **x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε**, ε ~ N(0, I), with
**ᾱ_t = ∏ₛ₌₁ᵗ (1 − β_s)**.  A schedule is the choice of β_1..β_T.  What matters is how fast the signal fraction ᾱ_t
falls, and that it reaches ~0 at t = T, so that sampling can start from pure noise.
**Rectified flow** (olive) is a straight path: **x_t = (1 − t) · x₀ + t · ε**, so α + σ = 1 (α² + σ² dips to ½: not
variance preserving).  Notice its **log-SNR = 2·log((1 − t)/t)**: 0 at t = ½ like cosine's (within about 1), while
linear crosses 0 at t/T ≈ 0.26; a flow shift s lowers the whole curve by 2·log s (more time at high noise)."""


def parse_custom_values(text) -> list[float]:
    """'0.01, 0.1 0.5' -> [0.01, 0.1, 0.5]; errors name the entry: custom_values[2] = 'abc' is not a number."""
    text = as_text(text, "custom_values", LIMITS.custom_chars)
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise field_error(
            "custom_values", "is empty: give noise levels σ in (0, 1), strictly increasing, e.g. " + DEFAULT_CUSTOM
        )
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


def custom_schedule(text, T: int):
    """The custom schedule the text describes at T steps, checked exactly as Plot uses it; every error names
    custom_values (the text's field) and says what to change."""
    vals = parse_custom_values(text)
    try:
        return make_schedule("custom", T, vals)
    except ValueError as e:
        msg = str(e)
        if "betas must be finite" in msg:
            msg = (
                f"at T = {T} these noise levels give a step whose β_t is 0 or 1 (a level too close to 0, such as "
                f"{vals[0]:g}, or too close to 1, such as {vals[-1]:.12g}, rounds to exactly that in float64); "
                "keep them within about [1e-4, 0.9999]"
            )
        elif "non-increasing" in msg:
            msg = f"at T = {T} the interpolated noise levels do not increase at every step; give fewer values or a larger T"
        raise field_error("custom_values", msg) from None


def check_custom_values(text, num_steps=1000) -> str:
    """Live validation message for the custom-schedule editor: the same check as Plot (never raises)."""
    try:
        T = as_int(num_steps, "num_steps", 2, LIMITS.schedule_T)
        sch = custom_schedule(text, T)
    except gr.Error as e:
        return f"✗ {e.message}"
    vals = parse_custom_values(text)
    return (
        f"✓ {len(vals)} noise levels from {vals[0]:g} to {vals[-1]:g}, interpolated to T = {T} steps "
        f"(terminal SNR {float(sch.alphas_cumprod[-1]) / (1 - float(sch.alphas_cumprod[-1])):.2g})."
    )


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


def _snr_one_at(curve: dict) -> float | None:
    """The first normalised time where log-SNR drops to 0 or below (SNR = 1: as much signal as noise)."""
    return next((u for u, v in zip(curve["u"], curve["log_snr"]) if v is not None and v <= 0), None)


def _flow_summary(curve: dict) -> dict:
    s = curve["shift"]
    return {
        "process": "flow",
        "shift": s,
        "formula": "x_t = (1 - t) x_0 + t eps",
        "alpha_plus_sigma": 1.0,
        "min_alpha2_plus_sigma2": min(a * a + n * n for a, n in zip(curve["alpha"], curve["noise"])),
        "snr_one_at": _snr_one_at(curve),
        "log_snr_at": {
            str(u): round(2 * math.log((1 - u) / u) - 2 * math.log(s), 6) for u in (0.1, 0.25, 0.5, 0.75, 0.9)
        },
    }


def schedule_curves(schedules, num_steps, custom_values, flow_shift=1.0):
    """Curves of the chosen schedules at T = num_steps, and the rectified-flow path when "flow" is among them (on an
    even grid u with flow time t = s u / (1 + (s - 1) u), s = flow_shift) -> (figure, warnings markdown, summary)."""
    if isinstance(schedules, str):
        schedules = [s for s in re.split(r"[,\s]+", schedules) if s]
    if not isinstance(schedules, (list, tuple)) or not schedules:
        raise field_error("schedules", f"pick at least one of {CHOICES}")
    for s in schedules:
        if s not in CHOICES:
            raise field_error("schedules", f"must be among {CHOICES}, got {s!r}")
    T = as_int(num_steps, "num_steps", 2, LIMITS.schedule_T)
    shift = as_float(1.0 if flow_shift is None else flow_shift, "flow_shift", 0.1, 10.0)
    curves, summary, lines = [], {}, []
    for name in dict.fromkeys(schedules):  # unique, in order
        if name == FLOW:
            label = FLOW if shift == 1.0 else f"flow, shift {shift:g}"
            curves.append({**flow_curve(shift, 400, label), "key": FLOW})
            summary[FLOW] = _flow_summary(curves[-1])
            continue
        sch = custom_schedule(custom_values, T) if name == "custom" else make_schedule(name, T)
        curves.append(schedule_curve(sch, name, max_points=400))  # 400 points draw a smooth curve; lighter page
        summary[name] = {**_summary(sch, name), "snr_one_at": _snr_one_at(curves[-1])}
        for w in summary[name]["warnings"]:
            lines.append(f"- ⚠ **{name}**: {w}")
    md = "\n".join(lines) if lines else "✓ No warnings: every schedule ends near pure noise with T = %d steps." % T
    if FLOW in summary:
        md += (
            "\n\n**flow**: α + σ = 1 at every t; α² + σ² falls to "
            f"{summary[FLOW]['min_alpha2_plus_sigma2']:.2f} mid-way; SNR = 1 at "
            + (
                f"u = {summary[FLOW]['snr_one_at']:.2f} of the even grid (shift {shift:g} maps it to t = 0.50)"
                if shift != 1.0
                else "t = 0.50"
            )
            + "."
        )
    return make_schedule_figure(curves), md, summary


def build(ctx: AppContext) -> TabLink:
    fn = user_errors(schedule_curves)

    def apply_link(q: LinkParams, request) -> dict:
        out = {}
        names = q.choices("schedules", CHOICES)
        T = q.int("T", 2, LIMITS.schedule_T)
        text = q.text("custom", LIMITS.custom_chars)
        s = q.float("shift", 0.1, 10.0)
        if names is not None:
            out[schedules] = names
        if T is not None:
            out[steps] = T
        if s is not None:
            out[shift] = s
        if text is not None:
            out[custom] = text
            out[custom_status] = check_custom_values(text, T or 1000)
        try:
            fig, md, summary = schedule_curves(
                names or DEFAULT_CHOICES, T or 1000, text or DEFAULT_CUSTOM, 1.0 if s is None else s
            )
            out.update({plot: fig, warnings: md, summary_json: summary})
        except gr.Error as e:
            q.problems.append(e.message)
        return out

    with gr.Tab("1 · Noise schedules", id="schedules"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_classes=["adiff-controls-col"]):
                schedules = checkbox_group(
                    "schedules",
                    choices=CHOICES,
                    value=DEFAULT_CHOICES,
                    label="Schedules",
                    info="linear: β from 1e-4 to 0.02 (× 1000/T) · cosine: ᾱ_t ∝ cos²((t/T + s)/(1 + s) · π/2) · "
                    "sigmoid: ᾱ_t follows a sigmoid · custom: your own σ_t · flow: the rectified-flow path "
                    "x_t = (1 − t) x₀ + t ε",
                    elem_id="sched-names",
                )
                steps = number(
                    "num_steps",
                    value=1000,
                    minimum=2,
                    maximum=LIMITS.schedule_T,
                    precision=0,
                    label="T (number of steps)",
                    info="t runs 1..T; t = 0 is clean data. Try T = 20.",
                    elem_id="sched-T",
                )
                custom = gr.Textbox(
                    DEFAULT_CUSTOM,
                    label="Custom schedule: noise levels σ = √(1 − ᾱ)",
                    lines=2,
                    info="numbers in (0, 1), strictly increasing, spread evenly over t = 1..T (linearly interpolated)",
                    elem_id="sched-custom",
                )
                custom_status = gr.Markdown(check_custom_values(DEFAULT_CUSTOM), elem_id="sched-custom-status")
                shift = number(
                    "flow_shift",
                    value=1.0,
                    minimum=0.1,
                    maximum=10.0,
                    label="Flow shift s",
                    info="flow only: t = s·u / (1 + (s − 1)·u) on an even grid u (Esser et al. 2024; "
                    "SD3 uses s = 3). 1 = no shift.",
                    elem_id="sched-shift",
                )
                with gr.Row(elem_classes=["adiff-actions"]):
                    plot_btn = gr.Button("Plot", variant="primary", elem_id="sched-plot")
            with gr.Column(scale=3, elem_classes=["adiff-result-col"]):
                fig, md, summary = schedule_curves(DEFAULT_CHOICES, 1000, DEFAULT_CUSTOM)
                warnings = gr.Markdown(md, elem_id="sched-warnings", elem_classes=["adiff-status"])
                plot = gr.Plot(
                    fig,
                    label="Schedules against t",
                    show_label=False,
                    elem_id="sched-figure",
                    elem_classes=["adiff-figure", "adiff-wide"],
                )
                with gr.Accordion("Details: terminal SNR, max β, warnings (JSON)", open=False):
                    summary_json = gr.JSON(summary, label="summary")
                try_this("schedules")
                link_btn, link_box = link_row("schedules")
        outputs = [plot, warnings, summary_json]
        inputs = [schedules, steps, custom, shift]
        plot_btn.click(fn, inputs, outputs, api_name="schedule_curves", **ctx.light)
        schedules.input(fn, inputs, outputs, api_visibility="private", **ctx.light)
        for box in (steps, shift):
            box.submit(fn, inputs, outputs, api_visibility="private", **ctx.light)
        gr.on(
            [custom.change, steps.change],
            check_custom_values,
            [custom, steps],
            custom_status,
            api_visibility="private",
            trigger_mode="always_last",
            **ctx.light,
        )
    return TabLink(
        "schedules",
        {"schedules": schedules, "T": steps, "custom": custom, "shift": shift},
        apply_link,
        link_btn,
        link_box,
        [custom_status, plot, warnings, summary_json],
    )
