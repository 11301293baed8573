"""Tab 9, train: the widgets and their wiring (handlers.py, checkpoints.py, own_data.py and follow.py do the work;
view.py and figures.py draw it).

Train a model from scratch on a chosen dataset (built-in, or drawn or uploaded in the own-data row: own_layout.py),
process, prediction type and size, with a live loss curve, periodic samples and, for 2-D data, the film (film.py) in
the player; save it or load one; straighten a flow (reflow_layout.py).  The result is this session's "my model" in
the other tabs.  API: /train (streaming), /train_stop, /save_model, /load_model (streaming: loaded, then its preview),
/use_drawing, /use_images, /reflow, /reflow_stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..columns import MAIN, controls_column, intro, lesson_column, result_column, tab_row
from ..context import AppContext
from ..controls import RunStop
from ..fields import named
from ..lesson import render
from ..limits import LIMITS
from ..links import LinkParams, TabLink, link_row
from ..player import player_component
from ..plotting import make_message_figure
from ..wiring import EVENT, RUNNING, endpoint
from . import checkpoints, follow, handlers, own_layout, reflow_layout, view
from .checkpoints import Loaded, LoadRequest, Saved
from .figures import make_loss_figure, make_samples_figure
from .handlers import SIZES, TRAIN_DATASETS, Ended, Progress, TrainRequest
from .lessons import LESSONS
from .shared import OWN_DATASETS

__all__ = ["build"]

PREFIX = "tr"
INTRO = f"""### Train a model from scratch
Pick the **process**: VP, x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε at t = 1..T (Ho et al. 2020), or **rectified flow**,
x_t = (1 − t) x₀ + t ε with t ∈ [0, 1] (Liu et al. 2022).  And what the network predicts: the noise ε
(**L = E |ε − ε_θ(x_t, t)|²**, Ho et al. 2020, eq. 14), the clean x₀, v = α ε − σ x₀ (Salimans & Ho 2022) or, for
the flow, the velocity ε − x₀ (Lipman et al. 2023), one random t per example.  Samples ({LIMITS.preview_steps} steps
of the solver *my model* starts with in the other tabs, fixed seed) are drawn as it learns; for 2-D data, a **film**
of the field and samples forming.  The model becomes **my model** in the other tabs; save it, or load one you saved."""
SAMPLES_TEXT = "Samples appear here as the model learns."
FILM_TEXT = (
    "Train on 2-D data: a film of the learned field and of the samples, a frame every few steps, plays here "
    "(it grows while the model trains; drag the slider or press ▶ Play)."
)
LINK_KEYS = ("dataset", "process", "prediction", "schedule", "T", "size", "conditional", "steps", "bs", "lr", "seed")
LOADING_TEXT = "Loading the checkpoint: its samples appear here."


@dataclass
class _Controls:
    """The settings of a run, by their API field (also the deep link's widgets)."""

    dataset: gr.Dropdown
    recipe: gr.Markdown  # what the dataset's settings were measured to do ("my images")
    process: gr.Radio
    prediction: gr.Radio
    schedule: gr.Radio
    T: gr.Number
    note: gr.Markdown
    size: gr.Radio
    conditional: gr.Checkbox
    steps: gr.Number
    bs: gr.Number
    lr: gr.Number
    seed: gr.Number

    @classmethod
    def build(cls) -> _Controls:
        dataset = gr.Dropdown(
            choices=TRAIN_DATASETS + OWN_DATASETS,
            value="moons",
            label="Dataset",
            info="built-in, or your own (draw or upload below)",
            elem_id="tr-dataset",
            elem_classes=named("dataset"),
        )
        recipe = gr.Markdown(visible=False, elem_id="tr-recipe")
        # the settings the lessons name first (dataset, process, size, conditional, steps), one per line: a row of
        # radios would squeeze them in the narrow column
        process = _radio(
            "process",
            "tr-process",
            view.PROCESS_CHOICES,
            "vp",
            "Process",
            "VP: noise added in T steps · flow: a straight path x₀ → ε",
        )
        size = _radio(
            "model_size",
            "tr-size",
            list(SIZES),
            "small",
            "Model size",
            "tiny 32×2 · small 64×3 · medium 96×4 (width × transformer blocks)",
        )
        conditional = gr.Checkbox(
            False,
            label="Conditional on the label",
            elem_id="tr-cond",
            info="ε_θ(x_t, t, y), with label dropout for CFG",
            elem_classes=named("conditional"),
        )
        with gr.Row():
            info = f"≤ {LIMITS.train_steps}"
            steps = _number("num_steps", "tr-steps", 1500, 1, LIMITS.train_steps, "Training steps", info=info)
            bs = _number("batch_size", "tr-bs", 256, 8, LIMITS.train_batch, "Batch size")
        prediction = _radio(
            "prediction_type",
            "tr-prediction",
            [(view.PREDICTION_LABELS[k], k) for k in view.PREDICTION_TYPES],
            "epsilon",
            "Prediction type",
            "what the network outputs",
        )
        schedule = _radio("schedule", "tr-schedule", view.SCHEDULES, "linear", "Schedule")
        T = _number("num_diffusion_steps", "tr-T", 1000, 10, LIMITS.train_T, "T", info="diffusion steps")
        note = gr.Markdown(view.schedule_note("vp", "linear", 1000), elem_id="tr-schedule-note")
        with gr.Row():
            lr = gr.Number(
                value=2e-3,
                minimum=1e-6,
                maximum=0.05,
                label="Learning rate",
                info="AdamW, warm-up then cosine decay",
                elem_id="tr-lr",
                elem_classes=named("learning_rate"),
            )
            seed = _number("seed", "tr-seed", 0, 0, LIMITS.seed, "Seed")
        return cls(dataset, recipe, process, prediction, schedule, T, note, size, conditional, steps, bs, lr, seed)

    def inputs(self) -> list:
        """/train's inputs, in its API order."""
        return [
            self.dataset,
            self.schedule,
            self.T,
            self.size,
            self.conditional,
            self.steps,
            self.bs,
            self.lr,
            self.seed,
            self.process,
            self.prediction,
        ]

    def dataset_updates(self, d: follow.DatasetDefaults | None):
        """What a dataset's defaults do to the controls (choosing it in the page, or a deep link to it): a recipe
        ("my images") sets every setting and says what it was measured to do.  None: nothing changes."""
        if d is None:
            return gr.skip()
        out = {
            self.conditional: gr.update(interactive=d.labelled, value=d.conditional),
            self.bs: gr.update(value=d.batch_size),
            self.lr: gr.update(value=d.learning_rate),
            self.recipe: gr.update(value=d.note, visible=bool(d.note)),
        }
        r = d.recipe
        if r is not None:
            out.update({self.process: r.process, self.prediction: r.prediction, self.schedule: r.schedule})
            out.update({self.T: r.T, self.size: r.size, self.steps: r.steps})
        return out

    def dataset_outputs(self) -> list:
        """Every control a dataset's defaults may set."""
        c = self
        return [c.conditional, c.bs, c.lr, c.recipe, c.process, c.prediction, c.schedule, c.T, c.size, c.steps]


def _number(field: str, elem_id: str, value, lo, hi, label: str, info: str | None = None) -> gr.Number:
    """An integer box named after its API field."""
    return gr.Number(
        value=value,
        minimum=lo,
        maximum=hi,
        precision=0,
        label=label,
        info=info,
        elem_id=elem_id,
        elem_classes=named(field),
    )


def _radio(field: str, elem_id: str, choices: list, value, label: str, info: str | None = None) -> gr.Radio:
    """A radio named after its API field."""
    return gr.Radio(choices=choices, value=value, label=label, info=info, elem_id=elem_id, elem_classes=named(field))


# ---------------------------------------------------------------------------------------------- render
def _render_train(out: Progress | Ended):
    """(loss curve, samples, film, status): the latest samples figure and film in every message, not gr.skip() (see
    wiring.py)."""
    if isinstance(out, Ended):
        return gr.skip(), gr.skip(), gr.skip(), out.status
    samples = out.figure if out.figure is not None else make_message_figure(SAMPLES_TEXT)
    film = out.film if out.film is not None else gr.skip()
    return make_loss_figure(out.history), samples, film, out.status


def _render_load(out: Loaded | None):
    """(samples, status); None: a preview step (a placeholder, not gr.skip(); Stop cancels the job there)."""
    if out is None:
        return make_message_figure(LOADING_TEXT), RUNNING
    return (make_samples_figure(out.samples) if out.samples else make_message_figure(SAMPLES_TEXT)), out.status


def _render_save(out: Saved):
    return out.path, out.status


def _render_diffusion(out: follow.DiffusionChoice):
    """(prediction type, schedule, T, note)."""
    return gr.update(**out.prediction), gr.update(visible=out.vp), gr.update(visible=out.vp), out.note


# ---------------------------------------------------------------------------------------------- build
def build(ctx: AppContext) -> TabLink:
    with gr.Tab("9 · Train", id="train"):
        with tab_row():
            with controls_column():
                c = _Controls.build()
                run = RunStop.build(PREFIX, "Train", run_id="train")
                with gr.Accordion("Save / load a model", open=False):
                    save_btn = gr.Button("Save my model (.safetensors)", elem_id="tr-save")
                    saved = gr.File(label="Download", elem_id="tr-saved", height=90)
                    upload = gr.File(
                        label=f"Load a model (.safetensors, ≤ {LIMITS.upload_bytes // 2**20} MB)",
                        file_types=[".safetensors"],
                        type="filepath",
                        elem_id="tr-upload",
                        height=140,
                        elem_classes=named("model_file"),
                    )
                straighten = reflow_layout.Section.build()
            with result_column():
                status_md = gr.Markdown(
                    "Press **Train**: the loss curve and a few samples appear as the model learns.",
                    elem_id="tr-status-text",
                    elem_classes=["adiff-status"],
                )
                with gr.Row(elem_classes=[MAIN]):
                    loss_plot = gr.Plot(
                        make_loss_figure({}),
                        label="Loss",
                        show_label=False,
                        elem_id="tr-loss",
                        elem_classes=["adiff-figure"],
                    )
                    samples_plot = gr.Plot(
                        make_message_figure(SAMPLES_TEXT),
                        label="Samples",
                        show_label=False,
                        elem_id="tr-samples",
                        elem_classes=["adiff-figure"],
                    )
                film = player_component("tr-film", empty_text=FILM_TEXT)
                with gr.Accordion("Details: the numbers (JSON)", open=False):
                    summary = gr.JSON(label="status", elem_id="tr-status", max_height=400)
                link_btn, link_box = link_row("train")
            with lesson_column():
                intro(INTRO, "train")
                render("train", LESSONS)
        own_layout.build(ctx, c.dataset)

    train_ev = run.click(
        status_md,
        endpoint(ctx, TrainRequest.parse, handlers.train, _render_train),
        c.inputs(),
        [loss_plot, samples_plot, film, summary],
        api_name="train",
        **EVENT,
        **ctx.heavy,
    )
    # On page load and on every change: only the prediction types that serve the process, the schedule and T only
    # for VP, and the note on x_T (no trigger list: gr.on then also runs when the page loads).
    gr.on(
        None,
        endpoint(ctx, follow.read, follow.diffusion_changed, _render_diffusion),
        [c.process, c.prediction, c.schedule, c.T],
        [c.prediction, c.schedule, c.T, c.note],
        api_visibility="private",
        trigger_mode="always_last",
        **EVENT,
        **ctx.instant,
    )
    save_btn.click(
        endpoint(ctx, None, checkpoints.save_model, _render_save),
        None,
        [saved, summary],
        api_name="save_model",
        **ctx.light,
    )
    # loading and previewing an upload is a heavy job: the same queue and slots as sampling, and Stop cancels it
    load_ev = upload.upload(
        endpoint(ctx, LoadRequest.parse, checkpoints.load_model, _render_load),
        upload,
        [samples_plot, summary],
        api_name="load_model",
        **EVENT,
        **ctx.heavy,
    )
    # Cancel first, then write the status: a frame already in flight from the stream cannot overwrite "stopped".
    run.stop.click(None, None, None, cancels=[train_ev, load_ev], api_visibility="private").then(
        endpoint(ctx, None, handlers.stop, name="train_stop"), None, summary, api_name="train_stop", **ctx.instant
    )
    # A dataset picked in the page brings its defaults (on input: a deep link's own values stay); own data brings
    # them when it becomes the dataset, which the page does when the data is taken (a change nobody typed).
    for trigger, read in ((c.dataset.input, follow.read_picked), (c.dataset.change, follow.read_taken)):
        trigger(
            endpoint(ctx, read, follow.dataset_changed, c.dataset_updates),
            c.dataset,
            c.dataset_outputs(),
            api_visibility="private",
            **EVENT,
            **ctx.instant,
        )
    straighten.wire(ctx, c.seed, loss_plot, summary)
    summary.change(None, summary, status_md, js=view.STATUS_JS, api_visibility="private")

    def apply_link(q: LinkParams, request) -> dict:
        """A link's values, checked as the page's own events check them; a dataset brings its defaults first."""
        out = {}
        d = q.choice("dataset", TRAIN_DATASETS)
        if d is not None:
            out.update(c.dataset_updates(follow.dataset_defaults(d)))
            out[c.dataset] = d
        return q.fill(
            out,
            [
                ("process", c.process, "choice", handlers.PROCESSES),
                ("prediction", c.prediction, "choice", view.PREDICTION_TYPES),
                ("schedule", c.schedule, "choice", view.SCHEDULES),
                ("size", c.size, "choice", list(SIZES)),
                ("T", c.T, "int", 10, LIMITS.train_T),
                ("steps", c.steps, "int", 1, LIMITS.train_steps),
                ("bs", c.bs, "int", 8, LIMITS.train_batch),
                ("seed", c.seed, "int", 0, LIMITS.seed),
                ("lr", c.lr, "float", 1e-6, 0.05),
                ("conditional", c.conditional, "bool"),
            ],
        )

    fields = {k: getattr(c, k) for k in LINK_KEYS}
    return TabLink("train", fields, apply_link, link_btn, link_box, extra_outputs=[c.recipe])
