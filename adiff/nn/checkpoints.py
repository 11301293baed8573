"""Checkpoints: one .safetensors file holding the tensors, with the config, counters and schedule as JSON in its
header metadata, and a SHA-256 of the tensor bytes.  Loading never unpickles.  A corrupt, truncated or mismatched
file raises CheckpointError (a ValueError) with the reason, before anything is changed.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

__all__ = ["CheckpointError", "save_checkpoint", "read_checkpoint", "FORMAT", "MAX_CHECKPOINT_BYTES"]

FORMAT = "adiff-checkpoint"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 256 * 2**20


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, truncated, or not matching its model."""


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write tensors + JSON metadata atomically (a temporary file renamed into place)."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "adiff": json.dumps(meta, sort_keys=True),
        "sha256": _digest(tensors),
    }
    blob = st_save(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary readable file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_checkpoint(source) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint from a path or from bytes: (tensors on CPU, metadata dict).  Raises CheckpointError."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "<uploaded bytes>"
    else:
        p = Path(source)
        name = str(p)
        if not p.is_file():
            raise CheckpointError(f"checkpoint {name!r} does not exist")
        if p.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"checkpoint {name!r} is {p.stat().st_size} bytes, over the {MAX_CHECKPOINT_BYTES} byte limit")
        data = p.read_bytes()
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"checkpoint {name} is {len(data)} bytes, over the {MAX_CHECKPOINT_BYTES} byte limit")
    if len(data) < 8:
        raise CheckpointError(f"checkpoint {name} is truncated or not a safetensors file ({len(data)} bytes)")
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or 8 + n > len(data):
        raise CheckpointError(f"checkpoint {name} is truncated or not a safetensors file (header of {n} bytes, file of {len(data)})")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {name} is corrupt: its header is not JSON ({e})") from None
    md = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(md, dict) or md.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {name} is not an adiff checkpoint (no '{FORMAT}' metadata)")
    if md.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(f"checkpoint {name} has format version {md.get('format_version')!r}; this adiff reads {FORMAT_VERSION}")
    try:
        tensors = st_load(data)
    except (SafetensorError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {name} is corrupt or truncated: {e}") from None
    if _digest(tensors) != md.get("sha256"):
        raise CheckpointError(f"checkpoint {name} is corrupt: the tensor data does not match its checksum")
    try:
        meta = json.loads(md["adiff"])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {name} is corrupt: unreadable metadata ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {name} is corrupt: metadata is not an object")
    return tensors, meta


def migrate_config(config, schedule_meta: dict | None = None) -> dict:
    """A checkpoint's config as ModelConfig.from_dict takes it.  Nested configs (with "arch", "diffusion",
    "training" sections) are current; a flat one predates them and describes an epsilon-prediction VP model whose
    linear schedule always ran from 1e-4 to 0.02 (``schedule_meta``, the checkpoint's stored schedule, says so
    explicitly when present), so that range is pinned: today's default rescales it for T != 1000."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be an object, got {type(config).__name__}")
    if "arch" in config:
        return dict(config)
    flat = dict(config)
    if flat.get("noise_schedule", "linear") == "linear" and "beta_range" not in flat and flat.get("process", "vp") == "vp":
        sm = schedule_meta if isinstance(schedule_meta, dict) else {}
        flat["beta_range"] = [float(sm.get("beta_start", 1e-4)), float(sm.get("beta_end", 0.02))]
    return flat
