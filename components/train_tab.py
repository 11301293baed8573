"""Tab 6, train: a model from scratch on a chosen dataset, process (VP with a schedule and T, or rectified flow),
prediction type and size, with a live loss curve and periodic samples; save it (download a .safetensors checkpoint) or load one (upload, validated).  The result is this
session's "my model" in the other tabs.  API: /train (streaming), /save_model, /load_model."""

from __future__ import annotations

import math
import time
from pathlib import Path

import gradio as gr
import torch

from adiff import DiffusionModel
from adiff.data import DATA_SHAPES, DATASETS, IMAGE_DATASETS, NUM_CLASSES, PLOT_RANGE, TOY_2D_DATASETS
from adiff.diffusion.parameterization import DEFAULT_PREDICTION_TYPE, PROCESS_PREDICTION_TYPES
from adiff.diffusion.schedules import make_schedule
from adiff.nn.budget import checkpoint_config
from adiff.nn.checkpoints import CheckpointError, open_checkpoint
from adiff.samplers.loop import DEFAULT_SAMPLER

from . import own_data
from .arrays import count_nonfinite, points, tile_images
from .context import MY_MODEL, AppContext
from .fields import as_bool, as_choice, as_float, as_int, field_error, user_errors
from .figures import make_loss_figure, make_message_figure, make_samples_figure
from .help import try_this
from .limits import LIMITS
from .links import LinkParams, TabLink, link_row
from .validation import dropdown, number, radio

__all__ = ["build", "model_config", "schedule_note", "prediction_update", "SIZES", "PROCESS_CHOICES"]

TRAIN_DATASETS = list(TOY_2D_DATASETS) + list(IMAGE_DATASETS)
SCHEDULES = ["linear", "cosine", "sigmoid"]
# name -> (embedding_dim, hidden_dim, num_layers)
SIZES = {"tiny": (32, 32, 2), "small": (64, 64, 3), "medium": (64, 96, 4)}
PROCESS_CHOICES = [("VP (DDPM schedule)", "vp"), ("rectified flow", "flow")]
PREDICTION_LABELS = {
    "epsilon": "ε: the noise",
    "sample": "x₀: the clean sample",
    "v_prediction": "v = α ε − σ x₀",
    "velocity": "velocity ε − x₀",
}
PREDICTION_TYPES = list(PREDICTION_LABELS)
PREVIEW_STEPS = 25
# The loss of each prediction type (adiff.diffusion.losses): (y-axis label, formula shown as the figure's title).
LOSS_LABELS = {
    "epsilon": ("ε-MSE", "L = E |ε − ε_θ(x_t, t)|²"),  # Ho et al. 2020, eq. 14
    "sample": ("x₀-MSE · min(SNR, 5)", "L = E min(SNR, 5) |x₀ − x̂₀_θ(x_t, t)|²"),  # Hang et al. 2023 (Min-SNR-5)
    "v_prediction": ("v-MSE", "L = E |α ε − σ x₀ − v_θ(x_t, t)|²"),  # Salimans & Ho 2022, section 4
    "velocity": ("velocity MSE", "L = E |(ε − x₀) − v_θ(x_t, t)|²"),  # Lipman et al. 2023, eq. 23; Liu et al. 2022
}
INTRO = """### Train a model from scratch
Pick the **process**: VP, x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε at t = 1..T (Ho et al. 2020), or **rectified flow**,
x_t = (1 − t) x₀ + t ε with t ∈ [0, 1] (Liu et al. 2022).  And what the network predicts: the noise ε
(**L = E |ε − ε_θ(x_t, t)|²**, Ho et al. 2020, eq. 14), the clean x₀, v = α ε − σ x₀ (Salimans & Ho 2022) or, for
the flow, the velocity ε − x₀ (Lipman et al. 2023), one random t per example.  Samples (25 steps: DDIM for VP,
Euler for the flow, fixed seed) are drawn as it learns.  The trained model becomes **my model** in the other tabs;
save it, or load one you saved."""


