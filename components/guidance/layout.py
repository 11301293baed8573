"""Tab 6, guidance: the widgets and their wiring (handlers.py does the work, view.py draws it).

Steer sampling with a reward (a built-in or an expression: components/reward_picker.py) at a guidance scale λ, a mode and a
recurrence; guided and unguided samples from the same seed side by side over a heatmap of the reward, each with its
mean reward; for 2-D (and glyphs) the tilted target p(x)·exp(λ r(x)) drawn from reweighted data; classifier-free
guidance for conditional presets.  The summary says in words whether the guided mean reward over- or under-shoots
the tilted target, and for the glyph classifier reward whether a second check (re-noise, denoise without guidance,
classify again) agrees that the images changed.  While sampling only the progress line streams (as often as the
throttle allows: components/streaming.py); the figure is drawn once, at the end.
API: /guided_generate (streams its progress), /guided_stop.
"""

from __future__ import annotations

import functools

import gradio as gr

from adiff.samplers import solvers_for
from adiff.steering.guidance import GUIDANCE_MODES

from ..columns import controls_column, figure_result, intro, lesson_column, result_column, tab_row
from ..context import AppContext
from ..controls import ClassCFG, ModelPicker, RunStop, SeedCount, SolverControls, recurrence_slider
from ..fields import named
from ..figure_json import FigureJSON
from ..figures import make_message_figure
from ..follow import follow_model, follow_solver, link_model
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink, merge
from ..reward_picker import RewardPicker
from ..summaries import stopped_text
from ..wiring import EVENT, RUNNING, endpoint
from . import handlers
from .handlers import GuidedRequest, Progress, Result
from .lessons import LESSONS

__all__ = ["build"]

PREFIX = "gd"
INTRO = """### Guidance: steer the sampler with a reward
Guidance aims at the **tilted distribution p_λ(x) ∝ p(x) · exp(λ r(x))**.  At each step the noise prediction is
corrected with the reward's gradient: **ε̃ = ε̂ − λ √(1−ᾱ_t) ∇_{x_t} r(x̂₀(x_t))** (DPS, Chung et al. 2023).
Left: the model alone; middle: guided, from the same seed; right: the target p·e^{λr}, drawn by reweighting real data."""

MODE_HELP = (
    "dps: gradient through the denoiser · cheap: ∇_{x̂₀} r / √ᾱ_t, no Jacobian (over-shoots at large t) · "
    "xt: ∇ r(x_t) of the noisy state (over-shoots)"
)
# The tab samples with DDIM-20 where the model's process offers DDIM (else the model's own default): at λ = 10 and
# 10 steps DDIM over-shoots the tilted target on 4 of 5 seeds and DPM-Solver++ (the presets' default) lands on it on
# 5 of 5, which would remove the over-shoot that the browser walk checks; at the tab's defaults both give the same
# verdicts in about the same time (bench/bench_guidance_solver.py; BENCHMARKS.md).
TAB_SOLVER = ("ddim", 20)
EMPTY_TEXT = (
    "Press Generate guided: unguided and guided samples from the same seed appear side by side over the reward."
)


RUNNING_TEXT = "Sampling: the unguided and guided samples appear here when the run ends."


@functools.cache
def _running_figure() -> FigureJSON:
    """The placeholder shown while sampling, serialised once for every run's progress messages."""
    return FigureJSON.of(make_message_figure(RUNNING_TEXT))


def _render_generate(out: Progress | Result):
    """(figure, status, summary).  While sampling, a small placeholder figure and summary, not gr.skip(): in Gradio
    6.31 an output that gets an update (gr.skip() is one) and then a value registers a new copy of its component,
    holding that value, in the session's state at every such turn (+0.45 MB per request here; see wiring.py)."""
    if isinstance(out, Progress):
        return _running_figure(), out.text, RUNNING
    return out.figure, out.text, out.summary


def _render_stop(out):
    where, summary = out
    return stopped_text("guidance", where), summary


def _guidance_controls() -> tuple[gr.Slider, gr.Radio, gr.Slider]:
    """λ, the guidance mode and the recurrence."""
    lam = gr.Slider(
        minimum=-20,
        maximum=20,
        value=2.0,
        step=0.5,
        label="Guidance scale λ",
        info="target p(x)·exp(λ r(x)); 0 = no reward guidance",
        elem_id=f"{PREFIX}-lambda",
        elem_classes=named("guidance_scale"),
    )
    with gr.Group():
        rec = recurrence_slider(PREFIX)
        mode = gr.Radio(
            choices=list(GUIDANCE_MODES),
            value="dps",
            label="Mode",
            info=MODE_HELP,
            elem_id=f"{PREFIX}-mode",
            elem_classes=named("guidance_mode"),
        )
    return lam, mode, rec


