"""A user's own data: zip archives and image files (adiff.data.uploads) and drawings (adiff.data.drawings), with every
bad upload the Train tab must refuse (each message starts with its field and stays short; a refusal leaves no memory
and no file behind), and pictures read as people take them (EXIF orientation, 16-bit, transparency).  Real archives
and images made here and in tests/hostile_files.py with zipfile, struct and Pillow."""

from __future__ import annotations

import base64
import contextlib
import gc
import io
import json
import re
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from adiff.data import MIN_DRAWING_PIXELS, check_drawing, open_drawing, points_from_drawing
from adiff.data.image_files import gray_and_alpha
from adiff.data.uploads import UploadError, UploadLimits, images_from_files, images_from_paths, images_from_zip
from adiff.data.zipdir import count_entries, read_directory
from tests import hostile_files as H


def png(w=24, h=24, shape="bar", color="black", mode="RGB", fmt="PNG") -> bytes:
    im = Image.new(mode, (w, h), "white" if mode != "RGBA" else (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    if shape == "bar":
        d.rectangle((w // 3, 2, 2 * w // 3, h - 3), fill=color)
    else:
        d.ellipse((2, 2, w - 3, h - 3), outline=color, width=max(1, w // 8))
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_class_folders_become_labels_and_pixels_follow_the_ink():
    entries = {f"mydata/bars/{i}.png": png(shape="bar") for i in range(3)}
    entries |= {f"mydata/rings/{i}.jpg": png(32, 32, shape="ring", fmt="JPEG") for i in range(2)}
    entries |= {"mydata/rings/.DS_Store": b"junk", "__MACOSX/mydata/bars/._0.png": b"junk"}
    s = images_from_zip(make_zip(entries), size=16)
    assert s.x.shape == (5, 1, 16, 16) and s.x.dtype == torch.float32
    assert s.class_names == ["bars", "rings"] and s.labels.tolist() == [0, 0, 0, 1, 1]
    assert s.counts == {"bars": 3, "rings": 2} and len(s.skipped) == 2
    bar = s.x[0, 0]  # dark bar in the middle columns -> +1; white background -> -1
    assert bar[2:-2, 7:9].mean() > 0.9 and bar[:, :3].mean() < -0.9
    ring = s.x[3, 0]
    assert ring[8, 8] < -0.5 and ring[8, 1] > 0.0  # hollow centre, ink on the rim


@pytest.mark.parametrize("size", [8, 16, 32])
def test_flat_archive_is_unlabelled_at_each_size(size):
    s = images_from_zip(make_zip({f"{i}.png": png(40, 20) for i in range(4)}), size=size)  # 40x20 padded square
    assert s.labels is None and s.counts == {"all": 4} and s.x.shape == (4, 1, size, size)
    assert float(s.x.min()) >= -1 and float(s.x.max()) <= 1
    assert s.x[0, 0, 0].mean() < -0.9  # the padding takes the background tone


def test_transparent_png_and_several_files():
    files = [("a.png", png(mode="RGBA", color=(0, 0, 0, 255))), ("b.PNG", png()), ("c.jpeg", png(fmt="JPEG"))]
    s = images_from_files(files, size=8)
    assert s.x.shape == (3, 1, 8, 8) and s.labels is None and s.names == ["a.png", "b.PNG", "c.jpeg"]
    assert torch.allclose(s.x[0], s.x[1], atol=0.05)  # transparency is flattened on white
    one_zip = images_from_files([("d.zip", make_zip({"x/1.png": png(), "x/2.png": png()}))], size=8)
    assert one_zip.x.shape[0] == 2


def _bomb() -> bytes:
    """A real zip bomb: 40 MB of zeros deflate to about 40 kB, named like an image."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.png", b"\0" * (40 * 2**20))
    return buf.getvalue()


def _lying_bomb() -> bytes:
    """A member whose directory entry claims 100 bytes but which inflates to 4 MB."""
    data = bytearray(make_zip({"a.png": b"\0" * (4 * 2**20), "b.png": png()}))
    # Patch the uncompressed size in the central directory and the local header of the first member.
    cd = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x01\x02"))
    data[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    data[22:26] = (100).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"this is not a zip at all", r"^images: the file is not a zip archive$"),
        (make_zip({"../evil.png": png(), "ok.png": png()}), r"^images: the entry '\.\./evil\.png' escapes the folder"),
        (make_zip({"/etc/evil.png": png(), "ok.png": png()}), r"entry '/etc/evil\.png' escapes the folder"),
        (make_zip({"C:/evil.png": png(), "ok.png": png()}), r"entry 'C:/evil\.png' escapes the folder"),
        (make_zip({"a.png": png(), "notes.txt": b"hello"}), r"'notes\.txt' is not an image"),
        (make_zip({"a.png": png(), "b.png": b"not really a png"}), r"^images: 'b\.png' is not a PNG or JPEG image$"),
        (make_zip({"a.png": png(), "b.png": png(fmt="GIF")}), r"^images: 'b\.png' is not a PNG or JPEG image$"),
        (
            make_zip({"small.png": png(16, 16), "huge.png": png(200, 200)}),
            r"^images: they are of wildly different sizes: 'huge\.png' is 200x200 but 'small\.png' is 16x16",
        ),
        (
            make_zip({"d/cats/a.png": png(), "d/cats/b.png": png(), "d/dogs/c.png": png()}),
            r"^images: class folder 'dogs' has 1 image; every class needs at least 2",
        ),
        (
            make_zip({"top.png": png(), "cats/a.png": png(), "cats/b.png": png()}),
            r"^images: 'top\.png' is at the top but 'cats/a\.png' is in a class folder",
        ),
        (make_zip({"x/y/z/a.png": png(), "x/b.png": png()}), r"^images: 'x/y/z/a\.png' is nested too deep"),
        (make_zip({"empty/": b""}), r"^images: the archive holds no PNG or JPEG image$"),
        (_bomb(), r"^images: 'bomb\.png' would inflate to 40\.0 MB, over the 8\.0 MB limit for one image"),
        # zipfile stops inflating at the directory's size and then the CRC fails: refused, nothing beyond 100 bytes read
        (_lying_bomb(), r"^images: 'a\.png' is damaged in the archive"),
    ],
)
def test_bad_archives_are_refused_with_the_problem_named(payload, message):
    with pytest.raises(UploadError, match=message):
        images_from_zip(payload, size=16)


def test_limits_on_counts_bytes_and_pixels():
    few = UploadLimits(max_images=3, max_bytes=50_000, max_pixels=32 * 32, max_uncompressed=10**6)
    with pytest.raises(UploadError, match="^images: the archive holds 4 images, at most 3$"):
        images_from_zip(make_zip({f"{i}.png": png() for i in range(4)}), limits=few)
    with pytest.raises(UploadError, match=r"^images: the archive is 0\.1 MB, over the 0\.0 MB upload limit$"):
        images_from_zip(make_zip({"a.png": np.random.default_rng(0).bytes(60_000)}, zipfile.ZIP_STORED), limits=few)
    with pytest.raises(UploadError, match=r"^images: 'big\.png' is 40x40 pixels; at most 1,024 pixels$"):
        images_from_zip(make_zip({"big.png": png(40, 40), "b.png": png(30, 30)}), limits=few)
    with pytest.raises(UploadError, match="^images: 4 files, at most 3$"):
        images_from_files([(f"{i}.png", png()) for i in range(4)], limits=few)
    with pytest.raises(UploadError, match=r"^images: 'x\.zip' is a zip archive: upload it alone"):
        images_from_files([("a.png", png()), ("x.zip", make_zip({"a.png": png()}))])
    with pytest.raises(UploadError, match=r"image_size must be one of \[8, 16, 32\], got 12"):
        images_from_zip(make_zip({"a.png": png()}), size=12)
    # Pillow's decompression-bomb check is an error too: a PNG whose header claims 30000 x 30000 pixels.
    with pytest.raises(
        UploadError,
        match=r"^images: 'claims\.png' (declares over [\d,]+ pixels|is 30000x30000 pixels); at most 1,048,576 pixels$",
    ):
        images_from_files([("claims.png", _png_header(30_000, 30_000))])


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims w x h pixels (its data is tiny and truncated: only the header is ever read)."""
    import struct
    import zlib as z

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", z.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def test_drawing_checks_name_the_field():
    blank = Image.new("L", (200, 200), 255)
    with pytest.raises(ValueError, match="drawing is empty"):
        check_drawing(blank)
    dot = blank.copy()
    ImageDraw.Draw(dot).ellipse((100, 100, 103, 103), fill=0)  # a stray click: about 12 pixels
    with pytest.raises(
        ValueError, match=rf"drawing: the strokes cover only \d+ pixels, fewer than {MIN_DRAWING_PIXELS}"
    ):
        check_drawing(dot)
    stroke = blank.copy()
    ImageDraw.Draw(stroke).line((20, 100, 180, 100), fill=0, width=6)
    assert check_drawing(np.asarray(stroke)) > MIN_DRAWING_PIXELS
    pts = points_from_drawing(np.asarray(stroke), 500, seed=0)
    assert pts[:, 1].abs().max() < 0.2 and pts[:, 0].min() < -2  # a horizontal line across the middle


# --- issue 23: pictures as people take them ---------------------------------------------------------------------------
def _gray(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] with dark = +1 -> gray in [0, 1] with white = 1."""
    return (1 - x) / 2


@pytest.mark.parametrize("orientation, side", [(6, (32, 32)), (6, (48, 32)), (8, (32, 32)), (3, (32, 32))])
def test_exif_orientation_is_applied(orientation, side):
    jpeg, upright = H.exif_rotated_jpeg(orientation, side)
    buf = io.BytesIO()
    upright.save(buf, format="PNG")
    got = images_from_files([("phone.jpg", jpeg)], size=16).x[0, 0]
    want = images_from_files([("upright.png", buf.getvalue())], size=16).x[0, 0]
    assert (got - want).abs().mean() < 0.05  # JPEG noise only
    if side[0] == side[1]:  # the bar down the left quarter: ink there, none on the right
        assert got[:, :4].mean() > 0.9 and got[:, 6:].mean() < -0.9
    sideways = images_from_files([("raw.png", _stored(jpeg))], size=16).x[0, 0]
    assert (sideways - want).abs().mean() > 0.3  # what the pixels give without the tag: clearly another picture


def _stored(jpeg: bytes) -> bytes:
    """The JPEG's pixels as stored (no orientation tag), as a PNG."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("L").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("level", [0.25, 0.5, 0.75, 0.9])
def test_16_bit_png_is_scaled_not_clipped(level):
    blob = H.png16(level)
    assert Image.open(io.BytesIO(blob)).mode == "I;16"
    x = images_from_files([("scan.png", blob), ("again.png", blob)], size=8).x
    assert torch.allclose(_gray(x), torch.full_like(x, level), atol=1 / 255)  # 0.25 stayed 0.25, not white


def test_16_bit_gradient_keeps_its_order_and_range():
    ramp = np.tile(np.linspace(0, 65535, 32).round().astype(np.uint16), (32, 1))  # black (left) to white (right)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")
    row = _gray(images_from_files([("ramp.png", buf.getvalue())], size=8).x[0, 0]).mean(0)
    assert (row.diff() > 0).all() and row[0] < 0.1 and row[-1] > 0.9
    assert torch.allclose(row, torch.linspace(0, 1, 32).reshape(8, 4).mean(1), atol=1 / 255)  # box-averaged ramp


def test_int_and_float_images_by_their_range():
    f = np.full((4, 4), 0.25, dtype=np.float32)
    assert np.allclose(gray_and_alpha(Image.fromarray(f), "images: 'f'")[0], 0.25)  # [0, 1] as it is
    g = np.array([[10.0, 20.0], [15.0, 20.0]], dtype=np.float32)
    assert np.allclose(gray_and_alpha(Image.fromarray(g), "images: 'g'")[0], [[0, 1], [0.5, 1]])  # own range
    i = Image.fromarray(np.full((4, 4), 16384, dtype=np.int32))
    assert i.mode == "I" and np.allclose(gray_and_alpha(i, "images: 'i'")[0], 16384 / 65535)  # 16-bit data as "I"
    with pytest.raises(UploadError, match=r"^images: 'nan' has NaN or infinite pixels$"):
        gray_and_alpha(Image.fromarray(np.array([[0.5, np.nan]], dtype=np.float32)), "images: 'nan'")


def _saved(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_transparent_pixels_become_the_white_background():
    clear_black = _saved(Image.new("LA", (16, 16), (0, 0)))  # black ink, fully transparent
    half = _saved(Image.new("RGBA", (16, 16), (0, 0, 0, 128)))  # black at half opacity over white: mid gray
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 0, 0, 255, 255, 255])
    palette = _saved(pal, transparency=0)  # black palette entry marked transparent
    deep = np.zeros((16, 16), dtype=np.uint16)
    deep16 = _saved(Image.fromarray(deep), transparency=0)  # 16-bit gray with tRNS: value 0 is transparent
    gray = _gray(images_from_files([(f"{i}.png", b) for i, b in enumerate([clear_black, half, palette, deep16])], 8).x)
    assert torch.allclose(gray[[0, 2, 3]], torch.ones(3, 1, 8, 8), atol=1e-6)
    assert torch.allclose(gray[1], torch.full((1, 8, 8), 1 - 128 / 255), atol=1 / 255)


# --- issue 23: every refusal names its field, briefly; nothing stays behind -------------------------------------------
def _patched(data: bytes, name: bytes, flag_or: int = 0, method: int | None = None, new_name: bytes | None = None):
    """The archive with the local and central headers of member ``name`` changed (flag bits, method, name bytes)."""
    data = bytearray(data)
    for sig, name_at, flag_at, method_at in ((b"PK\x03\x04", 30, 6, 8), (b"PK\x01\x02", 46, 8, 10)):
        at = data.find(sig)
        while at >= 0:
            if data[at + name_at : at + name_at + len(name)] == name:
                data[at + flag_at] |= flag_or & 0xFF
                data[at + flag_at + 1] |= flag_or >> 8
                if method is not None:
                    data[at + method_at : at + method_at + 2] = method.to_bytes(2, "little")
                if new_name is not None:
                    data[at + name_at : at + name_at + len(name)] = new_name
            at = data.find(sig, at + 4)
    return bytes(data)


LONG = "x" * 990 + ".png"
ZIP, FILES, DRAWING = images_from_zip, images_from_files, open_drawing
HOSTILE = {  # case: (the library call, a function building its input, the message)
    "zip64, 300,000 entries": (
        ZIP,
        H.zip64_many_entries,
        r"^images: the archive lists 300,000 entries, at most 5,000$",
    ),
    "encrypted member": (
        ZIP,
        H.encrypted_zip,
        r"^images: 'secret\.png' is encrypted; upload an archive without a password$",
    ),
    "encrypted, 1,000-character name": (
        ZIP,
        lambda: H.encrypted_zip(LONG),
        r"^images: 'x{59}…' is encrypted; upload an archive without a password$",
    ),
    "compression method 99 (AES)": (
        ZIP,
        lambda: _patched(make_zip({"a.png": png(), "b.png": png()}), b"b.png", method=99),
        r"^images: 'b\.png' uses compression method 99, which this reader does not support",
    ),
    "UTF-8 flag on a name that is not UTF-8": (
        ZIP,
        lambda: _patched(make_zip({"a.png": png(), "b.png": png()}), b"b.png", 0x800, None, b"\xff"),
        r"^images: the zip archive is damaged: its directory cannot be read$",
    ),
    "not an image, long name": (
        FILES,
        lambda: [(LONG, b"GIF89a not at all"), ("b.png", png())],
        r"^images: 'x{59}…' is not a PNG or JPEG image$",
    ),
    "truncated PNG": (
        FILES,
        lambda: [("t.png", H.truncated_png()), ("b.png", png())],
        r"^images: 't\.png' is damaged: its pixels cannot be decoded$",
    ),
    "144 M-pixel PNG": (
        FILES,
        lambda: [("big.png", H.png_bomb()), ("b.png", png())],
        r"^images: 'big\.png' (declares over [\d,]+|is 12000x12000) pixels; at most 1,048,576 pixels$",
    ),
    "zip bomb": (ZIP, H.zip_bomb, r"^images: the archive's images would inflate to 200\.0 MB, over the 64\.0 MB limit"),
    "drawing: 144 M-pixel PNG": (
        DRAWING,
        H.png_bomb,
        r"^drawing: the image (declares over [\d,]+|is 12000x12000) pixels; at most 4,194,304 pixels$",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_upload_is_refused_briefly_and_leaves_nothing_behind(case, tmp_path, monkeypatch):
    fn, build, message = HOSTILE[case]
    upload = build()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # anything written through tempfile lands here
    with pytest.raises(UploadError):
        fn(upload)  # warm-up: Pillow's and zipfile's first-use caches are not what is measured
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        try:
            fn(upload)
            raise AssertionError(f"{case}: accepted")
        except UploadError as e:
            msg = str(e)
        left, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert re.match(message, msg), msg
    assert len(msg) <= 200 and "object at 0x" not in msg and "Traceback" not in msg and "/tmp" not in msg, msg
    assert left - base < 64 * 2**10, f"{case}: {left - base} bytes stay allocated after the refusal"
    # Refused before the costly part: zipfile's 300,000 ZipInfo objects took over 100 MB; decoding 144 M pixels
    # 144 MB; the bomb's 200 MB is never inflated.  What remains is reading at most one image's bytes (8 MB cap).
    assert peak - base < 9 * 2**20, f"{case}: peak {(peak - base) / 2**20:.1f} MB"
    assert not any(tmp_path.iterdir())  # nothing written to disk


def test_lying_end_record_is_counted_by_its_headers():
    """An end record that says 3 entries over a directory of 50 headers: counted from the headers themselves."""
    data = bytearray(make_zip({f"{i}.png": png() for i in range(50)}))
    eocd = data.rfind(b"PK\x05\x06")
    data[eocd + 8 : eocd + 12] = (3).to_bytes(2, "little") * 2  # entries on this disk, entries in all
    with pytest.raises(UploadError, match=r"^images: the archive holds over 20 entries, at most 20$"):
        images_from_zip(bytes(data), limits=UploadLimits(max_entries=20))
    with pytest.raises(UploadError, match=r"^images: the archive's directory takes 0\.0 MB, at most 0\.0 MB$"):
        images_from_zip(bytes(data), limits=UploadLimits(max_directory_bytes=1000))


def test_directory_counts_match_zipfile():
    for data in (make_zip({f"{i}/{j}.png": b"" for i in range(3) for j in range(4)}), H.encrypted_zip()):
        d = read_directory(data)
        n = len(zipfile.ZipFile(io.BytesIO(data)).infolist())
        assert d is not None and not d.zip64 and d.entries == n and count_entries(data, d, stop=10**6) == n
    for comment, readable in ((b"a comment" + b"." * 1000, True), (b"PK\x05\x06 in a comment" + b"." * 1000, False)):
        commented = io.BytesIO()
        with zipfile.ZipFile(commented, "w") as z:
            z.writestr("a.png", png())
            z.comment = comment
        d = read_directory(commented.getvalue())  # zipfile finds the last end signature too, and then fails
        assert (d is not None and d.entries == 1 and count_entries(commented.getvalue(), d, stop=10) == 1) == readable
        with (
            pytest.raises(UploadError, match="^images: the file is not a zip archive$")
            if not readable
            else contextlib.nullcontext()
        ):
            images_from_zip(commented.getvalue())
    big = H.zip64_many_entries(70_000)  # over 65,535: only the zip64 record can count them
    d = read_directory(big)
    assert d.zip64 and d.entries == 70_000 and count_entries(big, d, stop=100) == 101
    assert read_directory(b"PK\x03\x04 no end record") is None


def test_the_whole_answer_is_bounded_whatever_the_archive_holds():
    hidden = images_from_zip(H.long_hidden_names_zip(3000, 1000))  # 3.2 MB of names skipped
    assert len(hidden.skipped) == 3000
    summary = hidden.summary()
    assert summary["skipped"][-1] == "… and 2,997 more" and all(len(n) <= 60 for n in summary["skipped"])
    classes = images_from_zip(H.many_long_classes_zip(100, 200))
    s = classes.summary()
    assert len(s["counts_per_class"]) == 9 and s["counts_per_class"]["… and 92 more classes"] == 184
    assert sum(s["counts_per_class"].values()) == 200 and s["classes"][-1] == "… and 92 more"
    for summary in (hidden.summary(), s):
        assert len(json.dumps(summary, ensure_ascii=False).encode()) <= 4096
    small = images_from_zip(make_zip({f"d/{c}/{i}.png": png() for c in ("bars", "rings") for i in range(2)}))
    assert small.summary() == {
        "images": 4,
        "image_size": 16,
        "counts_per_class": {"bars": 2, "rings": 2},
        "classes": ["bars", "rings"],
        "skipped": [],
    }


# --- the drawing: its size from the header, before any pixel is decoded ------------------------------------------------
def test_drawing_size_is_checked_before_decoding(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10**8)  # Pillow's default-sized limit (the app lowers it)
    bomb = H.png_bomb(5000)  # 25 M pixels: under Pillow's own limit, over the drawing's
    tracemalloc.start()
    try:
        with pytest.raises(UploadError, match=r"^drawing: the image is 5000x5000 pixels; at most 4,194,304 pixels$"):
            open_drawing(bomb)
        lazy = Image.open(io.BytesIO(bomb))  # a lazily opened image handed straight to the library
        with pytest.raises(UploadError, match=r"^drawing: the image is 5000x5000 pixels"):
            check_drawing(lazy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20  # decoded, the 25 M pixels would take 25-200 MB
    with pytest.raises(UploadError, match=r"^drawing: the image is 3000x2000 pixels; at most 4,194,304 pixels$"):
        check_drawing(np.zeros((2000, 3000), dtype=np.uint8))


def test_open_drawing_reads_bytes_paths_and_data_urls(tmp_path):
    im = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(im).line((8, 32, 56, 32), fill=0, width=5)
    blob = _saved(im)
    path = tmp_path / "d.png"
    path.write_bytes(blob)
    url = "data:image/png;base64," + base64.b64encode(blob).decode()
    counts = [check_drawing(open_drawing(src)) for src in (blob, str(path), path, url)]
    assert len(set(counts)) == 1 and counts[0] > MIN_DRAWING_PIXELS
    for bad, message in [
        ("data:image/png;base64,not base64!", r"^drawing: the data URL is not valid base64$"),
        (str(tmp_path / "gone" / "secret.png"), r"^drawing: the file 'secret\.png' is missing; send it again$"),
        (b"GIF89a", r"^drawing: the image is not a PNG or JPEG image$"),
        (42, r"^drawing: expected the image's bytes, a path or a data URL, got int$"),
    ]:
        with pytest.raises(UploadError, match=message):
            open_drawing(bad)


def test_16_bit_drawing_keeps_its_gray_strokes():
    a = np.full((64, 64), 65535, dtype=np.uint16)
    a[30:34, 8:56] = round(0.25 * 65535)  # a dark-gray stroke (an 8-bit conversion made it white: "empty")
    im = Image.open(io.BytesIO(_saved(Image.fromarray(a))))
    assert im.mode == "I;16" and check_drawing(im) == 4 * 48


def test_paths_are_checked_before_they_are_read(tmp_path):
    def sparse(name: str, size: int):
        path = tmp_path / name
        with open(path, "wb") as f:
            f.truncate(size)  # no data written: a hole the size of a large upload
        return path

    zip64 = tmp_path / "many.zip"
    zip64.write_bytes(H.zip64_many_entries())
    cases = [
        ([sparse("big.png", 25 * 2**20)], r"^images: 25\.0 MB together, over the 20\.0 MB upload limit$"),
        ([sparse("big.zip", 25 * 2**20)], r"^images: the archive is 25\.0 MB, over the 20\.0 MB upload limit$"),
        ([sparse("empty.zip", 0)], r"^images: the file is not a zip archive$"),
        ([zip64], r"^images: the archive lists 300,000 entries, at most 5,000$"),
        ([tmp_path / "gone.png"], r"^images: the upload 'gone\.png' is missing on the server; upload it again$"),
    ]
    for paths, message in cases:
        tracemalloc.start()
        try:
            with pytest.raises(UploadError, match=message) as info:
                images_from_paths(paths)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2**20 and str(tmp_path) not in str(info.value), (message, peak)  # nothing read


def test_paths_read_like_bytes(tmp_path):
    entries = {f"d/{c}/{i}.png": png(shape=c) for c in ("bar", "ring") for i in range(3)}
    archive = tmp_path / "set.zip"
    archive.write_bytes(make_zip(entries))
    from_path, from_bytes = images_from_paths([archive], 8), images_from_zip(archive.read_bytes(), 8)
    assert torch.equal(from_path.x, from_bytes.x) and torch.equal(from_path.labels, from_bytes.labels)
    files = []
    for name, blob in [("a.png", png()), ("b.jpg", png(fmt="JPEG")), ("c.png", H.png16(0.5))]:
        (tmp_path / name).write_bytes(blob)
        files.append(tmp_path / name)
    got = images_from_paths([str(f) for f in files], 16)
    assert torch.equal(got.x, images_from_files([(f.name, f.read_bytes()) for f in files], 16).x)
    assert got.names == ["a.png", "b.jpg", "c.png"]
