"""Tab 7, train: the "your own data" row's widgets and wiring (own_data.py does the work): a canvas to draw a 2-D
dataset on, an upload for images, and a preview of what was taken.  API: /use_drawing, /use_images.

The canvas has no change or input listener, so the page uploads its images (background, layers, composite) as files
with the click, and /use_drawing reads only the composite (Gradio's preprocess, which every event here skips, would
decode every layer).  A listener on the canvas would make the page send its images ahead, to the component's
``accept_blobs``, and the click only their id: keep it without one."""

from __future__ import annotations

import gradio as gr

from adiff.data.uploads import UPLOAD_SIZES

from ..context import AppContext
from ..fields import named
from ..plotting import make_message_figure
from ..wiring import EVENT, endpoint
from . import own_data
from .figures import make_samples_figure
from .own_data import UPLOAD_LIMITS, DrawingRequest, ImagesRequest, OwnPreview

__all__ = ["build"]


def _render(out: OwnPreview):
    """(preview, status, the dataset list)."""
    return make_samples_figure(out.samples), out.status, gr.update(value=out.dataset)


def build(ctx: AppContext, dataset: gr.Dropdown) -> None:
    """Lay out the own-data row (inside the Train tab) and wire it to the tab's dataset dropdown."""
    with gr.Accordion("Your own data: draw points, or upload images", open=True, elem_id="tr-own"):
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                sketch = gr.Sketchpad(
                    label="Draw a 2-D dataset (your initials?): pick the brush, then draw",
                    type="numpy",
                    image_mode="L",
                    canvas_size=(400, 400),
                    height=460,
                    layers=False,
                    brush=gr.Brush(default_size=10, colors=["#000000"], color_mode="fixed"),
                    elem_id="tr-sketch",
                    elem_classes=named("sketch"),
                )
                draw_btn = gr.Button("Use my drawing", elem_id="tr-use-drawing")
            with gr.Column(scale=1, min_width=320):
                files = gr.File(
                    label=f"Images: a .zip (optionally one folder per class) or PNG/JPEG files "
                    f"(≤ {UPLOAD_LIMITS.max_images} images, ≤ {UPLOAD_LIMITS.max_bytes // 2**20} MB)",
                    file_count="multiple",
                    file_types=[".zip", ".png", ".jpg", ".jpeg"],
                    type="filepath",
                    elem_id="tr-images",
                    height=160,
                    elem_classes=named("files"),
                )
                size = gr.Radio(
                    choices=[str(s) for s in UPLOAD_SIZES],
                    value="16",
                    label="Image size",
                    info="grayscale, pixels a side",
                    elem_id="tr-image-size",
                    elem_classes=named("image_size"),
                )
                images_btn = gr.Button("Use these images", elem_id="tr-use-images")
            with gr.Column(scale=2):
                preview = gr.Plot(
                    make_message_figure(
                        "Your data appears here: the points sampled from your drawing, "
                        "or a grid of your images with the count per class."
                    ),
                    label="Preview",
                    show_label=False,
                    elem_id="tr-own-preview",
                )
                status = gr.JSON(label="your data", elem_id="tr-own-status", max_height=240)
    outputs = [preview, status, dataset]
    draw_btn.click(
        endpoint(ctx, DrawingRequest.parse, own_data.use_drawing, _render),
        sketch,
        outputs,
        api_name="use_drawing",
        **EVENT,
        **ctx.heavy,
    )
    images_btn.click(
        endpoint(ctx, ImagesRequest.parse, own_data.use_images, _render),
        [files, size],
        outputs,
        api_name="use_images",
        **EVENT,
        **ctx.heavy,
    )
