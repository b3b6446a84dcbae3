"""Where each evidence source stopped reading, kept in the state directory.

One file, ``sources.json`` (``{"format": "recentd-sources", "version": 1, "sources":
{KEY: CHECKPOINT}}``), replaced atomically: written to a temporary file, fsynced,
renamed over the old one, the directory fsynced. A crash leaves the old file or the
new one, never half of either. A damaged file, or one of another version, is a
:class:`~recentd.errors.StateFileError` naming it: reading a log again from its start
would count every old line a second time, so recentd never guesses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from recentd.errors import StateFileError
from recentd.sources import Checkpoint
from recentd.state.jsonfile import read_versioned, write_atomically

FILE_NAME = "sources.json"
FORMAT_NAME = "recentd-sources"
VERSION = 1


def load_checkpoints(directory: Path) -> dict[str, Checkpoint]:
    """The saved checkpoints by source key (none when the file does not exist).

    Raises:
        StateFileError: the file is unreadable, damaged or of another version.
    """
    path = directory / FILE_NAME
    data = read_versioned(path, FORMAT_NAME, VERSION, "sources")
    if data is None:
        return {}
    sources = data.get("sources")
    if not isinstance(sources, dict) or not all(isinstance(v, dict) for v in sources.values()):
        raise StateFileError("malformed 'sources' mapping", path=path)
    return {str(key): value for key, value in sources.items()}


def save_checkpoints(directory: Path, checkpoints: Mapping[str, Checkpoint]) -> None:
    """Replace the saved checkpoints atomically.

    Raises:
        StateFileError: the file cannot be written (naming the directory and why).
    """
    body = {"format": FORMAT_NAME, "version": VERSION, "sources": dict(checkpoints)}
    write_atomically(directory / FILE_NAME, body, "source checkpoints")
