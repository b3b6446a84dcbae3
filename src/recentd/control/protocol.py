"""The control protocol: versioned JSON, one request and one reply per line.

Rules of the wire:

1. A connection carries any number of exchanges; the client sends one request,
   the server answers with exactly one reply, in order.
2. Each message is one JSON object encoded in UTF-8 on a single line ending in
   ``\\n`` (JSON never needs a raw newline, so the line is the frame). A request
   line longer than :data:`MAX_REQUEST_BYTES` is refused and the connection closed.
3. Every object carries ``"v"`` (:data:`PROTOCOL_VERSION`) and ``"type"`` (the
   dataclass name). Another version, an unknown type or a missing field is
   answered with an :class:`ErrorReply`; nothing is ever guessed.
4. Replies carry data, never display text: the CLI formats (see ``recentd ctl``).
5. Bytes that are not text (a /proc write) travel as a string whose code points
   are the byte values (latin-1), so an ASCII command reads as itself on the wire.

Example exchange::

    > {"v": 1, "type": "WriteTable", "name": "SSH", "data": "+1.2.3.4\\n", "offset": 0}
    < {"v": 1, "type": "WriteResult", "written": 9, "offset": 9}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from recentd.errors import ControlError

PROTOCOL_VERSION = 1
#: Requests are short; a longer line is a client bug or an attack.
MAX_REQUEST_BYTES = 64 * 1024


# ---- requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListTables:
    """Every table with its size and file parameters."""


@dataclass(frozen=True, slots=True)
class ShowTable:
    """One table's entries (needs read permission)."""

    name: str


@dataclass(frozen=True, slots=True)
class WriteTable:
    """One write(2) on ``/proc/net/xt_recent/NAME`` (needs write permission).

    ``offset`` is the file offset of the open file doing the write: 0 for a fresh
    open (what ``recentd ctl write`` sends); the FUSE mount sends its file's own.
    """

    name: str
    data: bytes
    offset: int = 0
    #: Add an allowed address all the same (``ctl write --force``); the kernel still
    #: never holds it (the enforcer's gate).
    force: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    """Daemon health: version, uptime, tables, adapters, state."""


@dataclass(frozen=True, slots=True)
class SetParams:
    """Change a table's module parameters at run time (root only)."""

    name: str
    changes: dict[str, int]


@dataclass(frozen=True, slots=True)
class Login:
    """A PAM session opened (``event="open"``) or closed (``"close"``) for ``user``
    from ``addr``, told by ``recentd-pam-hook`` (root only).

    ``addr`` is a numeric address (never a host name); ``service`` is the PAM service
    (``"sshd"``) and ``tty`` the PAM tty (``"ssh"``), both as PAM gave them.
    """

    addr: str
    user: str
    service: str
    event: str
    tty: str = ""


@dataclass(frozen=True, slots=True)
class Stats:
    """What the daemon did and holds, for ``recentd top``: counters, bans, recent events."""


@dataclass(frozen=True, slots=True)
class Unban:
    """Take ``addr`` out of every list and every kernel set (root only)."""

    addr: str


@dataclass(frozen=True, slots=True)
class Why:
    """The evidence that put ``addr`` where it is (needs read permission on each list)."""

    addr: str


@dataclass(frozen=True, slots=True)
class Allow:
    """Never ban ``network`` (an address or a network) for ``seconds`` (0: until the
    daemon stops); bans in force on it are withdrawn (root only)."""

    network: str
    seconds: int = 0


@dataclass(frozen=True, slots=True)
class SetListPolicy:
    """Change one list's ``[lists.NAME]`` settings at run time (root only); values are
    written as in the config file (``"7d"``, ``"true"``, ``"2"``, ``'["SSH"]'``)."""

    name: str
    changes: dict[str, str]


Request = (
    ListTables | ShowTable | WriteTable | Status | SetParams | Login | Stats | Unban | Why | Allow
    | SetListPolicy
)


