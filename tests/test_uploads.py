"""A user's own data: zip archives and image files (adiff.data.uploads) and drawings (check_drawing), with every bad
upload the Train tab must refuse.  Real archives and images made here with zipfile and Pillow."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from adiff.data import MIN_DRAWING_PIXELS, check_drawing, points_from_drawing
from adiff.data.uploads import UploadError, UploadLimits, images_from_files, images_from_zip


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
        (b"this is not a zip at all", r"archive: not a zip file"),
        (make_zip({"../evil.png": png(), "ok.png": png()}), r"entry '\.\./evil\.png' escapes the folder"),
        (make_zip({"/etc/evil.png": png(), "ok.png": png()}), r"entry '/etc/evil\.png' escapes the folder"),
        (make_zip({"C:/evil.png": png(), "ok.png": png()}), r"entry 'C:/evil\.png' escapes the folder"),
        (make_zip({"a.png": png(), "notes.txt": b"hello"}), r"'notes\.txt' is not an image"),
        (make_zip({"a.png": png(), "b.png": b"not really a png"}), r"image 'b\.png' is not a readable PNG or JPEG"),
        (make_zip({"a.png": png(), "b.png": png(fmt="GIF")}), r"image 'b\.png' is not a readable PNG or JPEG"),
        (
            make_zip({"small.png": png(16, 16), "huge.png": png(200, 200)}),
            r"wildly different sizes: 'huge\.png' is 200x200 but 'small\.png' is 16x16",
        ),
        (
            make_zip({"d/cats/a.png": png(), "d/cats/b.png": png(), "d/dogs/c.png": png()}),
            r"class folder 'dogs' has 1 image; every class needs at least 2",
        ),
        (
            make_zip({"top.png": png(), "cats/a.png": png(), "cats/b.png": png()}),
            r"'top\.png' is at the top but 'cats/a\.png' is in a class folder",
        ),
        (make_zip({"x/y/z/a.png": png(), "x/b.png": png()}), r"nested too deep"),
        (make_zip({"empty/": b""}), r"holds no PNG or JPEG image"),
        (_bomb(), r"entry 'bomb\.png' would inflate to 40\.0 MB, over the 8\.0 MB limit for one image"),
        # zipfile stops inflating at the directory's size and then the CRC fails: refused, nothing beyond 100 bytes read
        (_lying_bomb(), r"archive: is corrupt .*Bad CRC-32 for file 'a\.png'"),
    ],
)
def test_bad_archives_are_refused_with_the_problem_named(payload, message):
    with pytest.raises(UploadError, match=message):
        images_from_zip(payload, size=16)


def test_limits_on_counts_bytes_and_pixels():
    few = UploadLimits(max_images=3, max_bytes=50_000, max_pixels=32 * 32, max_uncompressed=10**6)
    with pytest.raises(UploadError, match="archive: 4 images, over the limit of 3"):
        images_from_zip(make_zip({f"{i}.png": png() for i in range(4)}), limits=few)
    with pytest.raises(UploadError, match=r"archive: .* MB is over the 0\.0 MB upload limit"):
        images_from_zip(make_zip({"a.png": np.random.default_rng(0).bytes(60_000)}, zipfile.ZIP_STORED), limits=few)
    with pytest.raises(UploadError, match=r"image 'big\.png' is 40x40 pixels; one image may have at most 1,024 pixels"):
        images_from_zip(make_zip({"big.png": png(40, 40), "b.png": png(30, 30)}), limits=few)
    with pytest.raises(UploadError, match="images: 4 files, over the limit of 3"):
        images_from_files([(f"{i}.png", png()) for i in range(4)], limits=few)
    with pytest.raises(UploadError, match=r"'x\.zip' is a zip archive: upload it alone"):
        images_from_files([("a.png", png()), ("x.zip", make_zip({"a.png": png()}))])
    with pytest.raises(UploadError, match=r"image_size must be one of \[8, 16, 32\], got 12"):
        images_from_zip(make_zip({"a.png": png()}), size=12)
    # Pillow's decompression-bomb check is an error too: a PNG whose header claims 30000 x 30000 pixels.
    with pytest.raises(UploadError, match=r"image 'claims\.png' is not a readable PNG|one image may have at most"):
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
