"""Tab 4, compare: the same x_T through two choices side by side (two solvers, two step counts, or two models of
the same data, e.g. the VP moons preset and the rectified-flow moons preset).

Both runs start from the same noise: a model draws x_T first from its seeded generator, so the same seed and the
same data shape give the same points (the summary checks it: ``same_x_T``).  They advance in lockstep by the share
of their own run done, so while they stream both rows fill at the same pace; afterwards one slider scrubs both in
the browser (frame k of the slider is the same fraction of each run).  Per side: NFE, the MMD² of the samples to
fresh data, and path straightness (mean path length / mean displacement over every step, adiff.eval.metrics), and
a quality-against-NFE curve (cached per preset in assets/presets/NAME.nfe.json, computed for other models).
API: /compare (streams player messages, like /generate)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch

import adiff.presets
from adiff.data import PLOT_RANGE
from adiff.eval.metrics import StraightnessMeter
from adiff.eval.quality import quality_against_nfe
from adiff.samplers import SOLVERS, TrajectoryRecorder, solvers_for

from .arrays import tile_array
from .choices import condition_for, default_label, default_solver, label_choices, parse_label, solver_choices, steps_for
from .compare_figures import make_quality_figure
from .context import AppContext, ModelInfo
from .fields import as_choice, as_int, user_errors
from .help import try_this
from .limits import LIMITS
from .player import live_message, player_component, player_payload
from .plotting import COLORS, LABELS
from .summaries import describe_mmd2, fmt, stopped_text
from .trajectory_view import NUM_PATHS, fmt_t, image_specs
from .validation import dropdown, number, radio, slider

__all__ = ["build", "cached_curve", "SIDES"]

SIDES = ("a", "b")
STREAM_INTERVAL_S = 0.25
LIVE_MESSAGES = 12
CURVE_NFES = (5, 10, 20, 50)  # the on-demand curve of a model without a cached one (CURVE_N points each)
CURVE_N = 1000
MMD_N = 1000  # samples (and fresh data points) per MMD^2
INTRO = """### Compare: the same noise, two choices
Both sides start from **the same x_T** (same seed, same points) and differ in one choice: the solver, the number of
steps, or the model (e.g. **moons**, a variance-preserving ε model, against **moons-flow**, a rectified flow).  One
slider scrubs both.  Per side: **NFE** (network calls: the cost), **MMD²** to fresh data (≈ 0: as good as data), and
**path straightness** (mean path length / mean displacement: 1 = straight lines).  What lets a solver take few steps
is a velocity that changes slowly along each path, which a bending path can still have: the curves below show it."""
LOAD_JS = """(f) => { const p = document.querySelector('#cmp-player .adiff-player')?.adiffPlayer;
  if (p && f && f.url) p.load(f.url); }"""
STOP_JS = """() => { document.querySelector('#cmp-player .adiff-player')?.adiffPlayer?.freeze();
  return '■ **stopped**: no more frames are drawn; the server is ending the run…'; }"""


def cached_curve(source: str) -> dict | None:
    """A preset's quality-against-NFE curve as shipped (None when there is none)."""
    return adiff.presets.preset_curve(source)


@dataclass
class Side:
    """One choice and its run: the model, solver and steps; the frames kept, path straightness, timing."""

    key: str
    source: str
    model: Any
    info: ModelInfo
    solver: str
    steps: int
    rec: TrajectoryRecorder = field(init=False)
    meter: StraightnessMeter = field(default_factory=StraightnessMeter)
    done: int = 0
    last: Any = None
    seconds: float = 0.0

    def __post_init__(self):
        self.rec = TrajectoryRecorder(max(1, math.ceil(self.steps / LIMITS.frames)))

    @property
    def nfe(self) -> int:
        return SOLVERS[self.solver].nfe(self.steps)

    @property
    def name(self) -> str:
        return f"{self.key.upper()} · {self.source} · {self.solver} {self.steps} steps ({self.nfe} NFE)"

    def run(self, n: int, label, seed: int) -> Iterator:
        clip = self.info.sample_kwargs.get("clip_x0")
        cfg = self.info.sample_kwargs.get("cfg_scale", 1.0) if (self.info.conditional and label is not None) else None
        return self.model.generate_progressive(
            n,
            condition=condition_for(label, n, self.info.num_classes),
            seed=seed,
            sampler=self.solver,
            num_steps=self.steps,
            cfg_scale=cfg,
            clip_x0=clip,
        )

    def add(self, step) -> None:
        self.rec.add(step)
        if self.last is None:
            self.meter.add(step.x_t)
        self.meter.add(step.x_prev)
        self.last, self.done = step, self.done + 1


