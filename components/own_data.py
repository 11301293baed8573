"""The Train tab's own-data pieces: draw a 2-D dataset on a canvas, or upload images (a zip, optionally one folder
per class, or several PNG/JPEG files).  Each is checked and previewed (a scatter of the points sampled from the ink;
a grid of the images with the count per class), kept in the session, and offered in the Train tab's dataset list as
"my drawing" / "my images", which then trains like any other dataset.  A refused drawing or upload changes nothing
(the previous one stays).  The parsing lives in adiff.data (points_from_drawing, check_drawing, adiff.data.uploads).
API: /use_drawing, /use_images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from adiff.data import PLOT_RANGE, check_drawing, points_from_drawing
from adiff.data.uploads import UPLOAD_SIZES, ImageSet, UploadError, UploadLimits, images_from_files

from .arrays import points, tile_images
from .context import AppContext
from .fields import as_choice, field_error, user_errors
from .figures import make_message_figure, make_samples_figure
from .validation import radio

__all__ = ["build", "OWN_DRAWING", "OWN_IMAGES", "OWN_DATASETS", "OwnData", "own_data", "DRAWING_POINTS"]

OWN_DRAWING, OWN_IMAGES = "my drawing", "my images"
OWN_DATASETS = [OWN_DRAWING, OWN_IMAGES]
DRAWING_POINTS = 20_000  # points sampled from the ink (the size of a built-in 2-D training set)
LIMITS = UploadLimits()
PREVIEW_IMAGES = 64
MAX_DRAWING_PIXELS = 2048 * 2048  # a drawing sent through the API may be any size: the ink is a float per pixel


@dataclass(frozen=True)
class OwnData:
    """A session's own dataset, ready to train on."""

    x: torch.Tensor  # [N, 2] points, or [N, 1, S, S] images in [-1, 1]
    labels: torch.Tensor | None  # long [N] or None
    num_classes: int | None  # None when unlabelled
    description: str  # one line for the status and "my model"'s description


def own_data(session, name: str) -> OwnData:
    """The session's drawing or images, or an error naming the dataset field when there is none yet."""
    data = session.own_data.get(name)
    if data is None:
        where = (
            "draw on the canvas and press 'Use my drawing'"
            if name == OWN_DRAWING
            else "upload images and press 'Use these images'"
        )
        raise field_error("dataset", f"{name!r} is empty: {where} (under 'Your own data') first")
    return data


def _drawing_array(sketch) -> np.ndarray:
    """The Sketchpad's value (a dict whose "composite" is flattened on white, image_mode "L") -> an array."""
    composite = sketch.get("composite") if isinstance(sketch, dict) else sketch
    if composite is None:
        raise field_error("drawing", "the canvas is empty: draw some strokes first")
    arr = np.asarray(composite)
    if arr.ndim < 2 or arr.shape[0] * arr.shape[1] > MAX_DRAWING_PIXELS:
        raise field_error(
            "drawing", f"a canvas of shape {list(arr.shape)} is over the {MAX_DRAWING_PIXELS:,}-pixel limit"
        )
    return arr


def _uploaded(files) -> list[tuple[str, bytes]]:
    """gr.File(file_count="multiple") paths -> (name, bytes), with the size capped before anything is read."""
    if not files:
        raise field_error("images", "no file was uploaded")
    paths = [Path(f if isinstance(f, (str, Path)) else getattr(f, "path", None) or f["path"]) for f in files]
    total = 0
    for p in paths:
        if not p.is_file():
            raise field_error("images", f"the upload {p.name!r} is missing on the server; upload it again")
        total += p.stat().st_size
        if total > LIMITS.max_bytes:
            raise field_error("images", f"the upload is over the {LIMITS.max_bytes // 2**20} MB limit")
    return [(p.name, p.read_bytes()) for p in paths]


def _counts_text(images: ImageSet) -> str:
    c = images.counts
    return " · ".join(f"{k} {v}" for k, v in c.items())


