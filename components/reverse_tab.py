"""Tab 3, reverse diffusion: sample a preset with DDPM or DDIM, watch the frames stream in, then scrub the stored
trajectory (frame slider, Play/Pause): x_t, the predicted x0 and the predicted noise side by side; for 2-D the
learned score field under the points and a few particle paths, and for 8gaussians the ideal (exact) denoiser at
the same x_t; the current t on the schedule curve; the trajectory as an animated GIF.
API: /generate (streaming), /frame."""
from __future__ import annotations

import math
import time
from pathlib import Path

import gradio as gr
import torch

from adiff.data import PLOT_RANGE, gaussian_mixture_for
from adiff.data.gmm import GaussianMixture
from adiff.eval.metrics import mmd2
from adiff.presets import preset_spec
from adiff.samplers import SAMPLERS, TrajectoryRecorder, predict_x0_from_eps

from .common import (LIMITS, AppContext, ModelInfo, condition_for, count_nonfinite, curve_at, default_label, finite_rows,
                     label_choices, parse_label, points, schedule_curve, score_field, tile_images)  # fmt: skip
from .figures import make_frame_figure, make_message_figure, make_schedule_marker_figure
from .gif import trajectory_gif
from .state import StoredTrajectory
from .validation import as_choice, as_float, as_int, dropdown, number, radio, slider, user_errors

__all__ = ["build", "frame_data", "ideal_mixture", "NUM_PATHS"]

NUM_PATHS = 6  # highlighted particles
FIELD_GRID = 17  # score-field arrows per side
INTRO = """### Reverse diffusion: from noise to data
The model predicts the noise ε̂ = ε_θ(x_t, t) in x_t; from it follow the **predicted clean sample
x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t** and the **score ∇log p_t(x_t) ≈ −ε̂ / √(1−ᾱ_t)** (arrows).  Each step moves x_t
towards x̂₀ and, for DDPM, adds fresh noise.  Press **Generate**, then scrub the frames or press **Play**."""


def ideal_mixture(info: ModelInfo, label: int | str | None) -> GaussianMixture | None:
    """The exact data distribution when it is a known Gaussian mixture (8gaussians), restricted to a class
    (None for per-sample classes, where no single mixture is the ideal)."""
    if info.dataset is None or info.kind != "points" or isinstance(label, str):
        return None
    gmm = gaussian_mixture_for(info.dataset)
    if gmm is None or label is None:
        return gmm
    if label >= gmm.num_components:
        return None
    return GaussianMixture([1.0], gmm.means[label: label + 1], gmm.covs[label: label + 1])


def _field_eps(model, label: int | str | None, cfg_scale: float | None, n: int):
    """The noise predictor drawn as the score field: for one class, that class (with CFG); otherwise unconditional."""
    label = label if isinstance(label, int) else None
    eps = model.noise_predictor(label, n)
    if cfg_scale is not None and label is not None and model.is_conditional:
        eps = eps.with_cfg(cfg_scale)
    return eps


def frame_data(model, kind: str, t: int, x_t, x0_pred, eps, *, label=None, cfg_scale=None, ideal=None, paths=None,
               index=0, num_frames=None) -> dict:  # fmt: skip
    """Tensors of one frame -> the data ``make_frame_figure`` takes (score fields computed here; "nonfinite" counts
    the samples of x_t that are NaN or infinite, which the figure leaves out and names)."""
    bad = count_nonfinite(x_t)
    if kind == "images":
        return {"kind": "images", "t": int(t), "index": index, "num_frames": num_frames, "nonfinite": bad,
                "x_t": tile_images(x_t), "x0_pred": tile_images(x0_pred), "eps": tile_images(eps)}  # fmt: skip
    frame = {"kind": "points", "t": int(t), "index": index, "num_frames": num_frames, "range": PLOT_RANGE,
             "x_t": points(x_t), "x0_pred": points(x0_pred), "eps": points(eps), "paths": paths or [],
             "nonfinite": bad}  # fmt: skip
    sch = model.noise_schedule
    G = FIELD_GRID * FIELD_GRID
    if t > 0:
        frame["score"] = score_field(_field_eps(model, label, cfg_scale, G), sch, t, FIELD_GRID, PLOT_RANGE, model.device)
    if ideal is not None:
        eps_star = ideal.eps_fn(sch)
        if t > 0:
            xt = x_t.detach().to(torch.float64).cpu()
            t_b = torch.full((xt.shape[0],), int(t), dtype=torch.long)
            with torch.no_grad():
                e = eps_star(xt, t_b)
            x0 = predict_x0_from_eps(sch, xt, t_b, e)
            frame["ideal"] = {"x0_pred": points(x0), "eps": points(e),
                              "score": score_field(eps_star, sch, t, FIELD_GRID, PLOT_RANGE, "cpu")}  # fmt: skip
        else:
            frame["ideal"] = {"x0_pred": points(x_t), "eps": points(torch.zeros_like(x_t))}
    return frame


