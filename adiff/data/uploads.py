"""A user's own images as a dataset: a zip archive (flat, or one folder per class) or several image files, converted
to grayscale at 8, 16 or 32 pixels a side, values in [-1, 1] (dark ink +1, white background -1, like the glyphs).

Everything an upload would cost is checked before it is spent, and again while it is spent:

* the upload's size; the archive's directory (entry count, declared sizes, names) before any member is read;
* names: an absolute path, a drive letter, a backslash or a '..' is refused (members are read into memory by
  name, never extracted, so no name can reach the disk; the check still tells the user what is wrong);
* the uncompressed size declared by the directory is capped before reading, and the bytes actually read are
  counted against the same caps (a zip bomb cannot inflate past them, whatever its directory claims);
* every image's header (format, width x height) before it is decoded: PNG or JPEG only, a pixel cap per image
  and for the whole set, with Pillow's own decompression-bomb warning turned into an error;
* the set: at most ``max_images`` images, sizes within ``max_size_ratio`` of each other, every class folder with
  at least two images.

Hidden and system entries (``__MACOSX/``, dot-files such as ``.DS_Store``) are skipped and reported.  Any other
problem raises :class:`UploadError` (a ValueError) naming the entry and the limit; nothing is kept from a failed
upload.  No gradio here: the Train tab calls these functions.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = ["UPLOAD_SIZES", "UploadLimits", "ImageSet", "UploadError", "images_from_zip", "images_from_files"]

UPLOAD_SIZES = (8, 16, 32)  # the sides images are converted to
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_FORMATS = ["PNG", "JPEG"]  # the only decoders Pillow may try


class UploadError(ValueError):
    """An upload that cannot be used; the message names the entry (or the whole upload) and what is wrong."""


@dataclass(frozen=True)
class UploadLimits:
    max_images: int = 2000  # images in one upload
    max_bytes: int = 20 * 2**20  # the upload itself: the archive, or all the files together
    max_entries: int = 5000  # entries in the archive's directory (files and folders)
    max_uncompressed: int = 64 * 2**20  # all members together, uncompressed
    max_member_bytes: int = 8 * 2**20  # one member, uncompressed
    max_pixels: int = 2**20  # one image, width x height (1024 x 1024)
    max_total_pixels: int = 128 * 2**20  # all images together
    max_size_ratio: float = 4.0  # the largest image side over the smallest
    max_classes: int = 100
    min_per_class: int = 2


@dataclass
class ImageSet:
    """Images ready to train on."""

    x: torch.Tensor  # float32 [N, 1, size, size] in [-1, 1]
    labels: torch.Tensor | None  # long [N] (index into class_names), or None when unlabelled
    class_names: list[str]  # folder names, sorted; [] when unlabelled
    names: list[str]  # where each image came from (member or file name)
    size: int  # pixels a side
    skipped: list[str] = field(default_factory=list)  # hidden / system entries left out

    @property
    def counts(self) -> dict[str, int]:
        """Images per class (folder name), or {"all": N} when unlabelled."""
        if self.labels is None:
            return {"all": int(self.x.shape[0])}
        c = torch.bincount(self.labels, minlength=len(self.class_names)).tolist()
        return dict(zip(self.class_names, c))


def _check_size(size) -> int:
    if isinstance(size, bool) or size not in UPLOAD_SIZES:
        raise UploadError(f"image_size must be one of {list(UPLOAD_SIZES)}, got {size!r}")
    return int(size)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe(name: str) -> bool:
    """A member name that would leave the folder it is extracted into (or that only a Windows tool would read)."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return True
    return any(part == ".." for part in name.split("/"))


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(name).parts)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: UploadLimits, budget: list[int]) -> bytes:
    """A member's bytes, counted as they inflate against the per-member cap and the remaining total (budget[0])."""
    cap = min(limits.max_member_bytes, budget[0])
    chunks, total = [], 0
    with zf.open(info) as f:
        while True:
            chunk = f.read(min(65536, cap + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                which = "one member" if cap == limits.max_member_bytes else "all members together"
                raise UploadError(
                    f"archive: entry {info.filename!r} inflates past the {_mb(cap)} limit for {which} "
                    "(a zip bomb, or images far too large)"
                )
            chunks.append(chunk)
    budget[0] -= total
    return b"".join(chunks)


def images_from_zip(data: bytes, size: int = 16, limits: UploadLimits = UploadLimits()) -> ImageSet:
    """A zip archive of PNG/JPEG images -> an ImageSet.  Images all at the top level (after one shared wrapping
    folder, if any) are unlabelled; images all one folder deep are labelled by folder (one class per folder)."""
    size = _check_size(size)
    if not isinstance(data, (bytes, bytearray)):
        raise UploadError(f"archive must be bytes, got {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise UploadError(f"archive: {_mb(len(data))} is over the {_mb(limits.max_bytes)} upload limit")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as e:
        raise UploadError(f"archive: not a zip file ({e})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise UploadError(f"archive: {len(infos)} entries, over the limit of {limits.max_entries}")
        for info in infos:  # every name is checked before anything is read
            if _unsafe(info.filename):
                raise UploadError(
                    f"archive: entry {info.filename!r} escapes the folder (an absolute path, a drive, "
                    "a backslash or '..'); nothing was read"
                )
        files, skipped = [], []
        for info in infos:
            if info.is_dir():
                continue
            (skipped if _hidden(info.filename) else files).append(info)
        for info in files:
            if PurePosixPath(info.filename).suffix.lower() not in IMAGE_SUFFIXES:
                raise UploadError(
                    f"archive: {info.filename!r} is not an image (only PNG and JPEG files, {', '.join(IMAGE_SUFFIXES)})"
                )
        if not files:
            raise UploadError("archive: holds no PNG or JPEG image")
        if len(files) > limits.max_images:
            raise UploadError(f"archive: {len(files)} images, over the limit of {limits.max_images}")
        declared = sum(i.file_size for i in files)
        if declared > limits.max_uncompressed:
            raise UploadError(
                f"archive: its images would inflate to {_mb(declared)}, over the "
                f"{_mb(limits.max_uncompressed)} limit (checked before extracting anything)"
            )
        big = max(files, key=lambda i: i.file_size)
        if big.file_size > limits.max_member_bytes:
            raise UploadError(
                f"archive: entry {big.filename!r} would inflate to {_mb(big.file_size)}, over the "
                f"{_mb(limits.max_member_bytes)} limit for one image"
            )
        names, labels, class_names = _classes([i.filename for i in files], limits)
        budget = [limits.max_uncompressed]
        try:
            blobs = [_read_member(zf, i, limits, budget) for i in files]
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as e:
            raise UploadError(f"archive: is corrupt or uses an unsupported compression ({e})") from None
    return _decode(list(zip(names, blobs)), labels, class_names, size, limits, skipped)


def images_from_files(
    files: list[tuple[str, bytes]], size: int = 16, limits: UploadLimits = UploadLimits()
) -> ImageSet:
    """Several uploaded files (name, bytes) -> an unlabelled ImageSet; a single .zip file is read as an archive."""
    size = _check_size(size)
    if not files:
        raise UploadError("images: no file was uploaded")
    if len(files) == 1 and files[0][0].lower().endswith(".zip"):
        return images_from_zip(files[0][1], size, limits)
    total = sum(len(b) for _, b in files)
    if total > limits.max_bytes:
        raise UploadError(f"images: {_mb(total)} together, over the {_mb(limits.max_bytes)} upload limit")
    if len(files) > limits.max_images:
        raise UploadError(f"images: {len(files)} files, over the limit of {limits.max_images}")
    for name, _ in files:
        if name.lower().endswith(".zip"):
            raise UploadError(f"images: {name!r} is a zip archive: upload it alone, or only image files")
        if PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
            raise UploadError(
                f"images: {name!r} is not an image (only PNG and JPEG files, {', '.join(IMAGE_SUFFIXES)})"
            )
    return _decode([(PurePosixPath(n).name, b) for n, b in files], None, [], size, limits, [])


def _classes(paths: list[str], limits: UploadLimits) -> tuple[list[str], torch.Tensor | None, list[str]]:
    """Member paths -> (names, labels or None, class names).  Shared wrapping folders are dropped first."""
    parts = [PurePosixPath(p).parts for p in paths]
    while all(len(p) >= 2 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]  # "mydata/cats/a.png" -> "cats/a.png"
    depths = {len(p) for p in parts}
    if depths == {1}:
        return paths, None, []
    if depths != {2}:
        deep = next(p for p, q in zip(paths, parts) if len(q) > 2) if max(depths) > 2 else None
        if deep is not None:
            raise UploadError(f"archive: {deep!r} is nested too deep: put images at the top, or one folder per class")
        top = next(p for p, q in zip(paths, parts) if len(q) == 1)
        inner = next(p for p, q in zip(paths, parts) if len(q) == 2)
        raise UploadError(f"archive: {top!r} is at the top but {inner!r} is in a class folder: use one or the other")
    class_names = sorted({p[0] for p in parts})
    if len(class_names) > limits.max_classes:
        raise UploadError(f"archive: {len(class_names)} class folders, over the limit of {limits.max_classes}")
    labels = torch.tensor([class_names.index(p[0]) for p in parts], dtype=torch.long)
    counts = torch.bincount(labels, minlength=len(class_names))
    for name, c in zip(class_names, counts.tolist()):
        if c < limits.min_per_class:
            raise UploadError(
                f"archive: class folder {name!r} has {c} image{'s' if c != 1 else ''}; every class needs "
                f"at least {limits.min_per_class}"
            )
    return paths, labels, class_names


def _open(name: str, blob: bytes, limits: UploadLimits) -> Image.Image:
    """Read an image's header only (no pixels decoded yet) and check its format and pixel count."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(blob), formats=_FORMATS)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ) as e:
        raise UploadError(f"image {name!r} is not a readable PNG or JPEG image ({type(e).__name__}: {e})") from None
    w, h = im.size
    if w < 1 or h < 1 or w * h > limits.max_pixels:
        raise UploadError(f"image {name!r} is {w}x{h} pixels; one image may have at most {limits.max_pixels:,} pixels")
    return im


def _decode(items: list[tuple[str, bytes]], labels, class_names, size: int, limits: UploadLimits, skipped) -> ImageSet:
    opened = [(name, _open(name, blob, limits)) for name, blob in items]
    total = sum(im.size[0] * im.size[1] for _, im in opened)
    if total > limits.max_total_pixels:
        raise UploadError(f"images: {total:,} pixels together, over the limit of {limits.max_total_pixels:,}")
    sides = [(max(im.size), min(im.size), name, im.size) for name, im in opened]
    largest, smallest = max(sides), min(sides, key=lambda s: s[1])
    if largest[0] > limits.max_size_ratio * smallest[1]:
        raise UploadError(
            f"images are of wildly different sizes: {largest[2]!r} is {largest[3][0]}x{largest[3][1]} "
            f"but {smallest[2]!r} is {smallest[3][0]}x{smallest[3][1]} (at most {limits.max_size_ratio:g}x "
            "apart); resize them to about the same size"
        )
    x = torch.empty(len(opened), 1, size, size)
    for i, (name, im) in enumerate(opened):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                x[i, 0] = torch.from_numpy(_to_gray(im, size))
        except (OSError, SyntaxError, ValueError) as e:
            raise UploadError(f"image {name!r} cannot be decoded ({type(e).__name__}: {e})") from None
    return ImageSet(x, labels, list(class_names), [n for n, _ in items], size, list(skipped))


def _to_gray(im: Image.Image, size: int) -> np.ndarray:
    """Decode, flatten transparency onto white, grayscale, pad to a square with the border's median tone (the
    background), resize (area averaging when shrinking) -> float32 [size, size] in [-1, 1], dark = +1."""
    im.load()
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    g = np.asarray(im.convert("L"), dtype=np.float32)  # [h, w] in 0..255
    h, w = g.shape
    if h != w:
        border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
        s = max(h, w)
        sq = np.full((s, s), float(np.median(border)), dtype=np.float32)
        sq[(s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = g
        g = sq
    pil = Image.fromarray(g)  # float32 -> mode "F"
    resample = Image.BOX if g.shape[0] >= size else Image.BILINEAR
    small = np.asarray(pil.resize((size, size), resample), dtype=np.float32)
    return np.clip(1.0 - 2.0 * small / 255.0, -1.0, 1.0)
