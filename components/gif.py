"""A stored trajectory as an animated GIF (Pillow only): x_t beside the predicted x0, one frame per kept step,
in the app's colours.  Points are drawn as dots on a fixed square range; images are tiled and upscaled.

Frames are drawn straight into a fixed palette ("P" mode), so no per-frame colour quantisation is needed
(that step cost about 20 ms a frame, most of the GIF's time)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .figures import COLORS, DEFAULT_RANGE

__all__ = ["trajectory_gif"]

_PANEL = 300  # pixels per panel side
_HEADER = 34
_GAP = 10
# palette indices
_WHITE, _AXIS, _BORDER, _XT, _X0, _TEXT = range(6)
_GRAY0, _GRAYS = 64, 64  # indices 64..127: a white-to-black ramp for image panels


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))


def _palette() -> list[int]:
    colors = [
        (255, 255, 255),
        (228, 228, 228),
        (180, 180, 180),
        _rgb(COLORS["x_t"]),
        _rgb(COLORS["x0_pred"]),
        (110, 110, 110),
    ]
    colors += [(0, 0, 0)] * (_GRAY0 - len(colors))
    colors += [(round(255 * (1 - k / (_GRAYS - 1))),) * 3 for k in range(_GRAYS)]
    colors += [(0, 0, 0)] * (256 - len(colors))
    return [c for rgb in colors for c in rgb]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def _points_panel(draw: ImageDraw.ImageDraw, x0: int, y0: int, pts: np.ndarray, color: int, rng) -> None:
    lo, hi = rng
    mid = (0 - lo) / (hi - lo) * _PANEL
    draw.line([(x0 + mid, y0), (x0 + mid, y0 + _PANEL)], fill=_AXIS)
    draw.line([(x0, y0 + mid), (x0 + _PANEL, y0 + mid)], fill=_AXIS)
    ok = np.isfinite(pts).all(1)
    px = (pts[ok, 0] - lo) / (hi - lo) * _PANEL
    py = (1 - (pts[ok, 1] - lo) / (hi - lo)) * _PANEL
    inside = (px >= 0) & (px <= _PANEL) & (py >= 0) & (py <= _PANEL)
    for u, v in zip(px[inside].tolist(), py[inside].tolist()):
        draw.ellipse([x0 + u - 2, y0 + v - 2, x0 + u + 2, y0 + v + 2], fill=color)
    draw.rectangle([x0, y0, x0 + _PANEL - 1, y0 + _PANEL - 1], outline=_BORDER)


def _images_panel(a: np.ndarray) -> Image.Image:
    """a [N, H, W] in [-1, 1] -> a P-mode tile (ink black on white) of _PANEL x _PANEL."""
    N, H, W = a.shape
    cols = max(1, math.ceil(math.sqrt(N)))
    rows = math.ceil(N / cols)
    canvas = np.full((rows * (H + 1) - 1, cols * (W + 1) - 1), -1.0, dtype=np.float32)
    for i in range(N):
        r, c = divmod(i, cols)
        canvas[r * (H + 1) : r * (H + 1) + H, c * (W + 1) : c * (W + 1) + W] = a[i]
    level = np.round((np.clip(np.nan_to_num(canvas, nan=0.0), -1, 1) + 1) / 2 * (_GRAYS - 1)).astype(np.uint8)
    img = Image.fromarray(level + _GRAY0, mode="P")
    img.putpalette(_palette())
    return img.resize((_PANEL, _PANEL), Image.NEAREST)


def trajectory_gif(trajectory, kind: str, path: str | Path, rng=DEFAULT_RANGE, frame_ms: int = 120) -> Path:
    """Write ``trajectory`` (adiff.samplers.Trajectory) as an animated GIF at ``path``; returns the path."""
    path = Path(path)
    font, small = _font(20), _font(16)
    palette = _palette()
    xs = trajectory.x.detach().float().cpu().numpy()
    x0s = trajectory.x0_pred.detach().float().cpu().numpy()
    if kind == "images":
        xs, x0s = xs[:, :, 0], x0s[:, :, 0]  # [K, N, H, W]
    frames = []
    K = len(trajectory)
    for k in range(K):
        img = Image.new("P", (2 * _PANEL + _GAP, _PANEL + _HEADER), _WHITE)
        img.putpalette(palette)
        d = ImageDraw.Draw(img)
        if kind == "points":
            _points_panel(d, 0, _HEADER, xs[k], _XT, rng)
            _points_panel(d, _PANEL + _GAP, _HEADER, x0s[k], _X0, rng)
        else:
            img.paste(_images_panel(xs[k]), (0, _HEADER))
            img.paste(_images_panel(x0s[k]), (_PANEL + _GAP, _HEADER))
        d.text((6, 6), f"x_t   t = {trajectory.timesteps[k]}", fill=_XT, font=font)
        d.text((_PANEL + _GAP + 6, 6), "predicted x0", fill=_X0, font=font)
        d.text((2 * _PANEL - 50, 10), f"{k + 1}/{K}", fill=_TEXT, font=small)
        frames.append(img)
    durations = [frame_ms] * (K - 1) + [1500]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=False)
    return path
