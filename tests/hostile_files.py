"""Hostile checkpoints, built from a valid one the way an attacker would (issue 14): each is the bytes of a file.

Every builder starts from a real adiff checkpoint and changes what a hostile visitor could change: the metadata
(the checksum covers only the tensors, so it stays valid), the header, the tensors (with the checksum recomputed).
"""
from __future__ import annotations

import json

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from adiff import DiffusionModel
from adiff.nn.checkpoints import FORMAT, _digest

SMALL = {"model_type": "unconditional", "embedding_dim": 32, "hidden_dim": 32, "num_layers": 2, "num_heads": 4,
         "num_diffusion_steps": 50, "data_shape": [2], "device": "cpu"}  # fmt: skip


def valid_checkpoint(config: dict | None = None, ema_only: bool = True, extra: dict | None = None) -> bytes:
    """A real checkpoint of a small model (seeded weights)."""
    import tempfile
    from pathlib import Path

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DiffusionModel({**SMALL, **(config or {})})
    with tempfile.TemporaryDirectory() as d:
        path = model.save(Path(d) / "m.safetensors", extra=extra or {"dataset": "moons"}, ema_only=ema_only)
        return path.read_bytes()


def parts(blob: bytes) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """(tensors, safetensors __metadata__, adiff metadata) of a checkpoint."""
    n = int.from_bytes(blob[:8], "little")
    md = json.loads(blob[8 : 8 + n])["__metadata__"]
    return st_load(blob), md, json.loads(md["adiff"])


def assemble(tensors: dict[str, torch.Tensor], meta: dict, checksum: str | None = None) -> bytes:
    """A checkpoint of ``tensors`` with adiff metadata ``meta`` (json.dumps writes NaN/Infinity as the hostile
    JSON extensions); the checksum is recomputed unless given."""
    md = {"format": FORMAT, "format_version": "1", "adiff": json.dumps(meta, sort_keys=True),
          "sha256": checksum or _digest(tensors)}  # fmt: skip
    return st_save(tensors, metadata=md)


def with_config(blob: bytes, **changes) -> bytes:
    """The same tensors and checksum, with the config in the metadata changed (issue 14, finding 1)."""
    tensors, md, meta = parts(blob)
    meta["config"] = {**meta["config"], **changes}
    return assemble(tensors, meta, checksum=md["sha256"])


def with_meta(blob: bytes, **changes) -> bytes:
    tensors, md, meta = parts(blob)
    meta.update(changes)
    return assemble(tensors, meta, checksum=md["sha256"])


def with_nonfinite(blob: bytes, value: float = float("nan"), count: int = 3) -> bytes:
    """``count`` weights of one tensor set to NaN (or inf), checksum recomputed (finding 4)."""
    tensors, _, meta = parts(blob)
    key = min(k for k in tensors if k.endswith("ffn.0.weight"))
    t = tensors[key].clone()
    t.view(-1)[:count] = value
    tensors[key] = t
    return assemble(tensors, meta)


def huge_header(megabytes: float = 63.0) -> bytes:
    """{"__metadata__": {...}, "pad": [[], [], ...]}: a header of about ``megabytes`` MB (finding 2)."""
    tensors, md, _ = parts(valid_checkpoint())
    body = st_save(tensors, metadata=md)
    n = int.from_bytes(body[:8], "little")
    header = json.loads(body[8 : 8 + n])
    count = int(megabytes * 2**20 / 4)
    text = json.dumps(header)[:-1] + ', "pad": [' + "[], " * (count - 1) + "[]]}"
    raw = text.encode()
    return len(raw).to_bytes(8, "little") + raw + body[8 + n :]


def nested_header(depth: int = 100_000) -> bytes:
    """A header of ``depth`` nested '[' (finding 5: a RecursionError in json)."""
    raw = b"[" * depth + b"]" * depth
    return len(raw).to_bytes(8, "little") + raw + b"\x00" * 64


def compute_bomb() -> bytes:
    """A valid, small file of an image model with one token per pixel (finding 3): [1, 64, 64], patch_size 1."""
    return valid_checkpoint({"data_shape": [1, 64, 64], "patch_size": 1, "hidden_dim": 8, "embedding_dim": 8,
                             "num_heads": 2, "num_layers": 1}, extra={"dataset": None})  # fmt: skip


def with_huge_weights(blob: bytes, value: float = 1e30) -> bytes:
    """Finite but huge output weights (checksum recomputed): every prediction overflows, so sampling makes NaN or
    infinite points (finding 4's second half: the app must count them, not drop them silently)."""
    tensors, _, meta = parts(blob)
    for key in [k for k in tensors if k.split(".", 1)[1].startswith("output_proj.")]:
        tensors[key] = torch.full_like(tensors[key], value)
    for key in [k for k in tensors if k.split(".", 1)[1].startswith("final_ada.1.")]:
        tensors[key] = torch.full_like(tensors[key], 1.0)
    return assemble(tensors, meta)
