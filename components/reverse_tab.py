"""Tab 3, reverse diffusion: sample a preset with a solver from the samplers' registry, watch the frames stream in,
then scrub and play the trajectory in the browser (components/player.py): x_t, the predicted x0 and the predicted
noise side by side; for 2-D the learned score field under the points and a few particle paths, and for 8gaussians
the ideal (exact) denoiser at the same x_t; the current t on the schedule curve; the trajectory as an animated GIF.

While sampling, at most one update per ``STREAM_INTERVAL_S`` goes to the browser, and about ``LIVE_MESSAGES`` per
run (a slow run, e.g. on a busy CPU, spaces them out: every message costs the page some main-thread time and the
server CPU it shares), each carrying only the new frame's points; the whole trajectory (at most LIMITS.frames
frames) is sent once at the end, as a JSON file the player fetches (gr.HTML would copy and compare a big value
several times per update; a file is parsed once).
API: /generate (streams player messages), /frame (a plotly figure of any stored frame)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import gradio as gr
import torch

import adiff.presets
from adiff.data import PLOT_RANGE
from adiff.diffusion import Predictor
from adiff.presets import preset_spec
from adiff.samplers import SAMPLERS, SOLVERS, TrajectoryRecorder, get_solver, solvers_for

from .common import (
    LIMITS,
    AppContext,
    condition_for,
    count_nonfinite,
    default_label,
    default_solver,
    finite_rows,
    label_choices,
    parse_label,
    points,
    score_field,
    solver_choices,
    solver_help,
    steps_for,
    tile_images,
)
from .figures import make_frame_figure, make_schedule_marker_figure
from .gif import trajectory_gif
from .help import try_this
from .links import LinkParams, TabLink, link_row
from .player import live_message, player_component, player_payload, time_value
from .result_cache import REUSED_TEXT, FinishedRun, preset_key
from .state import StoredTrajectory
from .summaries import reverse_done_text, stopped_text
from .trajectory_view import (
    FIELD_GRID,
    NUM_PATHS,
    field_eps,
    fmt_t,
    frame_labels,
    ideal_mixture,
    image_specs,
    player_schedule,
    player_static,
    process_text,
    solid_at,
    trajectory_arrays,
)
from .validation import as_choice, as_float, as_int, dropdown, number, radio, slider, user_errors

__all__ = ["build", "frame_data", "ideal_mixture", "STREAM_INTERVAL_S"]

STREAM_INTERVAL_S = 0.2  # at most 5 updates per second reach the browser while sampling
LIVE_MESSAGES = 12  # and about this many per run: the interval grows with the run's expected length
INTRO = """### Reverse diffusion: from noise to data
x_t = α_t x₀ + σ_t ε.  Whatever the network predicts (ε, x₀, v = α_t ε − σ_t x₀, or a flow's velocity ε − x₀), one
conversion gives the **predicted noise ε̂** and the **predicted clean sample x̂₀ = (x_t − σ_t ε̂) / α_t**, and the
**score ∇log p_t(x_t) ≈ −ε̂ / σ_t** (arrows).  A solver steps x_t towards x̂₀ (DDPM adds fresh noise; DDIM, DPM-Solver++,
Euler and Heun follow the probability-flow ODE).  Press **Generate**: the frames stream in; then drag the frame
slider or press **▶ Play** (both run in your browser)."""
LOAD_JS = """(f) => { const p = document.querySelector('#rev-player .adiff-player')?.adiffPlayer;
  if (p && f && f.url) p.load(f.url); }"""
STOP_JS = """() => { document.querySelector('#rev-player .adiff-player')?.adiffPlayer?.freeze();
  return '■ **stopped**: no more frames are drawn; the server is ending the run…'; }"""


def frame_data(
    model,
    kind: str,
    t: int,
    x_t,
    x0_pred,
    eps,
    *,
    label=None,
    cfg_scale=None,
    ideal=None,
    paths=None,
    index=0,
    num_frames=None,
) -> dict:
    """Tensors of one frame -> the data ``make_frame_figure`` takes (score fields computed here; "nonfinite" counts
    the samples of x_t that are NaN or infinite, which the figure leaves out and names)."""
    bad = count_nonfinite(x_t)
    if kind == "images":
        return {
            "kind": "images",
            "t": time_value(t),
            "index": index,
            "num_frames": num_frames,
            "nonfinite": bad,
            "x_t": tile_images(x_t),
            "x0_pred": tile_images(x0_pred),
            "eps": tile_images(eps),
        }
    frame = {
        "kind": "points",
        "t": time_value(t),
        "index": index,
        "num_frames": num_frames,
        "range": PLOT_RANGE,
        "x_t": points(x_t),
        "x0_pred": points(x0_pred),
        "eps": points(eps),
        "paths": paths or [],
        "nonfinite": bad,
    }
    proc = model.process
    G = FIELD_GRID * FIELD_GRID
    if t > 0:
        frame["score"] = score_field(
            field_eps(model, label, cfg_scale, G), proc, t, FIELD_GRID, PLOT_RANGE, model.device
        )
    if ideal is not None:
        star = Predictor(
            ideal.model_fn(proc, "epsilon" if proc.name == "vp" else "velocity"),
            proc,
            "epsilon" if proc.name == "vp" else "velocity",
        )
        if t > 0:
            with torch.no_grad():
                p = star(x_t.detach().to(torch.float64).cpu(), t)
            frame["ideal"] = {
                "x0_pred": points(p.x0),
                "eps": points(p.eps),
                "score": score_field(lambda x, tt: star(x.double(), tt).eps, proc, t, FIELD_GRID, PLOT_RANGE, "cpu"),
            }
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
    return frame_data(
        st.model,
        st.kind,
        tr.timesteps[k],
        tr.x[k],
        tr.x0_pred[k],
        tr.eps_pred[k],
        label=st.condition,
        cfg_scale=st.cfg_scale,
        ideal=st.ideal,
        paths=paths,
        index=k,
        num_frames=len(tr),
    )


def _keep(session, stored: StoredTrajectory) -> None:
    """Make ``stored`` the session's trajectory and delete the previous one's files (gradio serves its own copy;
    keep one of each per session)."""
    previous, session.trajectory = session.trajectory, stored
    for old_file in (previous.gif_path, previous.data_path) if previous is not None else ():
        if old_file:
            Path(old_file).unlink(missing_ok=True)


def _pointer(run_id: str, count: int) -> dict:
    """The last message of a run: the player keeps the last live frame on screen until it has fetched the file."""
    return {"v": 1, "id": run_id, "live": False, "file": "trajectory", "count": count}


def _curve_figure(model, t):
    """The schedule strip (any process) with t marked, as a plotly figure."""
    c = player_schedule(model.process, model.cfg.diffusion.noise_schedule)
    key = "flow" if model.process.name == "flow" else model.cfg.diffusion.noise_schedule  # its colour
    curve = {
        "name": key,
        "t": c["t"],
        "abar": c["abar"],
        "noise": c["sigma"],
        "abar_at": solid_at(model.process, t),
        "noise_at": float(model.process.coefficients(t)[1]),
    }
    title = f"{c['name']} · t = {fmt_t(t)} of {c['T']}"
    return make_schedule_marker_figure(curve, time_value(t), title=title, solid=c["solid"])


def build(ctx: AppContext) -> TabLink:
    @user_errors
    def generate(preset, sampler, num_steps, eta, seed, num_samples, class_label, cfg_scale, request: gr.Request):
        """Sample a preset; stream one light player message per STREAM_INTERVAL_S; end with the whole trajectory."""
        session = ctx.store.get(request)
        model, info = ctx.model(preset, session)
        T = model.max_sampling_steps
        sampler = as_choice(sampler, "sampler", solvers_for(model.process))
        steps = as_int(num_steps, "num_steps", 1, T)
        nfe = SOLVERS[sampler].nfe(steps)
        eta = as_float(eta, "eta", 0.0, 1.0) if "eta" in SOLVERS[sampler].options else 0.0
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        limit = LIMITS.points if info.kind == "points" else LIMITS.images
        n = as_int(num_samples, "num_samples", 1, limit)
        label = parse_label(class_label, info)
        cfg = (
            as_float(cfg_scale, "cfg_scale", 0.0, LIMITS.cfg_scale)
            if (info.conditional and label is not None)
            else None
        )
        condition = condition_for(label, n, info.num_classes)
        clip = info.sample_kwargs.get("clip_x0")
        ideal = ideal_mixture(info, label)
        keep_every = max(1, math.ceil(steps / LIMITS.frames))
        rec = TrajectoryRecorder(keep_every)
        t0 = time.time()
        run_id = f"{int(t0 * 1000)}-{seed}"
        title = f"{info.source} · {sampler}, {steps} steps ({nfe} NFE) · seed {seed} · {n} samples"
        static = player_static(model, info, title, ideal is not None, n)
        base = {
            "preset": preset,
            "sampler": sampler,
            "num_steps": steps,
            "eta": eta,
            "seed": seed,
            "num_samples": n,
            "class_label": label,
            "cfg_scale": cfg,
            "T": T,
            "nfe": nfe,
            "process": model.process.name,
            "prediction_type": model.prediction_type,
        }
        gif_name = f"trajectory-{info.source.replace(' ', '_')}-{seed}-{int(time.time() * 1000)}.gif"
        key = preset_key(
            info.source,
            "generate",
            sampler=sampler,
            num_steps=steps,
            eta=eta,
            seed=seed,
            num_samples=n,
            class_label=label,
            cfg_scale=cfg,
            device=str(model.device),
        )
        hit = ctx.results.get(key)
        if hit is not None:  # an identical request on a preset ran before: its result, in this session's own files
            stored = StoredTrajectory(hit.trajectory, model, info.source, info.kind, label, cfg, hit.paths, ideal)
            stored.gif_path, stored.data_path = hit.write_files(session.workdir, run_id, gif_name)
            _keep(session, stored)
            summary = {**hit.summary, "elapsed_s": round(time.time() - t0, 2), "reused": True}
            yield (
                _pointer(run_id, stored.num_frames),
                reverse_done_text(summary) + "\n\n" + REUSED_TEXT,
                summary,
                stored.gif_path,
                stored.data_path,
            )
            return
        session.progress["reverse"] = "before the first step"
        seq, last, started = 0, -1.0, time.monotonic()
        for step in model.generate_progressive(
            n, condition=condition, seed=seed, sampler=sampler, num_steps=steps, eta=eta, cfg_scale=cfg, clip_x0=clip
        ):
            rec.add(step)
            session.progress["reverse"] = f"at step {step.index + 1} of {steps} (t = {fmt_t(step.t)})"
            now = time.monotonic()
            expected = (now - started) / (step.index + 1) * steps  # the whole run's length, as it goes so far
            if step.index > 0 and now - last < max(STREAM_INTERVAL_S, expected / LIVE_MESSAGES):
                continue
            last = now
            arrays = trajectory_arrays(
                model,
                info.kind,
                [step.t],
                step.x_t[None],
                step.x0_pred[None],
                step.eps_pred[None],
                label=label,
                cfg_scale=cfg,
                ideal=ideal,
            )
            arrays = {k: v[0] for k, v in arrays.items()}
            if info.kind == "images" and seq == 0:
                image_specs(static, {k: v[None] for k, v in arrays.items()})
            label_k = frame_labels(
                [step.t],
                [step.noise_level],
                {k: v[None] for k, v in arrays.items()},
                f"sampling: step {step.index + 1} of {steps} · ",
            )[0]
            msg = live_message(
                run_id,
                info.kind,
                static,
                arrays,
                step.t,
                step.noise_level,
                label_k,
                seq,
                alpha=solid_at(model.process, step.t),
            )
            # the player's own label says which step it shows; the status line is written once, not per message
            text = (
                f"… **sampling** ({sampler}, {steps} steps): the frames stream into the player below, its label "
                "says which step"
                if seq == 0
                else gr.skip()
            )
            seq += 1
            yield msg, text, gr.skip(), gr.skip(), gr.skip()
        traj = rec.finish()
        paths = traj.x[:, : min(NUM_PATHS, n)].clone() if info.kind == "points" else None  # [K, P, 2]
        stored = StoredTrajectory(traj, model, info.source, info.kind, label, cfg, paths, ideal)
        K = len(traj)
        stored.gif_path = str(trajectory_gif(traj, info.kind, session.workdir / gif_name, PLOT_RANGE))
        arrays = trajectory_arrays(
            model,
            info.kind,
            traj.timesteps,
            traj.x,
            traj.x0_pred,
            traj.eps_pred,
            label=label,
            cfg_scale=cfg,
            ideal=ideal,
        )
        if info.kind == "images":
            image_specs(static, arrays)
        final = finite_rows(traj.final)  # NaN or infinite samples are counted, not averaged, and the player says so
        if len(final) < n:
            static["title"] += f" · ⚠ {n - len(final)} of {n} samples are NaN or infinite (not drawn)"
            static["notes"] = [
                *static["notes"],
                f"⚠ {n - len(final)} of {n} samples ended NaN or infinite: the model's "
                "output overflowed. They are not drawn and not in the statistics.",
            ]
        payload = player_payload(
            run_id,
            info.kind,
            static,
            arrays,
            traj.timesteps,
            traj.noise_levels.tolist(),
            frame_labels(traj.timesteps, traj.noise_levels.tolist(), arrays),
            live=False,
            alpha=[solid_at(model.process, t) for t in traj.timesteps],
        )
        stored.data_path = str(session.workdir / f"trajectory-{run_id}.json")
        payload_text = json.dumps(payload, separators=(",", ":"))
        Path(stored.data_path).write_text(payload_text)
        _keep(session, stored)
        summary = {
            **base,
            "status": "done",
            "step": steps,
            "t": 0,
            "num_frames": K,
            "frame": K - 1,
            "elapsed_s": round(time.time() - t0, 2),
            "nonfinite_samples": n - len(final),
            "sample_mean": final.mean(0).flatten()[:4].tolist() if len(final) else None,
            "sample_std": float(final.std()) if len(final) >= 2 else None,
            "reused": False,
        }
        d = ctx.mmd2_to_data(info, final, label, 500, 123)
        if d is not None:
            summary["mmd2_to_data"] = d
        session.progress["reverse"] = "after the last step"
        if key is not None:
            run = FinishedRun(traj, paths, payload, len(payload_text), Path(stored.gif_path).read_bytes(), summary)
            ctx.results.put(key, run, run.nbytes())
        yield _pointer(run_id, K), reverse_done_text(summary), summary, stored.gif_path, stored.data_path

    @user_errors
    def show_frame(frame_index, request: gr.Request):
        """Draw frame ``frame_index`` of this session's last trajectory as a plotly figure (for API users)."""
        session = ctx.store.get(request)
        st = session.trajectory
        if st is None:
            raise gr.Error("frame_index: no trajectory yet: press Generate first", print_exception=False)
        k = as_int(frame_index, "frame_index", 0, st.num_frames - 1)
        t = st.trajectory.timesteps[k]
        summary = {
            "preset": st.source,
            "frame": k,
            "num_frames": st.num_frames,
            "t": time_value(t),
            "sigma_t": float(st.trajectory.noise_levels[k]),
        }
        return make_frame_figure(_stored_frame(st, k)), _curve_figure(st.model, t), summary

    def stop(request: gr.Request):
        where = ctx.store.get(request).progress.get("reverse")
        return stopped_text("reverse", where), {"status": "stopped", "at": where}

    def preset_updates(preset, request) -> dict | str:
        """The controls for the chosen model (labels, sample limit, CFG default, step limit) and its description."""
        try:
            model, info = ctx.model(preset, ctx.store.get(request))
        except gr.Error as e:
            return f"⚠ {e.message}"
        images = info.kind == "images"
        desc = f"**{preset}**: {info.description}  \n*{process_text(model)}*"
        name, k = default_solver(model, info)
        return {
            label: gr.update(choices=label_choices(info), value=default_label(info), interactive=info.conditional),
            n: gr.update(value=16 if images else 500, maximum=LIMITS.images if images else LIMITS.points),
            cfg: gr.update(value=info.sample_kwargs.get("cfg_scale", 1.0), interactive=info.conditional),
            sampler: gr.update(choices=solver_choices(model), value=name),
            steps: gr.update(maximum=model.max_sampling_steps, value=k),
            eta: gr.update(interactive=name == "ddim"),
            sampler_md: solver_help(model),
            preset_md: desc,
        }

    def on_preset(preset, request: gr.Request):
        up = preset_updates(preset, request)
        return {preset_md: up} if isinstance(up, str) else up

    def on_sampler(preset, name, request: gr.Request):
        """A solver's own sensible step count, never more than the chosen model can take."""
        try:
            model, _ = ctx.model(preset, ctx.store.get(request))
            get_solver(name, model.process)
        except (gr.Error, ValueError):
            return gr.skip(), gr.skip()
        return gr.update(value=steps_for(model, name)), gr.update(value=0.0, interactive=name == "ddim")

    def apply_link(q: LinkParams, request) -> dict:
        out = {}
        p = q.choice("preset", ctx.sources())
        if p is not None:
            up = preset_updates(p, request)
            if isinstance(up, str):
                q.problems.append(f"preset: {up}")
            else:
                out.update(up)
                out[preset] = p
        s = q.choice("sampler", list(SAMPLERS))  # the run checks that it serves the model's process
        if s is not None:
            out[sampler], out[eta] = s, gr.update(interactive=s == "ddim")
        return q.fill(
            out,
            [
                ("steps", steps, "int", 1, LIMITS.train_T),
                ("seed", seed, "int", 0, LIMITS.seed),
                ("n", n, "int", 1, LIMITS.points),
                ("eta", eta, "float", 0.0, 1.0),
                ("cfg", cfg, "float", 0.0, LIMITS.cfg_scale),
                ("label", label, "text", 8),
            ],
        )

    first = adiff.presets.load_preset("moons", ctx.device)  # the tab opens on moons: its solvers and defaults
    first_info = ctx.model("moons", None)[1]
    first_solver, first_steps = default_solver(first, first_info)
    with gr.Tab("3 · Reverse diffusion", id="reverse"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_classes=["adiff-controls-col"]):
                preset = dropdown(
                    "preset",
                    choices=ctx.sources(),
                    value="moons",
                    label="Model",
                    info="a shipped preset, or the model from the Train tab",
                    elem_id="rev-preset",
                )
                preset_md = gr.Markdown(
                    f"**moons**: {preset_spec('moons').description}  \n*{process_text(first)}*",
                    elem_id="rev-preset-info",
                )
                sampler = radio(
                    "sampler",
                    choices=solver_choices(first),
                    value=first_solver,
                    label="Solver",
                    info="the solvers of this model's process; NFE = network calls",
                    elem_id="rev-sampler",
                )
                with gr.Accordion("What each solver does", open=False):
                    sampler_md = gr.Markdown(solver_help(first), elem_id="rev-sampler-help")
                steps = slider(
                    "num_steps",
                    bounds=(1, LIMITS.train_T),
                    minimum=1,
                    maximum=first.max_sampling_steps,
                    value=first_steps,
                    step=1,
                    label="Steps",
                    info="solver steps (DDPM uses all T; few-step solvers 10–25)",
                    elem_id="rev-steps",
                )
                eta = slider(
                    "eta",
                    minimum=0.0,
                    maximum=1.0,
                    value=0.0,
                    step=0.05,
                    label="η (DDIM)",
                    info="σ = η √((1−ᾱ_s)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_s): 0 deterministic, 1 like DDPM",
                    interactive=first_solver == "ddim",
                    elem_id="rev-eta",
                )
                with gr.Row():
                    seed = number(
                        "seed",
                        value=0,
                        minimum=0,
                        maximum=LIMITS.seed,
                        precision=0,
                        label="Seed",
                        info="x_T ~ N(0, I) from this seed",
                        elem_id="rev-seed",
                    )
                    n = number(
                        "num_samples",
                        value=500,
                        minimum=1,
                        maximum=LIMITS.points,
                        precision=0,
                        label="Samples",
                        info=f"≤ {LIMITS.points} points, ≤ {LIMITS.images} images",
                        elem_id="rev-n",
                    )
                with gr.Group():
                    label = dropdown(
                        "class_label",
                        choices=["any"],
                        value="any",
                        label="Class",
                        info="conditional models: y (any = unconditional, each = 0, 1, 2, …)",
                        interactive=False,
                        allow_custom_value=True,
                        elem_id="rev-label",
                    )
                    cfg = slider(
                        "cfg_scale",
                        minimum=0.0,
                        maximum=LIMITS.cfg_scale,
                        value=1.0,
                        step=0.1,
                        label="CFG scale w",
                        info="ε = ε(∅) + w (ε(y) − ε(∅))",
                        interactive=False,
                        elem_id="rev-cfg",
                    )
                with gr.Row(elem_classes=["adiff-actions"]):
                    gen_btn = gr.Button("Generate", variant="primary", elem_id="rev-generate")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="rev-stop")
            with gr.Column(scale=3, elem_classes=["adiff-result-col"]):
                status = gr.Markdown(
                    "Press **Generate**: the frames stream in as the sampler runs.",
                    elem_id="rev-status",
                    elem_classes=["adiff-status"],
                )
                player = player_component(
                    "rev-player",
                    empty_text="Press Generate: the frames stream in here as the "
                    "sampler runs; then drag the frame slider or press ▶ Play.",
                )
                try_this("reverse")
                with gr.Accordion("Details: the numbers (JSON) and the GIF", open=False):
                    summary = gr.JSON(label="status", elem_id="rev-summary", max_height=320)
                    gif = gr.File(label="Trajectory as an animated GIF", elem_id="rev-gif", height=90)
                    data_file = gr.File(
                        label="Trajectory as JSON (what the player plays; decode with components.player)",
                        elem_id="rev-trajectory",
                        height=90,
                    )
                link_btn, link_box = link_row("reverse")
        with gr.Row(visible=False):  # the /frame endpoint: a plotly figure of any stored frame, for API users
            frame = number("frame_index", value=0, minimum=0, maximum=LIMITS.frames, precision=0, label="Frame")
            frame_plot, frame_curve, frame_summary = gr.Plot(), gr.Plot(), gr.JSON()

        gen_event = gen_btn.click(
            generate,
            [preset, sampler, steps, eta, seed, n, label, cfg],
            [player, status, summary, gif, data_file],
            api_name="generate",
            show_progress_on=[status],
            **ctx.heavy,
        )
        # In the browser at once: the player draws nothing more of this run and the status says so; then the server
        # cancels the run, and its own message (at which step) follows.
        stop_btn.click(None, None, status, js=STOP_JS, cancels=[gen_event], api_visibility="private").then(
            stop, None, [status, summary], api_name="generate_stop", **ctx.instant
        )
        frame.change(show_frame, frame, [frame_plot, frame_curve, frame_summary], api_name="frame", **ctx.light)
        data_file.change(None, data_file, None, js=LOAD_JS, api_visibility="private")
        preset.input(
            on_preset,
            preset,
            [label, n, cfg, sampler, steps, eta, sampler_md, preset_md],
            api_visibility="private",
            **ctx.light,
        )
        sampler.input(on_sampler, [preset, sampler], [steps, eta], api_visibility="private", **ctx.light)
    fields = {
        "preset": preset,
        "sampler": sampler,
        "steps": steps,
        "eta": eta,
        "seed": seed,
        "n": n,
        "label": label,
        "cfg": cfg,
    }
    return TabLink("reverse", fields, apply_link, link_btn, link_box, [preset_md, sampler_md])
