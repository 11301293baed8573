"""Tab 9, train: the visitor's own data (handlers, no widgets): a drawing whose ink becomes 2-D points, or uploaded
images (a zip, optionally one folder per class, or several PNG/JPEG files).  Each is checked, kept in the session
(shared.TrainState.own, with its fingerprint: compare tells two models' data apart by it) and previewed; it is then
offered as the dataset "my drawing" / "my images", which trains like any other.  A refused drawing or upload changes
nothing (the previous one stays).  A drawing arrives as strokes or one small image and is checked and drawn by
strokes.py; the images are read by adiff.data.uploads (their count and total size from the file system first).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from adiff.data import check_drawing, data_fingerprint, points_from_drawing
from adiff.data.uploads import UPLOAD_SIZES, ImageSet, UploadError, UploadLimits, images_from_paths

from ..context import AppContext
from ..fields import UserError, as_choice, field_error
from ..state import Session
from . import view
from .shared import OWN_DRAWING, OWN_IMAGES, OwnData, state_of, upload_path
from .strokes import Strokes, drawing_image

__all__ = [
    "DRAWING_POINTS",
    "UPLOAD_LIMITS",
    "DrawingRequest",
    "ImagesRequest",
    "OwnPreview",
    "use_drawing",
    "use_images",
]

DRAWING_POINTS = 20_000  # points sampled from the ink (the size of a built-in 2-D training set)
UPLOAD_LIMITS = UploadLimits()
PREVIEW_IMAGES = 64


@dataclass(frozen=True)
class DrawingRequest:
    image: Image.Image  # the strokes drawn on the server's raster, or the image of a data URL (opened, not decoded)
    strokes: Strokes | None  # None for an image

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, drawing) -> DrawingRequest:
        """The canvas's value (the strokes as coordinates), their JSON text, or a PNG/JPEG data URL (strokes.py)."""
        return cls(*drawing_image(drawing))


@dataclass(frozen=True)
class ImagesRequest:
    paths: list  # the uploaded files on the server (read by images_from_paths, which checks them before reading)
    size: int

    @classmethod
    def parse(cls, ctx: AppContext, session: Session, files, image_size) -> ImagesRequest:
        size = int(as_choice(str(image_size), "image_size", [str(s) for s in UPLOAD_SIZES]))
        if not files:
            raise field_error("images", "no file was uploaded")
        if not isinstance(files, list):
            raise field_error("images", f"must be a list of files, got {type(files).__name__}")
        if len(files) > UPLOAD_LIMITS.max_images:
            raise field_error("images", f"{len(files):,} files, at most {UPLOAD_LIMITS.max_images:,}")
        return cls([upload_path(f, "images") for f in files], size)


@dataclass(frozen=True)
class OwnPreview:
    """The new dataset: the preview figure's data, the status, and the name the dataset list switches to."""

    samples: dict
    status: dict
    dataset: str


def _keep(session: Session, name: str, data: OwnData, samples: dict, status: dict) -> OwnPreview:
    """Keep ``data`` as the session's dataset ``name`` (replacing the one before), with its fingerprint; its preview
    and status."""
    data = OwnData(data.x, data.labels, data.num_classes, data.description, data_fingerprint(data.x, data.labels))
    with session.lock:
        state_of(session).own[name] = data
    return OwnPreview(samples, {"dataset": name, **status}, name)


def _drawing_error(e: ValueError) -> UserError:
    """adiff's drawing messages in the app's "drawing: ..." form ("drawing is empty: ..." -> "drawing: is empty: ...")."""
    msg = str(e)
    if not msg.startswith("drawing:"):
        msg = "drawing: " + (msg.removeprefix("drawing ") if msg.startswith("drawing ") else msg)
    return UserError(msg, print_exception=False)


def use_drawing(ctx: AppContext, session: Session, req: DrawingRequest) -> OwnPreview:
    """Sample points from the drawing's ink; they become the dataset 'my drawing'."""
    try:
        inked = check_drawing(req.image)
        x = points_from_drawing(req.image, DRAWING_POINTS, seed=0)
    except ValueError as e:  # UploadError too: a data URL's image that cannot be decoded
        raise _drawing_error(e) from None
    finally:
        req.image.close()
    what = f"{len(req.strokes.strokes)} strokes" if req.strokes is not None else "an image"
    data = OwnData(x, None, None, f"{DRAWING_POINTS} points sampled from your drawing ({what}, {inked} inked pixels)")
    status = {
        "points": DRAWING_POINTS,
        "inked_pixels": inked,
        "strokes": None if req.strokes is None else len(req.strokes.strokes),
        "next": f"pick a schedule and size, then press Train (dataset '{OWN_DRAWING}')",
    }
    return _keep(session, OWN_DRAWING, data, view.drawing_data(x, DRAWING_POINTS), status)


def use_images(ctx: AppContext, session: Session, req: ImagesRequest) -> OwnPreview:
    """Read the uploaded images (a zip or PNG/JPEG files); they become the dataset 'my images'."""
    try:
        images: ImageSet = images_from_paths(req.paths, req.size, UPLOAD_LIMITS)
    except UploadError as e:  # adiff's messages read "images: ..." (or "image_size: ...") already
        raise UserError(str(e), print_exception=False) from None
    n, k = images.x.shape[0], len(images.class_names) or None
    if n < 2:
        raise field_error("images", f"{n} image is too few to train on: upload at least 2")
    size = req.size
    data = OwnData(images.x, images.labels, k, f"{n} uploaded images, {size}x{size}" + (f", {k} classes" if k else ""))
    status = {
        **images.summary(),
        "next": f"press Train (dataset '{OWN_IMAGES}'" + ("; tick 'Conditional' to use the folders)" if k else ")"),
    }
    return _keep(session, OWN_IMAGES, data, view.images_data(images, size, PREVIEW_IMAGES), status)
