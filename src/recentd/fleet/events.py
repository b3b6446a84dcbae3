"""Fleet events: what one host tells the others, and how it is read back.

Rules of this module:

1. A fleet event is one line of printable text, ``|``-separated, exactly as it sits in
   a Redis Stream entry (its one field ``e``), in the snapshot hash and in the local
   outbox: ``v`` (format version), ``op`` (``ban`` or ``unban``), ``net`` (an address or
   a network), ``list`` (the shared list), ``at`` (when it was decided, wall ms),
   ``until`` (the ban's expiry, wall ms; ``0`` for an unban), ``host`` (the origin),
   ``eid`` (the origin's own event id, ``HOST:SEQ``: the same event published twice is
   one event) and ``reason`` — last, so it alone may hold a ``|``. One field rather than
   nine: a tenth of the strings for the publisher to pack, Redis to store and serve to
   every reader, and the reader to parse.
2. A message read from the fleet is untrusted input: :func:`decode` validates every field
   and raises :class:`FleetMessageError` naming the entry and the field; the caller
   counts it and reads on. Nothing a peer sends can stop the daemon.
3. Addresses are parsed once, by a regular expression for IPv4 (the common case, a
   quarter of :mod:`ipaddress`'s cost) and by :mod:`ipaddress` for IPv6; an event holds
   its network as (first address, prefix length), and builds an ``ipaddress`` network
   only when asked (:attr:`FleetEvent.network`): a receiver handles every ban of the
   fleet, so this is its hot path (bench/fleet.py).
4. Pure: values in, values out.
"""

from __future__ import annotations

import ipaddress
import re
from enum import Enum
from typing import NamedTuple

from recentd.errors import SourceError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

VERSION = "2"
#: The stream entry's one field.
FIELD = "e"
#: The fields of the text, in order (rule 1).
FIELDS = ("v", "op", "net", "list", "at", "until", "host", "eid", "reason")
#: Longest accepted text fields (a peer cannot make us hold megabytes per entry).
MAX_REASON = 200
MAX_NAME = 64
#: A host, list or event-id name: what a shell, a log line or a key can carry unquoted.
NAME = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_NAME}}}")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A dotted-quad IPv4 address as :mod:`ipaddress` accepts it (no leading zeros).
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_MILLIS = re.compile(r"[0-9]{1,16}")
_NAME = rf"[A-Za-z0-9_.:-]{{1,{MAX_NAME}}}"
#: The usual event, whole — a ban or unban of one IPv4 address — as one match in C: the
#: same checks as :func:`decode`'s field by field (its twin), which reads anything else.
_IPV4_HOST_EVENT = re.compile(
    rf"{VERSION}\|(ban|unban)\|{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/32)?\|({_NAME})"
    rf"\|([0-9]{{1,16}})\|([0-9]{{1,16}})\|({_NAME})\|({_NAME})\|(.{{0,{MAX_REASON}}})",
    re.DOTALL)  # fmt: skip


class Op(Enum):
    BAN = "ban"
    UNBAN = "unban"


_OPS = {op.value: op for op in Op}


class FleetMessageError(SourceError):
    """A fleet message that cannot be used. ``path`` is the stream, ``raw`` the entry;
    ``entry`` its stream id and ``field`` the first field found wrong."""

    def __init__(self, message: str, *, entry: str, field: str, raw: object = None) -> None:
        super().__init__(f"entry {entry}: field {field!r}: {message}", path="fleet", raw=raw)
        self.entry = entry
        self.field = field


class FleetEvent(NamedTuple):
    """One ban or unban, as a host published it: a named tuple, as a packet is
    (:class:`recentd.packets.packet.Packet`) — immutable, and built in a fifth of a frozen
    dataclass's time: a receiver builds one per ban of the fleet.

    Attributes:
        op: ban or unban.
        address: whom: the network's first address (a host's own address).
        prefixlen: the network's prefix length (32 or 128 for a host).
        list_name: which shared list it belongs to.
        at_ms: when the origin decided it (wall ms since the epoch).
        until_ms: the ban's expiry (wall ms); 0 for an unban.
        host: the origin host's name.
        reason: why, in words (for ``ctl why``).
        eid: the origin's event id (``HOST:SEQ``).
    """

    op: Op
    address: Address
    prefixlen: int
    list_name: str
    at_ms: int
    until_ms: int
    host: str
    reason: str
    eid: str

    @classmethod
    def of(cls, network: Network, *, op: Op, list_name: str, at_ms: int, until_ms: int,
           host: str, reason: str, eid: str) -> FleetEvent:  # fmt: skip
        """The event about ``network``."""
        return cls(op, network.network_address, network.prefixlen, list_name, at_ms,
                   until_ms, host, reason, eid)  # fmt: skip

    @property
    def network(self) -> Network:
        return ipaddress.ip_network((self.address, self.prefixlen))

    @property
    def is_host(self) -> bool:
        return self.prefixlen == self.address.max_prefixlen

    @property
    def key(self) -> tuple[str, int, int, int]:
        """What the merge keeps per (list, network): (list, family, first address as an
        integer, prefix length) — integers hash in C, addresses in Python."""
        return (self.list_name, self.address.version, int(self.address), self.prefixlen)


