"""A visitor's image files, read safely and as people take them, and short messages about them.

* :func:`open_image` reads a PNG or JPEG's header only (Pillow's ``Image.open`` is lazy: it reads the format and
  width x height, ``load()`` decodes) and refuses too many pixels before a single one is decoded.
* :func:`gray_and_alpha` decodes (after that check) and returns gray in [0, 1] and the alpha channel, if any:

  - EXIF orientation is applied first (``ImageOps.exif_transpose``): a phone stores the sensor's rows and an
    Orientation tag (EXIF 2.32, tag 0x0112; 6 = "rotate 90 degrees clockwise to display"), so without it a portrait
    photo trains sideways;
  - 8-bit modes through Pillow's own conversions, /255 (RGB -> L is ITU-R 601-2 luma, L = R 299/1000 + G 587/1000
    + B 114/1000; palette and CMYK images via their colours);
  - 16-bit ("I;16", "I;16B", ...: what Pillow makes of a 16-bit grayscale PNG) /65535, never through an 8-bit
    conversion, which clips every value above 255 to white;
  - 32-bit integer ("I") and float ("F") images: as they are when every value lies in [0, 1] (a float image's
    usual range), /65535 when an "I" image's values lie in 0..65535 (how Pillow holds 16-bit data), otherwise
    stretched over the image's own range (min -> black, max -> white; a flat image is white); NaN or infinite
    pixels are refused;
  - transparency (an alpha band, a palette's or a single gray value's tRNS) comes back as alpha in [0, 1],
    1 = opaque; the caller decides what it means (an upload flattens transparent pixels onto white, the background;
    a drawing reads the alpha as ink).

* :func:`square_gray` makes an uploaded picture a training image (gray and alpha flattened onto white, padded to a
  square, resized, in [-1, 1] with dark = +1).
* :func:`quote` and :func:`listing` cut what a message echoes: a name to ``NAME_CHARS`` characters, a list to a few
  names and "... and N more", so a refusal stays a line whatever a hostile file is called.

Errors are :class:`UploadError` (a ValueError) whose message starts with the field it concerns ("images: ...",
"drawing: ..."); Pillow's own messages are not echoed (one of them carries the repr of the file object,
``<_io.BytesIO object at 0x...>``).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "UploadError",
    "FORMATS",
    "NAME_CHARS",
    "quote",
    "listing",
    "open_image",
    "check_pixels",
    "gray_and_alpha",
    "square_gray",
]

FORMATS = ("PNG", "JPEG")  # the only decoders Pillow may try
NAME_CHARS = 60  # at most this much of a name is echoed in a message
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, KeyError)


class UploadError(ValueError):
    """An upload that cannot be used; the message names the field and the entry, briefly."""


def quote(name: str, limit: int = NAME_CHARS) -> str:
    """repr(name), cut to ``limit`` characters with an ellipsis (control characters escaped by repr)."""
    name = str(name)
    return repr(name) if len(name) <= limit else repr(name[: limit - 1] + "…")


def listing(names: list[str], shown: int = 3, limit: int = NAME_CHARS) -> list[str]:
    """The first ``shown`` names, each cut to ``limit`` characters, then "… and N more" when there are more."""
    out = [n if len(n) <= limit else n[: limit - 1] + "…" for n in map(str, names[:shown])]
    return out + ([f"… and {len(names) - shown:,} more"] if len(names) > shown else [])


def open_image(blob: bytes, what: str, max_pixels: int) -> Image.Image:
    """The image's header (no pixels decoded): a PNG or JPEG of 1 to ``max_pixels`` pixels.  ``what`` starts each
    message ("images: 'a.png'", "drawing: the image")."""
    try:
        im = Image.open(io.BytesIO(blob), formats=FORMATS)
    except Image.DecompressionBombError:  # Pillow's own check, on what the header declares
        raise UploadError(
            f"{what} declares over {2 * Image.MAX_IMAGE_PIXELS:,} pixels; at most {max_pixels:,} pixels"
        ) from None
    except Image.DecompressionBombWarning:  # over Image.MAX_IMAGE_PIXELS, where warnings are errors
        raise UploadError(
            f"{what} declares over {Image.MAX_IMAGE_PIXELS:,} pixels; at most {max_pixels:,} pixels"
        ) from None
    except UnidentifiedImageError:
        raise UploadError(f"{what} is not a PNG or JPEG image") from None
    except _DECODE_ERRORS:
        raise UploadError(f"{what} is a damaged PNG or JPEG: its header cannot be read") from None
    try:
        return check_pixels(im, what, max_pixels)
    except UploadError:
        im.close()
        raise


def check_pixels(im: Image.Image, what: str, max_pixels: int) -> Image.Image:
    """``im`` itself when it has 1 to ``max_pixels`` pixels (read from its header: no pixel is decoded)."""
    w, h = im.size
    if w < 1 or h < 1 or w * h > max_pixels:
        raise UploadError(f"{what} is {w}x{h} pixels; at most {max_pixels:,} pixels")
    return im


def _unit_range(a: np.ndarray, what: str, mode: str) -> np.ndarray:
    """An "I" or "F" image's values -> [0, 1], by the rule in the module docstring."""
    if not np.isfinite(a).all():
        raise UploadError(f"{what} has NaN or infinite pixels")
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and hi <= 1:
        return a
    if mode == "I" and lo >= 0 and hi <= 65535:
        return a / 65535.0
    return (a - lo) / (hi - lo) if hi > lo else np.ones_like(a)


