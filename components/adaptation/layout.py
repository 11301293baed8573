"""Tab 8, adaptation: the widgets and their wiring (handlers.py does the work, view.py draws it).

Fine-tune this session's own copy of a model towards p(x)·exp(λ r(x)), live: mean and max reward, loss and
distance-to-data curves; the trajectory buffer (2-D: a scatter coloured by priority; images: a gallery sorted by
reward, labelled with reward and priority); before/after samples from the same seed.  Start / Stop / Reset.  The
stream stays light (handlers.adapt): the curves and the status at most every ``LIMITS.stream_interval_s``, the buffer
and before/after figures at most every ``LIMITS.figure_interval_s`` and at the end.
API: /adapt (streaming), /adapt_stop, /adapt_reset.
"""

from __future__ import annotations

import gradio as gr

from ..columns import MAIN, controls_column, intro, lesson_column, result_column, tab_row
from ..context import AppContext
from ..controls import ModelPicker, RunStop
from ..fields import named
from ..follow import follow_model, group_outputs, link_model
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink, link_row, merge
from ..reward_picker import RewardPicker
from ..rewards import reward_choices
from ..wiring import EVENT, endpoint
from . import handlers, view
from .groups import AdaptSettings, BufferDisplay, number
from .handlers import DEFAULTS, KIND_DEFAULTS, AdaptRequest, Update
from .lessons import LESSONS

__all__ = ["build"]

PREFIX = "ad"
REWARD_DEFAULTS = {"points": "x_coordinate", "images": "brightness"}  # a kind's first reward, as the tab opens
INTRO = """### Adaptation: fine-tune the model towards the reward, live
Your own copy of the model is trained towards **p_λ(x) ∝ p(x)·exp(λ r(x))**: each batch mixes real data resampled
with weights **w ∝ exp(λ r(x))**, fresh samples of the frozen base model weighted by **exp(λ r)/Z** and a
reservoir of earlier fresh samples kept so that it stays a sample of p_λ.  Every part is weighted so that the mixture the model is
fitted to *is* p_λ: the model converges to the target and stays there, instead of drifting towards the reward's
maximum.  The buffer shown holds the best samples seen (it is not trained on: the best alone would over-tilt).
Samples are evaluated at λ = 0 with a fixed seed after each step, so the curves show what the model itself learned."""


def _render(u: Update):
    """(curves, buffer, gallery, before/after, status line, summary); None leaves an output as it is."""
    parts = (u.curves, u.buffer, u.gallery, u.before_after)
    return (*(gr.skip() if p is None else p for p in parts), u.text, u.status)