def build(ctx: AppContext, dataset: gr.Dropdown) -> None:
    """Lay out the own-data row (call inside the Train tab) and wire it to the tab's dataset dropdown.

    Gradio decodes a drawing sent through the API (any PNG up to the upload size) before ``use_drawing`` sees it: a
    20 kB PNG of 144 M pixels cost 400 MB at the peak and left 137 MB behind.  Pillow refuses to decode an image of
    more than 2 x ``Image.MAX_IMAGE_PIXELS`` pixels (its decompression-bomb check), so that cap is set to the
    drawing's limit; image uploads are checked by adiff.data.uploads with smaller limits of their own, first."""
    Image.MAX_IMAGE_PIXELS = min(Image.MAX_IMAGE_PIXELS or MAX_DRAWING_PIXELS, MAX_DRAWING_PIXELS // 2)

    @user_errors
    def use_drawing(sketch, request: gr.Request):
        """Sample points from the drawing's ink; they become the dataset 'my drawing'."""
        arr = _drawing_array(sketch)
        try:
            inked = check_drawing(arr)
            x = points_from_drawing(arr, DRAWING_POINTS, seed=0)
        except ValueError as e:  # adiff's messages start with "drawing" already
            msg = str(e)
            raise gr.Error(msg if msg.startswith("drawing") else f"drawing: {msg}", print_exception=False) from None
        session = ctx.store.get(request)
        data = OwnData(x, None, None, f"{DRAWING_POINTS} points sampled from your drawing ({inked} inked pixels)")
        with session.lock:
            session.own_data[OWN_DRAWING] = data
        fig = make_samples_figure(
            {
                "kind": "points",
                "data": points(x[:2000]),
                "range": PLOT_RANGE,
                "title": f"my drawing: 2000 of {DRAWING_POINTS} points",
            }
        )
        status = {
            "dataset": OWN_DRAWING,
            "points": DRAWING_POINTS,
            "inked_pixels": inked,
            "next": f"pick a schedule and size, then press Train (dataset '{OWN_DRAWING}')",
        }
        return fig, status, gr.update(value=OWN_DRAWING)

    @user_errors
    def use_images(files, image_size, request: gr.Request):
        """Read the uploaded images (a zip or PNG/JPEG files); they become the dataset 'my images'."""
        size = int(as_choice(str(image_size), "image_size", [str(s) for s in UPLOAD_SIZES]))
        try:
            images = images_from_files(_uploaded(files), size, LIMITS)
        except UploadError as e:
            raise field_error("images", str(e)) from None
        n = images.x.shape[0]
        k = len(images.class_names) or None
        if n < 2:
            raise field_error("images", f"{n} image is too few to train on: upload at least 2")
        session = ctx.store.get(request)
        data = OwnData(
            images.x, images.labels, k, f"{n} uploaded images, {size}x{size}" + (f", {k} classes" if k else "")
        )
        with session.lock:
            session.own_data[OWN_IMAGES] = data
        title = f"my images: {n} at {size}×{size} ({_counts_text(images)})"
        fig = make_samples_figure(
            {"kind": "images", "z": tile_images(images.x[:PREVIEW_IMAGES]), "title": title, "name": "uploaded image"}
        )
        status = {
            "dataset": OWN_IMAGES,
            "images": n,
            "image_size": size,
            "counts_per_class": images.counts,
            "classes": images.class_names,
            "skipped": images.skipped,
            "next": f"press Train (dataset '{OWN_IMAGES}'" + ("; tick 'Conditional' to use the folders)" if k else ")"),
        }
        return fig, status, gr.update(value=OWN_IMAGES)

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
                )
                draw_btn = gr.Button("Use my drawing", elem_id="tr-use-drawing")
            with gr.Column(scale=1, min_width=320):
                files = gr.File(
                    label=f"Images: a .zip (optionally one folder per class) or PNG/JPEG files "
                    f"(≤ {LIMITS.max_images} images, ≤ {LIMITS.max_bytes // 2**20} MB)",
                    file_count="multiple",
                    file_types=[".zip", ".png", ".jpg", ".jpeg"],
                    type="filepath",
                    elem_id="tr-images",
                    height=160,
                )
                size = radio(
                    "image_size",
                    choices=[str(s) for s in UPLOAD_SIZES],
                    value="16",
                    label="Image size",
                    info="grayscale, pixels a side",
                    elem_id="tr-image-size",
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
    draw_btn.click(use_drawing, sketch, [preview, status, dataset], api_name="use_drawing", **ctx.heavy)
    images_btn.click(use_images, [files, size], [preview, status, dataset], api_name="use_images", **ctx.heavy)
