"""Control groups shared by several tabs (A1111's ``Toprow`` idea): the model picker, the solver controls, the
class/CFG group, the seed/count row and the run/stop buttons.  Each is a small class that builds its widgets (element
ids from a prefix: ``rev-preset``, ``gd-seed``, ...) and says how they follow a model: ``updates_for(model, info)``
-> {component: gr.update}.  ``components/follow.py`` merges the groups of a tab for one model, so choosing a model in the
page and opening a deep link go through the same code.

Widgets are plain Gradio components: their values are checked by each endpoint's ``parse()`` (components/fields.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from adiff.samplers import SOLVERS, solvers_for

from .choices import default_label, default_solver, label_choices, solver_choices, solver_help, steps_for
from .context import AppContext, ModelInfo
from .fields import named
from .limits import LIMITS
from .trajectory_view import process_text

__all__ = [
    "recurrence_slider",
    "ModelPicker",
    "SolverControls",
    "ClassCFG",
    "SeedCount",
    "RunStop",
    "QUEUED_TEXT",
    "FAILED_TEXT",
    "describe_model",
    "takes_option",
]


def takes_option(solver: str, option: str) -> bool:
    """Whether a solver has the keyword option (e.g. DDIM's "eta"), from the registry."""
    s = SOLVERS.get(solver)
    return s is not None and option in s.option_names


def describe_model(name: str, model, info: ModelInfo) -> str:
    """The line under the model picker: the model's description and its process."""

    return f"**{name}**: {info.description}  \n*{process_text(model)}*"


@dataclass
class ModelPicker:
    """The model dropdown (a preset or "my model") and the description line under it."""

    dropdown: gr.Dropdown
    about: gr.Markdown | None
    field: str = "preset"  # the API field it fills (errors name it)

    @classmethod
    def build(
        cls,
        ctx: AppContext,
        prefix: str,
        value: str = "moons",
        label: str = "Model",
        info: str | None = "a shipped preset, or the model from the Train tab",
        describe: bool = True,
        field: str = "preset",
        choices: Sequence[str] | None = None,
    ) -> ModelPicker:
        """``choices``: the models this tab offers (default: every source, ``ctx.sources()``)."""
        dropdown = gr.Dropdown(
            choices=list(choices) if choices is not None else ctx.sources(),
            value=value,
            label=label,
            info=info,
            elem_id=f"{prefix}-preset",
            elem_classes=named(field),
        )
        about = None
        if describe:
            model, minfo = ctx.model(value, None)
            about = gr.Markdown(describe_model(value, model, minfo), elem_id=f"{prefix}-preset-info")
        return cls(dropdown, about, field)

    def updates_for(self, model, info: ModelInfo) -> dict:
        return {self.about: describe_model(info.source, model, info)} if self.about is not None else {}

    def outputs(self) -> list:
        return [self.about] if self.about is not None else []


@dataclass
class SolverControls:
    """The solver radio (the solvers of the model's process, with their NFE per step), the step slider, DDIM's η and
    a closed "what each solver does" section."""

    solver: gr.Radio
    steps: gr.Slider
    eta: gr.Slider | None
    help: gr.Markdown
    prefer: tuple[str, int] | None = None  # the tab's own (solver, steps) where the model's process offers it

    @staticmethod
    def choice(model, info: ModelInfo, prefer: tuple[str, int] | None = None) -> tuple[str, int]:
        """The (solver, steps) a model starts with here: ``prefer`` where its process has that solver, else the
        model's default (components/choices.py, the one table)."""
        if prefer is not None and prefer[0] in solvers_for(model.process):
            return prefer[0], min(int(prefer[1]), model.max_sampling_steps)
        return default_solver(model, info)

    @classmethod
    def build(
        cls,
        model,
        info: ModelInfo,
        prefix: str,
        eta: bool = True,
        open_help: bool = False,
        fields: tuple[str, str] = ("sampler", "num_steps"),
        prefer: tuple[str, int] | None = None,
    ) -> SolverControls:
        """``fields``: the API fields of the solver and the steps (errors and the page's clamp note name them);
        ``prefer``: the tab's own (solver, steps), used wherever the model's process offers that solver."""
        name, k = cls.choice(model, info, prefer)
        solver = gr.Radio(
            choices=solver_choices(model),
            value=name,
            label="Solver",
            info="the solvers of this model's process; NFE = network calls",
            elem_id=f"{prefix}-sampler",
            elem_classes=named(fields[0]),
        )
        with gr.Accordion("What each solver does", open=open_help):
            help_md = gr.Markdown(solver_help(model), elem_id=f"{prefix}-sampler-help")
        steps = gr.Slider(
            minimum=1,
            maximum=model.max_sampling_steps,
            value=k,
            step=1,
            label="Steps",
            info="solver steps (DDPM uses all T; few-step solvers 10–25)",
            elem_id=f"{prefix}-steps",
            elem_classes=named(fields[1]),
        )
        eta_slider = None
        if eta:
            eta_slider = gr.Slider(
                minimum=0.0,
                maximum=1.0,
                value=0.0,
                step=0.05,
                label="η (DDIM)",
                info="σ = η √((1−ᾱ_s)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_s): 0 deterministic, 1 like DDPM",
                interactive=takes_option(name, "eta"),
                elem_id=f"{prefix}-eta",
                elem_classes=named("eta"),
            )
        return cls(solver, steps, eta_slider, help_md, prefer)

    def updates_for(self, model, info: ModelInfo) -> dict:
        name, k = self.choice(model, info, self.prefer)
        out = {
            self.solver: gr.update(choices=solver_choices(model), value=name),
            self.steps: gr.update(maximum=model.max_sampling_steps, value=k),
            self.help: solver_help(model),
        }
        if self.eta is not None:
            out[self.eta] = gr.update(value=0.0, interactive=takes_option(name, "eta"))
        return out

    def outputs(self) -> list:
        return [c for c in (self.solver, self.steps, self.help, self.eta) if c is not None]

    def on_solver(self, model, name: str) -> dict:
        """A solver's own sensible step count (never more than the model takes) and whether η applies."""
        out = {self.steps: gr.update(value=steps_for(model, name))}
        if self.eta is not None:
            out[self.eta] = gr.update(value=0.0, interactive=takes_option(name, "eta"))
        return out


@dataclass
class ClassCFG:
    """The class dropdown (any, each, 0..K-1 for conditional models) and the classifier-free guidance scale."""

    label: gr.Dropdown
    cfg: gr.Slider | None

    @classmethod
    def build(cls, prefix: str, info: ModelInfo | None = None, cfg: bool = True) -> ClassCFG:
        """``cfg`` False: the class alone (the model's preset CFG scale applies)."""
        with gr.Group():
            label = gr.Dropdown(
                choices=label_choices(info) if info else ["any"],
                value=default_label(info) if info else "any",
                label="Class",
                info="conditional models: y (any = unconditional, each = 0, 1, 2, …)",
                interactive=bool(info and info.conditional),
                allow_custom_value=True,
                elem_id=f"{prefix}-label",
                elem_classes=named("class_label"),
            )
            if not cfg:
                return cls(label, None)
            cfg = gr.Slider(
                minimum=0.0,
                maximum=LIMITS.cfg_scale,
                value=info.sample_kwargs.get("cfg_scale", 1.0) if info else 1.0,
                step=0.1,
                label="CFG scale w",
                info="ε = ε(∅) + w (ε(y) − ε(∅))",
                interactive=bool(info and info.conditional),
                elem_id=f"{prefix}-cfg",
                elem_classes=named("cfg_scale"),
            )
        return cls(label, cfg)

    def updates_for(self, model, info: ModelInfo) -> dict:
        out = {
            self.label: gr.update(choices=label_choices(info), value=default_label(info), interactive=info.conditional)
        }
        if self.cfg is not None:
            out[self.cfg] = gr.update(value=info.sample_kwargs.get("cfg_scale", 1.0), interactive=info.conditional)
        return out

    def outputs(self) -> list:
        return [c for c in (self.label, self.cfg) if c is not None]


@dataclass
class SeedCount:
    """The seed and the number of samples (its limit and default follow the model's kind: points or images)."""

    seed: gr.Number
    count: gr.Number
    points: int = 500  # default sample counts
    images: int = 16

    @classmethod
    def build(cls, prefix: str, points: int = 500, images: int = 16, seed_info: str = "x_T ~ N(0, I) from this seed"):
        with gr.Row():
            seed = gr.Number(
                value=0,
                minimum=0,
                maximum=LIMITS.seed,
                precision=0,
                label="Seed",
                info=seed_info,
                elem_id=f"{prefix}-seed",
                elem_classes=named("seed"),
            )
            count = gr.Number(
                value=points,
                minimum=1,
                maximum=LIMITS.points,
                precision=0,
                label="Samples",
                info=f"≤ {LIMITS.points} points, ≤ {LIMITS.images} images",
                elem_id=f"{prefix}-n",
                elem_classes=named("num_samples"),
            )
        return cls(seed, count, points, images)

    def updates_for(self, model, info: ModelInfo) -> dict:
        images = info.kind == "images"
        return {
            self.count: gr.update(
                value=self.images if images else self.points, maximum=LIMITS.images if images else LIMITS.points
            )
        }

    def outputs(self) -> list:
        return [self.count]


QUEUED_TEXT = (
    "… **queued**: this run starts when the server has a free slot.  \n"
    "Its place in the queue and the time so far (and the expected wait, once runs like it have finished) show at the right."
)
FAILED_TEXT = "✗ **not run**: the message in the corner says why."


@dataclass
class RunStop:
    """The main button and its Stop (and any extra buttons), in the sticky action row."""

    run: gr.Button
    stop: gr.Button
    extra: tuple = ()

    @classmethod
    def build(cls, prefix: str, run_label: str, run_id: str = "generate", extra: Sequence[tuple[str, str]] = ()):
        with gr.Row(elem_classes=["adiff-actions"]):
            run = gr.Button(run_label, variant="primary", elem_id=f"{prefix}-{run_id}")
            stop = gr.Button("Stop", variant="stop", elem_id=f"{prefix}-stop")
            more = tuple(gr.Button(text, elem_id=f"{prefix}-{eid}") for text, eid in extra)
        return cls(run, stop, more)

    def updates_for(self, model, info: ModelInfo) -> dict:
        return {}

    def outputs(self) -> list:
        return []

    def click(self, status, fn, inputs, outputs, **kwargs):
        """The run button's event, its progress (the queue position and expected wait, from Gradio) on ``status``.
        On a press, the page writes QUEUED_TEXT there at once (js, no server call: no older "✓ done" under a run that
        waits; a button's listeners run in order, each to its end, so this one comes first); a run that failed with
        the line still "queued" (refused before its first message) writes FAILED_TEXT.  Returns the run's event."""
        self.run.click(None, None, status, js=f"() => {json.dumps(QUEUED_TEXT)}", api_visibility="private")
        event = self.run.click(fn, inputs, outputs, show_progress_on=[status], **kwargs)
        # a run cancelled by Stop "fails" too: only a line that still says "queued" changes (Stop writes its own)
        failed = f"(s) => (s === {json.dumps(QUEUED_TEXT)} ? {json.dumps(FAILED_TEXT)} : s)"
        event.failure(None, status, status, js=failed, api_visibility="private")
        return event


def recurrence_slider(prefix: str) -> gr.Slider:
    """The recurrence (RePaint's resampling: each step repeated k times, re-noised in between), as guidance and
    completion both offer it."""
    return gr.Slider(
        minimum=1,
        maximum=LIMITS.recurrence,
        value=1,
        step=1,
        label="Recurrence",
        info="repeat each step k times, re-noising in between (RePaint's resampling)",
        elem_id=f"{prefix}-recurrence",
        elem_classes=named("recurrence"),
    )
