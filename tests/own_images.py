"""A small upload like a visitor's (issue 21, item 7): PNGs of rings and bars in two class folders, drawn with PIL at
64x64 with some variation (position, size, stroke thickness, tilt, gray levels and pixel noise), zipped as the Train
tab takes them.  The bench (bench/bench_own_images.py) and the test of the tab's measured claim
(tests/test_own_images.py) train on it; two independent checks read a sample's class: the nearest class mean of the
upload (``nearest_mean_rate``) and a small CNN trained on the upload alone (``classifier_rate``)."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
import torch
from PIL import Image, ImageDraw

__all__ = [
    "CLASSES",
    "plain_shape_png",
    "shape_png",
    "shapes_zip",
    "nearest_mean_rate",
    "shape_classifier",
    "classifier_rate",
]

CLASSES = ("bars", "circles")  # the folder names; the upload's labels follow their sorted order: bars 0, circles 1
SIDE = 64  # pixels a side of the drawn PNGs (the tab shrinks them to 8, 16 or 32)


def _rotated_bar(cx: float, cy: float, length: float, width: float, angle: float) -> list[tuple[float, float]]:
    """The corners of a bar of ``length`` x ``width`` centred at (cx, cy), tilted by ``angle`` (radians) from upright."""
    c, s = math.cos(angle), math.sin(angle)
    half = [(-width / 2, -length / 2), (width / 2, -length / 2), (width / 2, length / 2), (-width / 2, length / 2)]
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in half]


def plain_shape_png(shape: str) -> bytes:
    """A 20-pixel RGB PNG: an upright black bar (``"bar"``) or a ring (anything else) on white, the same every time."""
    im = Image.new("RGB", (20, 20), "white")
    d = ImageDraw.Draw(im)
    if shape == "bar":
        d.rectangle((8, 2, 12, 17), fill="black")
    else:
        d.ellipse((2, 2, 17, 17), outline="black", width=3)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def shape_png(kind: str, rng: np.random.Generator) -> bytes:
    """One PNG: a ring (``circles``) or a filled, slightly tilted bar (``bars``), dark ink on a light background."""
    paper, ink = int(rng.integers(215, 256)), int(rng.integers(0, 60))
    im = Image.new("L", (SIDE, SIDE), paper)
    d = ImageDraw.Draw(im)
    cx, cy = SIDE / 2 + rng.uniform(-8, 8), SIDE / 2 + rng.uniform(-8, 8)
    if kind == "circles":
        r = rng.uniform(12, 22)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=ink, width=int(rng.integers(4, 9)))
    elif kind == "bars":
        length, width = rng.uniform(32, 54), rng.uniform(7, 14)
        d.polygon(_rotated_bar(cx, cy, length, width, math.radians(rng.uniform(-20, 20))), fill=ink)
    else:
        raise ValueError(f"kind must be one of {CLASSES}, got {kind!r}")
    pixels = np.asarray(im, dtype=np.float32) + rng.normal(0.0, 18.0, (SIDE, SIDE))  # scanner-like noise
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def shapes_zip(per_class: int = 15, seed: int = 0) -> bytes:
    """A zip of ``per_class`` PNGs in each of ``circles/`` and ``bars/`` (30 in all by default)."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for kind in CLASSES:
            for i in range(per_class):
                z.writestr(f"{kind}/{i:02d}.png", shape_png(kind, rng))
    return buf.getvalue()


def nearest_mean_rate(samples: torch.Tensor, labels: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of ``samples`` [n, 1, S, S] whose nearest class mean of the upload (x [N, 1, S, S], labels y [N];
    Euclidean distance in pixel space) is the class they were sampled for (``labels`` [n])."""
    k = int(y.max()) + 1
    means = torch.stack([x[y == c].mean(0) for c in range(k)]).flatten(1)  # [K, S*S]
    d = torch.cdist(samples.flatten(1).float(), means)  # [n, K]
    return float((d.argmin(1) == labels).float().mean())


def shape_classifier(x: torch.Tensor, y: torch.Tensor, seed: int = 0, steps: int = 400) -> torch.nn.Module:
    """A small CNN trained on the upload alone (x [N, 1, S, S], labels y [N]), with random shifts (± S/8 pixels),
    horizontal flips and pixel noise (std 0.15), so that it reads shapes where they are, not where they were."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(32, int(y.max()) + 1),
        )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    shift = max(1, x.shape[-1] // 8)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=g))
        xb = torch.roll(x[idx], (dy, dx), dims=(2, 3))
        if torch.rand(1, generator=g) < 0.5:
            xb = xb.flip(3)
        xb = xb + 0.15 * torch.randn(xb.shape, generator=g)
        loss = torch.nn.functional.cross_entropy(net(xb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval().requires_grad_(False)


def classifier_rate(samples: torch.Tensor, labels: torch.Tensor, net: torch.nn.Module) -> float:
    """The fraction of ``samples`` [n, 1, S, S] that ``net`` (shape_classifier) reads as their ``labels`` [n]."""
    with torch.no_grad():
        return float((net(samples.float()).argmax(1) == labels).float().mean())
