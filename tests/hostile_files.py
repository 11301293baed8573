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

SMALL = {
    "model_type": "unconditional",
    "embedding_dim": 32,
    "hidden_dim": 32,
    "num_layers": 2,
    "num_heads": 4,
    "num_diffusion_steps": 50,
    "data_shape": [2],
    "device": "cpu",
}


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
    md = {
        "format": FORMAT,
        "format_version": "1",
        "adiff": json.dumps(meta, sort_keys=True),
        "sha256": checksum or _digest(tensors),
    }
    return st_save(tensors, metadata=md)


def with_config(blob: bytes, **changes) -> bytes:
    """The same tensors and checksum, with the config in the metadata changed (issue 14, finding 1): each field in
    its section of a nested config (as DiffusionModel.save writes it), or at the top of a flat one."""
    tensors, md, meta = parts(blob)
    config = meta["config"]
    for k, v in changes.items():
        section = next((s for s in ("arch", "diffusion", "training") if k in config.get(s, {})), None)
        (config[section] if section else config)[k] = v
    return assemble(tensors, meta, checksum=md["sha256"])


def as_flat(blob: bytes) -> bytes:
    """The checkpoint as adiff wrote it before the config had sections (a flat config, an epsilon VP model with a
    stored "schedule"): what the shipped presets still are, and what checkpoints.migrate_config reads."""
    tensors, md, meta = parts(blob)
    config = meta["config"]
    flat = {**config["arch"], **config["diffusion"], **config["training"], "device": config["device"]}
    for k in ("process", "prediction_type", "beta_range", "flow_shift", "precision"):
        flat.pop(k, None)
    meta["config"] = flat
    meta["schedule"] = {
        "name": flat["noise_schedule"],
        "num_steps": flat["num_diffusion_steps"],
        "beta_start": 1e-4,
        "beta_end": 0.02,
    }
    meta.pop("process", None)
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
    return valid_checkpoint(
        {
            "data_shape": [1, 64, 64],
            "patch_size": 1,
            "hidden_dim": 8,
            "embedding_dim": 8,
            "num_heads": 2,
            "num_layers": 1,
        },
        extra={"dataset": None},
    )


def with_huge_weights(blob: bytes, value: float = 1e30) -> bytes:
    """Finite but huge output weights (checksum recomputed): every prediction overflows, so sampling makes NaN or
    infinite points (finding 4's second half: the app must count them, not drop them silently)."""
    tensors, _, meta = parts(blob)
    for key in [k for k in tensors if k.split(".", 1)[1].startswith("output_proj.")]:
        tensors[key] = torch.full_like(tensors[key], value)
    for key in [k for k in tensors if k.split(".", 1)[1].startswith("final_ada.1.")]:
        tensors[key] = torch.full_like(tensors[key], 1.0)
    return assemble(tensors, meta)


# --- issue 15's own-data uploads (the Train tab's drawing and image upload) --------------------------------------------
def png_bomb(side: int = 12_000) -> bytes:
    """A blank 1-bit PNG of side x side pixels: about 20 kB of file, 144 M pixels (144-576 MB) once decoded."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (side, side), 1).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def zip_bomb(megabytes: int = 200) -> bytes:
    """A zip of one 'image' that inflates to ``megabytes`` MB of zeros (about 0.2 MB of file)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/x.png", b"\0" * megabytes * 2**20)
    return buf.getvalue()
