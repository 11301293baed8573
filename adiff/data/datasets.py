"""Built-in datasets, all made by code (nothing is ever downloaded).

Two kinds of data:

* 2-D toy distributions, data_shape (2,): "moons", "8gaussians", "swissroll", "checkerboard", "spiral", "circles",
  and "drawing" (points sampled from a user's drawing, see :mod:`adiff.data.drawings`). The built-in ones share one
  scale: roughly zero mean, per-coordinate std about 1 (between 0.6 and 1.5), and essentially all mass inside
  [-3, 3]^2, so a single plot range ``PLOT_RANGE = (-3.5, 3.5)`` fits every one of them.
* "glyphs": 16x16 grayscale images of the digits 0-9, data_shape (1, 16, 16), values in [-1, 1]
  (background -1, full ink +1), rendered with Pillow's bundled font under random geometry, labelled by digit.
* "digits": real handwriting, the UCI 8x8 digits (data_shape (1, 8, 8), same value range), drawn from the fixed
  training split shipped in assets/ (see :mod:`adiff.data.digits`; the held-out split is ``digits_split``).

Every sample is a random draw: positions along curves and angles are drawn at random (evenly spaced points are not
a sample). All randomness comes from a local generator seeded with ``seed``; the global RNGs are never touched, so
the same (name, n, seed) always gives the same tensors.

"8gaussians" is an exact Gaussian mixture (:func:`eight_gaussians_mixture`), so the closed-form denoiser of
:class:`adiff.data.gmm.GaussianMixture` is the true optimal denoiser for that dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .checks import MAX_SAMPLES, _check_n, _check_seed, _generator
from .digits import DIGITS_SIZE, make_digits
from .glyphs import GLYPH_SIZE, make_glyphs
from .gmm import GaussianMixture

__all__ = [
    "DATASETS",
    "TOY_2D_DATASETS",
    "IMAGE_DATASETS",
    "DATA_SHAPES",
    "NUM_CLASSES",
    "MAX_SAMPLES",
    "PLOT_RANGE",
    "DatasetInfo",
    "dataset_info",
    "make_dataset",
    "eight_gaussians_mixture",
    "gaussian_mixture_for",
]

PLOT_RANGE = (-3.5, 3.5)  # one axis range (both axes) that fits every built-in 2-D dataset

TOY_2D_DATASETS = ("moons", "8gaussians", "swissroll", "checkerboard", "spiral", "circles")
IMAGE_DATASETS = ("glyphs", "digits")
DATASETS = TOY_2D_DATASETS + ("drawing",) + IMAGE_DATASETS  # "drawing" needs make_dataset(..., image=...)

DATA_SHAPES: dict[str, tuple[int, ...]] = {
    **{name: (2,) for name in TOY_2D_DATASETS},
    "drawing": (2,),
    "glyphs": (1, GLYPH_SIZE, GLYPH_SIZE),
    "digits": (1, DIGITS_SIZE, DIGITS_SIZE),
}
NUM_CLASSES: dict[str, int | None] = {
    "moons": 2,
    "8gaussians": 8,
    "swissroll": None,
    "checkerboard": None,
    "spiral": 2,
    "circles": 2,
    "drawing": None,
    "glyphs": 10,
    "digits": 10,
}


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # the key accepted by make_dataset
    data_shape: tuple[int, ...]  # per-sample shape: (2,) for points, (1, 16, 16) for glyphs
    num_classes: int | None  # number of labels, or None for an unlabelled dataset
    description: str  # one line for people: what the data looks like, what the labels mean
    scale: str  # one line: the range / spread of the values


_INFO = {
    "moons": (
        "two interleaving half circles (sklearn-style), label = which moon (0 upper, 1 lower)",
        "centred; std about 1.23 (x) and 0.71 (y); inside about [-2.6, 2.6] x [-1.6, 1.6]",
    ),
    "8gaussians": (
        "exact mixture of 8 equal-weight Gaussians (std 0.25) on a circle of radius 2, label = component",
        "zero mean; std about 1.44 per coordinate; inside about [-3, 3]^2",
    ),
    "swissroll": (
        "a 2-D swiss roll: a spiral sheet wound 1.5 turns, denser towards the outside; unlabelled",
        "centred; std about 1 per coordinate; inside about [-2.4, 2.4]^2",
    ),
    "checkerboard": (
        "uniform on the 8 dark squares of a 4x4 checkerboard; unlabelled",
        "zero mean; std about 1.15 per coordinate; exactly inside [-2, 2]^2",
    ),
    "spiral": (
        "two interleaved spiral arms of 1.5 turns each, label = arm",
        "zero mean; std about 1 per coordinate; inside about [-2.2, 2.2]^2",
    ),
    "circles": (
        "two concentric rings of radius 1 and 2, label = ring (0 inner, 1 outer)",
        "zero mean; std about 1.12 per coordinate; inside about [-2.2, 2.2]^2",
    ),
    "drawing": (
        "points sampled from a drawing, with density following the ink; unlabelled",
        "the drawing's longer side spans [-extent, extent] (default extent 3), y up",
    ),
    "glyphs": (
        "16x16 grayscale digits 0-9 from Pillow's bundled font, randomly shifted, scaled, rotated, sheared "
        "and thickened; label = digit",
        "pixel values in [-1, 1]: background -1, full ink +1",
    ),
    "digits": (
        "real handwritten digits 0-9, 8x8 (UCI optical recognition, 43 writers, CC BY 4.0), from the fixed "
        "1,438-image training split in shuffled passes; label = digit",
        "pixel values in [-1, 1]: count of 'on' pixels in a 4x4 block (0..16) / 8 - 1",
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """Shape, labels and a short description of the dataset ``name``."""
    _check_name(name)
    description, scale = _INFO[name]
    return DatasetInfo(name, DATA_SHAPES[name], NUM_CLASSES[name], description, scale)


# ---------------------------------------------------------------------------------------------- validation
def _check_name(name: Any) -> str:
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {name!r}")
    return name


# ---------------------------------------------------------------------------------------------- entry point
def make_dataset(name: str, n: int, seed: int = 0, *, image: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Draw ``n`` samples of the built-in dataset ``name``.

    Returns (x, labels): x float32 [n, *DATA_SHAPES[name]]; labels long [n] with values in
    0..NUM_CLASSES[name]-1, or None for an unlabelled dataset. Deterministic given ``seed``.
    ``image`` is only for name="drawing" (see :func:`points_from_drawing`), where it is required.
    """
    _check_name(name)
    n = _check_n(n)
    seed = _check_seed(seed)
    if name == "drawing":
        if image is None:
            raise ValueError("dataset 'drawing' needs image=... (a PIL image or a numpy array of the drawing)")
        from .drawings import points_from_drawing  # late: drawings needs PIL, the other sets do not

        return points_from_drawing(image, n, seed=seed), None
    if image is not None:
        raise ValueError(f"image is only used by dataset 'drawing', got dataset {name!r}")
    g = _generator(seed)
    if name == "glyphs":
        x, labels = make_glyphs(n, g)
    elif name == "digits":
        x, labels = make_digits(n, g)
    else:
        x, labels = _TOY_2D[name](n, g)
    expected = (n, *DATA_SHAPES[name])
    assert x.shape == expected and x.dtype == torch.float32, (name, tuple(x.shape), x.dtype)
    assert labels is None or (labels.shape == (n,) and labels.dtype == torch.long)
    return x, labels