def _static(sides: list[Side], kind: str, n: int) -> dict:
    """Two rows of panels (x_t with a few particle paths, and x̂₀), one per side; no schedule strip (the sides may
    run on different processes: each frame label says where each side is)."""
    layers, panels = {}, []
    dot = 2.4 if n > 800 else 3.0
    for s in sides:
        k = s.key
        if kind == "images":
            layers[f"{k}_x_t"] = {"type": "image", "lo": -1.0, "hi": 1.0, "cmap": "gray", "h": None, "w": None}
            layers[f"{k}_x0"] = {"type": "image", "lo": -1.0, "hi": 1.0, "cmap": "gray", "h": None, "w": None}
            row = [{"title": f"{s.name}: x_t", "color": COLORS["x_t"], "layers": [f"{k}_x_t"]}]
        else:
            layers[f"{k}_x_t"] = {"type": "points", "color": COLORS["x_t"], "size": dot, "opacity": 0.6}
            layers[f"{k}_paths"] = {
                "type": "paths",
                "of": f"{k}_x_t",
                "count": min(NUM_PATHS, n),
                "color": COLORS["path"],
                "head": COLORS["x_t"],
            }
            layers[f"{k}_x0"] = {"type": "points", "color": COLORS["x0_pred"], "size": dot, "opacity": 0.75}
            row = [{"title": f"{s.name}: x_t and paths", "color": COLORS["x_t"], "layers": [f"{k}_x_t", f"{k}_paths"]}]
        row.append({"title": f"{s.key.upper()} · predicted x̂₀", "color": COLORS["x0_pred"], "layers": [f"{k}_x0"]})
        panels.append(row)
    legend = (
        []
        if kind == "images"
        else [
            [LABELS["x_t"], COLORS["x_t"]],
            [LABELS["x0_pred"], COLORS["x0_pred"]],
            ["particle paths", COLORS["path"]],
        ]
    )
    return {
        "title": " vs ".join(s.name for s in sides),
        "range": list(PLOT_RANGE),
        "panels": panels,
        "layers": layers,
        "schedule": None,
        "legend": legend,
        "notes": [
            "Both rows start from the same x_T. Frame k of the slider is the same share of each run: a "
            "10-step run shows its step 5 where a 100-step run shows its step 50."
        ],
    }


def _arrays(kind: str, key: str, x: torch.Tensor, x0: torch.Tensor) -> dict:
    """Frames [K, B, ...] of one side -> its layers."""
    if kind == "images":
        return {f"{key}_x_t": np.stack([tile_array(f) for f in x]), f"{key}_x0": np.stack([tile_array(f) for f in x0])}
    return {f"{key}_x_t": x.detach().float().cpu().numpy(), f"{key}_x0": x0.detach().float().cpu().numpy()}


def _where(s: Side, t, sigma) -> str:
    return f"{s.key.upper()}: step {s.done} of {s.steps}, t = {fmt_t(t)}, σ = {float(sigma):.2f}"


def _aligned(trajs: list, K: int) -> list[list[int]]:
    """For each side, the frame it shows at each of the K shared slider positions (the same share of its run)."""
    return [[round(k * (len(tr) - 1) / max(1, K - 1)) for k in range(K)] for tr in trajs]


def _curves(ctx: AppContext, sides: list[Side], label) -> list[dict]:
    """The quality-against-NFE curve of each distinct model: a preset's shipped one, else computed here for the
    chosen solvers (CURVE_N points, CURVE_NFES) when the model's data are known 2-D points."""
    out, seen = [], set()
    for s in sides:
        if s.source in seen or s.info.kind != "points" or s.info.dataset is None:
            continue
        seen.add(s.source)
        curve = cached_curve(s.source)
        if curve is None:
            seeds = iter(range(7000, 8000))
            ref = lambda m, d=s.info.dataset: ctx.dataset(d, m, next(seeds))[0]  # noqa: E731  (fresh data per call)
            names = sorted({x.solver for x in sides if x.source == s.source})
            cond = condition_for(label, CURVE_N, s.info.num_classes)
            curve = quality_against_nfe(
                s.model,
                ref,
                names,
                CURVE_NFES,
                CURVE_N,
                seed=0,
                condition=cond,
                clip_x0=s.info.sample_kwargs.get("clip_x0"),
            )
        out.append({"source": s.source, **curve})
    return out


