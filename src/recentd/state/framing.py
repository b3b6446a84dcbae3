"""State files as a sequence of framed, checksummed records.

Layout of every state file (snapshot or journal)::

    b"RECENTD\\n"                                  8-byte magic
    [length u32 LE][crc32 u32 LE][payload]  ...    records; payload is UTF-8 JSON
                                                   and the first one is the header

Rules of damage:

1. A record whose frame runs past the end of the file, or whose checksum fails
   while its frame ends exactly at the end of the file, is a *torn tail*: the
   append a crash interrupted. :func:`read_records` stops before it and reports
   its offset, so the writer can truncate there and append again.
2. Any other bad record (a failing checksum with more data after it, bad JSON
   under a good checksum, a wrong magic) is corruption: :class:`StateFileError`.
   Records after damage are never skipped over silently.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recentd.errors import StateFileError

MAGIC = b"RECENTD\n"
_FRAME = struct.Struct("<II")


def frame(payload: dict[str, Any]) -> bytes:
    """One record, ready to append."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


@dataclass(frozen=True, slots=True)
class Records:
    """What a file held: its good records and where the good part ends.

    ``torn_at`` is the offset of a torn tail record, or ``None`` if the file ends
    cleanly; appending must start at ``end``.
    """

    payloads: list[dict[str, Any]]
    end: int
    torn_at: int | None


def read_records(path: Path) -> Records:
    """Read every good record of ``path``.

    Raises:
        StateFileError: unreadable, not a recentd state file, or corrupt before the tail.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StateFileError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    if not data.startswith(MAGIC):
        raise StateFileError("not a recentd state file (bad magic)", path=path)
    payloads: list[dict[str, Any]] = []
    offset = len(MAGIC)
    for offset, body in _frames(data, len(MAGIC), path):
        if body is None:
            return Records(payloads, offset, offset)
        payloads.append(_decode(body, path, offset))
    return Records(payloads, len(data), None)


def _frames(data: bytes, start: int, path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(offset, payload) per record; a final ``(offset, None)`` marks a torn tail."""
    offset = start
    while offset < len(data):
        if offset + _FRAME.size > len(data):
            yield offset, None
            return
        length, crc = _FRAME.unpack_from(data, offset)
        end = offset + _FRAME.size + length
        if end > len(data):
            yield offset, None
            return
        body = data[offset + _FRAME.size : end]
        if zlib.crc32(body) != crc:
            if end == len(data):
                yield offset, None
                return
            raise StateFileError(f"corrupt record at byte {offset} (checksum)", path=path)
        yield offset, body
        offset = end


def _decode(body: bytes, path: Path, offset: int) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        payload = None
    if not isinstance(payload, dict):
        raise StateFileError(f"corrupt record at byte {offset} (not an object)", path=path)
    return payload
