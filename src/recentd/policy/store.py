"""The policy's persisted state: ``policy.json`` in the state directory (an adapter).

It holds the evidence history (``ctl why`` survives a restart; escalation's ban counts
too). Replaced atomically as ``sources.json`` is (temporary file, fsync, rename, fsync
of the directory). A damaged file is a :class:`~recentd.errors.StateFileError` naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from recentd.errors import StateFileError
from recentd.policy.history import History

FILE_NAME = "policy.json"
FORMAT_NAME = "recentd-policy"
VERSION = 1


def load_history(directory: Path, history: History) -> bool:
    """Fill ``history`` from the saved file; False when there is none.

    Raises:
        StateFileError: unreadable, damaged or of another version.
    """
    path = directory / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateFileError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateFileError(f"not JSON: {exc}", path=path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise StateFileError("not a recentd policy file", path=path)
    if data.get("version") != VERSION:
        raise StateFileError(f"policy file version {data.get('version')!r}, this recentd "
                             f"reads {VERSION}", path=path, found=data.get("version"),
                             expected=VERSION)  # fmt: skip
    history.load_json(data.get("history"), str(path))
    return True


def save_history(directory: Path, history: History) -> None:
    """Replace the saved file atomically.

    Raises:
        StateFileError: it cannot be written.
    """
    path = directory / FILE_NAME
    temporary = path.with_name(FILE_NAME + ".tmp")
    body = {"format": FORMAT_NAME, "version": VERSION, "history": history.to_json()}
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with temporary.open("w", encoding="utf-8") as out:
            json.dump(body, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateFileError(f"cannot save the policy history: {exc}", path=path) from None