def _table(sides: list[Side], stats: list[dict]) -> str:
    rows = [
        "| side | model | solver | steps | NFE | MMD² to data | straightness | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, st in zip(sides, stats):
        rows.append(
            f"| **{s.key.upper()}** | {s.source} | {s.solver} | {s.steps} | {st['nfe']} | "
            f"{fmt(st.get('mmd2_to_data'), 2)} | {fmt(st['straightness'], 3)} | {st['seconds']:.1f} s |"
        )
    lines = ["\n".join(rows)]
    for s, st in zip(sides, stats):
        if st.get("mmd2_to_data") is not None:
            lines.append(f"**{s.key.upper()}**: {describe_mmd2(st['mmd2_to_data'])}")
    a, b = stats
    if abs(a["straightness"] - b["straightness"]) > 0.02:
        straighter = "A" if a["straightness"] < b["straightness"] else "B"
        lines.append(
            f"**{straighter}**'s paths are straighter ({fmt(min(a['straightness'], b['straightness']), 3)} "
            f"against {fmt(max(a['straightness'], b['straightness']), 3)}; 1 = straight lines)."
        )
    return "\n\n".join(lines)


def build(ctx: AppContext) -> None:
    sources = ctx.sources()

    @user_errors
    def compare(
        model_a, solver_a, steps_a, model_b, solver_b, steps_b, seed, num_samples, class_label, request: gr.Request
    ):
        """Run both choices from the same x_T, streaming both rows; end with the whole pair for the shared slider."""
        session = ctx.store.get(request)
        sides = []
        for key, src, solver, steps in (("a", model_a, solver_a, steps_a), ("b", model_b, solver_b, steps_b)):
            model, info = ctx.model(src, session, f"model_{key}")
            solver = as_choice(solver, f"solver_{key}", solvers_for(model.process))
            steps = as_int(steps, f"steps_{key}", 1, model.max_sampling_steps)
            sides.append(Side(key, info.source, model, info, solver, steps))
        a, b = sides
        if tuple(a.model.data_shape) != tuple(b.model.data_shape):
            raise gr.Error(
                f"model_b: {b.source!r} makes data of shape {list(b.model.data_shape)}, {a.source!r} of "
                f"{list(a.model.data_shape)}; compare two models of the same data",
                print_exception=False,
            )
        if a.info.num_classes != b.info.num_classes:
            raise gr.Error(
                f"model_b: {b.source!r} has {b.info.num_classes or 'no'} classes, {a.source!r} "
                f"{a.info.num_classes or 'none'}; compare two models of the same data",
                print_exception=False,
            )
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        kind = a.info.kind
        n = as_int(num_samples, "num_samples", 1, LIMITS.points if kind == "points" else LIMITS.images)
        label = parse_label(class_label, a.info)
        static = _static(sides, kind, n)
        run_id = f"cmp-{int(time.time() * 1000)}-{seed}"
        runs = [s.run(n, label, seed) for s in sides]
        session.progress["compare"] = "before the first step"
        seq, last, started = 0, -1.0, time.monotonic()
        total = a.steps + b.steps
        while a.done < a.steps or b.done < b.steps:
            i = min((i for i in (0, 1) if sides[i].done < sides[i].steps), key=lambda i: sides[i].done / sides[i].steps)
            t0 = time.monotonic()
            sides[i].add(next(runs[i]))
            sides[i].seconds += time.monotonic() - t0
            session.progress["compare"] = f"A at step {a.done} of {a.steps}, B at step {b.done} of {b.steps}"
            now = time.monotonic()
            expected = (now - started) / (a.done + b.done) * total
            if (
                a.last is None
                or b.last is None
                or (seq > 0 and now - last < max(STREAM_INTERVAL_S, expected / LIVE_MESSAGES))
            ):
                continue
            last = now
            arrays = {}
            for s in sides:
                arrays.update(
                    {k: v[0] for k, v in _arrays(kind, s.key, s.last.x_prev[None], s.last.x0_pred[None]).items()}
                )
            if kind == "images" and seq == 0:
                image_specs(static, {k: v[None] for k, v in arrays.items()})
            text = " · ".join(_where(s, s.last.t_prev, s.model.process.coefficients(s.last.t_prev)[1]) for s in sides)
            yield (
                live_message(run_id, kind, static, arrays, seq, 0.0, "sampling: " + text, seq),
                "… **sampling both sides**: the rows fill at the same pace" if seq == 0 else gr.skip(),
                gr.skip(),
                gr.skip(),
                gr.skip(),
            )
            seq += 1
        trajs = [s.rec.finish() for s in sides]
        same = bool(torch.equal(trajs[0].x[0], trajs[1].x[0]))
        K = max(len(tr) for tr in trajs)
        idx = _aligned(trajs, K)
        arrays, labels = {}, []
        for s, tr, ix in zip(sides, trajs, idx):
            arrays.update(_arrays(kind, s.key, tr.x[ix], tr.x0_pred[ix]))
        if kind == "images":
            image_specs(static, arrays)
        for k in range(K):
            parts = []
            for s, tr, ix in zip(sides, trajs, idx):
                j = ix[k]
                parts.append(f"{s.key.upper()}: t = {fmt_t(tr.timesteps[j])}, σ = {float(tr.noise_levels[j]):.2f}")
            labels.append(" · ".join(parts) + f" · frame {k + 1} of {K}")
        payload = player_payload(run_id, kind, static, arrays, list(range(K)), [0.0] * K, labels, live=False)
        data_path = session.workdir / f"compare-{run_id}.json"
        Path(data_path).write_text(json.dumps(payload, separators=(",", ":")))
        old = session.progress.get("compare_file")
        if old and old != str(data_path):
            Path(old).unlink(missing_ok=True)
        session.progress["compare_file"] = str(data_path)
        stats = []
        for s, tr in zip(sides, trajs):
            final = tr.final
            stats.append(
                {
                    "model": s.source,
                    "process": s.model.process.name,
                    "prediction_type": s.model.prediction_type,
                    "solver": s.solver,
                    "steps": s.steps,
                    "nfe": tr.nfe or s.nfe,
                    "seconds": round(s.seconds, 2),
                    "straightness": s.meter.value,
                    "mmd2_to_data": ctx.mmd2_to_data(s.info, final, label, MMD_N, 321),
                    "sample_std": float(final.std()),
                    "finite": bool(torch.isfinite(final).all()),
                }
            )
        curves = _curves(ctx, sides, label)
        fig = make_quality_figure(
            curves,
            [(s.key.upper(), s.source, s.solver, st["nfe"], st.get("mmd2_to_data")) for s, st in zip(sides, stats)],
        )
        summary = {
            "status": "done",
            "seed": seed,
            "num_samples": n,
            "class_label": label,
            "same_x_T": same,
            "num_frames": K,
            "a": stats[0],
            "b": stats[1],
            "curves": [{"model": c["source"], "points": len(c["rows"])} for c in curves],
        }
        session.progress["compare"] = "after the last step"
        pointer = {"v": 1, "id": run_id, "live": False, "file": "compare", "count": K}
        note = "Both sides started from the same x_T." if same else "⚠ the two sides did not start from the same x_T."
        yield pointer, f"{note}\n\n{_table(sides, stats)}", summary, str(data_path), fig

    def stop(request: gr.Request):
        where = ctx.store.get(request).progress.get("compare")
        return stopped_text("compare", where), {"status": "stopped", "at": where}

    def on_model(key):
        @user_errors
        def fn(src, request: gr.Request):
            """Solver choices, default solver and step count for the model chosen on one side; side A also sets the
            class choices and the sample count."""
            model, info = ctx.model(src, ctx.store.get(request), f"model_{key}")
            name, k = default_solver(model, info)
            up = [
                gr.update(choices=solver_choices(model), value=name),
                gr.update(maximum=model.max_sampling_steps, value=k),
            ]
            if key == "a":
                up.append(
                    gr.update(choices=label_choices(info), value=default_label(info), interactive=info.conditional)
                )
                up.append(gr.update(value=16 if info.kind == "images" else 500))
            return up

        return fn

    def on_solver(src, name, request: gr.Request):
        try:
            model, _ = ctx.model(src, ctx.store.get(request))
            return gr.update(value=steps_for(model, name)) if name in solvers_for(model.process) else gr.skip()
        except gr.Error:
            return gr.skip()

    # Both sides open on moons (VP): every solver is a valid choice for the server's check of the radio's value; a flow
    # chosen later narrows the menu in the browser to its solvers, a subset.  Default: DDIM-100 against DPM-Solver++-10.
    moons = adiff.presets.load_preset("moons", ctx.device)
    with gr.Tab("4 · Compare", id="compare"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_classes=["adiff-controls-col"]):
                controls = {}
                for key, src, model, solver, steps in (
                    ("a", "moons", moons, "ddim", 100),
                    ("b", "moons", moons, "dpmpp_2m", 10),
                ):
                    with gr.Group():
                        m = dropdown(
                            f"model_{key}",
                            choices=sources,
                            value=src,
                            label=f"{key.upper()}: model",
                            elem_id=f"cmp-model-{key}",
                        )
                        s = radio(
                            f"solver_{key}",
                            choices=solver_choices(model),
                            value=solver,
                            label=f"{key.upper()}: solver",
                            elem_id=f"cmp-solver-{key}",
                        )
                        k = slider(
                            f"steps_{key}",
                            bounds=(1, LIMITS.train_T),
                            minimum=1,
                            maximum=model.max_sampling_steps,
                            value=steps,
                            step=1,
                            label=f"{key.upper()}: steps",
                            elem_id=f"cmp-steps-{key}",
                        )
                    controls[key] = (m, s, k)
                with gr.Row():
                    seed = number(
                        "seed",
                        value=0,
                        minimum=0,
                        maximum=LIMITS.seed,
                        precision=0,
                        label="Seed",
                        info="the shared x_T",
                        elem_id="cmp-seed",
                    )
                    n = number(
                        "num_samples",
                        value=500,
                        minimum=1,
                        maximum=LIMITS.points,
                        precision=0,
                        label="Samples",
                        elem_id="cmp-n",
                    )
                label = dropdown(
                    "class_label",
                    choices=["any"],
                    value="any",
                    label="Class",
                    interactive=False,
                    allow_custom_value=True,
                    elem_id="cmp-label",
                )
                with gr.Row(elem_classes=["adiff-actions"]):
                    go_btn = gr.Button("Compare", variant="primary", elem_id="cmp-go")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="cmp-stop")
            with gr.Column(scale=3, elem_classes=["adiff-result-col"]):
                status = gr.Markdown(
                    "Press **Compare**: both rows stream in, then one slider scrubs both.",
                    elem_id="cmp-status",
                    elem_classes=["adiff-status"],
                )
                player = player_component(
                    "cmp-player",
                    empty_text="Press Compare: side A (top) and side B (bottom) start from the same noise.",
                )
                curve = gr.Plot(
                    label="Quality against NFE", show_label=False, elem_id="cmp-curve", elem_classes=["adiff-figure"]
                )
                try_this("compare")
                with gr.Accordion("Details: the numbers (JSON)", open=False):
                    summary = gr.JSON(label="status", elem_id="cmp-summary", max_height=320)
                    data_file = gr.File(
                        label="Both trajectories as JSON (what the player plays)", elem_id="cmp-trajectory", height=90
                    )
        (ma, sa, ka), (mb, sb, kb) = controls["a"], controls["b"]
        event = go_btn.click(
            compare,
            [ma, sa, ka, mb, sb, kb, seed, n, label],
            [player, status, summary, data_file, curve],
            api_name="compare",
            show_progress_on=[status],
            **ctx.heavy,
        )
        stop_btn.click(None, None, status, js=STOP_JS, cancels=[event], api_visibility="private").then(
            stop, None, [status, summary], api_name="compare_stop", **ctx.instant
        )
        data_file.change(None, data_file, None, js=LOAD_JS, api_visibility="private")
        ma.input(on_model("a"), ma, [sa, ka, label, n], api_visibility="private", **ctx.light)
        mb.input(on_model("b"), mb, [sb, kb], api_visibility="private", **ctx.light)
        sa.input(on_solver, [ma, sa], ka, api_visibility="private", **ctx.light)
        sb.input(on_solver, [mb, sb], kb, api_visibility="private", **ctx.light)
    return None