def _paths_from(history: list, upto: int | None = None) -> list[dict]:
    """history: list of [P, 2] tensors (one per step) -> P paths (subsampled to <= 60 points each)."""
    if not history:
        return []
    h = torch.stack(history[: upto + 1] if upto is not None else history)  # [S, P, 2]
    stride = max(1, math.ceil(h.shape[0] / 60))
    idx = list(range(0, h.shape[0], stride))
    if idx[-1] != h.shape[0] - 1:
        idx.append(h.shape[0] - 1)
    h = h[idx]
    return [points(h[:, p]) for p in range(h.shape[1])]


def _stored_frame(st: StoredTrajectory, k: int) -> dict:
    tr = st.trajectory
    paths = _paths_from(list(st.paths), k) if st.paths is not None else None
    return frame_data(st.model, st.kind, tr.timesteps[k], tr.x[k], tr.x0_pred[k], tr.eps_pred[k], label=st.condition,
                      cfg_scale=st.cfg_scale, ideal=st.ideal, paths=paths, index=k, num_frames=len(tr))  # fmt: skip


def _curve_figure(model, t: int):
    sch = model.noise_schedule
    curve = schedule_curve(sch, model.cfg.noise_schedule, max_points=250)  # smooth: 250 points draw it; sent every frame
    return make_schedule_marker_figure(curve_at(curve, sch, t), t)


