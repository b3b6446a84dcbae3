"""The policy's persisted state: ``policy.json`` in the state directory (an adapter).

It holds the evidence history (``ctl why`` survives a restart; escalation's ban counts
too) and the grants of ``recentd ctl allow`` (each with its end as wall time: a grant
for a week survives a reboot; one "until the daemon stops" is not kept). Replaced
atomically as ``sources.json`` is (temporary file, fsync, rename, fsync of the
directory). A damaged file is a :class:`~recentd.errors.StateFileError` naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from recentd.errors import StateFileError
from recentd.policy.history import History

FILE_NAME = "policy.json"
FORMAT_NAME = "recentd-policy"
VERSION = 1


@dataclass(frozen=True, slots=True)
class SavedGrant:
    """A ``ctl allow`` grant as saved: its network, its end (wall ns) and its words."""

    network: str
    until_wall_ns: int
    detail: str


def load_history(directory: Path, history: History) -> list[SavedGrant] | None:
    """Fill ``history`` from the saved file; the saved grants (None: no file).

    Raises:
        StateFileError: unreadable, damaged or of another version.
    """
    path = directory / FILE_NAME
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
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise StateFileError("not a recentd policy file", path=path)
    if data.get("version") != VERSION:
        raise StateFileError(f"policy file version {data.get('version')!r}, this recentd "
                             f"reads {VERSION}", path=path, found=data.get("version"),
                             expected=VERSION)  # fmt: skip
    history.load_json(data.get("history"), str(path))
    try:
        return [SavedGrant(**grant) for grant in data.get("grants", [])]
    except TypeError as exc:
        raise StateFileError(f"malformed grants: {exc}", path=path) from None


def save_history(directory: Path, history: History,
                 grants: Sequence[SavedGrant] = ()) -> None:  # fmt: skip
    """Replace the saved file atomically.

    Raises:
        StateFileError: it cannot be written.
    """
    path = directory / FILE_NAME
    temporary = path.with_name(FILE_NAME + ".tmp")
    body = {"format": FORMAT_NAME, "version": VERSION, "history": history.to_json(),
            "grants": [asdict(grant) for grant in grants]}  # fmt: skip
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
