"""Logs read once, whole: a file and its rotations, plain or gzip, for ``logs scan`` and
``logs replay``.

Rules of this module:

1. Gzip or plain is decided by the file's first bytes (the gzip magic ``1f 8b``), never
   by its name: logrotate's ``delaycompress`` leaves ``LOG.1`` plain and ``LOG.2.gz``
   compressed, and a renamed file keeps its content.
2. A log's rotations are its siblings ``LOG.N[.gz]`` (logrotate's numbers: higher is
   older) and ``LOG-SUFFIX[.gz]`` (``dateext``: sorted by their suffix, which sorts by
   date), read oldest first, the live ``LOG`` last.
3. Lines come out as :mod:`recentd.sources.lines` makes them (UTF-8 with replacement,
   overlong lines dropped as ``""`` but numbered); a last line without a newline is a
   line.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from recentd.observation import Observation
from recentd.sources.lines import LineParser, LineSpan, LineSplitter

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def is_gzip(path: Path) -> bool:
    """Whether ``path`` starts with the gzip magic bytes."""
    with path.open("rb") as file:
        return file.read(2) == GZIP_MAGIC


def open_log(path: Path) -> io.BufferedIOBase:
    """``path`` opened for reading bytes, decompressed if it is gzip.

    Raises:
        OSError: the file cannot be opened (the caller names it to the user).
    """
    if is_gzip(path):
        return gzip.open(path, "rb")
    return path.open("rb")


def rotations(path: Path) -> list[Path]:
    """``path``'s rotated siblings that exist, oldest first, then ``path`` if it exists."""
    numbered = re.compile(re.escape(path.name) + r"\.(\d+)(?:\.gz)?")
    dated = re.compile(re.escape(path.name) + r"-([0-9][0-9A-Za-z._-]*?)(?:\.gz)?")
    by_number: list[tuple[int, Path]] = []
    by_date: list[tuple[str, Path]] = []
    parent = path.parent
    for sibling in parent.iterdir() if parent.is_dir() else ():
        if (match := numbered.fullmatch(sibling.name)) and sibling.is_file():
            by_number.append((int(match[1]), sibling))
        elif (match := dated.fullmatch(sibling.name)) and sibling.is_file():
            by_date.append((match[1], sibling))
    ordered = [p for _, p in sorted(by_date)] + [p for _, p in sorted(by_number, reverse=True)]
    return [*ordered, path] if path.is_file() else ordered


def iter_batches(
    path: Path, *, skip_bytes: int = 0, splitter: LineSplitter | None = None
) -> Iterator[list[str]]:
    """The lines of ``path`` (plain or gzip) after its first ``skip_bytes`` bytes, in
    batches as the reads fall (``splitter`` given: it counts the overlong lines dropped).

    Raises:
        OSError: the file cannot be read; EOFError: a gzip file is truncated.
    """
    splitter = splitter or LineSplitter()
    with open_log(path) as file:
        if skip_bytes:
            file.seek(skip_bytes)
        while chunk := file.read(_CHUNK):
            if lines := splitter.feed(chunk):
                yield lines
    if last := splitter.flush():
        yield last


def iter_lines(path: Path, *, skip_bytes: int = 0) -> Iterator[str]:
    """The lines of ``path``, one at a time (see :func:`iter_batches`)."""
    for batch in iter_batches(path, skip_bytes=skip_bytes):
        yield from batch


def scan(paths: Iterable[Path], parser: LineParser) -> Iterator[Observation]:
    """Every observation ``parser`` finds in the lines of ``paths``, read in that order
    as one stream (a session may start in ``LOG.1`` and end in ``LOG``), then what
    :meth:`~recentd.sources.lines.LineParser.finish` reports.

    Each observation's origin is ``file PATH (line N)``, N counted from 1 in each file.

    Raises:
        OSError: a file cannot be read; EOFError: a gzip file is truncated.
    """
    for path in paths:
        first = 1
        for batch in iter_batches(path):
            yield from parser.feed_lines(batch, LineSpan("file", str(path), first))
            first += len(batch)
    yield from parser.finish()
