"""Checkpoints: one .safetensors file holding the tensors, with the config, counters and schedule as JSON in its
header metadata, and a SHA-256 of the tensor bytes.  Loading never unpickles.  A corrupt, truncated, hostile or
mismatched file raises CheckpointError (a ValueError) with the reason, before anything is changed.

Reading is in two steps so that an untrusted file is judged before it costs anything:

1. ``open_checkpoint`` reads only the header (at most ``MAX_HEADER_BYTES``, checked before it is read), parses its
   JSON with a nesting limit, and returns a ``CheckpointFile``: the adiff metadata, the counters (non-negative
   integers) and each tensor's dtype and shape.  No tensor is read.
2. ``CheckpointFile.tensors()`` reads the tensor data, verifies the checksum, and refuses NaN or infinite values,
   naming the tensor.

safetensors' format: 8 bytes little-endian header length N, N bytes of JSON
{"name": {"dtype", "shape", "data_offsets"}, ..., "__metadata__": {str: str}}, then the tensor bytes
(https://github.com/huggingface/safetensors#format).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

__all__ = [
    "COUNTERS",
    "FORMAT",
    "MAX_CHECKPOINT_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "CheckpointError",
    "CheckpointFile",
    "check_counters",
    "check_finite",
    "migrate_config",
    "open_checkpoint",
    "parse_json",
    "read_checkpoint",
    "save_checkpoint",
]

FORMAT = "adiff-checkpoint"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 256 * 2**20
MAX_HEADER_BYTES = 2**20  # adiff's own headers are a few kB; 1 MB leaves room for a long custom schedule
MAX_JSON_DEPTH = 32  # adiff's metadata nests 3 levels
COUNTERS = ("training_step", "adaptation_step")
_FLOAT_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
_ECHO = 80  # characters of a value shown back in a message


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, truncated, too costly, or not matching its model."""


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= _ECHO else f"{text[:_ECHO]}… ({len(text)} characters)"


# ---------------------------------------------------------------------------------------------- JSON with limits
def _max_depth(raw: bytes) -> int:
    """The deepest nesting of [ and { outside strings, in linear time (no recursion, no backtracking regex).
    A quote is escaped when an odd run of backslashes precedes it; unescaped quotes open and close strings."""
    a = np.frombuffer(raw, dtype=np.uint8)
    if a.size == 0:
        return 0
    backslash = a == ord("\\")
    run = np.cumsum(backslash, dtype=np.int32)
    run -= np.maximum.accumulate(np.where(backslash, 0, run))  # consecutive backslashes ending at i
    escaped = np.zeros(a.size, dtype=bool)
    escaped[1:] = (run[:-1] & 1).astype(bool)
    del run, backslash
    quote = (a == ord('"')) & ~escaped
    inside = (np.cumsum(quote, dtype=np.int32) & 1).astype(bool) & ~quote  # between an opening and a closing quote
    step = ((a == ord("[")) | (a == ord("{"))).astype(np.int8) - ((a == ord("]")) | (a == ord("}"))).astype(np.int8)
    step[inside] = 0
    return int(np.cumsum(step, dtype=np.int32).max())


