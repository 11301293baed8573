"""A user's own images as a dataset: a zip archive (flat, or one folder per class) or several image files, converted
to grayscale at 8, 16 or 32 pixels a side, values in [-1, 1] (dark ink +1, white background -1, like the glyphs).

Everything an upload would cost is checked before it is spent, and again while it is spent:

* the upload's size; the archive's end records (how many entries it lists, how many bytes its directory takes, and
  how many entry headers those bytes hold, counted by :mod:`adiff.data.zipdir` with struct) before zipfile parses
  a single entry; then the directory itself (names, encryption, compression, declared sizes) before any member is
  read;
* names: an absolute path, a drive letter, a backslash or a '..' is refused (members are read into memory by
  name, never extracted, so no name can reach the disk; the check still tells the user what is wrong);
* the uncompressed size declared by the directory is capped before reading, and the bytes actually read are
  counted against the same caps (a zip bomb cannot inflate past them, whatever its directory claims);
* every image's header (format, width x height) before it is decoded: PNG or JPEG only, a pixel cap per image
  and for the whole set (:func:`adiff.data.image_files.open_image`);
* the set: at most ``max_images`` images, sizes within ``max_size_ratio`` of each other, every class folder with
  at least two images.

Images are read as people take them (:func:`adiff.data.image_files.gray_and_alpha`): EXIF orientation applied,
16-bit images scaled by 65535 (not clipped at 255), transparent pixels flattened onto white (the background).

Hidden and system entries (``__MACOSX/``, dot-files such as ``.DS_Store``) are skipped and reported.  Any other
problem raises :class:`UploadError` (a ValueError) whose message starts with the field ("images: ...") and echoes
at most a name or two, each cut to 60 characters: never a path on the server, an object's repr or a library's
traceback.  Nothing is kept from a failed upload and nothing is written to disk; given paths
(:func:`images_from_paths`), a refused upload is not even read: sizes come from the file system and an archive is
mapped, so only its end records and directory are touched.  :meth:`ImageSet.summary` is what
to show a person, bounded whatever the upload held.  No gradio here: the Train tab calls these functions.
"""

from __future__ import annotations

import io
import lzma
import mmap
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import torch

from .image_files import UploadError, listing, open_image, quote, square_gray
from .zipdir import count_entries, read_directory

__all__ = [
    "UPLOAD_SIZES",
    "UploadLimits",
    "ImageSet",
    "UploadError",
    "images_from_zip",
    "images_from_files",
    "images_from_paths",
]