def build(ctx: AppContext) -> TabLink:
    start = KIND_DEFAULTS["points"]  # the tab opens on moons
    with gr.Tab("8 · Adaptation", id="adaptation"):
        with tab_row():
            with controls_column():
                picker = ModelPicker.build(
                    ctx, PREFIX, info="your session adapts its own copy; the preset stays as it is"
                )
                settings = AdaptSettings.build(PREFIX, start)
                replay = gr.Slider(
                    minimum=0.0,
                    maximum=1.0,
                    value=DEFAULTS.replay_share,
                    step=0.05,
                    label="Replay share",
                    info="share of each batch from reweighted real data (the rest: fresh samples and the reservoir)",
                    elem_id=f"{PREFIX}-replay",
                    elem_classes=named("replay_share"),
                )
                # the knobs the lessons turn (λ, replay share) above the fold, the reward under them
                rewards = RewardPicker.build(PREFIX, offer_none=False, defaults=REWARD_DEFAULTS)
                guided = gr.Checkbox(
                    False,
                    label="Guidance during adaptation",
                    info="draw the fresh samples with DPS guidance at λ: they fill the buffer but are "
                    "not trained on (their density is unknown: no weight makes them p_λ)",
                    elem_id=f"{PREFIX}-guided",
                    elem_classes=named("guided_sampling"),
                )
                seed = number(PREFIX, "seed", "seed", "Seed", 0, 0, LIMITS.seed)
                run = RunStop.build(PREFIX, "Start", run_id="start", extra=[("Reset", "reset")])
            with result_column():
                status_md = gr.Markdown(
                    "Press **Start**: your own copy of the model learns towards the tilted target; "
                    "the curves grow one point per step.",
                    elem_id=f"{PREFIX}-status-text",
                    elem_classes=["adiff-status"],
                )
                curves = gr.Plot(
                    view.make_adaptation_figure({}),
                    label="Live curves",
                    show_label=False,
                    elem_id=f"{PREFIX}-curves",
                    elem_classes=["adiff-figure", MAIN],
                )
                before_after = gr.Plot(
                    view.message_figure("Before / after samples appear here."),
                    label="Before / after (same seed)",
                    show_label=False,
                    elem_id=f"{PREFIX}-before-after",
                    elem_classes=["adiff-figure"],
                )
                shown = BufferDisplay.build(PREFIX)
                with gr.Accordion("Details: the numbers of the last step (JSON)", open=False):
                    summary = gr.JSON(label="status", elem_id=f"{PREFIX}-status", max_height=400)
                link_btn, link_box = link_row("adaptation")
            with lesson_column():
                intro(INTRO, "adaptation")
                render("adaptation", LESSONS)

    inputs = [picker.dropdown, rewards.dropdown, rewards.expression, rewards.params]
    inputs += [settings.steps, settings.lr, settings.bs, settings.cap, replay, guided, settings.lam, seed]
    outputs = [curves, shown.plot, shown.gallery, before_after, status_md, summary]
    adapt_event = run.click(
        status_md,
        endpoint(ctx, AdaptRequest.parse, handlers.adapt, _render, name="adapt"),
        inputs,
        outputs,
        api_name="adapt",
        **EVENT,
        **ctx.heavy,
    )
    # Cancel first, then write the status: a frame already in flight from the stream cannot overwrite "stopped".
    run.stop.click(None, None, None, cancels=[adapt_event], api_visibility="private").then(
        endpoint(ctx, None, handlers.stop, name="adapt_stop"),
        None,
        [status_md, summary],
        api_name="adapt_stop",
        **ctx.instant,
    )
    (reset_btn,) = run.extra
    reset_btn.click(
        endpoint(ctx, None, handlers.reset, _render, name="adapt_reset"),
        None,
        outputs,
        cancels=[adapt_event],
        api_name="adapt_reset",
        **ctx.light,
    )
    groups = [picker, rewards, settings, shown]
    follow_model(ctx, groups)
    rewards.follow(ctx)

    fields = {
        "preset": picker.dropdown,
        "reward": rewards.dropdown,
        "expression": rewards.expression,
        "params": rewards.params,
        "lam": settings.lam,
        "steps": settings.steps,
        "lr": settings.lr,
        "bs": settings.bs,
        "cap": settings.cap,
        "replay": replay,
        "guided": guided,
        "seed": seed,
    }

    def apply_link(q: LinkParams, request) -> dict:
        """A link's values, through the same code as choosing them in the page: the model first (the rewards and
        the kind's defaults follow it), then each value checked against what that model offers."""
        out, _, _ = link_model(ctx, q, request, groups, None, None)
        r = q.choice_among("reward", out, rewards.dropdown, reward_choices("points"))
        if r is not None:
            merge(out, rewards.dropdown, r)
            out.update(rewards.on_reward(r))
        return q.fill(
            out,
            [
                ("expression", rewards.expression, "text", LIMITS.expression_chars),
                ("params", rewards.params, "text", LIMITS.reward_params_chars),
                ("lam", settings.lam, "float", -LIMITS.guidance_scale, LIMITS.guidance_scale),
                ("lr", settings.lr, "float", 1e-6, 1e-2),
                ("replay", replay, "float", 0.0, 1.0),
                ("steps", settings.steps, "int", 1, LIMITS.adapt_steps),
                ("bs", settings.bs, "int", 4, LIMITS.adapt_batch),
                ("cap", settings.cap, "int", 1, LIMITS.buffer_capacity),
                ("seed", seed, "int", 0, LIMITS.seed),
                ("guided", guided, "bool"),
            ],
        )

    extra = [c for c in group_outputs(groups) if c not in fields.values()]
    return TabLink("adaptation", fields, apply_link, link_btn, link_box, extra)
