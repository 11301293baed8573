"""Tab 4, guidance: steer sampling with a reward (a built-in or an expression) at a guidance scale λ, a mode and a
recurrence; guided and unguided samples from the same seed side by side over a heatmap of the reward, each with
its mean reward; for 2-D (and glyphs) the tilted target p(x)·exp(λ r(x)) drawn from reweighted data; classifier-free
guidance for conditional presets.  The summary says in words whether the guided mean reward over- or under-shoots
the tilted target, and for the glyph classifier reward whether a second check (re-noise, denoise without guidance,
classify again) agrees that the images changed.  While sampling only the progress line streams (at most
1 / STREAM_INTERVAL_S updates a second); the figure is drawn once, at the end.
API: /guided_generate (streams its progress), /guided_stop."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import gradio as gr
import torch

from adiff.data import IMAGE_DATASETS, PLOT_RANGE
from adiff.samplers import SAMPLERS, solvers_for
from adiff.steering.guidance import GUIDANCE_MODES

from .arrays import count_nonfinite, finite_rows, points, reward_grid, tile_images
from .choices import condition_for, default_label, default_solver, label_choices, parse_label, solver_choices
from .context import AppContext
from .fields import as_choice, as_float, as_int, user_errors
from .figures import make_guidance_figure, make_message_figure
from .help import try_this
from .limits import LIMITS
from .links import LinkParams, TabLink, link_row, merge
from .result_cache import REUSED_TEXT, figure_nbytes, preset_key
from .rewards import EXPRESSION, NO_REWARD, build_reward, reward_choices, reward_help
from .summaries import classifier_check_text, fmt, guidance_verdict, live_text, stopped_text
from .validation import dropdown, number, radio, slider

__all__ = ["build", "tilted_target", "Tilted", "classifier_recheck", "RECHECK_T_FRACTION"]

STREAM_INTERVAL_S = 0.2
RECHECK_T_FRACTION = (
    0.3  # the second check re-noises to t = 0.3 T (sigma ~ 0.46 on the glyphs preset's cosine schedule)
)

INTRO = """### Guidance: steer the sampler with a reward
Guidance aims at the **tilted distribution p_λ(x) ∝ p(x) · exp(λ r(x))**.  At each step the noise prediction is
corrected with the reward's gradient: **ε̃ = ε̂ − λ √(1−ᾱ_t) ∇_{x_t} r(x̂₀(x_t))** (DPS, Chung et al. 2023).
Left: the model alone; middle: guided, from the same seed; right: the target p·e^{λr}, drawn by reweighting real data."""

MODE_HELP = (
    "dps: gradient through the denoiser · cheap: ∇_{x̂₀} r / √ᾱ_t, no Jacobian (over-shoots at large t) · "
    "xt: ∇ r(x_t) of the noisy state (over-shoots)"
)


@dataclass(frozen=True)
class Tilted:
    """n draws of the tilted target and what is known about its reward."""

    samples: torch.Tensor  # [n, ...]
    mean_reward: float  # E_w[r]: the weighted mean over the whole pool
    se: float  # its standard error, sqrt(Var_w[r] / ESS)
    ess: float  # effective sample size 1 / sum w^2 (Kish)


def tilted_target(ctx: AppContext, dataset: str | None, reward, lam: float, n: int, label: int | None, seed: int):
    """Draw n samples of p(x) exp(lam r(x)) by resampling real data with self-normalised weights
    w_i = softmax(lam r(x_i)) (importance resampling; Kish's effective sample size 1 / sum w_i^2).
    Returns a Tilted, or None when the data is unknown."""
    if dataset is None:
        return None
    pool, labels = ctx.dataset(dataset, 2_000 if dataset in IMAGE_DATASETS else 20_000, 777)
    if isinstance(label, int) and labels is not None:
        pool = pool[labels == label]
    if len(pool) < 2:
        return None
    with torch.no_grad():
        r = reward(pool).double()
    r = torch.nan_to_num(r, nan=-1e6, posinf=1e6, neginf=-1e6)
    w = torch.softmax(lam * r, 0)
    ess = float(1.0 / (w**2).sum())
    mean = float((w * r).sum())
    var = float((w * (r - mean) ** 2).sum())
    g = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(w.float(), n, replacement=True, generator=g)
    return Tilted(pool[idx], mean, math.sqrt(max(var, 0.0) / max(ess, 1.0)), ess)


def classifier_recheck(model, x: torch.Tensor, digit: int, seed: int, t_fraction: float = RECHECK_T_FRACTION):
    """The digit classifier's agreement with ``digit`` on x, and on a copy re-noised to t = t_fraction T and denoised
    in one step by the model without any condition or guidance (x0_hat = (x_t - sigma_t eps_hat) / sqrt(abar_t),
    Ho et al. 2020 eq. 15): pixels that only fool the classifier do not survive it, a drawn digit does.
    Returns (agreement, agreement after the re-check, t)."""
    from adiff.eval.classifier import classifier_for_shape  # lazy: the weights live in assets/

    clf = classifier_for_shape(tuple(x.shape[1:]), "cpu")  # 16x16 glyphs or the 8x8 real digits
    proc = model.process
    t = max(1, int(round(t_fraction * proc.t_max))) if proc.name == "vp" else t_fraction
    n = x.shape[0]
    g = torch.Generator().manual_seed(seed + 1)
    x = x.detach().float().cpu()
    with torch.no_grad():
        noise = torch.randn(x.shape, generator=g)
        xt = proc.q_sample(x, t, noise).to(model.device)
        x0 = model.predictor(None, n, clip_x0=1.0)(xt, t).x0.float().cpu()
        agree = float((clf(x).argmax(-1) == digit).float().mean())
        again = float((clf(x0).argmax(-1) == digit).float().mean())
    return agree, again, t


def _guidance_summary_md(summary: dict, verdict: str, check: str | None) -> str:
    lines = []
    if summary.get("unguided_mean_reward") is not None:
        line = (
            f"Mean reward: unguided **{fmt(summary['unguided_mean_reward'])}** → guided "
            f"**{fmt(summary['guided_mean_reward'])}**"
        )
        if summary.get("target_mean_reward") is not None:
            line += (
                f"; the tilted target p·e^{{λr}} at λ = {summary['guidance_scale']:g} has "
                f"**{fmt(summary['target_mean_reward'])}** (from {summary['target_effective_samples']:.0f} effective "
                "data points)"
            )
        lines.append(line + ".")
    elif summary.get("reward") == NO_REWARD and summary.get("cfg_scale") is not None:
        lines.append(f"Classifier-free guidance only: w = 1 (left) against w = {summary['cfg_scale']:g} (right).")
    bad = summary.get("nonfinite_samples") or {}
    if any(bad.values()):
        lines.append(
            f"⚠ **NaN or infinite samples** (the model's output overflowed; not drawn, not in the rewards): "
            f"unguided {bad.get('unguided', 0)}, guided {bad.get('guided', 0)} of {summary['num_samples']}."
        )
    if verdict:
        lines.append(("⚠ " if not verdict.startswith("on target") else "✓ ") + verdict)
    if check:
        lines.append(check)
    if summary.get("clipped_fraction", 0) > 0.2:
        lines.append(
            f"{summary['clipped_fraction']:.0%} of the guidance gradients were clipped (very large pushes "
            "were capped): λ is large for this reward."
        )
    lines.append(
        f"{summary['num_samples']} samples, {summary['sampler']} {summary['num_steps']} steps, "
        f"seed {summary['seed']}, {summary['elapsed_s']:.1f} s."
    )
    return "\n\n".join(lines)


def build(ctx: AppContext) -> TabLink:
    @user_errors
    def guided_generate(
        preset,
        reward,
        expression,
        reward_params,
        guidance_scale,
        guidance_mode,
        recurrence,
        class_label,
        cfg_scale,
        sampler,
        num_steps,
        seed,
        num_samples,
        request: gr.Request,
    ):
        """Unguided and guided samples from the same seed (streams progress), with the tilted target."""
        session = ctx.store.get(request)
        model, info = ctx.model(preset, session)
        T = model.max_sampling_steps
        reward_fn = build_reward(reward, expression, reward_params, info.kind, allow_none=info.conditional)
        lam = as_float(guidance_scale, "guidance_scale", -LIMITS.guidance_scale, LIMITS.guidance_scale)
        mode = as_choice(guidance_mode, "guidance_mode", list(GUIDANCE_MODES))
        rec = as_int(recurrence, "recurrence", 1, LIMITS.recurrence)
        label = parse_label(class_label, info)
        w = as_float(cfg_scale, "cfg_scale", 0.0, LIMITS.cfg_scale) if info.conditional else 1.0
        sampler = as_choice(sampler, "sampler", solvers_for(model.process))
        steps = as_int(num_steps, "num_steps", 1, T)
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        n = as_int(num_samples, "num_samples", 1, LIMITS.points if info.kind == "points" else LIMITS.images)
        if reward_fn is None and label is None:
            raise gr.Error(
                "class_label: with reward 'none' only classifier-free guidance acts, which needs a class",
                print_exception=False,
            )
        clip = info.sample_kwargs.get("clip_x0")
        common = dict(
            condition=condition_for(label, n, info.num_classes),
            seed=seed,
            sampler=sampler,
            num_steps=steps,
            clip_x0=clip,
        )
        # The comparison isolates one effect: with a reward, λ = 0 vs λ at the same CFG scale; without one, w = 1 vs w.
        base_cfg = (w if reward_fn is not None else 1.0) if label is not None else None
        guided_cfg = w if label is not None else None
        t0 = time.time()
        key = preset_key(
            info.source,
            "guided_generate",
            reward=reward,
            device=str(model.device),
            expression=expression.strip() if reward == EXPRESSION else None,
            reward_params=str(reward_params or "").strip() if reward not in (EXPRESSION, NO_REWARD) else None,
            guidance_scale=lam,
            guidance_mode=mode,
            recurrence=rec,
            class_label=label,
            cfg_scale=w,
            sampler=sampler,
            num_steps=steps,
            seed=seed,
            num_samples=n,
        )
        hit = ctx.results.get(key)
        if hit is not None:  # an identical request on a preset ran before: the same figure and numbers
            fig, text, summary = hit
            yield fig, text + "\n\n" + REUSED_TEXT, {**summary, "elapsed_s": round(time.time() - t0, 2), "reused": True}
            return
        session.progress["guidance"] = "while drawing the unguided samples"
        yield gr.skip(), live_text("sampling unguided (λ = 0)", 0, steps, None, None, 0.0), gr.skip()
        base_x, _ = model.generate(n, keep_every=10**6, cfg_scale=base_cfg, **common)
        base_x = base_x.detach().float().cpu()

        def rewards_of(x):  # over the finite samples (the non-finite ones are counted apart); None when there are none
            x = finite_rows(x)
            if reward_fn is None or not len(x):
                return None
            with torch.no_grad():
                return torch.nan_to_num(reward_fn(x.to(torch.float32)).double(), nan=0.0)

        def mean_reward(x):
            r = rewards_of(x)
            return None if r is None else float(r.mean())

        def median_reward(x):
            r = rewards_of(x)
            return None if r is None else float(r.median())

        grid = reward_grid(reward_fn, 70, PLOT_RANGE) if (reward_fn is not None and info.kind == "points") else None
        lam_txt = f"λ = {lam:g}, {mode}" + (f", recurrence {rec}" if rec > 1 else "")
        base_title = "unguided (λ = 0)" if reward_fn is not None else "w = 1 (plain conditional)"
        guided_title = f"guided ({lam_txt})" if reward_fn is not None else f"CFG w = {w:g}"
        if label is not None and reward_fn is not None:
            base_title += f", w = {w:g}"
            guided_title += f", w = {w:g}"

        def panel(key, title, x, r):
            if info.kind == "points":
                return {
                    "key": key,
                    "title": title,
                    "points": points(x),
                    "mean_reward": r,
                    "nonfinite": count_nonfinite(x),
                }
            return {"key": key, "title": title, "z": tile_images(x), "mean_reward": r, "nonfinite": count_nonfinite(x)}

        def figure(panels, title):
            return make_guidance_figure(
                {"kind": info.kind, "reward": grid, "range": PLOT_RANGE, "panels": panels, "title": title}
            )

        base_panel = panel("base", base_title, base_x, mean_reward(base_x))
        kw = dict(common, cfg_scale=guided_cfg)
        if reward_fn is not None and lam != 0:
            kw.update(use_guidance=True, reward_fn=reward_fn, guidance_scale=lam, guidance_mode=mode, recurrence=rec)
        clipped, nonfinite, last, sent = [], 0, None, time.monotonic()
        for step in model.generate_progressive(n, **kw):
            last = step
            if step.guidance is not None:
                clipped.append(step.guidance.clipped_fraction)
                nonfinite += step.guidance.nonfinite
            session.progress["guidance"] = f"at guided step {step.index + 1} of {step.num_steps}"
            if time.monotonic() - sent >= STREAM_INTERVAL_S:
                sent = time.monotonic()
                yield (
                    gr.skip(),
                    live_text("sampling guided", step.index + 1, step.num_steps, step.t, None, time.time() - t0),
                    gr.skip(),
                )
        guided_x = last.x_prev.detach().float().cpu()
        guided_panel = panel("steered", guided_title, guided_x, mean_reward(guided_x))
        panels = [base_panel, guided_panel]
        summary = {
            "preset": info.source,
            "reward": reward if reward != EXPRESSION else f"expression: {expression}",
            "formula": getattr(reward_fn, "formula", None),
            "guidance_scale": lam,
            "guidance_mode": mode,
            "recurrence": rec,
            "class_label": label,
            "cfg_scale": w if info.conditional else None,
            "sampler": sampler,
            "num_steps": steps,
            "seed": seed,
            "num_samples": n,
            "unguided_mean_reward": base_panel["mean_reward"],
            "guided_mean_reward": guided_panel["mean_reward"],
            "unguided_median_reward": median_reward(base_x),
            "guided_median_reward": median_reward(guided_x),
            "clipped_fraction": sum(clipped) / len(clipped) if clipped else 0.0,
            "nonfinite_gradients": nonfinite,
            "nonfinite_samples": {"unguided": base_panel["nonfinite"], "guided": guided_panel["nonfinite"]},
            "elapsed_s": None,
        }
        verdict, check = "", None
        if reward_fn is not None:
            tgt = tilted_target(ctx, info.dataset, reward_fn, lam, n, label, seed)
            if tgt is not None:
                panels.append(panel("target", f"target p·e^(λr), λ = {lam:g}", tgt.samples, tgt.mean_reward))
                summary.update(
                    target_mean_reward=tgt.mean_reward,
                    target_mean_reward_se=tgt.se,
                    target_effective_samples=round(tgt.ess, 1),
                )
                if tgt.ess < 30:
                    summary["note"] = (
                        f"only ~{tgt.ess:.0f} effective data points carry the tilted target at λ = {lam:g}: "
                        "its picture is rough"
                    )
                r_g = rewards_of(guided_x)
                kind_, verdict = guidance_verdict(
                    base_panel["mean_reward"],
                    guided_panel["mean_reward"],
                    tgt.mean_reward,
                    float(r_g.std() / math.sqrt(len(r_g))) if r_g is not None and len(r_g) > 1 else 0.0,
                    tgt.se,
                    tgt.ess,
                    lam,
                    rec,
                )
                summary["versus_target"] = kind_
            if reward == "classifier_logprob" and info.kind == "images":
                digit = int(reward_fn.params.get("digit", 0))
                b_agree, b_again, t_chk = classifier_recheck(model, base_x, digit, seed)
                g_agree, g_again, _ = classifier_recheck(model, guided_x, digit, seed)
                fooled, check = classifier_check_text(digit, b_agree, g_agree, g_again, b_again, t_chk)
                summary["classifier_check"] = {
                    "digit": digit,
                    "t": t_chk,
                    "unguided_agree": b_agree,
                    "guided_agree": g_agree,
                    "unguided_recheck": b_again,
                    "guided_recheck": g_again,
                    "likely_fooled": fooled,
                }
        summary.update(elapsed_s=round(time.time() - t0, 2), reused=False)
        session.progress["guidance"] = "after the last step"
        title = (
            f"{info.source}: reward {summary['reward']}"
            if reward_fn is not None
            else f"{info.source}: classifier-free guidance"
        )
        result = (figure(panels, title), _guidance_summary_md(summary, verdict, check), summary)
        if key is not None:
            ctx.results.put(key, result, figure_nbytes(result[0]) + len(result[1]) + len(str(summary)))
        yield result

    def stop(request: gr.Request):
        where = ctx.store.get(request).progress.get("guidance")
        return stopped_text("guidance", where), {"status": "stopped", "at": where}

    def preset_updates(preset, reward_value, request, sampler_value=None) -> dict | str:
        try:
            model, info = ctx.model(preset, ctx.store.get(request))
        except gr.Error as e:
            return f"⚠ {e.message}"
        choices = reward_choices(info.kind, allow_none=info.conditional)
        value = (
            reward_value
            if reward_value in choices
            else ("classifier_logprob" if info.kind == "images" else "distance_to_target")
        )
        images = info.kind == "images"
        # the solvers of the model's process (a flow has no DDPM/DDIM); keep the user's choice where it still serves
        solver = sampler_value if sampler_value in solvers_for(model.process) else default_solver(model, info)[0]
        return {
            reward: gr.update(choices=choices, value=value),
            sampler: gr.update(choices=solver_choices(model), value=solver),
            steps: gr.update(maximum=model.max_sampling_steps),
            label: gr.update(choices=label_choices(info), value=default_label(info), interactive=info.conditional),
            cfg: gr.update(value=info.sample_kwargs.get("cfg_scale", 1.0), interactive=info.conditional),
            n: gr.update(value=16 if images else 300, maximum=LIMITS.images if images else LIMITS.points),
            reward_md: reward_help(value),
            **reward_updates(value),
        }

    def on_preset(preset, reward_value, sampler_value, request: gr.Request):
        up = preset_updates(preset, reward_value, request, sampler_value)
        return {reward_md: up} if isinstance(up, str) else up

    def reward_updates(name) -> dict:
        return {
            reward_md: reward_help(name),
            expression: gr.update(visible=name == EXPRESSION),
            params: gr.update(visible=name not in (EXPRESSION, NO_REWARD)),
        }

    def apply_link(q: LinkParams, request) -> dict:
        out = {}
        p = q.choice("preset", ctx.sources())
        if p is not None:
            up = preset_updates(p, q.values.get("reward"), request)
            if isinstance(up, str):
                q.problems.append(f"preset: {up}")
            else:
                out.update(up)
                out[preset] = p
        r = q.choice_among("reward", out, reward, reward_choices("points"))
        if r is not None:
            merge(out, reward, r)
            out.update(reward_updates(r))
        return q.fill(
            out,
            [
                ("expression", expression, "text", LIMITS.expression_chars),
                ("params", params, "text", LIMITS.reward_params_chars),
                ("label", label, "text", 8),
                ("lam", lam, "float", -LIMITS.guidance_scale, LIMITS.guidance_scale),
                ("cfg", cfg, "float", 0.0, LIMITS.cfg_scale),
                ("rec", rec, "int", 1, LIMITS.recurrence),
                ("steps", steps, "int", 1, LIMITS.train_T),
                ("seed", seed, "int", 0, LIMITS.seed),
                ("n", n, "int", 1, LIMITS.points),
                ("mode", mode, "choice", list(GUIDANCE_MODES)),
                ("sampler", sampler, "choice", list(SAMPLERS)),
            ],
        )

    with gr.Tab("5 · Guidance", id="guidance"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_classes=["adiff-controls-col"]):
                preset = dropdown(
                    "preset",
                    choices=ctx.sources(),
                    value="moons",
                    label="Model",
                    elem_id="gd-preset",
                    info="a shipped preset, or the model from the Train tab",
                )
                reward = dropdown(
                    "reward",
                    choices=reward_choices("points"),
                    value="distance_to_target",
                    label="Reward r(x)",
                    allow_custom_value=True,
                    elem_id="gd-reward",
                    info="built-ins, or your own formula (expression)",
                )
                reward_md = gr.Markdown(reward_help("distance_to_target"), elem_id="gd-reward-help")
                expression = gr.Textbox(
                    "-((x-1)**2 + (y+0.5)**2)",
                    label="Expression r(x, y)",
                    max_lines=1,
                    visible=False,
                    elem_id="gd-expression",
                    info=f"x, y, r, theta, + - * / **, exp log sin cos sigmoid min max… "
                    f"(≤ {LIMITS.expression_chars} characters)",
                )
                params = gr.Textbox(
                    "",
                    label="Reward parameters (JSON)",
                    max_lines=1,
                    elem_id="gd-params",
                    placeholder='e.g. {"scale": 2} or {"k": 3} or {"digit": 7}',
                    info="optional; empty = the defaults",
                )
                lam = slider(
                    "guidance_scale",
                    minimum=-20,
                    maximum=20,
                    value=2.0,
                    step=0.5,
                    label="Guidance scale λ",
                    bounds=(-LIMITS.guidance_scale, LIMITS.guidance_scale),
                    elem_id="gd-lambda",
                    info="target p(x)·exp(λ r(x)); 0 = no reward guidance",
                )
                with gr.Group():
                    mode = radio(
                        "guidance_mode",
                        choices=list(GUIDANCE_MODES),
                        value="dps",
                        label="Mode",
                        info=MODE_HELP,
                        elem_id="gd-mode",
                    )
                    rec = slider(
                        "recurrence",
                        minimum=1,
                        maximum=LIMITS.recurrence,
                        value=1,
                        step=1,
                        label="Recurrence",
                        info="repeat each step k times, re-noising in between",
                        elem_id="gd-recurrence",
                    )
                with gr.Group():
                    label = dropdown(
                        "class_label",
                        choices=["any"],
                        value="any",
                        label="Class",
                        interactive=False,
                        allow_custom_value=True,
                        elem_id="gd-label",
                        info="conditional models only",
                    )
                    cfg = slider(
                        "cfg_scale",
                        minimum=0.0,
                        maximum=LIMITS.cfg_scale,
                        value=1.0,
                        step=0.1,
                        label="CFG scale w",
                        interactive=False,
                        elem_id="gd-cfg",
                        info="ε(∅) + w (ε(y) − ε(∅))",
                    )
                with gr.Accordion("Sampler", open=False):
                    sampler = radio(
                        "sampler", choices=list(SAMPLERS), value="ddim", label="Sampler", elem_id="gd-sampler"
                    )
                    # 20 DDIM steps: the same over-shoot verdict as 50 at the default λ, 2.5x less compute for a
                    # workshop (bench/bench_app.py --workshop; BENCHMARKS.md, issue 12)
                    steps = slider(
                        "num_steps",
                        minimum=1,
                        maximum=1000,
                        value=20,
                        step=1,
                        label="Steps",
                        bounds=(1, LIMITS.train_T),
                        elem_id="gd-steps",
                    )
                with gr.Row():
                    seed = number(
                        "seed", value=0, minimum=0, maximum=LIMITS.seed, precision=0, label="Seed", elem_id="gd-seed"
                    )
                    n = number(
                        "num_samples",
                        value=300,
                        minimum=1,
                        maximum=LIMITS.points,
                        precision=0,
                        label="Samples",
                        elem_id="gd-n",
                    )
                with gr.Row(elem_classes=["adiff-actions"]):
                    go_btn = gr.Button("Generate guided", variant="primary", elem_id="gd-generate")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="gd-stop")
            with gr.Column(scale=4, elem_classes=["adiff-result-col"]):
                status = gr.Markdown(
                    "Press **Generate guided**: unguided and guided samples from the same seed appear "
                    "side by side over the reward, with the target they aim at.",
                    elem_id="gd-status",
                    elem_classes=["adiff-status"],
                )
                plot = gr.Plot(
                    make_message_figure(
                        "Press Generate guided: unguided and guided samples from the same seed "
                        "appear side by side over the reward."
                    ),
                    label="Guided vs unguided",
                    show_label=False,
                    elem_id="gd-figure",
                    elem_classes=["adiff-figure", "adiff-wide"],
                )
                try_this("guidance")
                with gr.Accordion("Details: mean rewards and settings (JSON)", open=False):
                    summary = gr.JSON(label="mean rewards and settings", elem_id="gd-summary", max_height=320)
                link_btn, link_box = link_row("guidance")

        inputs = [preset, reward, expression, params, lam, mode, rec, label, cfg, sampler, steps, seed, n]
        ev = go_btn.click(
            guided_generate,
            inputs,
            [plot, status, summary],
            api_name="guided_generate",
            show_progress_on=[status],
            **ctx.heavy,
        )
        stop_btn.click(None, None, None, cancels=[ev], api_visibility="private").then(
            stop, None, [status, summary], api_name="guided_stop", **ctx.instant
        )
        preset.input(
            on_preset,
            [preset, reward, sampler],
            [reward, sampler, steps, label, cfg, n, reward_md, expression, params],
            api_visibility="private",
            **ctx.light,
        )
        reward.input(reward_updates, reward, [reward_md, expression, params], api_visibility="private", **ctx.instant)
    fields = {
        "preset": preset,
        "reward": reward,
        "expression": expression,
        "params": params,
        "lam": lam,
        "mode": mode,
        "rec": rec,
        "label": label,
        "cfg": cfg,
        "sampler": sampler,
        "steps": steps,
        "seed": seed,
        "n": n,
    }
    return TabLink("guidance", fields, apply_link, link_btn, link_box, [reward_md])
