"""Events per address, and events as JSON records: what ``recentd logs scan`` reports.

Rules: pure aggregation (events in, rows out); times stay integer epoch ns until
they are printed; ``ts`` is written as ``replay`` writes it (``"SECONDS.NNNNNNNNN"``,
exact), with ``ts_ns`` beside it for programs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from recentd.logs.events import AuthEvent, IPAddress, Outcome

NS = 1_000_000_000


def format_ts(time: int | None) -> str | None:
    """Epoch ns as exact decimal seconds, ``None`` for a line without a time."""
    if time is None:
        return None
    return f"{time // NS}.{time % NS:09d}"


def event_record(event: AuthEvent, file: str | None = None) -> dict[str, object]:
    """One event as the JSON object ``--events`` writes."""
    record: dict[str, object] = {
        "line": event.line,
        "addr": str(event.address),
        "event": event.outcome.value,
        "ts": format_ts(event.time),
        "ts_ns": event.time,
        "user": event.user,
        "category": event.category.value,
        "kind": event.kind.value,
        "service": event.service,
        "pid": event.pid,
        "host": event.host,
    }
    if file is not None:
        record["file"] = file
    return record


@dataclass
class AddressRow:
    """What one address did: counts per outcome and the first and last time seen."""

    address: IPAddress
    counts: Counter[Outcome] = field(default_factory=Counter)
    first: int | None = None
    last: int | None = None

    def add(self, event: AuthEvent) -> None:
        self.counts[event.outcome] += 1
        if event.time is not None:
            self.first = event.time if self.first is None else min(self.first, event.time)
            self.last = event.time if self.last is None else max(self.last, event.time)


@dataclass
class Summary:
    """Rows per address, plus totals."""

    rows: dict[IPAddress, AddressRow] = field(default_factory=dict)
    totals: Counter[Outcome] = field(default_factory=Counter)
    lines: int = 0

    def add(self, event: AuthEvent) -> None:
        row = self.rows.get(event.address)
        if row is None:
            row = self.rows[event.address] = AddressRow(event.address)
        row.add(event)
        self.totals[event.outcome] += 1

    def ranked(self) -> list[AddressRow]:
        """Most failures first; then most probes; then by address."""
        return sorted(
            self.rows.values(),
            key=lambda row: (
                -row.counts[Outcome.FAILURE],
                -row.counts[Outcome.PROBE],
                row.address.version,
                row.address,
            ),
        )