def prediction_update(process, current=None) -> dict:
    """The prediction-type choices that serve ``process`` (PROCESS_PREDICTION_TYPES); keeps ``current`` if it is one."""
    allowed = PROCESS_PREDICTION_TYPES.get(process, PROCESS_PREDICTION_TYPES["vp"])
    value = current if current in allowed else DEFAULT_PREDICTION_TYPE.get(process, "epsilon")
    return gr.update(choices=[(PREDICTION_LABELS[k], k) for k in allowed], value=value)


def schedule_note(process, schedule, T) -> str:
    """What x_T is for the chosen process, schedule and T: √ᾱ_T, and for the linear schedule its 1000 / T rescaling
    (Nichol & Dhariwal 2021, improved-diffusion's get_named_beta_schedule) against Ho et al.'s unscaled range."""
    if process == "flow":
        return (
            "**Rectified flow**: continuous time t ∈ [0, 1] and α(1) = 0 exactly, so x₁ is pure noise at any "
            "number of sampling steps: no T and no schedule to choose."
        )
    try:
        T = as_int(T, "num_diffusion_steps", 10, LIMITS.train_T)
        schedule = as_choice(schedule, "schedule", SCHEDULES)
    except gr.Error as e:
        return f"✗ {e.message}"
    sch = make_schedule(schedule, T)
    root = math.sqrt(float(sch.alphas_cumprod[-1]))
    text = f"**√ᾱ_T = {root:.2g}** at T = {T} ({schedule}): x_T {'is practically pure noise' if root < 0.05 else 'still carries the data'}."
    if schedule == "linear":
        plain = math.sqrt(float(make_schedule("linear", T, beta_start=1e-4, beta_end=0.02).alphas_cumprod[-1]))
        text += (
            f" The linear β run from {sch.beta_start:.2g} to {sch.beta_end:.2g}: Ho et al.'s 1e-4..0.02, "
            f"rescaled by 1000/T"
            + (f" (unscaled, √ᾱ_T would be {plain:.2g}: x_T would still show the data)." if T != 1000 else ".")
        )
    return text + "".join(f"\n\n⚠ {w}" for w in sch.warnings())


def model_config(
    dataset: str,
    schedule: str,
    T: int,
    size: str,
    conditional: bool,
    device: str,
    shape: tuple | None = None,
    num_classes: int | None = None,
    process: str = "vp",
    prediction_type: str | None = None,
) -> dict:
    """The config of a fresh model for a built-in dataset, or for data of ``shape`` with ``num_classes`` (own data).
    A flow has no T and no schedule (adiff.nn.config.DiffusionConfig)."""
    emb, hidden, layers = SIZES[size]
    shape = list(shape or DATA_SHAPES[dataset])
    images = len(shape) == 3
    cfg = {
        "model_type": "conditional" if conditional else "unconditional",
        "embedding_dim": emb,
        "hidden_dim": hidden,
        "num_layers": layers,
        "num_heads": 4,
        "data_shape": shape,
        "device": device,
        "process": process,
        "prediction_type": prediction_type or DEFAULT_PREDICTION_TYPE[process],
    }
    if process == "vp":
        cfg.update(num_diffusion_steps=T, noise_schedule=schedule)
    if images:
        cfg["patch_size"] = 2 if shape[-1] <= 8 else 4  # 8x8: 16 tokens, 16x16: 16, 32x32: 64
    if conditional:
        cfg["num_classes"] = num_classes or NUM_CLASSES[dataset]
    return cfg