def build(ctx: AppContext) -> None:
    empty = make_message_figure("Press Generate: frames stream in as the sampler runs.")

    @user_errors
    def generate(preset, sampler, num_steps, eta, seed, num_samples, class_label, cfg_scale, request: gr.Request):
        """Sample a preset and stream the frames; store the trajectory for the frame slider and the GIF."""
        session = ctx.store.get(request)
        model, info = ctx.model(preset, session)
        T = model.num_diffusion_steps
        sampler = as_choice(sampler, "sampler", list(SAMPLERS))
        steps = as_int(num_steps, "num_steps", 1, T)
        eta = as_float(eta, "eta", 0.0, 1.0)
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        limit = LIMITS.points if info.kind == "points" else LIMITS.images
        n = as_int(num_samples, "num_samples", 1, limit)
        label = parse_label(class_label, info)
        cfg = as_float(cfg_scale, "cfg_scale", 0.0, LIMITS.cfg_scale) if (info.conditional and label is not None) else None
        condition = condition_for(label, n, info.num_classes)
        clip = info.sample_kwargs.get("clip_x0")
        ideal = ideal_mixture(info, label)
        keep_every = max(1, math.ceil(steps / LIMITS.frames))
        every = max(1, math.ceil(steps / LIMITS.stream_updates))
        rec = TrajectoryRecorder(keep_every)
        sel = torch.arange(min(NUM_PATHS, n))
        history: list = []
        t0 = time.time()
        base = {"preset": preset, "sampler": sampler, "num_steps": steps, "eta": eta, "seed": seed, "num_samples": n,
                "class_label": label, "cfg_scale": cfg, "T": T}  # fmt: skip
        for step in model.generate_progressive(n, condition=condition, seed=seed, sampler=sampler, num_steps=steps,
                                               eta=eta, cfg_scale=cfg, clip_x0=clip):  # fmt: skip
            rec.add(step)
            if info.kind == "points":
                history.append(step.x_t[sel].detach().float().cpu())
            if step.index % every == 0:
                frame = frame_data(model, info.kind, step.t, step.x_t, step.x0_pred, step.eps_pred, label=label,
                                   cfg_scale=cfg, ideal=ideal, paths=_paths_from(history))  # fmt: skip
                status = {**base, "status": "sampling", "step": step.index + 1, "t": step.t,
                          "sigma_t": step.noise_level, "elapsed_s": round(time.time() - t0, 2)}  # fmt: skip
                yield make_frame_figure(frame), _curve_figure(model, step.t), status, gr.skip(), gr.skip()
        traj = rec.finish()
        paths = traj.x[:, sel].clone() if info.kind == "points" else None  # [K, P, 2] at the kept frames
        stored = StoredTrajectory(traj, model, info.source, info.kind, label, cfg, paths, ideal)
        K = len(traj)
        gif_path = session.workdir / f"trajectory-{info.source.replace(' ', '_')}-{seed}-{int(time.time() * 1000)}.gif"
        stored.gif_path = str(trajectory_gif(traj, info.kind, gif_path, PLOT_RANGE))
        previous, session.trajectory = session.trajectory, stored
        if previous is not None and previous.gif_path and previous.gif_path != stored.gif_path:
            Path(previous.gif_path).unlink(missing_ok=True)  # gradio serves its own copy; keep one GIF per session
        final = finite_rows(traj.final)  # NaN or infinite samples are counted, not averaged
        summary = {**base, "status": "done", "step": steps, "t": 0, "num_frames": K, "frame": K - 1,
                   "elapsed_s": round(time.time() - t0, 2), "nonfinite_samples": n - len(final),
                   "sample_mean": final.mean(0).flatten()[:4].tolist() if len(final) else None,
                   "sample_std": float(final.std()) if len(final) >= 2 else None}  # fmt: skip
        if info.kind == "points" and info.dataset is not None:
            ref, ref_labels = ctx.dataset(info.dataset, 4000, 123)
            if isinstance(label, int) and ref_labels is not None:
                ref = ref[ref_labels == label]  # compare a class-conditional run with that class's data
            if len(ref) >= 2 and len(final) >= 2:  # 500 vs 500 points: MMD^2 costs O((n + m)^2)
                summary["mmd2_to_data"] = mmd2(final[:500].float().cpu(), ref[:500])
        yield (make_frame_figure(_stored_frame(stored, K - 1)), _curve_figure(model, 0), summary,
               gr.update(maximum=K - 1, value=K - 1), stored.gif_path)  # fmt: skip

    @user_errors
    def show_frame(frame_index, request: gr.Request):
        """Draw frame ``frame_index`` of this session's last trajectory."""
        session = ctx.store.get(request)
        st = session.trajectory
        if st is None:
            raise gr.Error("frame_index: no trajectory yet: press Generate first", print_exception=False)
        k = as_int(frame_index, "frame_index", 0, st.num_frames - 1)
        t = st.trajectory.timesteps[k]
        summary = {"preset": st.source, "frame": k, "num_frames": st.num_frames, "t": t,
                   "sigma_t": float(st.trajectory.noise_levels[k])}  # fmt: skip
        return make_frame_figure(_stored_frame(st, k)), _curve_figure(st.model, t), summary

    def play(frame_index, request: gr.Request):
        st = ctx.store.get(request).trajectory
        if st is None:
            return gr.Timer(active=False), gr.skip()
        restart = frame_index is None or int(frame_index) >= st.num_frames - 1
        return gr.Timer(active=True), (0 if restart else gr.skip())

    def tick(frame_index, request: gr.Request):
        st = ctx.store.get(request).trajectory
        if st is None:
            return gr.Timer(active=False), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        k = min(int(frame_index or 0) + 1, st.num_frames - 1)
        try:
            fig, cfig, summary = show_frame(k, request)
        except gr.Error:
            return gr.Timer(active=False), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return gr.Timer(active=k < st.num_frames - 1), k, fig, cfig, summary

    def on_preset(preset, request: gr.Request):
        """Adapt the controls to the chosen model (labels, sample limit, CFG default) and describe it."""
        try:
            model, info = ctx.model(preset, ctx.store.get(request))
        except gr.Error as e:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"⚠️ {e.message}"
        images = info.kind == "images"
        limit = LIMITS.images if images else LIMITS.points
        cfg = info.sample_kwargs.get("cfg_scale", 1.0)
        desc = f"**{preset}**: {info.description}  ·  T = {model.num_diffusion_steps}, schedule {model.cfg.noise_schedule}"
        return (gr.update(choices=label_choices(info), value=default_label(info), interactive=info.conditional),
                gr.update(value=16 if images else 500, maximum=limit),
                gr.update(value=cfg, interactive=info.conditional),
                gr.update(maximum=model.num_diffusion_steps), desc)  # fmt: skip

    def on_sampler(sampler):
        return gr.update(value=1000 if sampler == "ddpm" else 100), gr.update(interactive=sampler == "ddim")

    with gr.Tab("3 · Reverse diffusion", id="reverse"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                preset = dropdown("preset", choices=ctx.sources(), value="moons", label="Model",
                                  info="a shipped preset, or the model from the Train tab", elem_id="rev-preset")  # fmt: skip
                preset_md = gr.Markdown(f"**moons**: {preset_spec('moons').description}", elem_id="rev-preset-info")
                sampler = radio("sampler", choices=list(SAMPLERS), value="ddim", label="Sampler",
                                info="DDPM: x_{t-1} ~ N(μ_θ(x_t), β̃_t I) · DDIM: deterministic jump via x̂₀ (η = 0)",
                                elem_id="rev-sampler")  # fmt: skip
                steps = slider("num_steps", bounds=(1, LIMITS.train_T), minimum=1, maximum=1000, value=100, step=1,
                               label="Steps", info="reverse steps (DDPM usually uses all T)", elem_id="rev-steps")  # fmt: skip
                eta = slider("eta", minimum=0.0, maximum=1.0, value=0.0, step=0.05, label="η (DDIM)",
                             info="σ = η √((1−ᾱ_s)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_s): 0 deterministic, 1 like DDPM",
                             elem_id="rev-eta")  # fmt: skip
                with gr.Row():
                    seed = number("seed", value=0, minimum=0, maximum=LIMITS.seed, precision=0, label="Seed",
                                  info="x_T ~ N(0, I) from this seed", elem_id="rev-seed")  # fmt: skip
                    n = number("num_samples", value=500, minimum=1, maximum=LIMITS.points, precision=0,
                               label="Samples", info=f"≤ {LIMITS.points} points, ≤ {LIMITS.images} images",
                               elem_id="rev-n")  # fmt: skip
                with gr.Group():
                    label = dropdown("class_label", choices=["any"], value="any", label="Class",
                                     info="conditional models: y (any = unconditional, each = 0, 1, 2, …)",
                                     interactive=False,
                                     allow_custom_value=True, elem_id="rev-label")  # fmt: skip
                    cfg = slider("cfg_scale", minimum=0.0, maximum=LIMITS.cfg_scale, value=1.0, step=0.1,
                                 label="CFG scale w", info="ε = ε(∅) + w (ε(y) − ε(∅))", interactive=False,
                                 elem_id="rev-cfg")  # fmt: skip
                with gr.Row():
                    gen_btn = gr.Button("Generate", variant="primary", elem_id="rev-generate")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="rev-stop")
            with gr.Column(scale=3):
                plot = gr.Plot(empty, label="Trajectory", show_label=False, elem_id="rev-figure")
                with gr.Row():
                    frame = slider("frame_index", bounds=(0, 1000), minimum=0, maximum=LIMITS.frames,
                                   value=0, step=1, label="Frame", info="scrub the stored trajectory (0 = x_T)",
                                   elem_id="rev-frame", scale=4)  # fmt: skip
                    play_btn = gr.Button("▶ Play", elem_id="rev-play", scale=1, min_width=90)
                    pause_btn = gr.Button("Pause", elem_id="rev-pause", scale=1, min_width=90)
                with gr.Row():
                    curve_plot = gr.Plot(label="t on the schedule", show_label=False, elem_id="rev-curve", scale=3)
                    with gr.Column(scale=2):
                        gif = gr.File(label="Trajectory as an animated GIF", elem_id="rev-gif", height=90)
                        summary = gr.JSON(label="status", elem_id="rev-status", max_height=230)
        timer = gr.Timer(0.35, active=False)

        gen_event = gen_btn.click(generate, [preset, sampler, steps, eta, seed, n, label, cfg],
                                  [plot, curve_plot, summary, frame, gif], api_name="generate", **ctx.heavy)  # fmt: skip
        stop_btn.click(None, None, None, cancels=[gen_event], api_visibility="private")
        frame.input(show_frame, frame, [plot, curve_plot, summary], api_name="frame", trigger_mode="always_last",
                    **ctx.light)  # fmt: skip
        play_btn.click(play, frame, [timer, frame], api_visibility="private", **ctx.light)
        pause_btn.click(lambda: gr.Timer(active=False), None, timer, api_visibility="private", **ctx.light)
        timer.tick(tick, frame, [timer, frame, plot, curve_plot, summary], api_visibility="private", **ctx.light)
        preset.change(on_preset, preset, [label, n, cfg, steps, preset_md], api_visibility="private", **ctx.light)
        sampler.change(on_sampler, sampler, [steps, eta], api_visibility="private", **ctx.light)
