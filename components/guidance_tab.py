"""Tab 4, guidance: steer sampling with a reward (a built-in or an expression) at a guidance scale λ, a mode and a
recurrence; guided and unguided samples from the same seed side by side over a heatmap of the reward, each with
its mean reward; for 2-D (and glyphs) the tilted target p(x)·exp(λ r(x)) drawn from reweighted data; classifier-free
guidance for conditional presets.  API: /guided_generate (streams its progress)."""
from __future__ import annotations

import math
import time

import gradio as gr
import torch

from adiff.data import PLOT_RANGE
from adiff.steering.guidance import GUIDANCE_MODES
from adiff.samplers import SAMPLERS

from .common import (EXPRESSION, LIMITS, NO_REWARD, AppContext, build_reward, condition_for, count_nonfinite, default_label,
                     finite_rows, label_choices, parse_label, points, reward_choices, reward_grid, reward_help,
                     tile_images)  # fmt: skip
from .figures import make_guidance_figure, make_message_figure
from .validation import as_choice, as_float, as_int, dropdown, number, radio, slider, user_errors

__all__ = ["build", "tilted_target"]

INTRO = """### Guidance: steer the sampler with a reward
Guidance aims at the **tilted distribution p_λ(x) ∝ p(x) · exp(λ r(x))**.  At each step the noise prediction is
corrected with the reward's gradient: **ε̃ = ε̂ − λ √(1−ᾱ_t) ∇_{x_t} r(x̂₀(x_t))** (DPS, Chung et al. 2023).
Left: the model alone; middle: guided, from the same seed; right: the target p·e^{λr}, drawn by reweighting real data."""

MODE_HELP = ("dps: gradient through the denoiser · cheap: ∇_{x̂₀} r / √ᾱ_t, no Jacobian (over-shoots at large t) · "
             "xt: ∇ r(x_t) of the noisy state (over-shoots)")


def tilted_target(ctx: AppContext, dataset: str | None, reward, lam: float, n: int, label: int | None, seed: int):
    """Draw n samples of p(x) exp(lam r(x)) by resampling real data with self-normalised weights.
    Returns (samples [n, ...], weighted mean reward, effective sample size) or None when the data is unknown."""
    if dataset is None:
        return None
    pool, labels = ctx.dataset(dataset, 20_000 if dataset != "glyphs" else 2_000, 777)
    if isinstance(label, int) and labels is not None:
        pool = pool[labels == label]
    if len(pool) < 2:
        return None
    with torch.no_grad():
        r = reward(pool).double()
    r = torch.nan_to_num(r, nan=-1e6, posinf=1e6, neginf=-1e6)
    w = torch.softmax(lam * r, 0)
    ess = float(1.0 / (w**2).sum())
    g = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(w.float(), n, replacement=True, generator=g)
    return pool[idx], float((w * r).sum()), ess


