"""The policy's persisted state: ``policy.json`` in the state directory (an adapter).

It holds the evidence history (``ctl why`` survives a restart; escalation's ban counts
too) and the grants of ``recentd ctl allow`` (each with its end as wall time: a grant
for a week survives a reboot; one "until the daemon stops" is not kept). Replaced
atomically as ``sources.json`` is (temporary file, fsync, rename, fsync of the
directory). A damaged file is a :class:`~recentd.errors.StateFileError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from recentd.errors import StateFileError
from recentd.policy.history import History
from recentd.state.jsonfile import read_versioned, write_atomically

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
    data = read_versioned(path, FORMAT_NAME, VERSION, "policy")
    if data is None:
        return None
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
    body = {"format": FORMAT_NAME, "version": VERSION, "history": history.to_json(),
            "grants": [asdict(grant) for grant in grants]}  # fmt: skip
    write_atomically(directory / FILE_NAME, body, "the policy history")