# ---------------------------------------------------------------------------------------------- 2-D toys
def eight_gaussians_mixture() -> GaussianMixture:
    """The exact distribution of "8gaussians": 8 equal-weight isotropic Gaussians, means at radius 2.0 at angles
    k*pi/4 (k = 0..7, k = 0 on the +x axis), each with std 0.25 (cov 0.0625 I). Per-coordinate std
    sqrt(2 + 0.0625) ~ 1.44; essentially all mass inside [-3, 3]^2."""
    k = torch.arange(8, dtype=torch.float64)
    angles = k * math.pi / 4
    means = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # [8, 2]
    covs = 0.25**2 * torch.eye(2, dtype=torch.float64).expand(8, 2, 2).clone()  # [8, 2, 2]
    return GaussianMixture(torch.full((8,), 1 / 8, dtype=torch.float64), means, covs)


def gaussian_mixture_for(name: str) -> GaussianMixture | None:
    """The exact Gaussian mixture a dataset is sampled from ("8gaussians"), or None when it is not one."""
    _check_name(name)
    return eight_gaussians_mixture() if name == "8gaussians" else None


def _uniform(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64)  # [n] in [0, 1)


def _normal(shape, g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _coin(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=g)  # long [n] in {0, 1}


_MOONS_NOISE = 0.08  # Gaussian noise in the raw sklearn units (moon radius 1)
# Raw moons: upper (cos a, sin a), lower (1 - cos a, 0.5 - sin a), a ~ U[0, pi], each moon with probability 1/2.
# Population mean (0.5, 0.25); variances x: 1/2 + 1/4, y: (1/2 - 4/pi^2) + (2/pi - 1/4)^2, plus noise^2.
_MOONS_MEAN = (0.5, 0.25)
_MOONS_VAR = (0.75 + _MOONS_NOISE**2, 0.5 - 4 / math.pi**2 + (2 / math.pi - 0.25) ** 2 + _MOONS_NOISE**2)
_MOONS_SCALE = 1 / math.sqrt(sum(_MOONS_VAR) / 2)  # isotropic: keeps the half circles round


def _moons(n: int, g: torch.Generator):
    """Two interleaving half circles (sklearn's make_moons) with random angles and Gaussian noise 0.08 (raw units),
    then centred and scaled by one factor (~1.41, shape preserved) so that the mean per-coordinate variance is 1:
    std ~1.23 in x, ~0.71 in y; all mass inside about [-2.6, 2.6] x [-1.6, 1.6]. Label = moon (0 upper, 1 lower)."""
    labels = _coin(n, g)
    a = math.pi * _uniform(n, g)
    upper = torch.stack([torch.cos(a), torch.sin(a)], 1)  # [n, 2]
    lower = torch.stack([1 - torch.cos(a), 0.5 - torch.sin(a)], 1)  # [n, 2]
    x = torch.where(labels.unsqueeze(1) == 0, upper, lower) + _MOONS_NOISE * _normal((n, 2), g)
    x = (x - torch.tensor(_MOONS_MEAN, dtype=torch.float64)) * _MOONS_SCALE
    return x.float(), labels


def _eight_gaussians(n: int, g: torch.Generator):
    """Samples of :func:`eight_gaussians_mixture`; label = component 0..7 (component k sits at angle k*pi/4)."""
    return eight_gaussians_mixture().sample(n, generator=g)


_SWISS_T = (1.5 * math.pi, 4.5 * math.pi)  # the roll is (t cos t, t sin t), t ~ U[_SWISS_T]
_SWISS_NOISE = 0.4  # Gaussian noise in raw units (the roll's outer radius is 14.1)


def _swiss_moments():
    a, b = _SWISS_T
    mx = ((b * math.sin(b) + math.cos(b)) - (a * math.sin(a) + math.cos(a))) / (b - a)  # E[t cos t]
    my = ((-b * math.cos(b) + math.sin(b)) - (-a * math.cos(a) + math.sin(a))) / (b - a)  # E[t sin t]
    r2 = (a * a + a * b + b * b) / 3 + 2 * _SWISS_NOISE**2  # E|x|^2
    var = (r2 - mx * mx - my * my) / 2  # mean per-coordinate variance
    return (mx, my), 1 / math.sqrt(var)


_SWISS_MEAN, _SWISS_SCALE = _swiss_moments()


def _swissroll(n: int, g: torch.Generator):
    """The 2-D swiss roll (t cos t, t sin t), t ~ U[1.5 pi, 4.5 pi], plus Gaussian noise 0.4 in raw units, centred
    and scaled by one factor (~1/6.8) to mean per-coordinate variance 1 (std ~1 per coordinate, noise ~0.06);
    all mass inside about [-2.4, 2.4]^2. Unlabelled."""
    t = _SWISS_T[0] + (_SWISS_T[1] - _SWISS_T[0]) * _uniform(n, g)
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) + _SWISS_NOISE * _normal((n, 2), g)
    x = (x - torch.tensor(_SWISS_MEAN, dtype=torch.float64)) * _SWISS_SCALE
    return x.float(), None


