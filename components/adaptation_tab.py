"""Tab 5, adaptation: fine-tune this session's own copy of a model towards p(x)·exp(λ r(x)), live.  Every step:
mean and max reward, loss and distance-to-data curves; the trajectory buffer (2-D: a scatter coloured by priority;
images: a gallery sorted by reward, labelled with reward and priority); before/after samples from the same seed.
Start / Stop / Reset.  The stream stays light: the small curves and the status go out at most every
STREAM_INTERVAL_S, the buffer and before/after figures (thousands of points over a reward heatmap) at most every
HEAVY_INTERVAL_S and at the end.  API: /adapt (streaming), /adapt_stop, /adapt_reset."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import torch
from PIL import Image

from adiff.data import PLOT_RANGE
from adiff.steering.adaptation import AdaptationConfig, Adapter

from .arrays import points, reward_grid, tile_images
from .context import AppContext, ModelInfo
from .fields import as_bool, as_float, as_int, field_error, user_errors
from .figures import make_adaptation_figure, make_before_after_figure, make_buffer_figure, make_message_figure
from .help import try_this
from .limits import LIMITS
from .links import LinkParams, TabLink, link_row, merge
from .rewards import EXPRESSION, build_reward, reward_choices, reward_help
from .summaries import adaptation_text, stopped_text
from .validation import dropdown, number, slider

__all__ = ["build", "AdaptationRun", "buffer_view", "gallery_items"]

INTRO = """### Adaptation: fine-tune the model towards the reward, live
Your own copy of the model is trained towards **p_λ(x) ∝ p(x)·exp(λ r(x))**: each batch mixes real data resampled
with weights **w ∝ exp(λ r(x))**, fresh samples of the frozen base model weighted by **exp(λ r)/Z** and a
reservoir of earlier fresh samples kept so that it stays a sample of p_λ.  Every part is weighted so that the mixture the model is
fitted to *is* p_λ: the model converges to the target and stays there, instead of drifting towards the reward's
maximum.  The buffer shown holds the best samples seen (it is not trained on: the best alone would over-tilt).
Samples are evaluated at λ = 0 with a fixed seed after each step, so the curves show what the model itself learned."""

DEFAULTS = AdaptationConfig() if AdaptationConfig is not None else None  # the library's defaults (immutable)
SAMPLE_STEPS = 25  # DDIM steps of fresh and evaluation samples: live on a CPU (the library's default is 50)


@dataclass(frozen=True)
class TabDefaults:
    """What the tab starts a model of one kind with; measured on the shipped presets (BENCHMARKS.md, Adaptation)."""

    guidance_scale: float  # lambda
    num_steps: int
    learning_rate: float
    batch_size: int
    buffer_capacity: int
    warmup_steps: int  # not a widget: Adam's first steps jolt a large model (see AdaptationConfig.warmup_steps)


KIND_DEFAULTS = {
    # moons, 8gaussians, swissroll, checkerboard with r = x: on the target within about 100 steps
    "points": TabDefaults(2.0, 100, DEFAULTS.learning_rate, DEFAULTS.batch_size, DEFAULTS.buffer_capacity, 0),
    # glyphs with r = brightness (std 0.10 over the data): lambda = 2 moves the target's mean by only 0.02
    "images": TabDefaults(10.0, 30, 2e-4, 64, 300, 10),
}
BUFFER_SHOWN = 600  # buffer points drawn (the best ones)
GALLERY_SHOWN = 24  # buffer images shown
STREAM_INTERVAL_S = 0.5  # curves and status: at most 2 updates a second
HEAVY_INTERVAL_S = 3.0  # buffer and before/after figures: at most one every 3 s (and the last step's)


@dataclass
class AdaptationRun:
    """A session's adaptation: its own model copy, the Adapter and the curves so far."""

    key: tuple  # what it was made for; a Start with other settings makes a new run
    adapter: Any
    model: Any
    info: ModelInfo
    reward: Any
    reward_grid: dict | None
    history: dict = field(
        default_factory=lambda: {
            k: [] for k in ("step", "reward_mean", "reward_max", "loss", "distance_to_data", "distance_to_target")
        }
    )
    last_event: Any = None


