"""The "digits" dataset: real handwriting, the 1,797 8x8 images of the UCI optical-recognition handwritten digits
(Alpaydin & Kaynak 1998, CC BY 4.0) as scikit-learn ships them, read from ``assets/digits.safetensors`` (converted
once by ``scripts/convert_digits.py``; see ``assets/digits.json`` for the source, licence and checksums).

Pixels are counts 0..16 of 'on' pixels in 4x4 blocks of a 32x32 bitmap; adiff maps them to [-1, 1] with
x = count / 8 - 1 (background -1, full ink +1, as for the glyphs).  The split is fixed and stored in the file:
20% of every class is held out (359 images), the other 1,438 are the training split.  ``make_dataset("digits", n,
seed)`` draws only from the training split; the held-out images come from ``digits_split("heldout")``.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch

__all__ = ["DIGITS_SIZE", "DIGITS_PATH", "digits_split", "make_digits", "tensors_sha256"]

DIGITS_SIZE = 8  # images are DIGITS_SIZE x DIGITS_SIZE pixels
DIGITS_PATH = Path(__file__).resolve().parents[2] / "assets" / "digits.safetensors"
# SHA-256 of the tensors (tensors_sha256) written by scripts/convert_digits.py; a changed file fails loudly.
_TENSORS_SHA256 = "5024120200d38f91360f4947c1017be07c790620f82c715302d0af8857634ec2"
SPLITS = ("train", "heldout", "all")


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A checksum of named tensors (names, dtypes, shapes and bytes, in name order)."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        h.update(f"{key}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _load() -> dict[str, torch.Tensor]:
    """The file's tensors, checked: images uint8 [1797, 8, 8], labels uint8 [1797], heldout uint8 [1797]."""
    from safetensors.torch import load_file

    if not DIGITS_PATH.is_file():
        raise FileNotFoundError(
            f"dataset 'digits' needs {DIGITS_PATH}; it ships with adiff (made by scripts/convert_digits.py)"
        )
    tensors = load_file(str(DIGITS_PATH))
    digest = tensors_sha256(tensors)
    if digest != _TENSORS_SHA256:
        raise ValueError(f"dataset 'digits': {DIGITS_PATH} does not match its checksum (got {digest})")
    return tensors


def digits_split(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of a split, in file order: (x float32 [N, 1, 8, 8] in [-1, 1], labels long [N]).
    split: "train" (1,438 images), "heldout" (359) or "all" (1,797)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    t = _load()
    keep = torch.ones(len(t["labels"]), dtype=torch.bool) if split == "all" else (t["heldout"] == (split == "heldout"))
    x = t["images"][keep].float().unsqueeze(1) / 8.0 - 1.0  # [N, 1, 8, 8]: 0..16 -> [-1, 1]
    return x, t["labels"][keep].long()


def make_digits(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of the training split: x float32 [n, 1, 8, 8] in [-1, 1], labels long [n].

    The draws go through shuffled passes over the training split (each image once per pass, a fresh order per
    pass), so any n >= 1,438 holds every training image and no image repeats more than once more than another.
    """
    x, labels = digits_split("train")
    N = x.shape[0]
    passes = -(-n // N)
    idx = torch.cat([torch.randperm(N, generator=g) for _ in range(passes)])[:n]
    return x[idx], labels[idx]
