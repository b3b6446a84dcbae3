"""Journal files for tests, built without systemd as PID 1: export format on the stdin of
``systemd-journal-remote`` (Debian package ``systemd-journal-remote``)."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Mapping
from pathlib import Path

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
BOOT_ID = "0123456789abcdef0123456789abcdef"


def export_entry(fields: Mapping[str, bytes | str]) -> bytes:
    """One entry in the journal export format (binary-safe fields where needed)."""
    out = []
    for key, value in fields.items():
        data = value.encode() if isinstance(value, str) else value
        if b"\n" in data or not _printable(data):
            out.append(key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            out.append(key.encode() + b"=" + data + b"\n")
    return b"".join(out) + b"\n"


def _printable(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return all(byte >= 32 or byte == 9 for byte in data)


class JournalWriter:
    """Appends entries to journal files in one directory, in time order."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.monotonic_us = 0

    def write(self, entries: list[Mapping[str, bytes | str]], file: str = "a") -> None:
        stream = b"".join(export_entry(self._stamped(entry)) for entry in entries)
        subprocess.run(
            [str(JOURNAL_REMOTE), "-o", str(self.directory / f"{file}.journal"), "-"],
            input=stream, check=True, capture_output=True, timeout=30,
        )

    def _stamped(self, entry: Mapping[str, bytes | str]) -> dict[str, bytes | str]:
        self.monotonic_us += 1000
        stamped: dict[str, bytes | str] = {
            "__MONOTONIC_TIMESTAMP": str(self.monotonic_us), "_BOOT_ID": BOOT_ID,
            "_HOSTNAME": "gate", "_TRANSPORT": "syslog",
        }
        stamped.update(entry)
        return stamped


def sshd_entry(message: bytes | str, realtime_us: int, comm: str = "sshd") -> dict[str, bytes | str]:
    return {"__REALTIME_TIMESTAMP": str(realtime_us), "_COMM": comm,
            "SYSLOG_IDENTIFIER": comm, "_PID": "4242", "MESSAGE": message}
