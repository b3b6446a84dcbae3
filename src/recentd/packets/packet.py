"""The decoded packet: the one value every part of recentd reads traffic through.

A :class:`Packet` is what the kernel's matches see of a packet: the network
header (family, addresses, TTL or hop limit, length, fragment state), the
transport header where there is one, and the metadata the hook adds (interfaces,
mark). It is a ``NamedTuple`` because replay and NFQUEUE build one per packet and
a tuple is the cheapest immutable value Python constructs; metadata changes
(``-j MARK``) make a new one with ``_replace``.

Addresses are plain ``int`` (32 bits for IPv4, 128 for IPv6) rather than
``ipaddress`` objects: building an ``ipaddress`` object costs about a microsecond
and the hot path never needs one. Convert at the edges with :func:`ip_of`.
"""

from __future__ import annotations

import ipaddress
from enum import IntEnum
from typing import NamedTuple


class Family(IntEnum):
    """Address family, valued as the IP version number."""

    IPV4 = 4
    IPV6 = 6


#: Value used in the port/type fields when the header does not carry them.
ABSENT = -1

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


class Packet(NamedTuple):
    """One IP packet as netfilter's matches see it.

    Attributes:
        family: :class:`Family` (4 or 6).
        src, dst: addresses as integers.
        ttl: IPv4 TTL or IPv6 hop limit, as in the header.
        proto: upper-layer protocol number (IPv6: after the extension headers).
        length: the IP packet's total length in bytes (what ``-m length`` reads).
        sport, dport: transport ports, or ``ABSENT``.
        tcp_flags: the TCP flag byte (FIN=0x01 … URG=0x20, plus ECE/CWR), or ``ABSENT``.
        icmp_type, icmp_code: ICMP/ICMPv6 type and code, or ``ABSENT``.
        fragment: True for any fragment (more-fragments set or offset non-zero).
        frag_offset: fragment offset in 8-byte units; non-zero means a non-first
            fragment, which carries no transport header (ports stay ``ABSENT``).
        tcp_seq, tcp_ack, tcp_window: TCP sequence state for connection tracking.
        payload_len: transport payload length in bytes (for connection tracking).
        inner: for ICMP/ICMPv6 error messages, the quoted packet that caused the error
            (decoded as far as its bytes allow), else ``None``.
        iif, oif: input/output interface names ("" when unknown or not applicable).
        mark: the packet mark (nfmark).
        icmp_id: the identifier of an ICMP/ICMPv6 echo request or reply, or ``ABSENT``
            (conntrack keys echo connections by it, as the kernel does). Last so that
            positional construction of the fields before it is unchanged.
    """

    family: int
    src: int
    dst: int
    ttl: int
    proto: int
    length: int
    sport: int = ABSENT
    dport: int = ABSENT
    tcp_flags: int = ABSENT
    icmp_type: int = ABSENT
    icmp_code: int = ABSENT
    fragment: bool = False
    frag_offset: int = 0
    tcp_seq: int = 0
    tcp_ack: int = 0
    tcp_window: int = 0
    payload_len: int = 0
    inner: Packet | None = None
    iif: str = ""
    oif: str = ""
    mark: int = 0
    icmp_id: int = ABSENT


def ip_of(family: int, addr: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The ``ipaddress`` object for an integer address of the given family."""
    if family == Family.IPV4:
        return ipaddress.IPv4Address(addr)
    return ipaddress.IPv6Address(addr)
