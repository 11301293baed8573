"""Drawings as 2-D datasets: points sampled with a density that follows a drawing's ink (the dataset "drawing" of
:func:`adiff.data.make_dataset`, and the app's "my drawing")."""

from __future__ import annotations

import base64
import binascii
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .checks import _check_n, _check_seed, _generator
from .image_files import UploadError, check_pixels, gray_and_alpha, open_image, quote

__all__ = [
    "points_from_drawing",
    "dataset_from_drawing",
    "check_drawing",
    "open_drawing",
    "MIN_DRAWING_PIXELS",
    "MAX_DRAWING_PIXELS",
    "MAX_DRAWING_BYTES",
]

MIN_DRAWING_PIXELS = 30  # a drawing needs at least this many inked pixels (ink > 0.5) to be worth sampling
MAX_DRAWING_PIXELS = 2048 * 2048  # a drawing may have at most this many pixels (its ink is a float64 per pixel)
MAX_DRAWING_BYTES = 20 * 2**20  # a drawing's file (PNG or JPEG) may be at most this large
_WHAT = "drawing: the image"


def open_drawing(source: bytes | str | os.PathLike) -> Image.Image:
    """A drawing's file -> the image, its header read and its size checked, no pixel decoded yet (Pillow decodes on
    first use, e.g. in :func:`check_drawing`): a PNG or JPEG of at most MAX_DRAWING_PIXELS pixels and
    MAX_DRAWING_BYTES bytes.  ``source``: the file's bytes, a path, or a data URL ("data:image/png;base64,...", what a
    browser canvas's toDataURL() sends).  Errors (UploadError, a ValueError) start with "drawing:" and echo no path."""
    if isinstance(source, str) and source.startswith("data:"):
        head, _, b64 = source.partition(",")
        if not head.endswith(";base64") or len(b64) > (MAX_DRAWING_BYTES // 3 + 1) * 4:
            raise UploadError(f"drawing: a data URL must be base64 and at most {MAX_DRAWING_BYTES // 2**20} MB")
        try:
            blob = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise UploadError("drawing: the data URL is not valid base64") from None
    elif isinstance(source, (bytes, bytearray)):
        blob = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise UploadError(f"drawing: the file {quote(path.name)} is missing; send it again")
        if path.stat().st_size > MAX_DRAWING_BYTES:
            raise UploadError(f"drawing: the file is over {MAX_DRAWING_BYTES // 2**20} MB")
        blob = path.read_bytes()
    else:
        raise UploadError(f"drawing: expected the image's bytes, a path or a data URL, got {type(source).__name__}")
    if len(blob) > MAX_DRAWING_BYTES:
        raise UploadError(f"drawing: the file is over {MAX_DRAWING_BYTES // 2**20} MB")
    return open_image(blob, _WHAT, MAX_DRAWING_PIXELS)


def _ink_from_image(image: Any) -> np.ndarray:
    """Ink intensity in [0, 1], float64 [H, W], from a PIL image or an (H, W) / (H, W, 3) / (H, W, 4) array."""
    if isinstance(image, Image.Image):  # its size is checked before any pixel is decoded (Image.open is lazy)
        gray, alpha = gray_and_alpha(check_pixels(image, _WHAT, MAX_DRAWING_PIXELS), _WHAT)  # [H, W] in [0, 1]
        return _ink(gray, alpha)
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"image must be a PIL image or a numpy array (H, W), (H, W, 3) or (H, W, 4), got {type(image).__name__}"
        )
    arr = image
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] * arr.shape[1] > MAX_DRAWING_PIXELS:
        raise UploadError(f"{_WHAT} is {arr.shape[1]}x{arr.shape[0]} pixels; at most {MAX_DRAWING_PIXELS:,} pixels")
    if arr.dtype == np.uint8:
        a = arr.astype(np.float64) / 255.0
    elif np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.bool_:
        a = arr.astype(np.float64)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ValueError(
                "image as a float array must have finite values in [0, 1] "
                f"(got min {np.nanmin(a):.3g}, max {np.nanmax(a):.3g})"
            )
    else:
        raise ValueError(f"image array must be uint8 (0..255) or float (0..1), got dtype {arr.dtype}")
    gray = a if a.ndim == 2 else a[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma
    return _ink(gray, a[..., 3] if a.ndim == 3 and a.shape[2] == 4 else None)


def _ink(gray: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """gray [H, W] in [0, 1] (1 = white), alpha [H, W] or None -> ink [H, W] in [0, 1]."""
    if alpha is not None and (alpha < 1).any():
        return alpha  # transparent background: the alpha channel is the ink
    # Dark strokes on a light background; tones within 5% of white count as background (scanner/JPEG noise).
    return np.clip((1.0 - gray - 0.05) / 0.95, 0.0, 1.0)


def points_from_drawing(image: Any, n: int, seed: int = 0, extent: float = 3.0) -> torch.Tensor:
    """Sample ``n`` 2-D points whose density follows the ink of a drawing.

    image: a PIL image, or a numpy array (H, W), (H, W, 3) or (H, W, 4), uint8 (0..255) or float (0..1).
    Ink is the darkness of strokes on a light background or, when there is an alpha channel with any
    transparency, the alpha. Pixels are drawn with probability proportional to their ink, then jittered
    uniformly inside the pixel. The image maps to [-extent, extent] along its longer side (aspect ratio kept,
    centred), with y pointing up: row 0 (the top of the image) is at +y.
    Returns float32 [n, 2]. Deterministic given ``seed``.
    """
    n = _check_n(n)
    seed = _check_seed(seed)
    if isinstance(extent, bool) or not isinstance(extent, (int, float)) or not 0 < extent < math.inf:
        raise ValueError(f"extent must be a positive number, got {extent!r}")
    ink = _ink_from_image(image)  # [H, W]
    H, W = ink.shape
    total = float(ink.sum())
    if not total > 0:
        raise ValueError("drawing is empty: draw some strokes (dark on a light background) before sampling points")
    g = _generator(seed)
    cdf = torch.from_numpy(np.cumsum(ink.ravel()) / total)  # [H * W], float64, ends at 1
    u = torch.rand(n, generator=g, dtype=torch.float64) * float(cdf[-1])
    idx = torch.searchsorted(cdf, u, right=True).clamp_(max=H * W - 1)  # inverse-CDF sampling, works for any size
    rows = torch.div(idx, W, rounding_mode="floor").double()
    cols = (idx % W).double()
    jitter = torch.rand(n, 2, generator=g, dtype=torch.float64)  # uniform inside the pixel
    scale = 2.0 * extent / max(H, W)
    x = (cols + jitter[:, 0] - W / 2) * scale
    y = (H / 2 - (rows + jitter[:, 1])) * scale  # row 0 is the top -> +y
    return torch.stack([x, y], 1).float()


def check_drawing(image: Any, min_pixels: int = MIN_DRAWING_PIXELS) -> int:
    """The number of inked pixels (ink > 0.5) of a drawing; ValueError when it is empty or when the strokes are too
    small to sample a shape from (fewer than ``min_pixels``: a dot or a stray click)."""
    ink = _ink_from_image(image)
    inked = int((ink > 0.5).sum())
    if inked == 0:
        raise ValueError("drawing is empty: draw some strokes (dark on a light background) before sampling points")
    if inked < min_pixels:
        raise ValueError(
            f"drawing: the strokes cover only {inked} pixel{'s' if inked != 1 else ''}, fewer than "
            f"{min_pixels}: draw a bigger shape"
        )
    return inked


def dataset_from_drawing(image: Any, n: int, seed: int = 0, extent: float = 3.0) -> tuple[torch.Tensor, None]:
    """A drawing as a dataset, with make_dataset's return convention: (x float32 [n, 2], None)."""
    return points_from_drawing(image, n, seed=seed, extent=extent), None
