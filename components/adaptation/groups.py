"""Tab 8, adaptation: its own control groups, with the protocol of components/controls.py (``updates_for(model,
info) -> dict``, ``outputs()``), so that choosing a model and opening a deep link go through ``model_updates``.

* ``AdaptSettings``: λ, steps, learning rate, batch size and buffer capacity; their values follow the model's kind
  (handlers.KIND_DEFAULTS).
* ``BufferDisplay``: the buffer as a scatter (2-D models) or a gallery (image models); which one shows follows the kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..context import ModelInfo
from ..fields import named
from ..limits import LIMITS
from ..plotting import make_message_figure
from .handlers import KIND_DEFAULTS, TabDefaults

__all__ = ["AdaptSettings", "BufferDisplay", "number"]


def number(prefix: str, eid: str, field: str, label: str, value, lo, hi, precision: int | None = 0, info=None):
    """A number box for the API field ``field`` (element id ``<prefix>-<eid>``), shown with its limits lo..hi."""
    return gr.Number(
        value=value,
        minimum=lo,
        maximum=hi,
        precision=precision,
        label=label,
        info=info,
        elem_id=f"{prefix}-{eid}",
        elem_classes=named(field),
    )


@dataclass
class AdaptSettings:
    """The tilt λ and the optimiser's settings, starting at the kind's defaults."""

    lam: gr.Slider
    steps: gr.Number
    lr: gr.Number
    bs: gr.Number
    cap: gr.Number

    @classmethod
    def build(cls, prefix: str, start: TabDefaults) -> AdaptSettings:
        lam = gr.Slider(
            minimum=-10,
            maximum=10,
            value=start.guidance_scale,
            step=0.5,
            label="λ (tilt)",
            info="target p(x)·exp(λ r(x)); weights w ∝ exp(λ r)",
            elem_id=f"{prefix}-lambda",
            elem_classes=named("guidance_scale"),
        )
        with gr.Row():
            info = f"≤ {LIMITS.adapt_steps}; Start again to continue"
            steps = number(prefix, "steps", "num_steps", "Steps", start.num_steps, 1, LIMITS.adapt_steps, info=info)
            lr, lr_info = start.learning_rate, "Adam step size"
            lr = number(prefix, "lr", "learning_rate", "Learning rate", lr, 1e-6, 1e-2, precision=None, info=lr_info)
        with gr.Row():
            bs = number(prefix, "bs", "batch_size", "Batch size", start.batch_size, 4, LIMITS.adapt_batch)
            cap, cap_max = start.buffer_capacity, LIMITS.buffer_capacity
            cap = number(prefix, "cap", "buffer_capacity", "Buffer capacity", cap, 1, cap_max, info="best samples kept")
        return cls(lam, steps, lr, bs, cap)

    def updates_for(self, model, info: ModelInfo) -> dict:
        d = KIND_DEFAULTS[info.kind]
        return {
            self.lam: gr.update(value=d.guidance_scale),
            self.steps: gr.update(value=d.num_steps),
            self.lr: gr.update(value=d.learning_rate),
            self.bs: gr.update(value=d.batch_size),
            self.cap: gr.update(value=d.buffer_capacity),
        }

    def outputs(self) -> list:
        return [self.lam, self.steps, self.lr, self.bs, self.cap]


@dataclass
class BufferDisplay:
    """The trajectory buffer: a scatter coloured by priority (2-D) or a gallery sorted by reward (images)."""

    plot: gr.Plot
    gallery: gr.Gallery

    @classmethod
    def build(cls, prefix: str) -> BufferDisplay:
        with gr.Row():
            plot = gr.Plot(
                make_message_figure("The buffer fills with the best fresh samples."),
                label="Trajectory buffer",
                show_label=False,
                elem_id=f"{prefix}-buffer",
                scale=3,
                elem_classes=["adiff-figure"],
            )
            gallery = gr.Gallery(
                label="Buffer, best first (r = reward · p = priority · y = class)",
                columns=4,
                height=560,
                visible=False,
                format="png",
                elem_id=f"{prefix}-gallery",
                scale=3,
            )
        return cls(plot, gallery)

    def updates_for(self, model, info: ModelInfo) -> dict:
        images = info.kind == "images"
        return {self.plot: gr.update(visible=not images), self.gallery: gr.update(visible=images)}

    def outputs(self) -> list:
        return [self.plot, self.gallery]