UPLOAD_SIZES = (8, 16, 32)  # the sides images are converted to
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SHOWN = 8  # names a summary shows before "… and N more"
_NOT_ZIP = "images: the file is not a zip archive"
_COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
# What zipfile raises on a damaged archive or member (RuntimeError: a password, checked before; kept as a fallback).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, ValueError, OSError)
_ZIP_ERRORS += (EOFError, KeyError, IndexError, struct.error, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class UploadLimits:
    max_images: int = 2000  # images in one upload
    max_bytes: int = 20 * 2**20  # the upload itself: the archive, or all the files together
    max_entries: int = 5000  # entries in the archive's directory (files and folders)
    max_directory_bytes: int = 4 * 2**20  # the archive's central directory (names included)
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
    skipped: list[str] = field(default_factory=list)  # names of the hidden / system entries left out

    @property
    def counts(self) -> dict[str, int]:
        """Images per class (folder name), or {"all": N} when unlabelled."""
        if self.labels is None:
            return {"all": int(self.x.shape[0])}
        c = torch.bincount(self.labels, minlength=len(self.class_names)).tolist()
        return dict(zip(self.class_names, c))

    def summary(self, shown: int = SHOWN) -> dict:
        """What to show a person, bounded whatever the upload held (under 2 kB as JSON with the defaults): the image
        count and size, the first ``shown`` classes with their counts (names cut to 60 characters; the rest as one
        "… and N more classes" entry), and the first few skipped names with "… and N more"."""
        counts = list(self.counts.items())
        per_class: dict[str, int] = {}
        for i, (name, n) in enumerate(counts[:shown]):
            key = listing([name], 1)[0]
            per_class[key if key not in per_class else f"{key} #{i + 1}"] = n  # two long names cut alike
        if len(counts) > shown:
            per_class[f"… and {len(counts) - shown:,} more classes"] = sum(n for _, n in counts[shown:])
        return {
            "images": int(self.x.shape[0]),
            "image_size": self.size,
            "counts_per_class": per_class,
            "classes": listing(self.class_names, shown),
            "skipped": listing(self.skipped),
        }


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


def _not_image(name: str) -> UploadError:
    return UploadError(f"images: {quote(name)} is not an image (only PNG and JPEG files, {', '.join(IMAGE_SUFFIXES)})")


def _check_bytes(n: int, limits: UploadLimits) -> None:
    if n > limits.max_bytes:
        raise UploadError(f"images: the archive is {_mb(n)}, over the {_mb(limits.max_bytes)} upload limit")


def _check_directory(data: bytes, limits: UploadLimits) -> None:
    """The archive's size, entry count and directory size from its end records, before zipfile parses any entry."""
    _check_bytes(len(data), limits)
    d = read_directory(data)
    if d is None:
        raise UploadError(_NOT_ZIP)
    if d.entries > limits.max_entries:
        raise UploadError(f"images: the archive lists {d.entries:,} entries, at most {limits.max_entries:,}")
    if d.size > limits.max_directory_bytes:
        raise UploadError(
            f"images: the archive's directory takes {_mb(d.size)}, at most {_mb(limits.max_directory_bytes)}"
        )
    if count_entries(data, d, stop=limits.max_entries) > limits.max_entries:  # its end record says fewer
        raise UploadError(
            f"images: the archive holds over {limits.max_entries:,} entries, at most {limits.max_entries:,}"
        )


def _members(zf: zipfile.ZipFile, limits: UploadLimits) -> tuple[list[zipfile.ZipInfo], list[str]]:
    """The image members to read and the names of the hidden ones skipped, with every name, flag and declared size
    checked before anything is read."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:  # zipfile parsed more than the end records said (a malformed directory)
        raise UploadError(f"images: the archive holds {len(infos):,} entries, at most {limits.max_entries:,}")
    for info in infos:  # every name is checked before anything is read
        if _unsafe(info.filename):
            raise UploadError(
                f"images: the entry {quote(info.filename)} escapes the folder (an absolute path, a drive, "
                "a backslash or '..'); nothing was read"
            )
    files = [i for i in infos if not i.is_dir() and not _hidden(i.filename)]
    skipped = [i.filename for i in infos if not i.is_dir() and _hidden(i.filename)]
    for info in files:
        if PurePosixPath(info.filename).suffix.lower() not in IMAGE_SUFFIXES:
            raise _not_image(info.filename)
        if info.flag_bits & 0x1:  # general purpose bit 0: encrypted (APPNOTE.TXT 4.4.4)
            raise UploadError(f"images: {quote(info.filename)} is encrypted; upload an archive without a password")
        if info.compress_type not in _COMPRESSIONS:
            raise UploadError(
                f"images: {quote(info.filename)} uses compression method {info.compress_type}, which this reader "
                "does not support; zip it again with the usual deflate method"
            )
    if not files:
        raise UploadError("images: the archive holds no PNG or JPEG image")
    if len(files) > limits.max_images:
        raise UploadError(f"images: the archive holds {len(files):,} images, at most {limits.max_images:,}")
    _check_declared(files, limits)
    return files, skipped


def _check_declared(files: list[zipfile.ZipInfo], limits: UploadLimits) -> None:
    declared = sum(i.file_size for i in files)
    if declared > limits.max_uncompressed:
        raise UploadError(
            f"images: the archive's images would inflate to {_mb(declared)}, over the "
            f"{_mb(limits.max_uncompressed)} limit (checked before extracting anything)"
        )
    big = max(files, key=lambda i: i.file_size)
    if big.file_size > limits.max_member_bytes:
        raise UploadError(
            f"images: {quote(big.filename)} would inflate to {_mb(big.file_size)}, over the "
            f"{_mb(limits.max_member_bytes)} limit for one image"
        )


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
                which = "one image" if cap == limits.max_member_bytes else "all images together"
                raise UploadError(
                    f"images: {quote(info.filename)} inflates past the {_mb(cap)} limit for {which} "
                    "(a zip bomb, or images far too large)"
                )
            chunks.append(chunk)
    budget[0] -= total
    return b"".join(chunks)


def _read_all(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo], limits: UploadLimits) -> list[bytes]:
    budget, blobs = [limits.max_uncompressed], []
    for info in files:
        try:
            blobs.append(_read_member(zf, info, limits, budget))
        except _ZIP_ERRORS:  # zipfile's own message may repeat two full names: not echoed
            raise UploadError(
                f"images: {quote(info.filename)} is damaged in the archive (its data or checksum is wrong)"
            ) from None
    return blobs


def images_from_zip(data: bytes | str | os.PathLike, size: int = 16, limits: UploadLimits = UploadLimits()) -> ImageSet:
    """A zip archive of PNG/JPEG images -> an ImageSet.  Images all at the top level (after one shared wrapping
    folder, if any) are unlabelled; images all one folder deep are labelled by folder (one class per folder).
    ``data``: the archive's bytes, or its path: then the file is mapped, not read, so only its end records, its
    directory and its members are ever touched (a refused archive leaves nothing in memory)."""
    size = _check_size(size)
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as f:
            n = os.fstat(f.fileno()).st_size
            if n == 0:
                raise UploadError(_NOT_ZIP)  # (an empty file cannot be mapped)
            _check_bytes(n, limits)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return _from_zip(mm, f, size, limits)
    if not isinstance(data, (bytes, bytearray)):
        raise UploadError(f"images: the archive must be bytes or a path, got {type(data).__name__}")
    return _from_zip(data, io.BytesIO(data), size, limits)


def _from_zip(data, file, size: int, limits: UploadLimits) -> ImageSet:
    """``data``: the archive as bytes or an mmap; ``file``: the same, as a file object for zipfile."""
    _check_directory(data, limits)
    try:
        zf = zipfile.ZipFile(file)
    except _ZIP_ERRORS:
        raise UploadError("images: the zip archive is damaged: its directory cannot be read") from None
    with zf:
        files, skipped = _members(zf, limits)
        names, labels, class_names = _classes([i.filename for i in files], limits)
        blobs = _read_all(zf, files, limits)
    return _decode(list(zip(names, blobs)), labels, class_names, size, limits, skipped)


def images_from_paths(
    paths: list[str | os.PathLike], size: int = 16, limits: UploadLimits = UploadLimits()
) -> ImageSet:
    """Uploaded files on disk -> an ImageSet, as :func:`images_from_files` reads them, with the count and the total
    size checked from the file system before a byte is read; a single .zip is mapped (:func:`images_from_zip`).
    Messages name a file by its base name only (never the server's folder)."""
    size = _check_size(size)
    paths = [Path(p) for p in paths]
    if not paths:
        raise UploadError("images: no file was uploaded")
    missing = next((p for p in paths if not p.is_file()), None)
    if missing is not None:
        raise UploadError(f"images: the upload {quote(missing.name)} is missing on the server; upload it again")
    if len(paths) == 1 and paths[0].suffix.lower() == ".zip":
        return images_from_zip(paths[0], size, limits)
    _check_upload(len(paths), sum(p.stat().st_size for p in paths), limits)
    return images_from_files([(p.name, p.read_bytes()) for p in paths], size, limits)


def _check_upload(count: int, total: int, limits: UploadLimits) -> None:
    if total > limits.max_bytes:
        raise UploadError(f"images: {_mb(total)} together, over the {_mb(limits.max_bytes)} upload limit")
    if count > limits.max_images:
        raise UploadError(f"images: {count:,} files, at most {limits.max_images:,}")


def images_from_files(
    files: list[tuple[str, bytes]], size: int = 16, limits: UploadLimits = UploadLimits()
) -> ImageSet:
    """Several uploaded files (name, bytes) -> an unlabelled ImageSet; a single .zip file is read as an archive."""
    size = _check_size(size)
    if not files:
        raise UploadError("images: no file was uploaded")
    if len(files) == 1 and files[0][0].lower().endswith(".zip"):
        return images_from_zip(files[0][1], size, limits)
    _check_upload(len(files), sum(len(b) for _, b in files), limits)
    for name, _ in files:
        if name.lower().endswith(".zip"):
            raise UploadError(f"images: {quote(name)} is a zip archive: upload it alone, or only image files")
        if PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
            raise _not_image(name)
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
            raise UploadError(
                f"images: {quote(deep)} is nested too deep: put images at the top, or one folder per class"
            )
        top = next(p for p, q in zip(paths, parts) if len(q) == 1)
        inner = next(p for p, q in zip(paths, parts) if len(q) == 2)
        raise UploadError(
            f"images: {quote(top)} is at the top but {quote(inner)} is in a class folder: use one or the other"
        )
    class_names = sorted({p[0] for p in parts})
    if len(class_names) > limits.max_classes:
        raise UploadError(f"images: the archive has {len(class_names):,} class folders, at most {limits.max_classes}")
    labels = torch.tensor([class_names.index(p[0]) for p in parts], dtype=torch.long)
    counts = torch.bincount(labels, minlength=len(class_names))
    for name, c in zip(class_names, counts.tolist()):
        if c < limits.min_per_class:
            raise UploadError(
                f"images: class folder {quote(name)} has {c} image{'s' if c != 1 else ''}; every class needs "
                f"at least {limits.min_per_class}"
            )
    return paths, labels, class_names


def _decode(items: list[tuple[str, bytes]], labels, class_names, size: int, limits: UploadLimits, skipped) -> ImageSet:
    opened = [(name, open_image(blob, f"images: {quote(name)}", limits.max_pixels)) for name, blob in items]
    total = sum(im.size[0] * im.size[1] for _, im in opened)
    if total > limits.max_total_pixels:
        raise UploadError(f"images: {total:,} pixels together, at most {limits.max_total_pixels:,}")
    sides = [(max(im.size), min(im.size), name, im.size) for name, im in opened]
    largest, smallest = max(sides), min(sides, key=lambda s: s[1])
    if largest[0] > limits.max_size_ratio * smallest[1]:
        raise UploadError(
            f"images: they are of wildly different sizes: {quote(largest[2])} is {largest[3][0]}x{largest[3][1]} "
            f"but {quote(smallest[2])} is {smallest[3][0]}x{smallest[3][1]} (at most {limits.max_size_ratio:g}x "
            "apart); resize them to about the same size"
        )
    x = torch.empty(len(opened), 1, size, size)
    for i, (name, im) in enumerate(opened):
        x[i, 0] = torch.from_numpy(square_gray(im, f"images: {quote(name)}", size))
    return ImageSet(x, labels, list(class_names), [n for n, _ in items], size, list(skipped))
