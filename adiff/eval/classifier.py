"""A small CNN that reads digits: the 16x16 "glyphs" and the real 8x8 "digits".  Used by the reward "classifier
log-probability of digit d" and by the benchmarks that check class-conditional samples.

The shipped weights (``assets/glyph_classifier.safetensors`` and ``assets/digits_classifier.safetensors``, each with
its model card ``*.json``) are made by the command in adiff.cli.classifier, which trains on freshly generated glyphs
(or on the digits' training split) and reports held-out accuracy::

    python -m adiff.cli.classifier [--dataset glyphs|digits] [--steps N] [--seed S] [--out DIR]

Files are safetensors with the architecture and metrics as JSON in the metadata; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import torch
import torch.nn as nn

from ..data import DIGITS_SIZE, GLYPH_SIZE, digits_split, make_dataset

__all__ = [
    "GlyphClassifier",
    "DIGITS_CLASSIFIER_PATH",
    "evaluate_digits_classifier",
    "load_digits_classifier",
    "classifier_for_shape",
    "evaluate_glyph_classifier",
    "save_glyph_classifier",
    "load_glyph_classifier",
    "DEFAULT_CLASSIFIER_PATH",
    "HELDOUT_SEED",
    "TRAIN_SEED_BASE",
]

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
DEFAULT_CLASSIFIER_PATH = ASSETS_DIR / "glyph_classifier.safetensors"
DIGITS_CLASSIFIER_PATH = ASSETS_DIR / "digits_classifier.safetensors"
NUM_DIGITS = 10
# Training glyphs come from make_dataset("glyphs", ..., seed=TRAIN_SEED_BASE + 1000 * seed + chunk) (chunk < 1000), so
# every seed below TRAIN_SEED_BASE is never seen in training; HELDOUT_SEED is the one the metrics report.
TRAIN_SEED_BASE = 1_000_000
HELDOUT_SEED = 777
HELDOUT_SIZE = 5000
_METADATA_KEY = "adiff_glyph_classifier"


class GlyphClassifier(nn.Module):
    """x [B, 1, S, S] in [-1, 1] -> logits [B, 10], S = image_size (16 for glyphs, 8 for the real digits).

    Three 3x3 conv stages (S -> S/2 -> S/4 pixels, average pooling) with SiLU, then a linear read-out. Smooth
    activations and average pooling keep the gradient with respect to the input well behaved, since rewards
    differentiate log-softmax of this network in x. About 45k parameters with the default channels at S = 16.
    """

    def __init__(
        self, channels: tuple[int, int, int] = (16, 32, 64), num_classes: int = NUM_DIGITS, image_size: int = GLYPH_SIZE
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 3 or min(channels) < 1:
            raise ValueError(f"channels must be three positive integers, got {channels!r}")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 4 or image_size % 4:
            raise ValueError(f"image_size must be a positive multiple of 4, got {image_size!r}")
        c1, c2, c3 = channels
        self.channels = channels
        self.num_classes = int(num_classes)
        self.image_size = image_size
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c1, c1, 3, padding=1),
            nn.SiLU(),
            nn.AvgPool2d(2),  # S -> S/2
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c2, c2, 3, padding=1),
            nn.SiLU(),
            nn.AvgPool2d(2),  # S/2 -> S/4
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.SiLU(),
        )
        self.head = nn.Linear(c3 * (image_size // 4) ** 2, self.num_classes)

    def arch_args(self) -> dict:
        """The constructor's arguments, as stored with the weights."""
        return {"channels": list(self.channels), "num_classes": self.num_classes, "image_size": self.image_size}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, S, S):
            raise ValueError(f"GlyphClassifier expects x of shape [B, 1, {S}, {S}], got {tuple(x.shape)}")
        h = self.features(x)  # [B, c3, S/4, S/4]
        return self.head(h.flatten(1))  # [B, num_classes]


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def evaluate_glyph_classifier(
    model: GlyphClassifier,
    n: int = HELDOUT_SIZE,
    seed: int = HELDOUT_SEED,
    noise_std: float = 0.0,
    batch_size: int = 1000,
) -> float:
    """Accuracy of ``model`` on ``n`` glyphs made with ``seed`` (optionally plus Gaussian noise of ``noise_std``)."""
    x, y = make_dataset("glyphs", n, seed)
    if noise_std > 0:
        g = torch.Generator().manual_seed(seed + 1)
        x = x + noise_std * torch.randn(x.shape, generator=g)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, n, batch_size):
            logits = model(x[i : i + batch_size].to(device))  # [b, 10]
            correct += int((logits.argmax(1).cpu() == y[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / n


def evaluate_digits_classifier(model: GlyphClassifier, split: str = "heldout") -> float:
    """Accuracy of ``model`` on every real digit of a split ("heldout": 359 images never trained on)."""
    x, y = digits_split(split)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = int((model(x.to(device)).argmax(1).cpu() == y).sum())
    model.train(was_training)
    return correct / len(y)


# ---------------------------------------------------------------------------------------------- files
def save_glyph_classifier(model: GlyphClassifier, path: str | os.PathLike, metrics: dict | None = None) -> Path:
    """Write the weights as safetensors, with {"arch": ..., "metrics": ...} as JSON in the metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {_METADATA_KEY: json.dumps({"arch": model.arch_args(), "metrics": metrics or {}}, sort_keys=True)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=meta)
    path.chmod(0o644)  # an ordinary readable file (safetensors writes 0600)
    return path


_CACHE: dict[tuple, GlyphClassifier] = {}
_CACHE_LOCK = threading.Lock()


def load_glyph_classifier(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> GlyphClassifier:
    """Load a saved classifier (default: the shipped ``assets/glyph_classifier.safetensors``) in eval mode.

    The model is cached per (path, device, file mtime and size) and shared by every caller: its parameters have
    requires_grad=False (gradients still flow to the input). Treat it as read-only.
    Raises ValueError naming the path when the file is missing or is not a valid classifier file.
    """
    path = Path(DEFAULT_CLASSIFIER_PATH if path is None else path).resolve()
    device = torch.device(device)
    try:
        st = path.stat()
    except OSError as e:
        raise ValueError(f"classifier file {str(path)!r} cannot be read: {e.strerror or e}") from None
    key = (str(path), str(device), st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = _load(path, device)
            for old in [k for k in _CACHE if k[:2] == key[:2]]:
                del _CACHE[old]  # the file changed: drop the stale copy
            _CACHE[key] = model
    return model


def load_digits_classifier(
    path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> GlyphClassifier:
    """The shipped classifier of the real 8x8 digits (``assets/digits_classifier.safetensors``); cached and shared
    like :func:`load_glyph_classifier`."""
    return load_glyph_classifier(DIGITS_CLASSIFIER_PATH if path is None else path, device)


def classifier_for_shape(shape, device: str | torch.device = "cpu") -> GlyphClassifier:
    """The shipped classifier for images of per-sample ``shape``: (1, 16, 16) glyphs or (1, 8, 8) real digits."""
    shape = tuple(shape)
    if shape == (1, GLYPH_SIZE, GLYPH_SIZE):
        return load_glyph_classifier(device=device)
    if shape == (1, DIGITS_SIZE, DIGITS_SIZE):
        return load_digits_classifier(device=device)
    raise ValueError(
        f"no shipped digit classifier reads images of shape {list(shape)}: there is one for "
        f"[1, {GLYPH_SIZE}, {GLYPH_SIZE}] (glyphs) and one for [1, {DIGITS_SIZE}, {DIGITS_SIZE}] (digits)"
    )


def _load(path: Path, device: torch.device) -> GlyphClassifier:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        info = json.loads(meta[_METADATA_KEY])
        model = GlyphClassifier(**info["arch"])
        model.load_state_dict(tensors, strict=True)
    except Exception as e:  # safetensors' own error type, JSON, a missing key, mismatched shapes: all mean "bad file"
        raise ValueError(
            f"classifier file {str(path)!r} is not a valid classifier file ({type(e).__name__}: {e})"
        ) from None
    model.requires_grad_(False)
    return model.to(device).eval()
