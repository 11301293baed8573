"""The "glyphs" image dataset: digits 0-9 rendered with Pillow's bundled font (never a system font), 16x16
grayscale in [-1, 1], under random stroke width, scale, aspect, rotation, shear and shift.  ``adiff.data.make_dataset
("glyphs", n, seed)`` is the public entry point; this module is the renderer behind it."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont, features

__all__ = ["GLYPH_SIZE", "make_glyphs"]

GLYPH_SIZE = 16  # glyphs are GLYPH_SIZE x GLYPH_SIZE pixels
_RENDER_SIZE = 64  # glyphs are drawn at this resolution, transformed, then box-filtered down by 4
_FONT_SIZE = 48  # Pillow's bundled FreeType font (Aileron Regular) at this size, on the 64x64 canvas
_STROKE_WIDTHS = (1, 2, 3)  # extra stroke around the font outline, in pixels of the 64x64 canvas


@functools.lru_cache(maxsize=1)
def _base_glyphs() -> torch.Tensor:
    """Ink in [0, 1] of each digit at each stroke width, centred on its ink bounding box:
    float32 [10, len(_STROKE_WIDTHS), 64, 64]. Read-only (shared by every call)."""
    if not features.check("freetype2"):
        raise RuntimeError(
            "glyphs need Pillow built with FreeType (for its bundled font, ImageFont.load_default(size))"
        )
    font = ImageFont.load_default(size=_FONT_SIZE)  # Pillow's bundled font (Pillow >= 10.1); never a system file
    S = _RENDER_SIZE
    out = np.zeros((10, len(_STROKE_WIDTHS), S, S), dtype=np.float32)
    for d in range(10):
        for j, sw in enumerate(_STROKE_WIDTHS):
            im = Image.new("L", (S, S), 0)
            ImageDraw.Draw(im).text(
                (S / 2, S / 2), str(d), font=font, fill=255, anchor="mm", stroke_width=sw, stroke_fill=255
            )
            a = np.asarray(im, dtype=np.float32) / 255.0
            ys, xs = np.nonzero(a > 0)
            # Integer shift that puts the ink bounding box in the middle of the canvas.
            dy = int(round(S / 2 - (ys.min() + ys.max() + 1) / 2))
            dx = int(round(S / 2 - (xs.min() + xs.max() + 1) / 2))
            out[d, j] = np.roll(a, (dy, dx), axis=(0, 1))
    return torch.from_numpy(out)


# Random geometry of a glyph (uniform ranges). Chosen so that the largest digit, rotated and shifted, stays inside
# the canvas; shifts are in units of the half-canvas (1.0 = 32 px of 64 = 8 px of 16).
_GLYPH_SCALE = (0.85, 1.12)
_GLYPH_ASPECT = (0.85, 1.15)  # width / height multiplier
_GLYPH_ROTATION_DEG = 12.0
_GLYPH_SHEAR = 0.2
_GLYPH_SHIFT = 0.1  # +- 3.2 px of 64 = +- 0.8 px of 16


def make_glyphs(n: int, g: torch.Generator, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` digit images: float32 [n, 1, 16, 16] in [-1, 1] (background -1, full ink +1), labels long [n].

    Each is digit d ~ U{0..9} from Pillow's bundled font (size 48 on a 64x64 canvas) with a random stroke width
    (1..3 px at 64x64), scale, aspect, rotation (+-12 deg), shear and shift, resampled bilinearly at 64x64 and then
    box-filtered (4x4 mean, an antialiasing downsample) to 16x16. About 10k per second on one CPU core.
    """
    base = _base_glyphs()  # [10, W, 64, 64]
    labels = torch.randint(0, 10, (n,), generator=g)
    stroke = torch.randint(0, len(_STROKE_WIDTHS), (n,), generator=g)
    r = torch.rand(n, 6, generator=g, dtype=torch.float64)
    scale = _GLYPH_SCALE[0] + (_GLYPH_SCALE[1] - _GLYPH_SCALE[0]) * r[:, 0]
    aspect = _GLYPH_ASPECT[0] + (_GLYPH_ASPECT[1] - _GLYPH_ASPECT[0]) * r[:, 1]
    angle = math.radians(_GLYPH_ROTATION_DEG) * (2 * r[:, 2] - 1)
    shear = _GLYPH_SHEAR * (2 * r[:, 3] - 1)
    shift = _GLYPH_SHIFT * (2 * r[:, 4:6] - 1)  # [n, 2] (x, y) in normalised coordinates

    # Forward map glyph -> canvas: M = R(angle) @ Shear @ diag(scale * aspect, scale), then + shift.
    # grid_sample needs the inverse (canvas -> glyph): theta = [M^-1 | -M^-1 shift].
    cos, sin = torch.cos(angle), torch.sin(angle)
    R = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # [n, 2, 2]
    Sh = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
    Sh[:, 0, 1] = shear
    D = torch.diag_embed(torch.stack([scale * aspect, scale], -1))
    Minv = torch.linalg.inv(R @ Sh @ D)  # [n, 2, 2]
    theta = torch.cat([Minv, -(Minv @ shift.unsqueeze(-1))], -1).float()  # [n, 2, 3]

    S, k = _RENDER_SIZE, _RENDER_SIZE // GLYPH_SIZE
    out = torch.empty(n, 1, GLYPH_SIZE, GLYPH_SIZE)
    for i in range(0, n, chunk):
        sl = slice(i, min(i + chunk, n))
        src = base[labels[sl], stroke[sl]].unsqueeze(1)  # [b, 1, 64, 64]
        grid = F.affine_grid(theta[sl], [src.shape[0], 1, S, S], align_corners=False)  # [b, 64, 64, 2]
        ink = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out[sl] = F.avg_pool2d(ink, k)  # [b, 1, 16, 16]
    x = (2.0 * out - 1.0).clamp_(-1.0, 1.0)
    return x, labels