def _checkerboard(n: int, g: torch.Generator):
    """Uniform on the 8 occupied squares of a 4x4 checkerboard spanning [-2, 2]^2 (square (i, j) of side 1, counted
    from the bottom left, is occupied when i + j is even). Zero mean, std 2/sqrt(3) ~ 1.15 per coordinate, exactly
    inside [-2, 2]^2. Unlabelled."""
    col = torch.randint(0, 4, (n,), generator=g)  # any column
    row = 2 * torch.randint(0, 2, (n,), generator=g) + (col % 2)  # a row of matching parity
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    x = torch.stack([col, row], 1).double() + u - 2.0
    return x.float(), None


_SPIRAL_TURNS = 1.5
_SPIRAL_NOISE = 0.08  # Gaussian noise after scaling


def _spiral(n: int, g: torch.Generator):
    """Two interleaved Archimedean spiral arms r = theta, theta = 3 pi sqrt(u) (so points are roughly uniform along
    the arc), the second arm rotated by pi; scaled so that the per-coordinate std is 1 (E r^2 = (3 pi)^2 / 2 before
    scaling), plus Gaussian noise 0.08. Zero mean; all mass inside about [-2.2, 2.2]^2. Label = arm (0 or 1)."""
    labels = _coin(n, g)
    theta_max = 2 * math.pi * _SPIRAL_TURNS
    theta = theta_max * torch.sqrt(_uniform(n, g))
    phase = theta + math.pi * labels.double()
    scale = 1 / math.sqrt(theta_max**2 / 4 + _SPIRAL_NOISE**2)  # per-coordinate variance of r e^{i phase} is E[r^2]/2
    x = theta.unsqueeze(1) * torch.stack([torch.cos(phase), torch.sin(phase)], 1) * scale
    x = x + _SPIRAL_NOISE * _normal((n, 2), g)
    return x.float(), labels


_CIRCLES_RADII = (1.0, 2.0)
_CIRCLES_NOISE = 0.06


def _circles(n: int, g: torch.Generator):
    """Two concentric rings of radius 1.0 and 2.0 (each with probability 1/2) at random angles, plus Gaussian noise
    0.06. Zero mean, std sqrt((1 + 4) / 4) ~ 1.12 per coordinate, inside about [-2.2, 2.2]^2.
    Label = ring (0 inner, 1 outer)."""
    labels = _coin(n, g)
    a = 2 * math.pi * _uniform(n, g)
    r = torch.tensor(_CIRCLES_RADII, dtype=torch.float64)[labels]
    x = r.unsqueeze(1) * torch.stack([torch.cos(a), torch.sin(a)], 1) + _CIRCLES_NOISE * _normal((n, 2), g)
    return x.float(), labels


_TOY_2D = {
    "moons": _moons,
    "8gaussians": _eight_gaussians,
    "swissroll": _swissroll,
    "checkerboard": _checkerboard,
    "spiral": _spiral,
    "circles": _circles,
}
assert tuple(_TOY_2D) == TOY_2D_DATASETS
