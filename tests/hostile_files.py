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
from tests.configs import tiny

SMALL = tiny()


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


# --- issue 23's uploads: pictures as people take them, and archives that cost before they are read -------------------
def tiny_png(side: int = 24) -> bytes:
    """A small valid PNG: a dark bar on white (what each hostile archive below carries as its real image)."""
    import io

    from PIL import Image, ImageDraw

    im = Image.new("L", (side, side), 255)
    ImageDraw.Draw(im).rectangle((side // 3, 2, 2 * side // 3, side - 3), fill=0)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def plain_zip(entries: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def encrypted_zip(secret: str = "secret.png") -> bytes:
    """A zip whose member ``secret`` has general-purpose flag bit 0 set ("encrypted", APPNOTE.TXT 4.4.4) in its local
    header and in the central directory, beside one plain image: zipfile's open() raises RuntimeError("File ... is
    encrypted, password required for extraction") on it."""
    data = bytearray(plain_zip({"a.png": tiny_png(), secret: tiny_png()}))
    name = secret.encode()
    for sig, name_at, flag_at in ((b"PK\x03\x04", 30, 6), (b"PK\x01\x02", 46, 8)):
        at = data.find(sig)
        while at >= 0:
            if data[at + name_at : at + name_at + len(name)] == name:
                data[at + flag_at] |= 0x01
            at = data.find(sig, at + 4)
    return bytes(data)


def zip64_many_entries(count: int = 300_000) -> bytes:
    """A zip64 archive of one real PNG (local header at offset 0) listed ``count`` times in its central directory
    (names 000000.png, 000001.png, ...; no further local headers, so it stays under the upload's byte limit:
    about 56 bytes per entry, 16.8 MB for 300,000).  Records after APPNOTE.TXT 6.3.10: central directory header
    4.3.12, zip64 end of central directory record 4.3.14 and locator 4.3.15, end of central directory record 4.3.16
    (its counts and sizes set to 0xFFFF / 0xFFFFFFFF, "see the zip64 record")."""
    import struct
    import zlib

    png = tiny_png()
    crc = zlib.crc32(png) & 0xFFFFFFFF
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, len(png), len(png), 10, 0)
    body = local + b"000000.png" + png
    rows = [
        struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0x21, crc, len(png), len(png), 10, 0, 0, 0, 0, 0, 0
        )
        + f"{i:06d}.png".encode()
        for i in range(count)
    ]
    directory = b"".join(rows)
    cd_offset, cd_size = len(body), len(directory)
    eocd64_at = cd_offset + cd_size
    eocd64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64_at, 1)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + directory + eocd64 + locator + eocd


def long_hidden_names_zip(count: int = 3000, length: int = 1000) -> bytes:
    """Two images and ``count`` hidden entries (dot-files, skipped) whose names are ``length`` characters long."""
    entries = {"a.png": tiny_png(), "b.png": tiny_png()}
    entries |= {"." + f"{i:05d}".rjust(length - 1, "n"): b"" for i in range(count)}
    return plain_zip(entries)


def many_long_classes_zip(classes: int = 100, length: int = 200) -> bytes:
    """``classes`` class folders (the most an upload may have) with ``length``-character names, two images each."""
    png = tiny_png()
    return plain_zip({f"{c:03d}".rjust(length, "k") + f"/{i}.png": png for c in range(classes) for i in range(2)})


def exif_rotated_jpeg(orientation: int = 6, side: tuple[int, int] = (48, 32)) -> tuple[bytes, object]:
    """(a JPEG, the picture a person sees): the upright picture is a dark bar down its left quarter on white, w x h =
    ``side``; the file stores it the way a phone held sideways does (rows as the sensor read them) with EXIF
    Orientation ``orientation`` (tag 0x0112; 6 = "rotate 90 degrees clockwise to display", so the stored pixels are the
    upright ones turned 90 degrees counter-clockwise).  The second item is the upright picture (PIL, mode "L")."""
    import io

    from PIL import Image, ImageDraw

    w, h = side
    upright = Image.new("L", (w, h), 255)
    ImageDraw.Draw(upright).rectangle((0, 0, w // 4 - 1, h - 1), fill=0)
    stored = {6: upright.transpose(Image.Transpose.ROTATE_90), 8: upright.transpose(Image.Transpose.ROTATE_270)}
    stored |= {3: upright.transpose(Image.Transpose.ROTATE_180), 1: upright}
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored[orientation].save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue(), upright


def png16(level: float = 0.25, side: int = 24) -> bytes:
    """A 16-bit grayscale PNG (Pillow opens it as mode "I;16") filled with ``level`` of white (0.25 -> 16384):
    an 8-bit conversion clips every value above 255 to white."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((side, side), round(level * 65535), dtype=np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def truncated_png() -> bytes:
    """A PNG whose header is valid and whose pixel data stops halfway (decoding fails after the header check)."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    return data[: len(data) // 2]