def _gray_alpha(im: Image.Image, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    mode, t = im.mode, im.info.get("transparency")
    if mode.startswith("I;16") or mode in ("I", "F"):
        raw = np.asarray(im)
        a = raw.astype(np.float64)
        gray = a / 65535.0 if mode.startswith("I;16") else _unit_range(a, what, mode)
        alpha = (raw != t).astype(np.float64) if isinstance(t, int) else None  # tRNS: one transparent gray value
        return gray, alpha
    if "A" in im.getbands() or "a" in im.getbands() or t is not None:
        rgba = im.convert("RGBA")  # palette and single-colour transparency become an alpha band
        return np.asarray(rgba.convert("L"), dtype=np.float64) / 255.0, np.asarray(rgba.getchannel("A")) / 255.0
    return np.asarray(im.convert("L"), dtype=np.float64) / 255.0, None


def gray_and_alpha(im: Image.Image, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image opened by :func:`open_image` (or any PIL image whose size was checked), upright per its EXIF
    orientation -> (gray float64 [h, w] in [0, 1], 1 = white; alpha float64 [h, w] in [0, 1], 1 = opaque, or None
    when the image has no transparency).  Scaled by each mode's real range, as the module docstring says."""
    try:
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
        gray, alpha = _gray_alpha(im, what)
    except UploadError:
        raise
    except _DECODE_ERRORS:
        raise UploadError(f"{what} is damaged: its pixels cannot be decoded") from None
    return gray, alpha


def square_gray(im: Image.Image, what: str, size: int) -> np.ndarray:
    """An uploaded picture as a training image: decoded by :func:`gray_and_alpha`, transparency flattened onto white
    (the background), padded to a square with the border's median tone, resized (area averaging when shrinking)
    -> float32 [size, size] in [-1, 1], dark = +1 (like the glyphs)."""
    g, alpha = gray_and_alpha(im, what)  # [h, w] in [0, 1], 1 = white; alpha 1 = opaque
    if alpha is not None:
        g = g * alpha + (1.0 - alpha)  # "over" a white background (Porter & Duff 1984)
    g = g.astype(np.float32)
    h, w = g.shape
    if h != w:
        border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
        s = max(h, w)
        sq = np.full((s, s), float(np.median(border)), dtype=np.float32)
        sq[(s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = g
        g = sq
    pil = Image.fromarray(g)  # float32 -> mode "F"
    resample = Image.BOX if g.shape[0] >= size else Image.BILINEAR
    small = np.asarray(pil.resize((size, size), resample), dtype=np.float32)
    return np.clip(1.0 - 2.0 * small, -1.0, 1.0)
