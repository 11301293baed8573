"""Built-in datasets (adiff.data) and the shipped glyph classifier (adiff.eval.classifier): real data, no mocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from adiff.data import (
    DATA_SHAPES,
    DATASETS,
    NUM_CLASSES,
    PLOT_RANGE,
    TOY_2D_DATASETS,
    dataset_from_drawing,
    dataset_info,
    eight_gaussians_mixture,
    gaussian_mixture_for,
    make_dataset,
    points_from_drawing,
)
from adiff.data.gmm import GaussianMixture
from adiff.eval.classifier import (
    DEFAULT_CLASSIFIER_PATH,
    HELDOUT_SEED,
    TRAIN_SEED_BASE,
    GlyphClassifier,
    load_glyph_classifier,
    save_glyph_classifier,
)

BUILTIN = [name for name in DATASETS if name != "drawing"]


def _bar_drawing(top: bool = True) -> Image.Image:
    """White 200x100 canvas with a black horizontal bar in the top (or bottom) rows, x from 50 to 150 px."""
    im = Image.new("RGB", (200, 100), "white")
    y0 = 5 if top else 80
    ImageDraw.Draw(im).rectangle((50, y0, 149, y0 + 14), fill="black")
    return im


# ---------------------------------------------------------------------------------------------- every dataset
@pytest.mark.parametrize("name", BUILTIN)
def test_shape_dtype_labels(name):
    n = 300
    x, labels = make_dataset(name, n, seed=1)
    assert x.shape == (n, *DATA_SHAPES[name]) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    k = NUM_CLASSES[name]
    if k is None:
        assert labels is None
    else:
        assert labels.shape == (n,) and labels.dtype == torch.long
        assert labels.min() >= 0 and labels.max() < k
        assert len(labels.unique()) == k  # every class shows up in 300 draws
    info = dataset_info(name)
    assert info.data_shape == DATA_SHAPES[name] and info.num_classes == k and info.description and info.scale


@pytest.mark.parametrize("name", BUILTIN)
def test_deterministic_given_seed(name):
    x1, l1 = make_dataset(name, 64, seed=5)
    x2, l2 = make_dataset(name, 64, seed=5)
    x3, _ = make_dataset(name, 64, seed=6)
    assert torch.equal(x1, x2)
    assert (l1 is None and l2 is None) or torch.equal(l1, l2)
    assert not torch.equal(x1, x3)


def test_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_dataset("moons", 50, seed=0)
    make_dataset("glyphs", 5, seed=0)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", TOY_2D_DATASETS)
def test_2d_shared_scale(name):
    x, _ = make_dataset(name, 5000, seed=2)
    std = x.std(0)
    assert ((std > 0.5) & (std < 1.6)).all(), std
    assert x.mean(0).abs().max() < 0.2
    lo, hi = PLOT_RANGE
    inside = ((x > lo) & (x < hi)).all(1).float().mean()
    assert inside > 0.99
    assert x.abs().max() < 3.5


def test_moons_random_angles_not_evenly_spaced():
    x, labels = make_dataset("moons", 400, seed=0)
    upper = x[labels == 0].double()
    # Fit the upper moon's circle (Kasa: x^2 + y^2 = a x + b y + c), then look at the angles about its centre:
    # evenly spaced points would give constant gaps, a random sample gives exponential-like ones (std ~ mean).
    A = torch.cat([upper, torch.ones(len(upper), 1, dtype=torch.float64)], 1)
    coef = torch.linalg.lstsq(A, (upper**2).sum(1, keepdim=True)).solution[:, 0]
    centre = coef[:2] / 2
    angles = torch.atan2(upper[:, 1] - centre[1], upper[:, 0] - centre[0])
    angles = torch.sort(torch.remainder(angles + math.pi / 2, 2 * math.pi) - math.pi / 2).values  # in [-pi/2, 3pi/2)
    assert angles[0] > -0.5 and angles[-1] < math.pi + 0.5  # a half circle
    gaps = angles.diff()
    assert gaps.std() > 0.5 * gaps.mean()
    # Moons are not split exactly in half, either: labels are drawn.
    counts = [int((make_dataset("moons", 101, seed=s)[1] == 0).sum()) for s in range(5)]
    assert len(set(counts)) > 1


def test_moons_labels_follow_geometry():
    x, labels = make_dataset("moons", 2000, seed=3)
    assert x[labels == 0, 1].mean() > x[labels == 1, 1].mean() + 0.5  # upper moon is higher


def test_circles_ring_radii():
    x, labels = make_dataset("circles", 2000, seed=3)
    r = x.norm(dim=1)
    assert abs(r[labels == 0].mean() - 1.0) < 0.05 and abs(r[labels == 1].mean() - 2.0) < 0.05


def test_checkerboard_occupies_alternating_squares():
    x, labels = make_dataset("checkerboard", 4000, seed=0)
    assert labels is None and x.abs().max() <= 2.0
    col, row = torch.floor(x[:, 0] + 2).long(), torch.floor(x[:, 1] + 2).long()
    assert ((col + row) % 2 == 0).all()
    assert len(torch.unique(col * 4 + row)) == 8


# ---------------------------------------------------------------------------------------------- 8gaussians
def test_eight_gaussians_is_the_mixture():
    gmm = eight_gaussians_mixture()
    assert isinstance(gmm, GaussianMixture) and gmm.num_components == 8
    assert torch.allclose(gmm.weights, torch.full((8,), 1 / 8, dtype=torch.float64))
    assert torch.allclose(gmm.means[0], torch.tensor([2.0, 0.0], dtype=torch.float64))
    assert torch.allclose(gmm.means[2], torch.tensor([0.0, 2.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(gmm.covs, 0.0625 * torch.eye(2, dtype=torch.float64).expand(8, 2, 2))
    assert gaussian_mixture_for("8gaussians").to_dict() == gmm.to_dict()
    assert gaussian_mixture_for("moons") is None

    n = 8000
    x, labels = make_dataset("8gaussians", n, seed=4)
    counts = torch.bincount(labels, minlength=8).double()
    assert ((counts - n / 8).abs() < 5 * math.sqrt(n / 8)).all()
    for k in range(8):
        xk = x[labels == k].double()
        se = 0.25 / math.sqrt(len(xk))
        assert (xk.mean(0) - gmm.means[k]).abs().max() < 5 * se
        assert abs(xk.std(0).mean() - 0.25) < 0.02
    # The same seed gives what the mixture itself samples with a generator seeded the same way.
    g = torch.Generator().manual_seed(4)
    xg, lg = gmm.sample(n, generator=g)
    assert torch.equal(xg, x) and torch.equal(lg, labels)


# ---------------------------------------------------------------------------------------------- glyphs
def test_glyphs_range_and_properties():
    x, labels = make_dataset("glyphs", 1000, seed=11)
    assert x.shape == (1000, 1, 16, 16)
    assert x.min() >= -1 and x.max() <= 1
    assert x.min() == -1 and x.max() > 0.9  # background is -1, strokes reach full ink
    counts = torch.bincount(labels, minlength=10)
    assert counts.min() > 60  # balanced-ish
    ink = (x + 1) / 2  # [n, 1, 16, 16] in [0, 1]
    per_digit = torch.stack([ink[labels == d].mean() for d in range(10)])
    assert per_digit[1] < 0.8 * per_digit[8]
    # Not cropped: the outer ring of pixels is background.
    border = torch.cat([ink[:, 0, 0], ink[:, 0, -1], ink[:, 0, :, 0], ink[:, 0, :, -1]], 1)
    assert border.max() < 0.1
    # Random geometry: two glyphs of the same digit differ.
    ones = x[labels == 1]
    assert not torch.equal(ones[0], ones[1])


# ---------------------------------------------------------------------------------------------- drawings
def test_points_from_drawing_top_bar():
    im = _bar_drawing(top=True)  # 200 x 100: the longer side (x) spans [-3, 3]; px 50..150 -> x in [-1.5, 1.5]
    pts = points_from_drawing(im, 2000, seed=0)
    assert pts.shape == (2000, 2) and pts.dtype == torch.float32
    assert (pts[:, 1] > 0).all()  # top of the image is +y
    assert pts[:, 1].min() >= 0.9 - 1e-6 and pts[:, 1].max() <= 1.35 + 1e-6  # rows 5..19 -> y in [0.9, 1.35]
    assert pts[:, 0].min() >= -1.5 - 1e-6 and pts[:, 0].max() <= 1.5 + 1e-6
    assert pts[:, 0].min() < -1.3 and pts[:, 0].max() > 1.3  # the whole bar is covered
    bottom = points_from_drawing(_bar_drawing(top=False), 500, seed=0)
    assert (bottom[:, 1] < 0).all()
    assert torch.equal(pts, points_from_drawing(im, 2000, seed=0))
    x, labels = dataset_from_drawing(im, 100, seed=1)
    assert labels is None and x.shape == (100, 2)
    x2, _ = make_dataset("drawing", 100, seed=1, image=im)
    assert torch.equal(x, x2)


def test_points_from_drawing_arrays_and_alpha():
    gray = np.full((50, 50), 255, dtype=np.uint8)
    gray[:, :5] = 0  # a dark left column
    pts = points_from_drawing(gray, 300, seed=0, extent=1.0)
    assert (pts[:, 0] < -0.75).all() and pts[:, 1].abs().max() <= 1.0
    fl = np.ones((50, 50, 3), dtype=np.float32)
    fl[:, -5:] = 0.0  # a dark right column, as floats in [0, 1]
    assert (points_from_drawing(fl, 300, seed=0)[:, 0] > 2.3).all()
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)  # transparent canvas with an opaque (white!) stroke in the middle
    rgba[18:22, :, :3] = 255
    rgba[18:22, :, 3] = 255
    pts = points_from_drawing(Image.fromarray(rgba, "RGBA"), 300, seed=0)
    assert pts[:, 1].abs().max() < 0.35


def test_points_from_drawing_errors():
    with pytest.raises(ValueError, match="drawing is empty"):
        points_from_drawing(Image.new("L", (64, 64), 255), 10)
    with pytest.raises(ValueError, match="image"):
        points_from_drawing("not an image", 10)
    with pytest.raises(ValueError, match="image.*list"):
        points_from_drawing([[0, 1], [1, 0]], 10)
    with pytest.raises(ValueError, match="image"):
        points_from_drawing(np.zeros((4, 4, 2), dtype=np.uint8), 10)
    with pytest.raises(ValueError, match="drawing.*needs image"):
        make_dataset("drawing", 10)


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("name", ["foo", "", None, "Moons"])
def test_bad_name(name):
    with pytest.raises(ValueError, match=r"dataset must be one of \[.*'moons'.*\], got"):
        make_dataset(name, 10)
    with pytest.raises(ValueError, match="dataset must be one of"):
        dataset_info(name)


@pytest.mark.parametrize("n", [0, -1, 200_001, 2.5, "10", True, None])
def test_bad_n(n):
    with pytest.raises(ValueError, match=r"n must be an integer in 1\.\.200000, got"):
        make_dataset("moons", n)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed must be"):
        make_dataset("moons", 10, seed=-1)
    with pytest.raises(ValueError, match="seed must be"):
        make_dataset("moons", 10, seed=1.0)


# ---------------------------------------------------------------------------------------------- the classifier
def test_shipped_classifier_classifies_heldout_glyphs():
    assert DEFAULT_CLASSIFIER_PATH.stat().st_size < 1_000_000
    model = load_glyph_classifier()
    assert isinstance(model, GlyphClassifier) and not model.training
    assert sum(p.numel() for p in model.parameters()) < 200_000
    assert load_glyph_classifier() is model  # cached
    seed = 4242  # below TRAIN_SEED_BASE, so never used in training, and not the reported held-out seed either
    assert seed < TRAIN_SEED_BASE and seed != HELDOUT_SEED
    x, labels = make_dataset("glyphs", 1000, seed=seed)
    with torch.no_grad():
        acc = (model(x).argmax(1) == labels).float().mean().item()
        noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
        acc_noisy = (model(noisy).argmax(1) == labels).float().mean().item()
    assert acc >= 0.95 and acc_noisy >= 0.95, (acc, acc_noisy)


def test_classifier_is_differentiable_in_its_input():
    model = load_glyph_classifier()
    x, labels = make_dataset("glyphs", 4, seed=9)
    x = x.clone().requires_grad_(True)
    logp = model(x).log_softmax(-1)  # [4, 10]
    logp[torch.arange(4), labels].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_classifier_save_load_roundtrip_and_corrupt_file(tmp_path):
    torch.manual_seed(0)
    model = GlyphClassifier(channels=(4, 8, 8)).eval()
    path = save_glyph_classifier(model, tmp_path / "c.safetensors", {"heldout_accuracy": 0.1})
    loaded = load_glyph_classifier(path)
    assert loaded.channels == (4, 8, 8)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(ValueError, match="bad.safetensors"):
        load_glyph_classifier(bad)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated.safetensors"):
        load_glyph_classifier(truncated)
    with pytest.raises(ValueError, match="missing.safetensors"):
        load_glyph_classifier(tmp_path / "missing.safetensors")
