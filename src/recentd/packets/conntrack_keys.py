"""Connection tuples: what a packet's connection is found by, and the ICMP rules.

Part of :mod:`recentd.packets.conntrack` (which re-exports the public names here).
"""

from __future__ import annotations

from recentd.packets.conntrack_model import Key
from recentd.packets.packet import (
    ABSENT,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Packet,
)

__all__ = ["ICMPV6_UNTRACKED", "ICMP_ERRORS", "ICMP_REQUESTS", "invert_key", "packet_key"]

# ICMP rules as data

#: request type → reply type; requests may create entries (icmp valid_new).
ICMP_REQUESTS = {IPPROTO_ICMP: {8: 0, 13: 14, 15: 16, 17: 18},
                 IPPROTO_ICMPV6: {128: 129, 139: 140}}
ICMP_ERRORS = {IPPROTO_ICMP: frozenset({3, 4, 5, 11, 12}),
               IPPROTO_ICMPV6: frozenset({1, 2, 3, 4})}
#: ICMPv6 types conntrack leaves untracked (MLD, router/neighbour discovery).
ICMPV6_UNTRACKED = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})
#: request ↔ reply, both ways: the type of the inverted tuple (nf_ct_invert_tuple).
_ICMP_INVERSE = {proto: {**pairs, **{reply: request for request, reply in pairs.items()}}
                 for proto, pairs in ICMP_REQUESTS.items()}


def packet_key(packet: Packet) -> Key | None:
    """The original-direction tuple of a packet, ``None`` if it has none."""
    proto = packet.proto
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        if packet.sport == ABSENT:
            return None
        return (packet.family, proto, packet.src, packet.dst, packet.sport, packet.dport)
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if packet.icmp_type == ABSENT:
            return None
        return (packet.family, proto, packet.src, packet.dst, packet.icmp_type,
                packet.icmp_code, packet.icmp_id)
    return (packet.family, proto, packet.src, packet.dst, ABSENT, ABSENT)


def invert_key(key: Key) -> Key | None:
    """The reply-direction tuple (``nf_ct_invert_tuple``); ``None`` if there is none."""
    proto = key[1]
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        family, proto, src, dst, icmp_type, code, echo_id = key
        inverse = _ICMP_INVERSE[proto].get(icmp_type)
        return None if inverse is None else (family, proto, dst, src, inverse, code, echo_id)
    family, proto, src, dst, a, b = key
    return (family, proto, dst, src, b, a)
