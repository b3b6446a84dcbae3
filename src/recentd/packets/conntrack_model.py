"""The values connection tracking hands out and keeps: states, results, timeouts, entries.

Split out of :mod:`recentd.packets.conntrack` (which re-exports every public name
here) so that the tracker and the TCP state machine, in
:mod:`recentd.packets.tcp_conntrack`, can share :class:`Conn` without importing
each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from recentd.packets.packet import Packet

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "NS",
    "Conn",
    "CtDir",
    "CtResult",
    "CtState",
    "Key",
    "Pending",
    "Timeouts",
]

#: nf_conntrack_max on a 64-bit host with more than 4 GiB of memory.
DEFAULT_MAX_ENTRIES = 262144
NS = 1_000_000_000


class CtState(enum.IntFlag):
    """A packet's conntrack state, valued as the kernel's ``XT_STATE`` bits so a
    ``--ctstate NEW,ESTABLISHED`` mask is a plain ``|`` of members. An ``IntFlag``
    so it converts to and from the rule engine's own mask with ``int()``."""

    INVALID = 1
    ESTABLISHED = 2
    RELATED = 4
    NEW = 8
    UNTRACKED = 64


class CtDir(enum.IntEnum):
    """Direction of a packet relative to the connection's first packet."""

    ORIGINAL = 0
    REPLY = 1


@dataclass(frozen=True)
class Timeouts:
    """Timeouts in seconds, named and defaulted as the kernel's
    ``net.netfilter.nf_conntrack_*_timeout*`` sysctls."""

    tcp_syn_sent: int = 120
    tcp_syn_recv: int = 60
    tcp_established: int = 432000
    tcp_fin_wait: int = 120
    tcp_close_wait: int = 60
    tcp_last_ack: int = 30
    tcp_time_wait: int = 120
    tcp_close: int = 10
    udp: int = 30
    udp_stream: int = 120
    icmp: int = 30
    generic: int = 600

    def tcp(self, state: int) -> int:
        """The timeout for a TCP state, in nanoseconds."""
        seconds = (self.tcp_close, self.tcp_syn_sent, self.tcp_syn_recv, self.tcp_established,
                   self.tcp_fin_wait, self.tcp_close_wait, self.tcp_last_ack,
                   self.tcp_time_wait, self.tcp_close, self.tcp_syn_sent)[state]
        return seconds * NS


#: The tuple a connection is found by, in one direction: ``(family, proto, src, dst,
#: sport, dport)`` for TCP/UDP, ``(family, proto, src, dst, type, code, echo id)`` for
#: ICMP/ICMPv6, ``(family, proto, src, dst, ABSENT, ABSENT)`` for anything else.
Key = tuple[int, ...]


class Conn:
    """One entry (``struct nf_conn``). Plain slots, no dataclass: entries are made per
    accepted new connection and read per packet, and every tracked object per entry
    also costs garbage-collector time.

    ``win`` is the TCP window state of both directions as one tuple of ints,
    ``(end, maxend, maxwin)`` of the original-direction sender then of the reply
    sender: a tuple of ints is never scanned by the collector, and replacing it costs
    less than updating two side objects. ``liberal`` and ``closed`` stand for the
    kernel's per-side ``IP_CT_TCP_FLAG_BE_LIBERAL`` / ``CLOSE_INIT`` flags, which this
    model only ever sets on (liberal) or reads from (closed) both sides together.
    """

    __slots__ = ("assured", "closed", "created_ns", "expires_ns", "last_dir", "last_index",
                 "liberal", "original", "reply", "seen_reply", "state", "steady", "win")

    def __init__(self, original: Key, reply: Key, created_ns: int, expires_ns: int) -> None:
        self.original = original
        self.reply = reply
        self.created_ns = created_ns
        self.expires_ns = expires_ns
        self.seen_reply = False
        self.assured = False
        # TCP only (ip_ct_tcp); -1 = no TCP state (not a TCP entry).
        self.state = -1
        self.last_dir = -1
        self.last_index = -1
        self.liberal = False
        self.closed = False
        self.win = (0, 0, 0, 0, 0, 0)
        # A segment and the entry it left unchanged but for the timeout (ConnTracker).
        self.steady: tuple[object, ...] | None = None

    def __repr__(self) -> str:
        return f"<Conn {self.original} state={self.state} expires={self.expires_ns}>"


class Pending(tuple["Key", "Packet", int, "Conn | None"]):
    """A connection that exists once its first packet is accepted; pass it to
    :meth:`ConnTracker.commit`. Opaque: nothing in it is public.

    A tuple (the cheapest object to build) of the key, the packet, the time and, when
    classifying already had to build the entry (a TCP pick-up), the entry. Otherwise
    the entry is built by ``commit``: most would-be connections of a SYN flood are
    dropped and never need one.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<Pending {self[0]}>"


class CtResult(NamedTuple):
    """What :meth:`ConnTracker.classify` says about a packet.

    Attributes:
        state: the packet's :class:`CtState`.
        direction: its direction within the connection, ``None`` when untracked/invalid.
        pending: for a NEW packet without an entry, the entry to :meth:`~ConnTracker.commit`
            if the packet is accepted; else ``None``.
        dropped: the table is full and nothing could be evicted: conntrack drops the
            packet before any rule sees it.
    """

    state: CtState
    direction: CtDir | None = None
    pending: Pending | None = None
    dropped: bool = False