def printable(text: str, limit: int = MAX_REASON) -> str:
    """``text`` as a reason a receiver accepts: printable, at most ``limit`` characters."""
    text = text[:limit]
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


def encode(event: FleetEvent) -> str:
    """The text of ``event`` (see rule 1)."""
    return (f"{VERSION}|{event.op.value}|{event.address}/{event.prefixlen}|{event.list_name}|"
            f"{event.at_ms}|{event.until_ms}|{event.host}|{event.eid}|{event.reason}")  # fmt: skip


def snapshot_field(text: str) -> str:
    """The snapshot hash's field for an event's ``text``: ``LIST|NET|HOST`` (each origin's
    latest event per list and network); "" for a text too short to be an event."""
    parts = text.split("|", 7)
    return f"{parts[3]}|{parts[2]}|{parts[6]}" if len(parts) == 8 else ""


def _network(text: str, entry: str, raw: str) -> tuple[Address, int]:
    address_text, slash, length = text.partition("/")
    try:
        match = _IPV4.fullmatch(address_text)
        if match is not None:
            a, b, c, d = match.groups()
            address: Address = ipaddress.IPv4Address(
                (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d))
        else:
            address = ipaddress.IPv6Address(address_text)
            if address.scope_id is not None:
                raise ValueError("a scope")
    except ValueError:
        raise FleetMessageError(f"not an address or network: {text[:64]!r}", entry=entry,
                                field="net", raw=raw) from None
    bits = address.max_prefixlen
    if not slash:
        return address, bits
    prefixlen = int(length) if length.isascii() and length.isdigit() and len(length) < 4 else -1
    if not 0 <= prefixlen <= bits:
        raise FleetMessageError(f"not a prefix length: {length!r}", entry=entry, field="net",
                                raw=raw)  # fmt: skip
    if int(address) & ((1 << (bits - prefixlen)) - 1):
        raise FleetMessageError(f"{text} has host bits set", entry=entry, field="net", raw=raw)
    return address, prefixlen


def _millis(value: str, name: str, entry: str, raw: str) -> int:
    if _MILLIS.fullmatch(value) is None:
        raise FleetMessageError(f"not a wall time in ms: {value!r}", entry=entry, field=name,
                                raw=raw)  # fmt: skip
    return int(value)


def _name(value: str, name: str, entry: str, raw: str) -> str:
    if NAME.fullmatch(value) is None:
        raise FleetMessageError(f"not a name: {value!r}", entry=entry, field=name, raw=raw)
    return value


def _usual(text: str) -> FleetEvent | None:
    """``text`` read as the usual event (:data:`_IPV4_HOST_EVENT`), if it is a valid one;
    None for anything else, valid or not (:func:`decode` then reads it field by field)."""
    usual = _IPV4_HOST_EVENT.fullmatch(text)
    if usual is None:
        return None
    op_text, a, b, c, d, list_name, at, until, host, eid, reason = usual.groups()
    at_ms, until_ms = int(at), int(until)
    if op_text == "ban":
        if until_ms <= at_ms:
            return None
        op = Op.BAN
    else:
        op, until_ms = Op.UNBAN, 0
    if not reason.isprintable():
        return None
    address = ipaddress.IPv4Address((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d))
    return FleetEvent(op, address, 32, list_name, at_ms, until_ms, host, reason, eid)


def decode(entry: str, text: object) -> FleetEvent:
    """Read one event's text (``entry`` is where it was found, for the error).

    Raises:
        FleetMessageError: a field is missing or wrong (rule 2).
    """
    if not isinstance(text, str):
        raise FleetMessageError(f"not text: {type(text).__name__}", entry=entry, field=FIELD,
                                raw=text)  # fmt: skip
    usual = _usual(text)
    if usual is not None:
        return usual
    parts = text.split("|", len(FIELDS) - 1)
    if parts[0] != VERSION:
        raise FleetMessageError(f"unknown version {parts[0][:16]!r}", entry=entry, field="v",
                                raw=text)  # fmt: skip
    if len(parts) < len(FIELDS):
        raise FleetMessageError("missing", entry=entry, field=FIELDS[len(parts)], raw=text)
    _v, op_text, net, list_name, at, until, host, eid, reason = parts
    op = _OPS.get(op_text)
    if op is None:
        raise FleetMessageError(f"not ban/unban: {op_text[:16]!r}", entry=entry, field="op",
                                raw=text)  # fmt: skip
    address, prefixlen = _network(net, entry, text)
    at_ms, until_ms = _millis(at, "at", entry, text), _millis(until, "until", entry, text)
    if op is Op.BAN and until_ms <= at_ms:
        raise FleetMessageError("a ban that ends before it starts", entry=entry, field="until",
                                raw=text)  # fmt: skip
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise FleetMessageError(f"not printable text of at most {MAX_REASON} characters",
                                entry=entry, field="reason", raw=text)  # fmt: skip
    return FleetEvent(
        op, address, prefixlen, _name(list_name, "list", entry, text), at_ms,
        until_ms if op is Op.BAN else 0, _name(host, "host", entry, text), reason,
        _name(eid, "eid", entry, text),
    )  # fmt: skip