def buffer_view(snapshot, kind: str, grid: dict | None, capacity: int) -> dict | None:
    """BufferSnapshot -> data for make_buffer_figure (points only; images use the gallery)."""
    if kind != "points":
        return None
    k = min(BUFFER_SHOWN, len(snapshot.rewards))
    return {
        "points": points(snapshot.samples[:k]) if k else {"x": [], "y": []},
        "priority": snapshot.priorities[:k].tolist(),
        "reward": snapshot.rewards[:k].tolist(),
        "reward_grid": grid,
        "range": PLOT_RANGE,
        "capacity": capacity,
        "size": len(snapshot.rewards),
    }


def gallery_items(
    snapshot, num_classes: int | None = None, shown: int = GALLERY_SHOWN
) -> list[tuple[Image.Image, str]]:
    """The best buffer images (sorted by reward, as the snapshot is) with 'r=reward p=priority [y=class]' captions."""
    out = []
    for i in range(min(shown, len(snapshot.rewards))):
        a = snapshot.samples[i].float().clamp(-1, 1)
        a = a[0] if a.dim() == 3 else a
        gray = ((1 - (a + 1) / 2) * 255).round().to(torch.uint8).numpy()  # ink black on white
        img = Image.fromarray(gray, mode="L").resize((96, 96), Image.NEAREST)
        caption = f"r={float(snapshot.rewards[i]):.2f} p={float(snapshot.priorities[i]):.3f}"
        md = snapshot.metadata[i] if i < len(snapshot.metadata) else None
        if isinstance(md, dict) and "label" in md and num_classes is not None:
            caption += f" y={md['label'] if md['label'] < num_classes else '∅'}"  # ∅: the null (unconditional) label
        out.append((img, caption))
    return out


def _before_after(run: AdaptationRun, after: torch.Tensor, step: int) -> dict:
    reward = run.reward
    before = run.adapter.base_samples.detach().float().cpu()
    after = after.detach().float().cpu()

    def mean_r(x):
        with torch.no_grad():
            return float(reward(x).float().mean())

    if run.info.kind == "points":
        panels = [
            {"key": "base", "title": "before (base model)", "points": points(before), "mean_reward": mean_r(before)},
            {"key": "steered", "title": f"after {step} steps", "points": points(after), "mean_reward": mean_r(after)},
        ]
    else:
        k = min(36, len(before))
        panels = [
            {
                "key": "base",
                "title": "before (base model)",
                "z": tile_images(before[:k]),
                "mean_reward": mean_r(before),
            },
            {
                "key": "steered",
                "title": f"after {step} steps",
                "z": tile_images(after[:k]),
                "mean_reward": mean_r(after),
            },
        ]
    return {
        "kind": run.info.kind,
        "panels": panels,
        "reward": run.reward_grid,
        "range": PLOT_RANGE,
        "title": "the same seed, λ = 0, before and after",
    }


