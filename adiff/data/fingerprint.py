"""A training set's identity: a short digest of its tensors, recorded with a model trained on data that has no name
(a user's drawing or images), so that two models can be told to come from the same data or not."""

from __future__ import annotations

import hashlib

import torch

__all__ = ["data_fingerprint"]

FINGERPRINT_HEX = 16  # 64 bits of SHA-256: enough to tell one user's uploads apart


def data_fingerprint(x: torch.Tensor, labels: torch.Tensor | None = None) -> str:
    """``"sha256:<16 hex digits>"`` over the data's shape and float32 values (x: [N, ...]) and, when given, the labels'
    int64 values ([N]): the same tensors give the same fingerprint on any machine (little-endian bytes), a change
    of one value, of the order or of one label gives another."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a tensor [N, ...], got {type(x).__name__}")
    if labels is not None and (not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (x.shape[0],)):
        raise ValueError(f"labels must be a tensor [N] with N = {x.shape[0]}, got {getattr(labels, 'shape', labels)}")
    h = hashlib.sha256()
    h.update(repr(tuple(x.shape)).encode())
    h.update(x.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4", copy=False).tobytes())
    if labels is not None:
        h.update(b"labels")
        h.update(labels.detach().to("cpu", torch.int64).contiguous().numpy().astype("<i8", copy=False).tobytes())
    return f"sha256:{h.hexdigest()[:FINGERPRINT_HEX]}"
