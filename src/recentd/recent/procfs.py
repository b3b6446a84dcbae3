"""The ``/proc/net/xt_recent/NAME`` language, pure: parse writes, render the listing.

Writes, checked in the kernel's order (spec §5.2):

1. an empty write returns 0;
2. the write is cut to 47 bytes (the kernel's buffer);
3. a file offset other than 0 fails with ESPIPE (one command per open);
4. the first byte: ``/`` flushes (anything after it is ignored, and the offset
   does not move), ``+`` adds, ``-`` removes, anything else is EINVAL;
5. a ``:`` anywhere in the rest makes it IPv6, otherwise IPv4; the address ends
   at ``\\n``, NUL or the end of the buffer; IPv4 needs exactly four decimal
   octets (leading zeros allowed); nothing else (no spaces) is accepted;
6. success returns the (cut) length and moves the offset past it.

Reading gives one line per entry::

    src=10.77.0.2 ttl: 64 last_seen: 4294987031 oldest_pkt: 3 4294987005, 4294987018, 4294987031

IPv6 addresses print as eight zero-padded groups, never compressed.
"""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass
from enum import Enum

from recentd.errors import ProcWriteError
from recentd.recent.table import EntryView, RecentTable

#: The kernel's write buffer: ``+`` and the longest IPv6 text with an IPv4 tail, plus NUL.
PROC_WRITE_MAX = len(b"+b335:1d35:1e55:dead:c0de:1715:255.255.255.255") + 1


class ProcAction(Enum):
    ADD = "+"
    REMOVE = "-"
    FLUSH = "/"


@dataclass(frozen=True, slots=True)
class ProcCommand:
    """A parsed write: what to do, to which address (None for a flush)."""

    action: ProcAction
    family: int = 0
    addr: int = 0

    def __str__(self) -> str:
        if self.action is ProcAction.FLUSH:
            return "/"
        text = (
            ipaddress.IPv4Address(self.addr)
            if self.family == 4
            else ipaddress.IPv6Address(self.addr)
        )
        return f"{self.action.value}{text}"


def parse_proc_write(data: bytes) -> ProcCommand:
    """Parse the bytes of one write (already cut to :data:`PROC_WRITE_MAX`).

    Raises:
        ProcWriteError: EINVAL, for anything the kernel refuses.
    """
    if not data:
        raise ProcWriteError("empty write", errno=errno.EINVAL, request=data)
    head, rest = data[:1], data[1:]
    if head == b"/":
        return ProcCommand(ProcAction.FLUSH)
    if head not in (b"+", b"-"):
        raise ProcWriteError('Need "+ip", "-ip" or "/"', errno=errno.EINVAL, request=data)
    action = ProcAction.ADD if head == b"+" else ProcAction.REMOVE
    if b":" in rest:
        return ProcCommand(action, 6, _parse_ipv6(rest, data))
    return ProcCommand(action, 4, _parse_ipv4(rest, data))


def _address_text(rest: bytes) -> bytes:
    """The address part: up to the first newline or NUL."""
    for delimiter in (b"\n", b"\0"):
        cut = rest.find(delimiter)
        if cut >= 0:
            rest = rest[:cut]
    return rest


def _parse_ipv4(rest: bytes, request: bytes) -> int:
    octets = _address_text(rest).split(b".")
    if len(octets) != 4 or not all(octet.isdigit() and octet.isascii() for octet in octets):
        raise ProcWriteError("not an IPv4 address", errno=errno.EINVAL, request=request)
    values = [int(octet) for octet in octets]
    if any(value > 255 for value in values):
        raise ProcWriteError("IPv4 octet above 255", errno=errno.EINVAL, request=request)
    return int.from_bytes(bytes(values), "big")


def _parse_ipv6(rest: bytes, request: bytes) -> int:
    text = _address_text(rest)
    try:
        decoded = text.decode("ascii")
        head, sep, tail = decoded.rpartition(":")
        if sep and "." in tail:
            # An IPv4 tail, read as the kernel reads IPv4 (leading zeros allowed).
            v4 = _parse_ipv4(tail.encode(), request)
            decoded = f"{head}:{v4 >> 16:x}:{v4 & 0xFFFF:x}"
        if not decoded or "%" in decoded or decoded != decoded.strip():
            raise ValueError(decoded)
        return int(ipaddress.IPv6Address(decoded))
    except (UnicodeDecodeError, ValueError):
        raise ProcWriteError("not an IPv6 address", errno=errno.EINVAL, request=request) from None


class ProcFile:
    """One open file description of ``/proc/net/xt_recent/NAME``: it carries the
    offset that makes a second command on the same descriptor fail with ESPIPE.

    Args:
        table: the table the file shows.
    """

    def __init__(self, table: RecentTable) -> None:
        self.table = table
        self.offset = 0

    def write(self, data: bytes, now: int) -> int:
        """Apply one write(2) and return what write(2) returns.

        Raises:
            ProcWriteError: with the errno write(2) would fail with.
        """
        if not data:
            return 0
        data = data[:PROC_WRITE_MAX]
        if self.offset != 0:
            raise ProcWriteError(
                "one command per open file (offset is not 0)", errno=errno.ESPIPE, request=data
            )
        command = parse_proc_write(data)
        apply_proc_command(self.table, command, now)
        if command.action is not ProcAction.FLUSH:
            self.offset += len(data)
        return len(data)


def apply_proc_command(table: RecentTable, command: ProcCommand, now: int) -> None:
    """Carry out a parsed write on a table."""
    if command.action is ProcAction.FLUSH:
        table.flush()
    elif command.action is ProcAction.ADD:
        table.add(command.family, command.addr, now)
    else:
        table.remove(command.family, command.addr)


def format_address(family: int, addr: int) -> str:
    """The kernel's ``%pI4``/``%pI6``: dotted quad, or 8 zero-padded groups."""
    if family == 4:
        return str(ipaddress.IPv4Address(addr))
    return ipaddress.IPv6Address(addr).exploded


def format_entry(entry: EntryView) -> str:
    """One listing line, with its newline."""
    stamps = ", ".join(str(stamp) for stamp in entry.stamps)
    return (
        f"src={format_address(entry.family, entry.addr)} ttl: {entry.ttl} "
        f"last_seen: {entry.last_seen} oldest_pkt: {entry.index} {stamps}\n"
    )


def render_listing(table: RecentTable) -> str:
    """The whole file, entries from least to most recently refreshed.

    (The kernel lists in hash-bucket order, which depends on a random seed and is
    unspecified; LRU order is as good a promise and more useful.)
    """
    return "".join(format_entry(entry) for entry in table)
