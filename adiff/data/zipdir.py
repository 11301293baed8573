"""A zip archive's directory, read by hand before zipfile parses it: how many entries it lists, how many bytes it
takes, and how many entry headers those bytes really hold.  zipfile.ZipFile builds a ZipInfo object (about 400 bytes)
for every entry as it opens an archive, so an archive of 16 MB that lists 300,000 entries costs over 100 MB and
seconds before anyone can count them; here they are counted from a few fixed-size records first.

Record layouts from PKWARE's APPNOTE.TXT 6.3.10: the central directory file header (section 4.3.12, 46 bytes plus
name, extra field and comment), the zip64 end of central directory record (4.3.14, 56 bytes) and its locator
(4.3.15, 20 bytes), the end of central directory record (4.3.16, 22 bytes plus a comment of up to 65,535 bytes).
Where the directory starts is worked out as CPython's zipfile does (zipfile._EndRecData, _EndRecData64 and
_RealGetContents in 3.10-3.11): from where the end record lies and the directory's size, so that the bytes counted
here are the bytes zipfile would parse.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["ZipDirectory", "read_directory", "count_entries"]

_EOCD = struct.Struct("<4s4H2LH")  # 4.3.16: signature, disk, disk of the directory, entries here, entries, size, offset
_EOCD64 = struct.Struct(
    "<4sQ2H2L4Q"
)  # 4.3.14: signature, record size, versions, disks, entries here, entries, size, offset
_LOCATOR = struct.Struct("<4sLQL")  # 4.3.15: signature, disk of the zip64 record, its offset, number of disks
_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # 4.3.12: the 46 fixed bytes of a central directory file header
_EOCD_SIG, _EOCD64_SIG, _LOCATOR_SIG, _HEADER_SIG = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK\x01\x02"
_MAX_COMMENT = 65_535


@dataclass(frozen=True)
class ZipDirectory:
    """What the end records say about an archive's central directory."""

    entries: int  # entries the end record lists (the zip64 record's count when there is one)
    size: int  # bytes of the central directory, as the end record declares them
    start: int  # where zipfile will start reading the directory in the file
    zip64: bool  # the counts came from a zip64 end record


def _end_record(data: bytes) -> int:
    """Offset of the end of central directory record: the last 22 bytes when there is no comment, else the last
    signature within the final 65,535 + 22 bytes (zipfile._EndRecData); -1 when there is none."""
    if len(data) < _EOCD.size:
        return -1
    tail = len(data) - _EOCD.size
    if data[tail : tail + 4] == _EOCD_SIG and data[-2:] == b"\x00\x00":
        return tail
    return data.rfind(_EOCD_SIG, max(0, len(data) - _MAX_COMMENT - _EOCD.size))


def read_directory(data: bytes) -> ZipDirectory | None:
    """The archive's directory as its end records describe it, or None when ``data`` has no end record that
    zipfile would accept (then it is not a zip file; a directory said to start before the file does is refused by
    zipfile too).  Reads 22 + 20 + 56 bytes; nothing is parsed per entry."""
    at = _end_record(data)
    if at < 0 or at + _EOCD.size > len(data):
        return None
    _, _, _, _, entries, size, _, _ = _EOCD.unpack_from(data, at)
    loc = at - _LOCATOR.size
    rec = loc - _EOCD64.size  # zipfile assumes no zip64 extensible data: the record lies just before the locator
    zip64 = rec >= 0 and data[loc : loc + 4] == _LOCATOR_SIG and data[rec : rec + 4] == _EOCD64_SIG
    if zip64:
        _, _, _, _, _, _, _, entries, size, _ = _EOCD64.unpack_from(data, rec)
    start = at - size - (_EOCD64.size + _LOCATOR.size if zip64 else 0)  # the directory ends where the records begin
    return ZipDirectory(entries, size, start, zip64) if start >= 0 else None  # zipfile: "Bad offset for central ..."


def count_entries(data: bytes, directory: ZipDirectory, stop: int) -> int:
    """How many central directory headers zipfile would parse from ``directory`` (it reads ``size`` bytes from
    ``start`` and parses headers until they are used up, whatever count the end record gives), stopping as soon as
    the count passes ``stop``: at most stop + 1 headers are looked at (46 bytes each, no objects built).  A malformed
    directory is counted as far as it goes; zipfile then refuses it itself."""
    end = min(directory.start + directory.size, len(data))
    at, n = max(directory.start, 0), 0
    while at + _HEADER.size <= end and n <= stop:
        fields = _HEADER.unpack_from(data, at)
        if fields[0] != _HEADER_SIG:
            break
        n += 1
        at += _HEADER.size + fields[12] + fields[13] + fields[14]  # name, extra field and comment lengths
    return n