# ---- replies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableInfo:
    """One table as ``ListTables`` describes it."""

    name: str
    entries: int
    ring: int
    ip_list_tot: int
    ip_pkt_list_tot: int
    ip_list_perms: int
    ip_list_uid: int
    ip_list_gid: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry, field for field as :class:`recentd.recent.EntryView`."""

    family: int
    addr: int
    ttl: int
    index: int
    stamps: list[int]
    last_seen: int


@dataclass(frozen=True, slots=True)
class TableList:
    tables: list[TableInfo]


@dataclass(frozen=True, slots=True)
class TableListing:
    """Entries from least to most recently refreshed, and the daemon's clock when listed:
    ``now_ticks`` (the tick the stamps count in, ``hz`` per second) read together with
    ``wall_ns`` (wall-clock nanoseconds), so a client turns stamps into ages and times."""

    name: str
    entries: list[Entry]
    hz: int = 0
    now_ticks: int = 0
    wall_ns: int = 0


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What write(2) returned, and the open file's offset afterwards."""

    written: int
    offset: int


@dataclass(frozen=True, slots=True)
class StatusReply:
    """``adapters`` maps each adapter to ``"ok"`` or ``"degraded: why"``."""

    version: str
    pid: int
    uptime_s: float
    hz: int
    now_ticks: int
    tables: int
    entries: int
    adapters: dict[str, str] = field(default_factory=dict)
    state: dict[str, int | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParamsResult:
    name: str
    params: dict[str, int]


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A refusal. ``kind`` is the error class (``ProcWriteError``, ``ControlError``,
    ``ProtocolError``, ``ConfigError``); ``errno`` is the errno name, or ``""``."""

    kind: str
    message: str
    errno: str = ""


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A :class:`Login` taken: the address as the daemon understood it, and the event."""

    addr: str
    event: str


@dataclass(frozen=True, slots=True)
class StatsReply:
    """The answer to :class:`Stats` (JSON values; the layout is
    :func:`recentd.metrics.stats.daemon_stats`'s). Only lists the asker may read are in it.

    Attributes:
        wall_ns: when it was taken.
        counters: name → number (packets, observations, reloads …).
        lists: one object per readable list: name, entries, evictions, threshold.
        bans: the bans in force: address, list, expiry (wall ns), origin, reason.
        near: addresses close to the offloaded rule's threshold: address, list, hits.
        events: the last ban/unban events, oldest first.
        health: adapter and source → "ok" or "degraded: why".
        sparkline: bans pushed in each of the last minutes, oldest first.
    """

    wall_ns: int
    counters: dict[str, int | float]
    lists: list[dict[str, Any]] = field(default_factory=list)
    bans: list[dict[str, Any]] = field(default_factory=list)
    near: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, str] = field(default_factory=dict)
    sparkline: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UnbanResult:
    """Where ``addr`` was removed from: one place per item (``list SSH``,
    ``kernel set (nftables inet recentd)``); empty when it was nowhere."""

    addr: str
    removed: list[str]


@dataclass(frozen=True, slots=True)
class WhyList:
    """``addr``'s entry in one list: its hits and the ages of its first and last stamp."""

    table: str
    hits: int
    ttl: int
    first_age_s: float
    last_age_s: float


@dataclass(frozen=True, slots=True)
class WhyEvent:
    """One event of the address's history (:class:`recentd.policy.history.Event`)."""

    wall_ns: int
    what: str
    table: str
    action: str
    origin: str
    detail: str
    count: int = 1
    since_ns: int = 0


@dataclass(frozen=True, slots=True)
class WhyResult:
    """Everything known about ``addr`` at ``wall_ns``: its list entries, its history
    (oldest first), the kernel ban in force (``banned_until_wall_ns`` 0: none; ``rule``
    the rule that bans it), and the allow entry covering it (``""``: none)."""

    addr: str
    wall_ns: int
    lists: list[WhyList]
    events: list[WhyEvent]
    banned_until_wall_ns: int = 0
    ban_reason: str = ""
    ban_origin: str = ""
    rule: str = ""
    allowed: str = ""
    history_bound: str = ""


@dataclass(frozen=True, slots=True)
class AllowResult:
    """``network`` is allowed until ``until_wall_ns`` (0: until the daemon stops); the
    bans withdrawn because of it."""

    network: str
    until_wall_ns: int
    withdrawn: list[str]


@dataclass(frozen=True, slots=True)
class ListPolicyResult:
    """A list's settings after a :class:`SetListPolicy` (durations in seconds)."""

    name: str
    settings: dict[str, Any]


Reply = (
    TableList | TableListing | WriteResult | StatusReply | ParamsResult | ErrorReply | LoginResult
    | StatsReply
    | UnbanResult | WhyResult | AllowResult | ListPolicyResult
)

