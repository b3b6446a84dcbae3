"""Fleet events: what one host tells the others, and how it is read back.

Rules of this module:

1. A fleet event is a flat mapping of short ASCII fields, exactly as it sits in a Redis
   Stream entry (and in the snapshot hash, and in the local outbox): ``v`` (format
   version), ``op`` (``ban`` or ``unban``), ``net`` (an address or a network), ``list``
   (the shared list), ``at`` (when it was decided, wall ms), ``until`` (the ban's expiry,
   wall ms; ``0`` for an unban), ``host`` (the origin), ``reason`` and ``eid`` (the
   origin's own event id, ``HOST:SEQ``: the same event published twice is one event).
2. A message read from the fleet is untrusted input: :func:`decode` validates every field
   and raises :class:`FleetMessageError` naming the entry and the field; the caller
   counts it and reads on. Nothing a peer sends can stop the daemon.
3. Pure: values in, values out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from recentd.errors import SourceError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

VERSION = "1"
#: Longest accepted text fields (a peer cannot make us hold megabytes per entry).
MAX_REASON = 200
MAX_NAME = 64
#: A host, list or event-id name: what a shell, a log line or a key can carry unquoted.
NAME = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_NAME}}}")


class Op(Enum):
    BAN = "ban"
    UNBAN = "unban"


class FleetMessageError(SourceError):
    """A fleet message that cannot be used. ``path`` is the stream, ``raw`` the entry;
    ``entry`` its stream id and ``field`` the first field found wrong."""

    def __init__(self, message: str, *, entry: str, field: str, raw: object = None) -> None:
        super().__init__(f"entry {entry}: field {field!r}: {message}", path="fleet", raw=raw)
        self.entry = entry
        self.field = field


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """One ban or unban, as a host published it.

    Attributes:
        op: ban or unban.
        network: whom (a host is a /32 or /128 network).
        list_name: which shared list it belongs to.
        at_ms: when the origin decided it (wall ms since the epoch).
        until_ms: the ban's expiry (wall ms); 0 for an unban.
        host: the origin host's name.
        reason: why, in words (for ``ctl why``).
        eid: the origin's event id (``HOST:SEQ``).
    """

    op: Op
    network: Network
    list_name: str
    at_ms: int
    until_ms: int
    host: str
    reason: str
    eid: str

    @property
    def key(self) -> tuple[str, Network]:
        return (self.list_name, self.network)


def encode(event: FleetEvent) -> dict[str, str]:
    """The stream fields of ``event`` (see rule 1)."""
    return {
        "v": VERSION, "op": event.op.value, "net": str(event.network),
        "list": event.list_name, "at": str(event.at_ms), "until": str(event.until_ms),
        "host": event.host, "reason": event.reason, "eid": event.eid,
    }  # fmt: skip


def _text(fields: Mapping[str, str], name: str, entry: str, limit: int) -> str:
    value = fields.get(name)
    if value is None:
        raise FleetMessageError("missing", entry=entry, field=name, raw=dict(fields))
    if len(value) > limit or not value.isprintable():
        raise FleetMessageError(f"not printable text of at most {limit} characters",
                                entry=entry, field=name, raw=dict(fields))  # fmt: skip
    return value


def _millis(fields: Mapping[str, str], name: str, entry: str) -> int:
    value = _text(fields, name, entry, 16)
    if not value.isdigit():
        raise FleetMessageError(f"not a wall time in ms: {value!r}", entry=entry, field=name,
                                raw=dict(fields))  # fmt: skip
    return int(value)


def _name(fields: Mapping[str, str], name: str, entry: str) -> str:
    value = fields.get(name)
    if value is None or not isinstance(value, str) or NAME.fullmatch(value) is None:
        problem = "missing" if value is None else f"not a name: {value!r}"
        raise FleetMessageError(problem, entry=entry, field=name, raw=dict(fields))
    return value


def decode(entry: str, fields: Mapping[str, str]) -> FleetEvent:
    """Read one stream entry (``entry`` is its id, for the error).

    Raises:
        FleetMessageError: a field is missing or wrong (rule 2).
    """
    raw = dict(fields)
    if fields.get("v") != VERSION:
        raise FleetMessageError(f"unknown version {fields.get('v')!r}", entry=entry, field="v",
                                raw=raw)  # fmt: skip
    try:
        op = Op(fields.get("op"))
    except ValueError:
        raise FleetMessageError(f"not ban/unban: {fields.get('op')!r}", entry=entry, field="op",
                                raw=raw) from None  # fmt: skip
    text = _text(fields, "net", entry, 64)
    try:
        network: Network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise FleetMessageError(str(exc), entry=entry, field="net", raw=raw) from None
    at_ms, until_ms = _millis(fields, "at", entry), _millis(fields, "until", entry)
    if op is Op.BAN and until_ms <= at_ms:
        raise FleetMessageError("a ban that ends before it starts", entry=entry, field="until",
                                raw=raw)  # fmt: skip
    return FleetEvent(
        op, network, _name(fields, "list", entry), at_ms, until_ms if op is Op.BAN else 0,
        _name(fields, "host", entry), _text(fields, "reason", entry, MAX_REASON),
        _name(fields, "eid", entry),
    )  # fmt: skip