def build(ctx: AppContext) -> None:
    @user_errors
    def guided_generate(preset, reward, expression, reward_params, guidance_scale, guidance_mode, recurrence,
                        class_label, cfg_scale, sampler, num_steps, seed, num_samples, request: gr.Request):  # fmt: skip
        """Unguided and guided samples from the same seed (streams progress), with the tilted target."""
        session = ctx.store.get(request)
        model, info = ctx.model(preset, session)
        T = model.num_diffusion_steps
        reward_fn = build_reward(reward, expression, reward_params, info.kind, allow_none=info.conditional)
        lam = as_float(guidance_scale, "guidance_scale", -LIMITS.guidance_scale, LIMITS.guidance_scale)
        mode = as_choice(guidance_mode, "guidance_mode", list(GUIDANCE_MODES))
        rec = as_int(recurrence, "recurrence", 1, LIMITS.recurrence)
        label = parse_label(class_label, info)
        w = as_float(cfg_scale, "cfg_scale", 0.0, LIMITS.cfg_scale) if info.conditional else 1.0
        sampler = as_choice(sampler, "sampler", list(SAMPLERS))
        steps = as_int(num_steps, "num_steps", 1, T)
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        n = as_int(num_samples, "num_samples", 1, LIMITS.points if info.kind == "points" else LIMITS.images)
        if reward_fn is None and label is None:
            raise gr.Error("class_label: with reward 'none' only classifier-free guidance acts, which needs a class",
                           print_exception=False)  # fmt: skip
        clip = info.sample_kwargs.get("clip_x0")
        common = dict(condition=condition_for(label, n, info.num_classes), seed=seed, sampler=sampler, num_steps=steps, clip_x0=clip)
        # The comparison isolates one effect: with a reward, λ = 0 vs λ at the same CFG scale; without one, w = 1 vs w.
        base_cfg = (w if reward_fn is not None else 1.0) if label is not None else None
        guided_cfg = w if label is not None else None
        t0 = time.time()
        base_x, _ = model.generate(n, keep_every=10**6, cfg_scale=base_cfg, **common)
        base_x = base_x.detach().float().cpu()

        def rewards_of(x):  # over the finite samples (the non-finite ones are counted apart)
            x = finite_rows(x)
            if not len(x):
                return torch.full((1,), float("nan"), dtype=torch.float64)
            with torch.no_grad():
                return torch.nan_to_num(reward_fn(x.to(torch.float32)).double(), nan=0.0)

        def mean_reward(x):
            return None if reward_fn is None else float(rewards_of(x).mean())

        def median_reward(x):
            return None if reward_fn is None else float(rewards_of(x).median())

        grid = reward_grid(reward_fn, 70, PLOT_RANGE) if (reward_fn is not None and info.kind == "points") else None
        lam_txt = f"λ = {lam:g}, {mode}" + (f", recurrence {rec}" if rec > 1 else "")
        base_title = "unguided (λ = 0)" if reward_fn is not None else "w = 1 (plain conditional)"
        guided_title = f"guided ({lam_txt})" if reward_fn is not None else f"CFG w = {w:g}"
        if label is not None and reward_fn is not None:
            base_title += f", w = {w:g}"
            guided_title += f", w = {w:g}"

        def panel(key, title, x, r):
            if info.kind == "points":
                return {"key": key, "title": title, "points": points(x), "mean_reward": r, "nonfinite": count_nonfinite(x)}
            return {"key": key, "title": title, "z": tile_images(x), "mean_reward": r, "nonfinite": count_nonfinite(x)}

        def figure(panels, title):
            return make_guidance_figure({"kind": info.kind, "reward": grid, "range": PLOT_RANGE, "panels": panels,
                                         "title": title})  # fmt: skip

        base_panel = panel("base", base_title, base_x, mean_reward(base_x))
        kw = dict(common, cfg_scale=guided_cfg)
        if reward_fn is not None and lam != 0:
            kw.update(use_guidance=True, reward_fn=reward_fn, guidance_scale=lam, guidance_mode=mode, recurrence=rec)
        every = max(1, math.ceil(steps / 10))
        clipped, nonfinite, last = [], 0, None
        for step in model.generate_progressive(n, **kw):
            last = step
            if step.guidance is not None:
                clipped.append(step.guidance.clipped_fraction)
                nonfinite += step.guidance.nonfinite
            if step.index % every == 0:
                cur = panel("steered", f"guided: step {step.index + 1} of {step.num_steps} (t = {step.t})",
                            step.x_t.detach().float().cpu(), None)  # fmt: skip
                status = {"status": "sampling guided", "step": step.index + 1, "num_steps": step.num_steps,
                          "elapsed_s": round(time.time() - t0, 2)}  # fmt: skip
                yield figure([base_panel, cur], f"{info.source}: sampling…"), status
        guided_x = last.x_prev.detach().float().cpu()
        guided_panel = panel("steered", guided_title, guided_x, mean_reward(guided_x))
        panels = [base_panel, guided_panel]
        summary = {
            "preset": info.source, "reward": reward if reward != EXPRESSION else f"expression: {expression}",
            "formula": getattr(reward_fn, "formula", None), "guidance_scale": lam, "guidance_mode": mode,
            "recurrence": rec, "class_label": label, "cfg_scale": w if info.conditional else None,
            "sampler": sampler, "num_steps": steps, "seed": seed, "num_samples": n,
            "unguided_mean_reward": base_panel["mean_reward"], "guided_mean_reward": guided_panel["mean_reward"],
            "unguided_median_reward": median_reward(base_x), "guided_median_reward": median_reward(guided_x),
            "clipped_fraction": sum(clipped) / len(clipped) if clipped else 0.0, "nonfinite_gradients": nonfinite,
            "nonfinite_samples": {"unguided": base_panel["nonfinite"], "guided": guided_panel["nonfinite"]},
            "elapsed_s": None,
        }  # fmt: skip
        if reward_fn is not None:
            tgt = tilted_target(ctx, info.dataset, reward_fn, lam, n, label, seed)
            if tgt is not None:
                x_tgt, r_tgt, ess = tgt
                panels.append(panel("target", f"target p·e^(λr), λ = {lam:g}", x_tgt, r_tgt))
                summary.update(target_mean_reward=r_tgt, target_effective_samples=round(ess, 1))
                if ess < 30:
                    summary["note"] = (f"only ~{ess:.0f} effective data points carry the tilted target at λ = {lam:g}: "
                                       "its picture is rough")  # fmt: skip
        summary["elapsed_s"] = round(time.time() - t0, 2)
        title = f"{info.source}: reward {summary['reward']}" if reward_fn is not None else f"{info.source}: classifier-free guidance"
        yield figure(panels, title), summary

    def on_preset(preset, reward, request: gr.Request):
        try:
            model, info = ctx.model(preset, ctx.store.get(request))
        except gr.Error as e:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"⚠️ {e.message}"
        choices = reward_choices(info.kind, allow_none=info.conditional)
        value = reward if reward in choices else ("classifier_logprob" if info.kind == "images" else "distance_to_target")
        images = info.kind == "images"
        return (gr.update(choices=choices, value=value),
                gr.update(choices=label_choices(info), value=default_label(info), interactive=info.conditional),
                gr.update(value=info.sample_kwargs.get("cfg_scale", 1.0), interactive=info.conditional),
                gr.update(value=16 if images else 300, maximum=LIMITS.images if images else LIMITS.points),
                reward_help(value))  # fmt: skip

    def on_reward(name):
        return reward_help(name), gr.update(visible=name == EXPRESSION), gr.update(visible=name not in (EXPRESSION, NO_REWARD))

    with gr.Tab("4 · Guidance", id="guidance"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=340):
                preset = dropdown("preset", choices=ctx.sources(), value="moons", label="Model", elem_id="gd-preset",
                                  info="a shipped preset, or the model from the Train tab")  # fmt: skip
                reward = dropdown("reward", choices=reward_choices("points"), value="distance_to_target",
                                  label="Reward r(x)", allow_custom_value=True, elem_id="gd-reward",
                                  info="built-ins, or your own formula (expression)")  # fmt: skip
                reward_md = gr.Markdown(reward_help("distance_to_target"), elem_id="gd-reward-help")
                expression = gr.Textbox("-((x-1)**2 + (y+0.5)**2)", label="Expression r(x, y)", max_lines=1,
                                        visible=False, elem_id="gd-expression",
                                        info=f"x, y, r, theta, + - * / **, exp log sin cos sigmoid min max… "
                                             f"(≤ {LIMITS.expression_chars} characters)")  # fmt: skip
                params = gr.Textbox("", label="Reward parameters (JSON)", max_lines=1, elem_id="gd-params",
                                    placeholder='e.g. {"scale": 2} or {"k": 3} or {"digit": 7}',
                                    info="optional; empty = the defaults")  # fmt: skip
                lam = slider("guidance_scale", minimum=-20, maximum=20, value=2.0, step=0.5, label="Guidance scale λ",
                             bounds=(-LIMITS.guidance_scale, LIMITS.guidance_scale), elem_id="gd-lambda",
                             info="target p(x)·exp(λ r(x)); 0 = no reward guidance")  # fmt: skip
                with gr.Group():
                    mode = radio("guidance_mode", choices=list(GUIDANCE_MODES), value="dps", label="Mode",
                                 info=MODE_HELP, elem_id="gd-mode")  # fmt: skip
                    rec = slider("recurrence", minimum=1, maximum=LIMITS.recurrence, value=1, step=1,
                                 label="Recurrence", info="repeat each step k times, re-noising in between",
                                 elem_id="gd-recurrence")  # fmt: skip
                with gr.Group():
                    label = dropdown("class_label", choices=["any"], value="any", label="Class", interactive=False,
                                     allow_custom_value=True, elem_id="gd-label",
                                     info="conditional models only")  # fmt: skip
                    cfg = slider("cfg_scale", minimum=0.0, maximum=LIMITS.cfg_scale, value=1.0, step=0.1,
                                 label="CFG scale w", interactive=False, elem_id="gd-cfg",
                                 info="ε(∅) + w (ε(y) − ε(∅))")  # fmt: skip
                with gr.Accordion("Sampler", open=False):
                    sampler = radio("sampler", choices=list(SAMPLERS), value="ddim", label="Sampler", elem_id="gd-sampler")
                    steps = slider("num_steps", minimum=1, maximum=1000, value=50, step=1, label="Steps",
                                   bounds=(1, LIMITS.train_T), elem_id="gd-steps")  # fmt: skip
                with gr.Row():
                    seed = number("seed", value=0, minimum=0, maximum=LIMITS.seed, precision=0, label="Seed",
                                  elem_id="gd-seed")  # fmt: skip
                    n = number("num_samples", value=300, minimum=1, maximum=LIMITS.points, precision=0,
                               label="Samples", elem_id="gd-n")  # fmt: skip
                with gr.Row():
                    go_btn = gr.Button("Generate guided", variant="primary", elem_id="gd-generate")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="gd-stop")
            with gr.Column(scale=3):
                plot = gr.Plot(make_message_figure("Press Generate guided: unguided and guided samples from the same seed "
                                                   "appear side by side over the reward."),
                               label="Guided vs unguided", show_label=False, elem_id="gd-figure")  # fmt: skip
                summary = gr.JSON(label="mean rewards and settings", elem_id="gd-summary", max_height=320)

        inputs = [preset, reward, expression, params, lam, mode, rec, label, cfg, sampler, steps, seed, n]
        ev = go_btn.click(guided_generate, inputs, [plot, summary], api_name="guided_generate", **ctx.heavy)
        stop_btn.click(None, None, None, cancels=[ev], api_visibility="private")
        preset.change(on_preset, [preset, reward], [reward, label, cfg, n, reward_md], api_visibility="private",
                      **ctx.light)  # fmt: skip
        reward.change(on_reward, reward, [reward_md, expression, params], api_visibility="private", **ctx.light)