def parse_json(raw: bytes | str, what: str, max_bytes: int = MAX_HEADER_BYTES, max_depth: int = MAX_JSON_DEPTH):
    """json.loads with a size and a nesting limit checked first, so a hostile document can neither exhaust memory
    nor recurse; every failure is a CheckpointError naming ``what``."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise CheckpointError(f"{what} is {len(data):,} bytes, over the limit of {max_bytes:,}")
    depth = _max_depth(data)
    if depth > max_depth:
        raise CheckpointError(f"{what} is nested {depth} levels deep, over the limit of {max_depth}")
    try:
        return json.loads(data)  # NaN and Infinity parse as floats; the fields that take numbers check them
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{what} is not valid JSON ({e})") from None
    except RecursionError:  # cannot happen below max_depth; kept so no input ever reaches the caller as one
        raise CheckpointError(f"{what} is nested too deeply") from None


# ---------------------------------------------------------------------------------------------- writing
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


# ---------------------------------------------------------------------------------------------- reading
def check_counters(value, what: str) -> dict[str, int]:
    """The counters (training_step, adaptation_step) of a checkpoint or state: non-negative integers (a missing one
    is 0); anything else raises CheckpointError naming the field."""
    if value is None:
        return {k: 0 for k in COUNTERS}
    if not isinstance(value, dict):
        raise CheckpointError(f"{what}: field 'counters' must be an object, got {_short(value)}")
    out = {}
    for k in COUNTERS:
        v = value.get(k, 0)
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
            or v < 0
            or v > 2**62
            or v != int(v)
        ):
            raise CheckpointError(f"{what}: field 'counters.{k}' must be a non-negative integer, got {_short(v)}")
        out[k] = int(v)
    return out


def check_finite(tensors: dict[str, torch.Tensor], what: str) -> None:
    """Refuse NaN or infinite weights, naming the first tensor that has any."""
    for key in sorted(tensors):
        bad = int((~torch.isfinite(tensors[key])).sum())
        if bad:
            raise CheckpointError(
                f"{what}: tensor '{key}' has {bad} NaN or infinite values (of {tensors[key].numel()}); "
                "weights must be finite"
            )


def _specs(header: dict, name: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    specs = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
            raise CheckpointError(f"checkpoint {name} is corrupt: tensor {_short(key)} has no shape")
        dtype, shape = entry.get("dtype"), entry["shape"]
        if dtype not in _FLOAT_DTYPES:
            raise CheckpointError(
                f"checkpoint {name}: tensor {_short(key)} has dtype {_short(dtype)}; weights must be "
                f"one of {list(_FLOAT_DTYPES)}"
            )
        if len(shape) > 8 or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape):
            raise CheckpointError(f"checkpoint {name} is corrupt: tensor {_short(key)} has shape {_short(shape)}")
        specs[key] = (dtype, tuple(shape))
    return specs


@dataclass
class CheckpointFile:
    """A checkpoint whose header has been read and checked; its tensors are read only by ``tensors()``."""

    name: str  # for messages
    meta: dict  # the adiff metadata: config, counters, schedule, extra
    counters: dict  # training_step, adaptation_step: non-negative integers
    specs: dict  # tensor name -> (safetensors dtype, shape), from the header
    sha256: str | None
    _source: bytes | Path = field(repr=False)

    @property
    def config(self) -> dict:
        cfg = self.meta.get("config")
        if not isinstance(cfg, dict):
            raise CheckpointError(
                f"checkpoint {self.name}: metadata field 'config' must be an object, got {_short(cfg)}"
            )
        return dict(cfg)

    @property
    def extra(self) -> dict:
        extra = self.meta.get("extra") or {}
        if not isinstance(extra, dict):
            raise CheckpointError(
                f"checkpoint {self.name}: metadata field 'extra' must be an object, got {_short(extra)}"
            )
        return extra

    def tensors(self) -> dict[str, torch.Tensor]:
        """Read the tensors (CPU), verify the checksum, and refuse non-finite values."""
        src = self._source
        if isinstance(src, Path):
            size = src.stat().st_size
            if size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(
                    f"checkpoint {self.name} is {size:,} bytes, over the limit of {MAX_CHECKPOINT_BYTES:,}"
                )
            src = src.read_bytes()
        try:
            tensors = st_load(src)
        except (SafetensorError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {self.name} is corrupt or truncated: {e}") from None
        if _digest(tensors) != self.sha256:
            raise CheckpointError(f"checkpoint {self.name} is corrupt: the tensor data does not match its checksum")
        check_finite(tensors, f"checkpoint {self.name}")
        return tensors


def open_checkpoint(source, name: str | None = None) -> CheckpointFile:
    """Read and check a checkpoint's header from a path or from bytes (no tensor is read).  ``name`` is how messages
    call the file (default: its path).  Raises CheckpointError."""
    if isinstance(source, (bytes, bytearray)):
        data, size = bytes(source), len(source)
        name = repr(name) if name else "<uploaded bytes>"
        head = data[:8]
    else:
        p = Path(source)
        name = repr(name or str(p))
        if not p.is_file():
            raise CheckpointError(f"checkpoint {name} does not exist")
        size = p.stat().st_size
        with p.open("rb") as f:
            head = f.read(8)
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"checkpoint {name} is {size:,} bytes, over the limit of {MAX_CHECKPOINT_BYTES:,}")
    if size < 8:
        raise CheckpointError(f"checkpoint {name} is truncated or not a safetensors file ({size} bytes)")
    n = int.from_bytes(head, "little")
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(f"checkpoint {name}: its header is {n:,} bytes, over the limit of {MAX_HEADER_BYTES:,}")
    if n <= 0 or 8 + n > size:
        raise CheckpointError(
            f"checkpoint {name} is truncated or not a safetensors file (header of {n} bytes, file of {size})"
        )
    if isinstance(source, (bytes, bytearray)):
        raw = data[8 : 8 + n]
    else:
        with p.open("rb") as f:
            f.seek(8)
            raw = f.read(n)
    header = parse_json(raw, f"checkpoint {name}: its header")
    md = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(md, dict) or md.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {name} is not an adiff checkpoint (no '{FORMAT}' metadata)")
    if md.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"checkpoint {name} has format version {_short(md.get('format_version'))}; "
            f"this adiff reads {FORMAT_VERSION}"
        )
    if not isinstance(md.get("adiff"), str):
        raise CheckpointError(f"checkpoint {name} is corrupt: no 'adiff' metadata")
    meta = parse_json(md["adiff"], f"checkpoint {name}: its metadata")
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {name} is corrupt: metadata is not an object")
    sha = md.get("sha256")
    return CheckpointFile(
        name,
        meta,
        check_counters(meta.get("counters"), f"checkpoint {name}: metadata"),
        _specs(header, name),
        sha if isinstance(sha, str) else None,
        data if isinstance(source, (bytes, bytearray)) else p,
    )


def read_checkpoint(source) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint from a path or from bytes: (tensors on CPU, metadata dict).  Raises CheckpointError."""
    ckpt = open_checkpoint(source)
    return ckpt.tensors(), ckpt.meta


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
    if (
        flat.get("noise_schedule", "linear") == "linear"
        and "beta_range" not in flat
        and flat.get("process", "vp") == "vp"
    ):
        sm = schedule_meta if isinstance(schedule_meta, dict) else {}
        flat["beta_range"] = [float(sm.get("beta_start", 1e-4)), float(sm.get("beta_end", 0.02))]
    return flat