def _preview_steps(model: DiffusionModel, kind: str, dataset: str | None, data_pts, step: int):
    """A few samples of the current model (25 steps of DDIM for VP, of Euler for a flow; fixed seed): yields None
    after each sampler step (a cancelled job stops there), then the figure's data."""
    n = LIMITS.preview_images if kind == "images" else LIMITS.preview_points
    cond = None
    if model.is_conditional:
        cond = torch.arange(n) % model.num_classes
    sampler = "ddim" if model.process.name == "vp" else DEFAULT_SAMPLER[model.process.name]
    steps = min(LIMITS.preview_steps, model.max_sampling_steps)
    last = None
    for last in model.generate_progressive(
        n, condition=cond, seed=1234, sampler=sampler, num_steps=steps, clip_x0=1.0 if kind == "images" else None
    ):
        yield None
    x = last.x_prev
    bad = count_nonfinite(x)
    title = f"samples after {step} steps ({sampler} {steps}, seed 1234)"
    if bad:
        title += f"  ·  ⚠ {bad} of {n} samples are NaN or infinite (not drawn)"
    if kind == "images":
        yield {"kind": "images", "z": tile_images(x), "title": title, "nonfinite": bad}
        return
    yield {
        "kind": "points",
        "points": points(x),
        "data": data_pts,
        "title": title,
        "range": PLOT_RANGE,
        "nonfinite": bad,
    }


def _preview(model: DiffusionModel, kind: str, dataset: str | None, data_pts, step: int) -> dict:
    *_, data = _preview_steps(model, kind, dataset, data_pts, step)
    return data


def _kind(model: DiffusionModel) -> str:
    return "images" if len(model.data_shape) == 3 else "points"


# The status JSON in plain words, formatted in the browser (no request): training, stopped, saved or loaded.
STATUS_JS = """(s) => {
  if (!s) return "";
  const p = (v) => (typeof v === "number" ? v.toPrecision(3) : "n/a");
  if (s.status === "training" || s.status === "done")
    return (s.status === "done" ? "✓ **done**" : "… **training**") + ": step " + s.step + " of " + s.of +
      " · loss " + p(s.loss_smooth) + " (smoothed) · " + s.steps_per_s + " steps/s · " + s.elapsed_s + " s · " +
      s.parameters + " parameters" + (s.status === "done" ? ". Your model is now **my model** in the other tabs." : "");
  if (s.status === "stopped") return "■ **stopped** at step " + s.step + ": the model so far is **my model** in the other tabs.";
  if (s.saved) return "✓ saved **" + s.saved + "** (" + Math.round(s.bytes / 1024) + " KB): download it from Save / load.";
  if (s.loaded) return "✓ loaded **" + s.loaded + "** (" + s.parameters + " parameters, " + s.training_step +
      " training steps, data: " + (s.dataset || "unknown") + "): it is now **my model** in the other tabs.";
  return "";
}"""