def build(ctx: AppContext) -> TabLink:
    first, first_info = ctx.model("moons", None)  # the tab opens on moons: its rewards, solvers and defaults
    with gr.Tab("6 · Guidance", id="guidance"):
        with tab_row():
            with controls_column():
                picker = ModelPicker.build(ctx, PREFIX)
                lam, mode, rec = _guidance_controls()  # the knobs the lessons turn, above the fold
                rewards = RewardPicker.build(PREFIX)
                klass = ClassCFG.build(PREFIX)
                with gr.Accordion("Sampler", open=False):
                    solver = SolverControls.build(first, first_info, PREFIX, eta=False, prefer=TAB_SOLVER)
                seeds = SeedCount.build(PREFIX, points=300)
                run = RunStop.build(PREFIX, "Generate guided")
            with result_column():
                status, plot, summary, link_btn, link_box = figure_result(
                    PREFIX,
                    "guidance",
                    "Press **Generate guided**: unguided and guided samples from the same seed appear "
                    "side by side over the reward, with the target they aim at.",
                    make_message_figure(EMPTY_TEXT),
                    "Guided vs unguided",
                    "mean rewards and settings",
                )
            with lesson_column():
                intro(INTRO, "guidance")
                render("guidance", LESSONS)

    fields = {
        "preset": picker.dropdown,
        "reward": rewards.dropdown,
        "expression": rewards.expression,
        "params": rewards.params,
        "lam": lam,
        "mode": mode,
        "rec": rec,
        "label": klass.label,
        "cfg": klass.cfg,
        "sampler": solver.solver,
        "steps": solver.steps,
        "seed": seeds.seed,
        "n": seeds.count,
    }
    gen_event = run.click(
        status,
        endpoint(ctx, GuidedRequest.parse, handlers.guided_generate, _render_generate),
        list(fields.values()),  # the API's order: preset, reward, expression, reward_params, guidance_scale, ...
        [plot, status, summary],
        api_name="guided_generate",
        **EVENT,
        **ctx.sampling,
    )
    run.stop.click(None, None, None, cancels=[gen_event], api_visibility="private").then(
        endpoint(ctx, None, handlers.stop, _render_stop, name="stop"),
        None,
        [status, summary],
        api_name="guided_stop",
        **ctx.instant,
    )
    groups = [picker, rewards, solver, seeds, klass]
    follow_model(ctx, groups)
    follow_solver(ctx, picker, solver)
    rewards.follow(ctx)

    def apply_link(q: LinkParams, request) -> dict:
        """A link's values, through the same code as choosing them in the page: the model first (rewards, solver
        menu, step limit and classes follow it), then each value checked against what that model offers."""
        out, model, info = link_model(ctx, q, request, groups, first, first_info)
        r = q.choice("reward", rewards.choices_for(info))
        if r is not None:
            merge(out, rewards.dropdown, r)
            out.update(rewards.on_reward(r))
        s = q.choice("sampler", solvers_for(model.process))
        if s is not None:
            merge(out, solver.solver, s)
            out.update(solver.on_solver(model, s))
        return q.fill(
            out,
            [
                ("expression", rewards.expression, "text", LIMITS.expression_chars),
                ("params", rewards.params, "text", LIMITS.reward_params_chars),
                ("label", klass.label, "text", 8),
                ("lam", lam, "float", -LIMITS.guidance_scale, LIMITS.guidance_scale),
                ("cfg", klass.cfg, "float", 0.0, LIMITS.cfg_scale),
                ("rec", rec, "int", 1, LIMITS.recurrence),
                ("steps", solver.steps, "int", 1, model.max_sampling_steps),
                ("seed", seeds.seed, "int", 0, LIMITS.seed),
                ("n", seeds.count, "int", 1, LIMITS.points),
                ("mode", mode, "choice", list(GUIDANCE_MODES)),
            ],
        )

    extra = [picker.about, rewards.help, solver.help]
    return TabLink("guidance", fields, apply_link, link_btn, link_box, extra)
