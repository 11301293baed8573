"""Tab 7, train: the visitor's own data (handlers, no widgets): a drawing whose ink becomes 2-D points, or uploaded
images (a zip, optionally one folder per class, or several PNG/JPEG files).  Each is checked, kept in the session
(shared.TrainState.own) and previewed; it is then offered as the dataset "my drawing" / "my images", which trains
like any other.  A refused drawing or upload changes nothing (the previous one stays).  The parsing lives in
adiff.data (check_drawing, points_from_drawing, adiff.data.uploads); here only the canvas image is decoded, with its
size checked from the header before any pixel is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from adiff.data import check_drawing, points_from_drawing
from adiff.data.uploads import UPLOAD_SIZES, ImageSet, UploadError, UploadLimits, images_from_files

from ..context import AppContext
from ..fields import UserError, as_choice, field_error
from ..state import Session
from . import view
from .shared import OWN_DRAWING, OWN_IMAGES, OwnData, state_of, upload_path

__all__ = [
    "DRAWING_POINTS",
    "MAX_DRAWING_PIXELS",
    "UPLOAD_LIMITS",
    "DrawingRequest",
    "ImagesRequest",
    "OwnPreview",
    "drawing_array",
    "use_drawing",
    "use_images",
]

DRAWING_POINTS = 20_000  # points sampled from the ink (the size of a built-in 2-D training set)
MAX_DRAWING_PIXELS = 2048 * 2048  # a drawing sent through the API may be any size: the ink is a float per pixel
UPLOAD_LIMITS = UploadLimits()
PREVIEW_IMAGES = 64


def drawing_array(source: Path) -> np.ndarray:
    """A canvas image (a PNG file) -> uint8 [H, W] gray, flattened on white as the canvas shows it (the
    canvas exports transparent pixels as black under alpha 0).  Its size is read from the header first: a canvas of
    more than MAX_DRAWING_PIXELS is refused before it is decoded."""
    too_big = f"exceeds limit of {MAX_DRAWING_PIXELS} pixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # Pillow's own, far larger limit
            im = Image.open(source)  # the header only
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise field_error("drawing", f"the canvas {too_big}") from None
    except OSError as e:
        raise field_error("drawing", f"the canvas image cannot be read ({e})") from None
    with im:
        w, h = im.size
        if w * h > MAX_DRAWING_PIXELS:
            raise field_error("drawing", f"a canvas of {w}×{h} pixels {too_big}")
        try:
            if "A" in im.getbands() or "transparency" in im.info:
                im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
            return np.asarray(im.convert("L"))
        except (OSError, ValueError) as e:  # a truncated or corrupt image
            raise field_error("drawing", f"the canvas image cannot be read ({e})") from None


@dataclass(frozen=True)
class DrawingRequest:
    ink: np.ndarray  # uint8 [H, W], dark strokes on white

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, sketch) -> DrawingRequest:
        """The canvas's raw value: {"composite": {"path": ...}, "layers": [...], ...}; only the composite is read."""
        composite = sketch.get("composite") if isinstance(sketch, dict) else None
        if composite is None:
            raise field_error("drawing", "the canvas is empty: draw some strokes first")
        return cls(drawing_array(upload_path(composite, "drawing")))


@dataclass(frozen=True)
class ImagesRequest:
    files: list  # (name, bytes), their total size checked before any was read
    size: int

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, files, image_size) -> ImagesRequest:
        size = int(as_choice(str(image_size), "image_size", [str(s) for s in UPLOAD_SIZES]))
        if not files:
            raise field_error("images", "no file was uploaded")
        if not isinstance(files, list):
            raise field_error("images", f"must be a list of files, got {type(files).__name__}")
        paths = [upload_path(f, "images") for f in files]
        total = 0
        for p in paths:
            total += p.stat().st_size
            if total > UPLOAD_LIMITS.max_bytes:
                raise field_error("images", f"the upload is over the {UPLOAD_LIMITS.max_bytes // 2**20} MB limit")
        return cls([(p.name, p.read_bytes()) for p in paths], size)


@dataclass(frozen=True)
class OwnPreview:
    """The new dataset: the preview figure's data, the status, and the name the dataset list switches to."""

    samples: dict
    status: dict
    dataset: str


def _keep(session: Session, name: str, data: OwnData, samples: dict, status: dict) -> OwnPreview:
    """Keep ``data`` as the session's dataset ``name`` (replacing the one before); its preview and status."""
    with session.lock:
        state_of(session).own[name] = data
    return OwnPreview(samples, {"dataset": name, **status}, name)


def use_drawing(ctx: AppContext, session: Session, req: DrawingRequest) -> OwnPreview:
    """Sample points from the drawing's ink; they become the dataset 'my drawing'."""
    try:
        inked = check_drawing(req.ink)
        x = points_from_drawing(req.ink, DRAWING_POINTS, seed=0)
    except ValueError as e:  # adiff's messages start with "drawing" already
        msg = str(e)
        raise UserError(msg if msg.startswith("drawing") else f"drawing: {msg}", print_exception=False) from None
    data = OwnData(x, None, None, f"{DRAWING_POINTS} points sampled from your drawing ({inked} inked pixels)")
    status = {
        "points": DRAWING_POINTS,
        "inked_pixels": inked,
        "next": f"pick a schedule and size, then press Train (dataset '{OWN_DRAWING}')",
    }
    return _keep(session, OWN_DRAWING, data, view.drawing_data(x, DRAWING_POINTS), status)


def use_images(ctx: AppContext, session: Session, req: ImagesRequest) -> OwnPreview:
    """Read the uploaded images (a zip or PNG/JPEG files); they become the dataset 'my images'."""
    try:
        images: ImageSet = images_from_files(req.files, req.size, UPLOAD_LIMITS)
    except UploadError as e:
        raise field_error("images", str(e)) from None
    n, k = images.x.shape[0], len(images.class_names) or None
    if n < 2:
        raise field_error("images", f"{n} image is too few to train on: upload at least 2")
    size = req.size
    data = OwnData(images.x, images.labels, k, f"{n} uploaded images, {size}x{size}" + (f", {k} classes" if k else ""))
    status = {
        "images": n,
        "image_size": size,
        "counts_per_class": images.counts,
        "classes": images.class_names,
        "skipped": images.skipped,
        "next": f"press Train (dataset '{OWN_IMAGES}'" + ("; tick 'Conditional' to use the folders)" if k else ")"),
    }
    return _keep(session, OWN_IMAGES, data, view.images_data(images, size, PREVIEW_IMAGES), status)