def build(ctx: AppContext) -> TabLink:
    @user_errors
    def train(
        dataset,
        schedule,
        num_diffusion_steps,
        model_size,
        conditional,
        num_steps,
        batch_size,
        learning_rate,
        seed,
        process="vp",
        prediction_type=None,
        request: gr.Request = None,
    ):
        """Train a fresh model, streaming the loss and periodic samples; it becomes this session's 'my model'."""
        dataset = as_choice(dataset, "dataset", TRAIN_DATASETS + own_data.OWN_DATASETS)
        session = ctx.store.get(request)
        own = own_data.own_data(session, dataset) if dataset in own_data.OWN_DATASETS else None
        num_classes = own.num_classes if own is not None else NUM_CLASSES.get(dataset)
        process = as_choice("vp" if process is None else process, "process", [v for _, v in PROCESS_CHOICES])
        allowed = list(PROCESS_PREDICTION_TYPES[process])
        prediction = DEFAULT_PREDICTION_TYPE[process] if prediction_type is None else prediction_type
        if prediction not in allowed:
            known = "" if prediction in PREDICTION_TYPES else f" (the types are {PREDICTION_TYPES})"
            raise field_error(
                "prediction_type", f"{prediction!r} does not serve the {process} process{known}; use one of {allowed}"
            )
        if process == "vp":  # a flow has no schedule and no T: the (hidden) widgets' values are not used
            schedule = as_choice(schedule, "schedule", SCHEDULES)
            T = as_int(num_diffusion_steps, "num_diffusion_steps", 10, LIMITS.train_T)
        size = as_choice(model_size, "model_size", list(SIZES))
        conditional = as_bool(conditional, "conditional")
        if conditional and not num_classes:
            raise field_error("conditional", f"dataset {dataset!r} has no labels; untick conditional")
        steps = as_int(num_steps, "num_steps", 1, LIMITS.train_steps)
        bs = as_int(batch_size, "batch_size", 8, LIMITS.train_batch)
        lr = as_float(learning_rate, "learning_rate", 1e-6, 0.05)
        seed = as_int(seed, "seed", 0, LIMITS.seed)
        rid = session.new_run("train")
        if own is not None:
            x, labels = own.x, own.labels
        else:
            x, labels = ctx.dataset(dataset, 5000 if dataset in IMAGE_DATASETS else 20_000, seed)
        images = x.dim() == 4
        kind = "images" if images else "points"
        with torch.random.fork_rng(devices=[]):  # the initial weights come from the seed; the global RNG is restored
            torch.manual_seed(seed)
            model = DiffusionModel(
                model_config(
                    dataset,
                    schedule,
                    T if process == "vp" else None,
                    size,
                    conditional,
                    ctx.device,
                    tuple(x.shape[1:]),
                    num_classes,
                    process,
                    prediction,
                )
            )
        model.setup_training({"learning_rate": lr, "scheduler_steps": steps, "warmup_steps": min(200, steps // 10)})
        data_pts = None if images else points(x[:1000])
        # Own data is not a built-in dataset: the other tabs then use no reference data for "my model".
        how = f"{schedule}, T = {T}" if process == "vp" else "rectified flow"
        info = {
            "dataset": None if own is not None else dataset,
            "description": f"trained here on {own.description if own else dataset} ({size}, {how}, predicts "
            f"{prediction})",
            "sample_kwargs": {"clip_x0": 1.0} if images else {},
            "steps": 0,
        }
        with session.lock:
            session.trained, session.trained_info = model, info
        ylabel, formula = LOSS_LABELS[prediction]
        hist = {"step": [], "loss": [], "loss_smooth": [], "ylabel": ylabel, "title": formula}
        session.train_history = hist
        every = max(1, math.ceil(steps / 100))
        preview_every = max(every, math.ceil(steps / 6))
        t0 = time.time()
        sample_fig = make_message_figure("Samples appear here as the model learns.")
        it = model.train_progressive(x, labels if conditional else None, num_steps=steps, batch_size=bs, seed=seed)
        smooth, weight = 0.0, 0.0
        while True:
            with session.lock:  # never held across a yield (Stop takes over between steps)
                if not session.is_current("train", rid) or session.trained is not model:
                    return
                ev = next(it, None)
            if ev is None:
                break
            smooth, weight = 0.98 * smooth + 0.02 * ev.loss, 0.98 * weight + 0.02  # bias-corrected EMA
            smoothed = smooth / weight
            info["steps"] = ev.step
            last = ev.step == steps
            if ev.step % every == 0 or last:
                hist["step"].append(ev.step)
                hist["loss"].append(ev.loss)
                hist["loss_smooth"].append(smoothed)
            if ev.step % every == 0 or last:
                if ev.step % preview_every == 0 or last:
                    with session.lock:
                        sample_fig = make_samples_figure(_preview(model, kind, dataset, data_pts, ev.step))
                el = time.time() - t0
                status = {
                    "status": "done" if last else "training",
                    "step": ev.step,
                    "of": steps,
                    "loss": ev.loss,
                    "loss_smooth": smoothed,
                    "lr": ev.lr,
                    "grad_norm": ev.grad_norm,
                    "steps_per_s": round(ev.step / max(el, 1e-9), 1),
                    "elapsed_s": round(el, 1),
                    "parameters": model.num_parameters,
                    "dataset": dataset,
                    "process": process,
                    "prediction_type": prediction,
                    "use_as": MY_MODEL,
                }
                yield make_loss_figure(hist), sample_fig, status

    def train_stop(request: gr.Request):
        session = ctx.store.get(request)
        session.stop_runs("train")
        return {"status": "stopped", "step": session.trained_info.get("steps", 0) if session.trained else 0}

    @user_errors
    def save_model(request: gr.Request):
        """Write this session's model as a .safetensors checkpoint and return it for download."""
        session = ctx.store.get(request)
        with session.lock:
            model, info = session.trained, dict(session.trained_info)
            if model is None:
                raise gr.Error("model: nothing to save yet: train or load a model first", print_exception=False)
            name = f"adiff-{info.get('dataset') or 'model'}-{info.get('steps', 0)}steps.safetensors"
            path = model.save(session.workdir / name, extra={"dataset": info.get("dataset"), "source": "adiff app"})
        return str(path), {"saved": Path(path).name, "bytes": Path(path).stat().st_size, "dataset": info.get("dataset")}

    @user_errors
    def load_model(model_file, request: gr.Request):
        """Load an uploaded checkpoint as this session's 'my model', then draw a preview (streams its progress; a
        heavy job, cancelled by Stop).  Checked before anything is built: size, header, format, the config and what
        its model would cost (parameters, tokens and FLOPs per sample), tensor names and shapes; then the checksum
        and finite weights."""
        if model_file is None or model_file == "":
            raise gr.Error("model_file: no file was uploaded", print_exception=False)
        path = Path(
            model_file if isinstance(model_file, (str, Path)) else getattr(model_file, "path", model_file["path"])
        )
        if not path.is_file():
            raise gr.Error("model_file: the upload is missing on the server; upload it again", print_exception=False)
        size = path.stat().st_size
        if size > LIMITS.upload_bytes:
            raise gr.Error(
                f"model_file: {size} bytes is over the {LIMITS.upload_bytes} byte limit", print_exception=False
            )
        try:
            ckpt = open_checkpoint(path, name=path.name)  # the header only
            shape = checkpoint_config(ckpt, ctx.device).arch.data_shape  # validated (nested, flat or migrated)
            if not (shape == (2,) or (len(shape) == 3 and shape[0] == 1)):
                raise gr.Error(
                    f"model_file: this app shows 2-D points or one-channel images; the model's data_shape "
                    f"is {list(shape)}",
                    print_exception=False,
                )
            kind = "points" if shape == (2,) else "images"
            model = DiffusionModel.load(ckpt, device=ctx.device, budget=ctx.upload_budget(kind))
        except CheckpointError as e:
            raise gr.Error(f"model_file: {e}", print_exception=False) from None
        model.denoiser.eval()
        ds = (model.metadata or {}).get("dataset")
        ds = ds if isinstance(ds, str) and ds in DATASETS else None
        if ds is not None and tuple(model.data_shape) != tuple(DATA_SHAPES[ds]):
            ds = None
        session = ctx.store.get(request)
        session.stop_runs("train")
        info = {
            "dataset": ds,
            "description": f"loaded from {path.name}",
            "steps": model.training_step,
            "sample_kwargs": {"clip_x0": 1.0} if kind == "images" else {},
        }
        with session.lock:
            session.trained, session.trained_info = model, info
        status = {
            "loaded": path.name,
            "dataset": ds,
            "config": model.cfg.flat(),
            "training_step": model.training_step,
            "parameters": model.num_parameters,
            "use_as": MY_MODEL,
        }
        yield gr.skip(), {**status, "status": "loaded; drawing a preview"}
        for data in _preview_steps(model, kind, ds, None, model.training_step):
            if data is None:
                yield gr.skip(), gr.skip()  # Stop cancels the job here
        yield make_samples_figure(data), {**status, "status": "loaded", "nonfinite_samples": data["nonfinite"]}

    def on_diffusion(process_value, current, schedule_value, T_value):
        vp = process_value != "flow"
        return (
            prediction_update(process_value, current),
            gr.update(visible=vp),
            gr.update(visible=vp),
            schedule_note(process_value, schedule_value, T_value),
        )

    def on_dataset(name):
        has_labels = bool(NUM_CLASSES.get(name)) or name == own_data.OWN_IMAGES  # own images may have class folders
        images = name in IMAGE_DATASETS or name == own_data.OWN_IMAGES
        return (
            gr.update(interactive=has_labels, value=images and has_labels),
            gr.update(value=128 if images else 256),
            gr.update(value=1e-3 if images else 2e-3),
        )

    def apply_link(q: LinkParams, request) -> dict:
        out = {}
        d = q.choice("dataset", TRAIN_DATASETS)
        if d is not None:
            out.update(zip([conditional, bs, lr, dataset], [*on_dataset(d), d]))
        return q.fill(
            out,
            [
                ("process", process, "choice", [v for _, v in PROCESS_CHOICES]),
                ("prediction", prediction, "choice", PREDICTION_TYPES),
                ("schedule", schedule, "choice", SCHEDULES),
                ("size", size, "choice", list(SIZES)),
                ("T", T, "int", 10, LIMITS.train_T),
                ("steps", steps, "int", 1, LIMITS.train_steps),
                ("bs", bs, "int", 8, LIMITS.train_batch),
                ("seed", seed, "int", 0, LIMITS.seed),
                ("lr", lr, "float", 1e-6, 0.05),
                ("conditional", conditional, "bool"),
            ],
        )

    with gr.Tab("7 · Train", id="train"):
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_classes=["adiff-controls-col"]):
                dataset = dropdown(
                    "dataset",
                    choices=TRAIN_DATASETS + own_data.OWN_DATASETS,
                    value="moons",
                    label="Dataset",
                    info="built-in, or your own (draw or upload below)",
                    elem_id="tr-dataset",
                )
                with gr.Row():
                    process = radio(
                        "process",
                        choices=PROCESS_CHOICES,
                        value="vp",
                        label="Process",
                        info="VP: noise added in T steps · flow: a straight path x₀ → ε",
                        elem_id="tr-process",
                    )
                    prediction = radio(
                        "prediction_type",
                        choices=[(PREDICTION_LABELS[k], k) for k in PREDICTION_TYPES],
                        value="epsilon",
                        label="Prediction type",
                        info="what the network outputs",
                        elem_id="tr-prediction",
                    )
                with gr.Row():
                    schedule = radio(
                        "schedule", choices=SCHEDULES, value="linear", label="Schedule", elem_id="tr-schedule"
                    )
                    T = number(
                        "num_diffusion_steps",
                        value=1000,
                        minimum=10,
                        maximum=LIMITS.train_T,
                        precision=0,
                        label="T",
                        info="diffusion steps",
                        elem_id="tr-T",
                    )
                note = gr.Markdown(
                    schedule_note("vp", "linear", 1000),
                    elem_id="tr-schedule-note",
                )
                with gr.Row():
                    size = radio(
                        "model_size",
                        choices=list(SIZES),
                        value="small",
                        label="Model size",
                        info="tiny 32×2 · small 64×3 · medium 96×4 (width × transformer blocks)",
                        elem_id="tr-size",
                    )
                    conditional = gr.Checkbox(
                        False,
                        label="Conditional on the label",
                        elem_id="tr-cond",
                        info="ε_θ(x_t, t, y), with label dropout for CFG",
                    )
                with gr.Row():
                    steps = number(
                        "num_steps",
                        value=1500,
                        minimum=1,
                        maximum=LIMITS.train_steps,
                        precision=0,
                        label="Training steps",
                        info=f"≤ {LIMITS.train_steps}",
                        elem_id="tr-steps",
                    )
                    bs = number(
                        "batch_size",
                        value=256,
                        minimum=8,
                        maximum=LIMITS.train_batch,
                        precision=0,
                        label="Batch size",
                        elem_id="tr-bs",
                    )
                with gr.Row():
                    lr = number(
                        "learning_rate",
                        value=2e-3,
                        minimum=1e-6,
                        maximum=0.05,
                        label="Learning rate",
                        info="AdamW, warm-up then cosine decay",
                        elem_id="tr-lr",
                    )
                    seed = number(
                        "seed", value=0, minimum=0, maximum=LIMITS.seed, precision=0, label="Seed", elem_id="tr-seed"
                    )
                with gr.Row(elem_classes=["adiff-actions"]):
                    train_btn = gr.Button("Train", variant="primary", elem_id="tr-train")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="tr-stop")
                with gr.Accordion("Save / load a model", open=False):
                    save_btn = gr.Button("Save my model (.safetensors)", elem_id="tr-save")
                    saved = gr.File(label="Download", elem_id="tr-saved", height=90)
                    upload = gr.File(
                        label=f"Load a model (.safetensors, ≤ {LIMITS.upload_bytes // 2**20} MB)",
                        file_types=[".safetensors"],
                        type="filepath",
                        elem_id="tr-upload",
                        height=140,
                    )
            with gr.Column(scale=3, elem_classes=["adiff-result-col"]):
                status_md = gr.Markdown(
                    "Press **Train**: the loss curve and a few samples appear as the model learns.",
                    elem_id="tr-status-text",
                    elem_classes=["adiff-status"],
                )
                with gr.Row():
                    loss_plot = gr.Plot(
                        make_loss_figure({}),
                        label="Loss",
                        show_label=False,
                        elem_id="tr-loss",
                        elem_classes=["adiff-figure"],
                    )
                    samples_plot = gr.Plot(
                        make_message_figure("Samples appear here as the model learns."),
                        label="Samples",
                        show_label=False,
                        elem_id="tr-samples",
                        elem_classes=["adiff-figure"],
                    )
                with gr.Accordion("Details: the numbers (JSON)", open=False):
                    summary = gr.JSON(label="status", elem_id="tr-status", max_height=400)
                try_this("train")
                link_btn, link_box = link_row("train")
        own_data.build(ctx, dataset)

        ev = train_btn.click(
            train,
            [dataset, schedule, T, size, conditional, steps, bs, lr, seed, process, prediction],
            [loss_plot, samples_plot, summary],
            api_name="train",
            **ctx.heavy,
        )
        # On page load and on every change: only the prediction types that serve the process, the schedule and T
        # only for VP, and the note on x_T (no trigger list: gr.on then also runs when the page loads).
        gr.on(
            None,
            on_diffusion,
            [process, prediction, schedule, T],
            [prediction, schedule, T, note],
            api_visibility="private",
            trigger_mode="always_last",
            **ctx.instant,
        )
        # Cancel first, then write the status: a frame already in flight from the stream cannot overwrite "stopped".
        save_btn.click(save_model, None, [saved, summary], api_name="save_model", **ctx.light)
        # loading and previewing an upload is a heavy job: the same queue and slots as sampling, and Stop cancels it
        load_ev = upload.upload(load_model, upload, [samples_plot, summary], api_name="load_model", **ctx.heavy)
        stop_btn.click(None, None, None, cancels=[ev, load_ev], api_visibility="private").then(
            train_stop, None, summary, api_name="train_stop", **ctx.instant
        )
        dataset.input(on_dataset, dataset, [conditional, bs, lr], api_visibility="private", **ctx.instant)
        summary.change(None, summary, status_md, js=STATUS_JS, api_visibility="private")
    fields = {
        "dataset": dataset,
        "process": process,
        "prediction": prediction,
        "schedule": schedule,
        "T": T,
        "size": size,
        "conditional": conditional,
        "steps": steps,
        "bs": bs,
        "lr": lr,
        "seed": seed,
    }
    return TabLink("train", fields, apply_link, link_btn, link_box)
