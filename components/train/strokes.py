"""Tab 9, train: a drawing as it arrives (from the canvas, assets/drawing.js, or from an API caller), checked and
drawn; no widgets.  own_data.py samples the points from what this returns.

A drawing is one of:

* strokes: ``{"w": W, "h": H, "brush": b, "strokes": [[[x, y], ...], ...]}`` in canvas pixels, (0, 0) at the top
  left: the object the page sends, or its JSON text from an API caller;
* one image: a PNG or JPEG as a data URL (``"data:image/png;base64,..."``, what a canvas's ``toDataURL()`` gives).

Everything a drawing would cost is checked before it is spent (issue 23: a sketch's layers were each decoded, 4 MB
a reference, with no limit on the count): a text's length before it is parsed (``LIMITS.drawing_chars``), the
number of strokes and of points before any point is read, W, H and the brush before anything is drawn; an image's
header (format, width x height, bytes) before a pixel is decoded (``adiff.data.open_drawing``).  Strokes are drawn
with PIL onto a white raster of ``LIMITS.drawing_raster`` pixels (the longer side), as the canvas draws them (round
caps and joints).  Nothing is written or kept here: no file, no store, no id a client chooses.  Every refusal reads
"drawing: ...".
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass

from PIL import Image, ImageDraw

from adiff.data import open_drawing
from adiff.data.image_files import UploadError, listing

from ..fields import UserError, field_error, short
from ..limits import LIMITS

__all__ = ["Strokes", "drawing_image", "parse_strokes", "rasterise"]

FIELD = "drawing"
KEYS = ("w", "h", "brush", "strokes")
FORMS = 'the strokes {"w", "h", "brush", "strokes": [[[x, y], ...], ...]} or a PNG/JPEG data URL'
EMPTY = "the canvas is empty: draw some strokes first"


@dataclass(frozen=True)
class Strokes:
    """A checked drawing: its canvas size, brush width and strokes (each a list of (x, y) canvas pixels)."""

    w: int
    h: int
    brush: float
    strokes: list  # [[(x, y), ...], ...], every point inside the w x h canvas

    @property
    def points(self) -> int:
        return sum(len(s) for s in self.strokes)


def _number(value, name: str, lo: float, hi: float, integer: bool = False) -> float:
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (integer and value != int(value)):
        raise field_error(FIELD, f"{name} must be {kind} in {lo:g}..{hi:g}, got {short(value)}")
    if not lo <= value <= hi:
        raise field_error(FIELD, f"{name} must be in {lo:g}..{hi:g}, got {value:g}")
    return int(value) if integer else float(value)


def _point(p, w: int, h: int) -> tuple[float, float]:
    if not isinstance(p, (list, tuple)) or len(p) != 2:
        raise field_error(FIELD, f"a stroke's point must be [x, y], got {short(p)}")
    return _number(p[0], "a point's x", 0, w), _number(p[1], "a point's y", 0, h)


def parse_strokes(value: dict) -> Strokes:
    """The strokes object, checked: its keys, W and H, the brush, then the number of strokes and of points (all
    counted before any point is read), then every point (two finite numbers inside the canvas)."""
    unknown = [str(k) for k in value if k not in KEYS]
    if unknown:
        raise field_error(FIELD, f"unknown keys {', '.join(listing(unknown, 3, 20))}; expected {', '.join(KEYS)}")
    w = _number(value.get("w"), "w", 16, LIMITS.drawing_max_side, integer=True)
    h = _number(value.get("h"), "h", 16, LIMITS.drawing_max_side, integer=True)
    brush = _number(value.get("brush"), "brush", 1, LIMITS.drawing_brush)
    strokes = value.get("strokes")
    if not isinstance(strokes, list) or not all(isinstance(s, list) for s in strokes):
        raise field_error(FIELD, f"strokes must be a list of strokes, each a list of [x, y], got {short(strokes)}")
    if len(strokes) > LIMITS.drawing_strokes:
        raise field_error(FIELD, f"{len(strokes):,} strokes, at most {LIMITS.drawing_strokes:,}")
    total = sum(len(s) for s in strokes)
    if total > LIMITS.drawing_stroke_points:
        raise field_error(FIELD, f"{total:,} points in the strokes, at most {LIMITS.drawing_stroke_points:,}")
    if total == 0:
        raise field_error(FIELD, EMPTY)
    return Strokes(w, h, brush, [[_point(p, w, h) for p in s] for s in strokes if s])


def rasterise(d: Strokes) -> Image.Image:
    """The strokes drawn in black on white, "L", ``LIMITS.drawing_raster`` pixels along the longer side (the canvas's
    aspect kept), with the brush scaled alike; round caps and joints, as the canvas draws them."""
    scale = LIMITS.drawing_raster / max(d.w, d.h)
    im = Image.new("L", (max(1, round(d.w * scale)), max(1, round(d.h * scale))), 255)
    draw = ImageDraw.Draw(im)
    width = max(1, round(d.brush * scale))
    r = width / 2
    for stroke in d.strokes:
        xy = [(x * scale, y * scale) for x, y in stroke]
        if len(xy) > 1:
            draw.line(xy, fill=0, width=width)
        for x, y in xy:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return im


def _from_text(text: str):
    """A drawing sent as text: a data URL (the image, opened lazily) or the strokes' JSON (parsed)."""
    if len(text) > LIMITS.drawing_chars:
        raise field_error(FIELD, f"{len(text):,} characters, at most {LIMITS.drawing_chars:,}; send {FORMS}")
    text = text.strip()
    if not text:
        raise field_error(FIELD, EMPTY)
    if text.startswith("data:"):
        try:
            return open_drawing(text)  # the header only: format and size checked, no pixel decoded
        except UploadError as e:  # its messages read "drawing: ..." already
            raise UserError(str(e), print_exception=False) from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise field_error(FIELD, f"is neither JSON nor a data URL; send {FORMS}") from None


def drawing_image(value) -> tuple[Image.Image, Strokes | None]:
    """A drawing's raw value -> (the image to sample points from, the strokes when it came as strokes).  The image
    of a data URL is opened lazily (adiff.data decodes it after checking its size again)."""
    if isinstance(value, str):
        value = _from_text(value)
        if isinstance(value, Image.Image):
            return value, None
    if value is None:
        raise field_error(FIELD, EMPTY)
    if not isinstance(value, dict):
        raise field_error(FIELD, f"must be {FORMS}, got {type(value).__name__}")
    strokes = parse_strokes(value)
    return rasterise(strokes), strokes
