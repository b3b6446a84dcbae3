"""Small versioned JSON files in the state directory, read and replaced safely.

Rules: a file is one JSON object ``{"format": NAME, "version": N, …}``; reading one of
another format or version is a :class:`~recentd.errors.StateFileError` naming it (never a
guess); a write replaces the file atomically and durably (temporary file, fsync, rename,
fsync of the directory), so a crash leaves the old file or the new one, never a mix.
Used by the sources' checkpoints (:mod:`recentd.state.checkpoints`) and the policy's
history (:mod:`recentd.policy.store`); the tables have their own journal
(:mod:`recentd.state.store`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from recentd.errors import StateFileError


def read_versioned(path: Path, format_name: str, version: int, what: str) -> dict[str, Any] | None:
    """The file's object, checked for ``format_name`` and ``version``; None when absent.

    Raises:
        StateFileError: unreadable, not JSON, another format or another version.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateFileError(f"not JSON: {exc}", path=path) from None
    if not isinstance(data, dict) or data.get("format") != format_name:
        raise StateFileError(f"not a recentd {what} file", path=path)
    if data.get("version") != version:
        raise StateFileError(
            f"{what} file version {data.get('version')!r}, this recentd reads {version}",
            path=path, found=data.get("version"), expected=version,
        )  # fmt: skip
    return data


def write_atomically(path: Path, body: dict[str, Any], what: str) -> None:
    """Replace ``path`` with ``body`` as JSON, atomically and durably.

    Raises:
        StateFileError: it cannot be written, or ``body`` is not JSON-able (naming ``what``).
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with temporary.open("w", encoding="utf-8") as out:
            json.dump(body, out, sort_keys=True, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except (OSError, TypeError, ValueError) as exc:  # TypeError: a value not JSON-able
        raise StateFileError(f"cannot save {what}: {exc}", path=path) from None