_REQUEST_TYPES: tuple[type[Any], ...] = (
    ListTables, ShowTable, WriteTable, Status, SetParams, Login, Stats, Unban, Why, Allow,
    SetListPolicy,
)  # fmt: skip
_REPLY_TYPES: tuple[type[Any], ...] = (
    TableList, TableListing, WriteResult, StatusReply, ParamsResult, ErrorReply, LoginResult,
    StatsReply, UnbanResult, WhyResult, AllowResult, ListPolicyResult,
)  # fmt: skip
_MESSAGES: dict[str, type[Any]] = {cls.__name__: cls for cls in _REQUEST_TYPES + _REPLY_TYPES}
#: Nested dataclasses, by (message, field): decoding needs to know what to build.
_NESTED: dict[tuple[str, str], type[Any]] = {
    ("TableList", "tables"): TableInfo,
    ("TableListing", "entries"): Entry,
    ("WhyResult", "lists"): WhyList,
    ("WhyResult", "events"): WhyEvent,
}
class ProtocolError(ControlError):
    """A message that is not valid protocol (bad JSON, version, type or field)."""

    kind: ClassVar[str] = "ProtocolError"


def encode(message: Request | Reply) -> bytes:
    """One message as its wire line, newline included."""
    body: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": type(message).__name__}
    for f in dataclasses.fields(message):
        body[f.name] = _to_json(getattr(message, f.name))
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def _to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    return value


def decode_request(line: bytes) -> Request:
    """Parse one request line. Raises :class:`ProtocolError`."""
    message: Request = _decode(line, _REQUEST_TYPES)  # type: ignore[assignment]
    return message


def decode_reply(line: bytes) -> Reply:
    """Parse one reply line. Raises :class:`ProtocolError`."""
    message: Reply = _decode(line, _REPLY_TYPES)  # type: ignore[assignment]
    return message


T = TypeVar("T")


def _decode(line: bytes, allowed: tuple[type[Any], ...]) -> object:
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not a JSON line: {exc}", request=line[:200]) from None
    if not isinstance(body, dict):
        raise ProtocolError("a message must be a JSON object", request=body)
    version = body.pop("v", None)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {version!r} is not supported (this side speaks "
            f"{PROTOCOL_VERSION}); use a recentd client and daemon of the same release",
            request=body,
        )
    name = body.pop("type", None)
    cls = _MESSAGES.get(name) if isinstance(name, str) else None
    if cls is None or cls not in allowed:
        known = ", ".join(c.__name__ for c in allowed)
        raise ProtocolError(f"unknown message type {name!r} (known: {known})", request=body)
    return _build(cls, body)


def _build(cls: type[T], body: dict[str, Any]) -> T:
    """Make ``cls`` from JSON fields, checking names and (shallow) types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(body) - set(fields)
    if unknown:
        raise ProtocolError(f"{cls.__name__}: unknown field {sorted(unknown)[0]!r}", request=body)
    values: dict[str, Any] = {}
    for name, value in body.items():
        values[name] = _field_value(cls.__name__, name, fields[name].type, value)
    try:
        return cls(**values)
    except TypeError as exc:
        raise ProtocolError(f"{cls.__name__}: {exc}", request=body) from None


def _field_value(message: str, name: str, annotation: object, value: Any) -> Any:
    nested = _NESTED.get((message, name))
    if nested is not None:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ProtocolError(f"{message}.{name}: expected a list of objects", request=value)
        return [_build(nested, item) for item in value]
    expected = _SIMPLE_TYPES.get(str(annotation))
    # bool is an int subclass, and JSON true must not pass for 1 (nor 1 for true).
    if expected is not None and (
        isinstance(value, bool) != (annotation == "bool") or not isinstance(value, expected)
    ):
        raise ProtocolError(
            f"{message}.{name}: expected {annotation}, got {type(value).__name__}", request=value
        )
    if annotation == "bytes":
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise ProtocolError(
                f"{message}.{name}: bytes travel as code points 0-255", request=value
            ) from None
    return value


#: Field annotations (strings, thanks to ``from __future__ import annotations``)
#: whose JSON type is checked on decoding; containers are checked by the dataclass users.
_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bytes": (str,),
    "float": (float, int),
    "bool": (bool,),
}