def build(ctx: AppContext) -> TabLink:
    @user_errors
    def adapt(
        preset,
        reward,
        expression,
        reward_params,
        num_steps,
        learning_rate,
        batch_size,
        buffer_capacity,
        replay_share,
        guided_sampling,
        guidance_scale,
        seed,
        request: gr.Request,
    ):
        """Run (or continue) this session's adaptation for num_steps steps, streaming every step."""
        session = ctx.store.get(request)
        base, info = ctx.model(preset, session)
        reward_fn = build_reward(reward, expression, reward_params, info.kind)
        steps = as_int(num_steps, "num_steps", 1, LIMITS.adapt_steps)
        lr = as_float(learning_rate, "learning_rate", 1e-6, 1e-2)
        bs = as_int(batch_size, "batch_size", 4, LIMITS.adapt_batch)
        cap = as_int(buffer_capacity, "buffer_capacity", 1, LIMITS.buffer_capacity)
        replay = as_float(replay_share, "replay_share", 0.0, 1.0)
        guided = as_bool(guided_sampling, "guided_sampling")
        if guided and replay == 0:
            raise field_error(
                "replay_share",
                "must be > 0 with guidance during adaptation (guided samples are shown, not trained on), got 0",
            )
        lam = as_float(guidance_scale, "guidance_scale", -LIMITS.guidance_scale, LIMITS.guidance_scale)
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        images = info.kind == "images"
        config = dict(
            learning_rate=lr,
            batch_size=bs,
            guidance_scale=lam,
            replay_share=replay,
            buffer_share=min(DEFAULTS.buffer_share, 1.0 - replay),
            buffer_capacity=cap,
            guided_sampling=guided,
            sample_steps=SAMPLE_STEPS,
            eval_samples=256 if not images else 36,
            seed=seed,
            warmup_steps=KIND_DEFAULTS[info.kind].warmup_steps,
        )
        cfg = AdaptationConfig(**config)
        cfg.validate()
        key = (
            preset,
            id(base),
            reward,
            expression if reward == EXPRESSION else None,
            reward_params or "",
            tuple(sorted(config.items())),
        )
        rid = session.new_run("adapt")
        t0 = time.time()
        with session.lock:
            run = session.adaptation
            fresh = run is None or run.key != key
        if fresh:
            prep = {"status": "preparing", "preset": preset}
            yield (
                gr.skip(),
                gr.skip(),
                gr.skip(),
                make_message_figure("Preparing: copying the model, drawing the 'before' samples…"),
                adaptation_text(prep),
                prep,
            )
            with session.lock:
                if not session.is_current("adapt", rid):
                    return
                model = base.clone()  # this session's own copy; the preset stays shared and read-only
                data = ctx.dataset(info.dataset, 2000 if images else 5000, 0) if info.dataset else None
                adapter = Adapter(model, reward_fn, cfg, data=data, sample_kwargs=info.sample_kwargs)
                grid = reward_grid(reward_fn, 70, PLOT_RANGE) if not images else None
                run = session.adaptation = AdaptationRun(key, adapter, model, info, reward_fn, grid)
        it = run.adapter.run(steps)
        done, sent, sent_heavy = 0, 0.0, 0.0
        while True:
            with session.lock:  # never held across a yield: Stop/Reset/another Start take over between steps
                if not session.is_current("adapt", rid) or session.adaptation is not run:
                    return
                ev = next(it, None)
            if ev is None:
                break
            done += 1
            run.last_event = ev
            h = run.history
            for k in ("step", "reward_mean", "reward_max", "loss", "distance_to_data", "distance_to_target"):
                h[k].append(getattr(ev, k))
            session.progress["adapt"] = f"after step {ev.step} ({done} of {steps} in this run)"
            now, last = time.monotonic(), done == steps
            if not last and now - sent < STREAM_INTERVAL_S:
                continue
            sent = now
            heavy = last or now - sent_heavy >= HEAVY_INTERVAL_S
            if heavy:
                sent_heavy = now
                view = buffer_view(ev.buffer, info.kind, run.reward_grid, cap)
                buffer_fig = make_buffer_figure(view) if view else make_message_figure("Image buffer: see the gallery.")
                gallery = gallery_items(ev.buffer, info.num_classes) if images else []
                before_after = make_before_after_figure(_before_after(run, ev.samples, ev.step))
            else:
                buffer_fig = gallery = before_after = gr.skip()
            status = {
                "status": "running" if done < steps else "done",
                "step": ev.step,
                "steps_this_run": done,
                "of": steps,
                "reward_mean": ev.reward_mean,
                "reward_max": ev.reward_max,
                "loss": ev.loss,
                "distance_to_data": ev.distance_to_data,
                "distance_to_target": ev.distance_to_target,
                "reward_queries": ev.reward_queries,
                "buffer_size": len(ev.buffer.rewards),
                "base_mean_reward": _base_mean(run),
                "elapsed_s": round(time.time() - t0, 2),
                "distance_to_data_first": h["distance_to_data"][0],
                "distance_to_target_first": h["distance_to_target"][0],
            }
            yield make_adaptation_figure(h), buffer_fig, gallery, before_after, adaptation_text(status), status

    def _base_mean(run: AdaptationRun) -> float:
        with torch.no_grad():
            return float(run.reward(run.adapter.base_samples.float()).mean())

    @user_errors
    def adapt_reset(request: gr.Request):
        """Stop this session's adaptation and restore the base weights; the buffer is emptied."""
        session = ctx.store.get(request)
        session.stop_runs("adapt")
        with session.lock:
            run = session.adaptation
            if run is not None:
                run.adapter.reset()
                for v in run.history.values():
                    v.clear()
            session.adaptation = None
        return (
            make_adaptation_figure({}),
            make_message_figure("The buffer is empty."),
            [],
            make_message_figure("Reset: the next Start begins from the base model."),
            "Reset: the model is back to the base weights and the buffer is empty.",
            {"status": "reset", "had_run": run is not None},
        )

    def adapt_stop(request: gr.Request):
        session = ctx.store.get(request)
        session.stop_runs("adapt")
        run = session.adaptation
        return stopped_text("adapt", session.progress.get("adapt")), {
            "status": "stopped",
            "step": run.adapter.steps if run else 0,
        }

    def on_preset(preset, reward, request: gr.Request):
        try:
            _, info = ctx.model(preset, ctx.store.get(request))
        except gr.Error as e:
            return (*[gr.skip()] * 8, f"⚠ {e.message}")
        choices = reward_choices(info.kind)
        value = reward if reward in choices else choices[0]
        images = info.kind == "images"
        d = KIND_DEFAULTS[info.kind]
        return (
            gr.update(choices=choices, value=value),
            gr.update(visible=not images),
            gr.update(visible=images),
            gr.update(value=d.batch_size),
            gr.update(value=d.buffer_capacity),
            gr.update(value=d.guidance_scale),
            gr.update(value=d.num_steps),
            gr.update(value=d.learning_rate),
            reward_help(value),
        )

    def on_reward(name):
        return reward_help(name), gr.update(visible=name == EXPRESSION), gr.update(visible=name != EXPRESSION)

    start = KIND_DEFAULTS["points"]  # the tab opens on moons

    def apply_link(q: LinkParams, request) -> dict:
        out = {}
        p = q.choice("preset", ctx.sources())
        if p is not None:
            ups = on_preset(p, q.values.get("reward", "x_coordinate"), request)
            if isinstance(ups[-1], str) and ups[-1].startswith("⚠"):
                q.problems.append(f"preset: {ups[-1]}")
            else:
                out.update(zip([reward, buffer_plot, gallery, bs, cap, lam, steps, lr, reward_md, preset], [*ups, p]))
        r = q.choice_among("reward", out, reward, reward_choices("points"))
        if r is not None:
            merge(out, reward, r)
            out.update(dict(zip([reward_md, expression, params], on_reward(r))))
        return q.fill(
            out,
            [
                ("expression", expression, "text", LIMITS.expression_chars),
                ("params", params, "text", LIMITS.reward_params_chars),
                ("lam", lam, "float", -LIMITS.guidance_scale, LIMITS.guidance_scale),
                ("lr", lr, "float", 1e-6, 1e-2),
                ("replay", replay, "float", 0.0, 1.0),
                ("steps", steps, "int", 1, LIMITS.adapt_steps),
                ("bs", bs, "int", 4, LIMITS.adapt_batch),
                ("cap", cap, "int", 1, LIMITS.buffer_capacity),
                ("seed", seed, "int", 0, LIMITS.seed),
                ("guided", guided, "bool"),
            ],
        )

    with gr.Tab("6 · Adaptation", id="adaptation"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_classes=["adiff-controls-col"]):
                preset = dropdown(
                    "preset",
                    choices=ctx.sources(),
                    value="moons",
                    label="Model",
                    elem_id="ad-preset",
                    info="your session adapts its own copy; the preset stays as it is",
                )
                reward = dropdown(
                    "reward",
                    choices=reward_choices("points"),
                    value="x_coordinate",
                    label="Reward r(x)",
                    allow_custom_value=True,
                    elem_id="ad-reward",
                )
                reward_md = gr.Markdown(reward_help("x_coordinate"))
                expression = gr.Textbox(
                    "-((x-1)**2 + (y+0.5)**2)",
                    label="Expression r(x, y)",
                    max_lines=1,
                    visible=False,
                    elem_id="ad-expression",
                )
                params = gr.Textbox(
                    "",
                    label="Reward parameters (JSON)",
                    max_lines=1,
                    elem_id="ad-params",
                    placeholder='e.g. {"scale": 2}',
                    info="optional; empty = the defaults",
                )
                lam = slider(
                    "guidance_scale",
                    minimum=-10,
                    maximum=10,
                    value=start.guidance_scale,
                    step=0.5,
                    label="λ (tilt)",
                    bounds=(-LIMITS.guidance_scale, LIMITS.guidance_scale),
                    elem_id="ad-lambda",
                    info="target p(x)·exp(λ r(x)); weights w ∝ exp(λ r)",
                )
                with gr.Row():
                    steps = number(
                        "num_steps",
                        value=start.num_steps,
                        minimum=1,
                        maximum=LIMITS.adapt_steps,
                        precision=0,
                        label="Steps",
                        info=f"≤ {LIMITS.adapt_steps}; Start again to continue",
                        elem_id="ad-steps",
                    )
                    lr = number(
                        "learning_rate",
                        value=start.learning_rate,
                        minimum=1e-6,
                        maximum=1e-2,
                        label="Learning rate",
                        info="Adam step size",
                        elem_id="ad-lr",
                    )
                with gr.Row():
                    bs = number(
                        "batch_size",
                        value=start.batch_size,
                        minimum=4,
                        maximum=LIMITS.adapt_batch,
                        precision=0,
                        label="Batch size",
                        elem_id="ad-bs",
                    )
                    cap = number(
                        "buffer_capacity",
                        value=start.buffer_capacity,
                        minimum=1,
                        maximum=LIMITS.buffer_capacity,
                        precision=0,
                        label="Buffer capacity",
                        info="best samples kept",
                        elem_id="ad-cap",
                    )
                replay = slider(
                    "replay_share",
                    minimum=0.0,
                    maximum=1.0,
                    value=DEFAULTS.replay_share if DEFAULTS else 0.7,
                    step=0.05,
                    label="Replay share",
                    info="share of each batch from reweighted real data (the rest: fresh samples and the reservoir)",
                    elem_id="ad-replay",
                )
                guided = gr.Checkbox(
                    False,
                    label="Guidance during adaptation",
                    info="draw the fresh samples with DPS guidance at λ: they fill the buffer but are "
                    "not trained on (their density is unknown: no weight makes them p_λ)",
                    elem_id="ad-guided",
                )
                seed = number(
                    "seed", value=0, minimum=0, maximum=LIMITS.seed, precision=0, label="Seed", elem_id="ad-seed"
                )
                with gr.Row(elem_classes=["adiff-actions"]):
                    start_btn = gr.Button("Start", variant="primary", elem_id="ad-start")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="ad-stop")
                    reset_btn = gr.Button("Reset", elem_id="ad-reset")
            with gr.Column(scale=3, elem_classes=["adiff-result-col"]):
                status_md = gr.Markdown(
                    "Press **Start**: your own copy of the model learns towards the tilted target; "
                    "the curves grow one point per step.",
                    elem_id="ad-status-text",
                    elem_classes=["adiff-status"],
                )
                curves = gr.Plot(
                    make_adaptation_figure({}),
                    label="Live curves",
                    show_label=False,
                    elem_id="ad-curves",
                    elem_classes=["adiff-figure", "adiff-wide"],
                )
                before_after = gr.Plot(
                    make_message_figure("Before / after samples appear here."),
                    label="Before / after (same seed)",
                    show_label=False,
                    elem_id="ad-before-after",
                    elem_classes=["adiff-figure", "adiff-wide"],
                )
                with gr.Row():
                    buffer_plot = gr.Plot(
                        make_message_figure("The buffer fills with the best fresh samples."),
                        label="Trajectory buffer",
                        show_label=False,
                        elem_id="ad-buffer",
                        scale=3,
                        elem_classes=["adiff-figure"],
                    )
                    gallery = gr.Gallery(
                        label="Buffer, best first (r = reward · p = priority · y = class)",
                        columns=4,
                        height=560,
                        visible=False,
                        format="png",
                        elem_id="ad-gallery",
                        scale=3,
                    )
                try_this("adaptation")
                with gr.Accordion("Details: the numbers of the last step (JSON)", open=False):
                    summary = gr.JSON(label="status", elem_id="ad-status", max_height=400)
                link_btn, link_box = link_row("adaptation")

        inputs = [preset, reward, expression, params, steps, lr, bs, cap, replay, guided, lam, seed]
        outputs = [curves, buffer_plot, gallery, before_after, status_md, summary]
        ev = start_btn.click(adapt, inputs, outputs, api_name="adapt", show_progress_on=[status_md], **ctx.heavy)
        # Cancel first, then write the status: a frame already in flight from the stream cannot overwrite "stopped".
        stop_btn.click(None, None, None, cancels=[ev], api_visibility="private").then(
            adapt_stop, None, [status_md, summary], api_name="adapt_stop", **ctx.instant
        )
        reset_btn.click(adapt_reset, None, outputs, cancels=[ev], api_name="adapt_reset", **ctx.light)
        preset.input(
            on_preset,
            [preset, reward],
            [reward, buffer_plot, gallery, bs, cap, lam, steps, lr, reward_md],
            api_visibility="private",
            **ctx.light,
        )
        reward.input(on_reward, reward, [reward_md, expression, params], api_visibility="private", **ctx.instant)
    fields = {
        "preset": preset,
        "reward": reward,
        "expression": expression,
        "params": params,
        "lam": lam,
        "steps": steps,
        "lr": lr,
        "bs": bs,
        "cap": cap,
        "replay": replay,
        "guided": guided,
        "seed": seed,
    }
    return TabLink("adaptation", fields, apply_link, link_btn, link_box, [buffer_plot, gallery, reward_md])
