"""Tab 9, train: the "your own data" row's widgets and wiring (own_data.py does the work): a canvas to draw a 2-D
dataset on, an upload for images, and a preview of what was taken.  API: /use_drawing, /use_images.

The canvas is the app's own (a ``gr.HTML`` whose script is assets/drawing.js): its value is the strokes as
coordinates, which the click sends; the server checks their counts and draws them itself (strokes.py).  No image
editor: Gradio's decoded every entry of a sketch's ``layers`` before the handler ran, and its ``accept_blobs`` route
kept blobs in one store shared by every session under ids the client chose.  Nothing of a drawing is uploaded as a
file or stored server-side beyond the session's points."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from adiff.data.uploads import UPLOAD_SIZES

from ..context import AppContext
from ..fields import named
from ..limits import LIMITS
from ..plotting import make_message_figure
from ..wiring import EVENT, endpoint
from . import own_data
from .figures import make_samples_figure
from .own_data import UPLOAD_LIMITS, DrawingRequest, ImagesRequest, OwnPreview

__all__ = ["build", "drawing_canvas"]

DRAWING_JS = (Path(__file__).resolve().parent.parent.parent / "assets" / "drawing.js").read_text()
DRAWING_CSS = """
.adiff-draw { width: 100%; max-width: ${side}px; padding-top: 1.9em; font-family: Arial, Helvetica, sans-serif; }
.adiff-draw-tools { display: flex; flex-wrap: wrap; align-items: center; gap: 0.3em 0.7em; margin-bottom: 0.4em;
  font-size: 0.9rem; }
.adiff-draw-tools label { display: flex; align-items: center; gap: 0.4em; }
.adiff-draw-tools button { font-size: 0.9rem; font-weight: normal; padding: 0.1em 0.7em; border: 1px solid #999;
  border-radius: 4px; background: #f4f4f4; }
.adiff-draw-count { width: 100%; color: #555; font-size: 0.85rem; }
.adiff-draw-canvas { width: 100%; aspect-ratio: 1 / 1; border: 1px solid #999; border-radius: 4px; touch-action: none;
  background: #fff; cursor: crosshair; display: block; }
"""


def _render(out: OwnPreview):
    """(preview, status, the dataset list)."""
    return make_samples_figure(out.samples), out.status, gr.update(value=out.dataset)


def drawing_canvas(
    label: str = "Draw a 2-D dataset (your initials?)", elem_id: str = "tr-sketch", brush: int = 10
) -> gr.HTML:
    """The canvas (assets/drawing.js): its value is {"w", "h", "brush", "strokes"}, the limits are LIMITS'.  The
    Complete tab has one too (its own label, id and starting brush)."""
    return gr.HTML(
        None,
        html_template="<div class='adiff-draw'></div>",
        css_template=DRAWING_CSS,
        js_on_load=DRAWING_JS,
        label=label,
        show_label=True,
        container=True,
        elem_id=elem_id,
        elem_classes=named("drawing"),
        side=LIMITS.drawing_side,
        max_points=LIMITS.drawing_stroke_points,
        max_strokes=LIMITS.drawing_strokes,
        max_brush=min(40, LIMITS.drawing_brush),
        brush=brush,
    )


def build(ctx: AppContext, dataset: gr.Dropdown) -> None:
    """Lay out the own-data row (inside the Train tab) and wire it to the tab's dataset dropdown."""
    with gr.Accordion("Your own data: draw points, or upload images", open=True, elem_id="tr-own"):
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                sketch = drawing_canvas()
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
