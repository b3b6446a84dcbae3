"""Where each evidence source stopped reading, kept in the state directory.

One file, ``sources.json`` (``{"format": "recentd-sources", "version": 1, "sources":
{KEY: CHECKPOINT}}``), replaced atomically: written to a temporary file, fsynced,
renamed over the old one, the directory fsynced. A crash leaves the old file or the
new one, never half of either. A damaged file, or one of another version, is a
:class:`~recentd.errors.StateFileError` naming it: reading a log again from its start
would count every old line a second time, so recentd never guesses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from recentd.errors import StateFileError
from recentd.sources import Checkpoint

FILE_NAME = "sources.json"
FORMAT_NAME = "recentd-sources"
VERSION = 1


def load_checkpoints(directory: Path) -> dict[str, Checkpoint]:
    """The saved checkpoints by source key (none when the file does not exist).

    Raises:
        StateFileError: the file is unreadable, damaged or of another version.
    """
    path = directory / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateFileError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateFileError(f"not JSON: {exc}", path=path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise StateFileError("not a recentd sources file", path=path)
    if data.get("version") != VERSION:
        raise StateFileError(
            f"sources file version {data.get('version')!r}, this recentd reads {VERSION}",
            path=path, found=data.get("version"), expected=VERSION,
        )  # fmt: skip
    sources = data.get("sources")
    if not isinstance(sources, dict) or not all(isinstance(v, dict) for v in sources.values()):
        raise StateFileError("malformed 'sources' mapping", path=path)
    return {str(key): value for key, value in sources.items()}


def save_checkpoints(directory: Path, checkpoints: Mapping[str, Checkpoint]) -> None:
    """Replace the saved checkpoints atomically.

    Raises:
        StateFileError: the file cannot be written (naming the directory and why).
    """
    path = directory / FILE_NAME
    temporary = path.with_name(FILE_NAME + ".tmp")
    body = {"format": FORMAT_NAME, "version": VERSION, "sources": dict(checkpoints)}
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with temporary.open("w", encoding="utf-8") as out:
            json.dump(body, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except (OSError, TypeError, ValueError) as exc:  # TypeError: a checkpoint not JSON-able
        raise StateFileError(f"cannot save source checkpoints: {exc}", path=path) from None
