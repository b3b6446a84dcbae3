"""Decoding raw layer-3 bytes (what NFQUEUE hands over) into a :class:`Packet`.

Rules:

* The input starts at the IP header. The version nibble picks IPv4 or IPv6;
  anything else, or a header that is too short or inconsistent, raises
  :class:`~recentd.errors.SourceError` with a message saying what is wrong. No
  other exception escapes on bad input.
* ``length`` is what ``-m length`` reads: the IPv4 total length, or 40 + the IPv6
  payload length. Bytes beyond it (Ethernet padding) are ignored. Bytes missing
  from it (a capture's snap length) are tolerated as long as the headers this
  module reads are present. A total/payload length of 0 means a TSO/GSO packet
  or a jumbogram captured before segmentation; then the bytes present count.
* IPv6 extension headers are walked as the kernel's ``ipv6_skip_exthdr`` does
  (hop-by-hop, routing, fragment, destination options, AH); ESP (50) and
  "no next header" (59) end the walk and become ``proto``.
* A fragment is any packet with more-fragments set or a non-zero offset. A
  non-first fragment carries no transport header, so its ports, flags and ICMP
  type stay ``ABSENT``.
* ICMP errors (types 3, 4, 5, 11, 12) and ICMPv6 errors (types 1-4) carry the
  packet that caused them; it is decoded into ``inner`` as far as its (often
  truncated) bytes allow. A quoted packet that is too damaged to read leaves
  ``inner`` as ``None`` rather than failing the outer packet.

Why hand-written rather than dpkt: a plain IPv4/IPv6 + TCP/UDP packet is decoded
by one or two ``struct.unpack_from`` calls and one tuple construction (about
0.5 µs), while building dpkt's object tree for the same bytes costs roughly ten
times that. Replay has to approach 500k packets/s, so the hot path cannot afford
it; the slow paths (options, extension headers, ICMP) share the same code so
there is only one decoder to trust.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypedDict

from recentd.errors import SourceError
from recentd.packets.packet import (
    ABSENT,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Packet,
)

__all__ = ["decode_ip"]

Buffer = bytes | bytearray | memoryview

# IPv4: version/IHL, total length, flags+fragment offset, TTL, protocol, addresses.
_V4 = struct.Struct("!BxHxxHBBxxII")
# IPv6: payload length, next header, hop limit, addresses as two 64-bit halves each.
_V6 = struct.Struct("!4xHBBQQQQ")
# TCP: ports, seq, ack, data offset byte, flags byte, window.
_TCP = struct.Struct("!HHIIBBH")
_PORTS = struct.Struct("!HH")
_SEQ = struct.Struct("!I")
_TYPE_CODE = struct.Struct("!BB")
_EXT = struct.Struct("!BB")  # next header, header extension length
_FRAG6 = struct.Struct("!BxH")  # next header, offset/flags
# The fast paths read network and transport header in one go (TCP layout; for UDP
# only the ports are used, and 40/60 bytes are always present when they run).
_V4_TCP = struct.Struct("!BxHxxHBBxxIIHHIIBBH")
_V6_TCP = struct.Struct("!4xHBBQQQQHHIIBBH")

_MF = 0x2000
_V4_FRAG_BITS = 0x3FFF  # MF + offset: zero means "not a fragment"
_V4_OFFSET = 0x1FFF

_HOPOPTS, _ROUTING, _FRAGMENT, _AH, _DSTOPTS = 0, 43, 44, 51, 60
_V6_EXT_HEADERS = frozenset({_HOPOPTS, _ROUTING, _FRAGMENT, _AH, _DSTOPTS})

_ID = struct.Struct("!H")  # ICMP echo identifier, after type, code and checksum
_ECHO_TYPES = frozenset({8, 0})  # echo request, echo reply
_ECHOV6_TYPES = frozenset({128, 129})

ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
ICMPV6_ERROR_TYPES = frozenset({1, 2, 3, 4})

# Packet is a NamedTuple; tuple.__new__ with the full field tuple skips the generated
# __new__'s argument handling. Only the fast paths build packets so, by position (see
# there); the general path builds them by name.
_new_tuple: Any = tuple.__new__
_new_packet: Callable[[type[Packet], tuple[object, ...]], Packet] = _new_tuple


class _Network(TypedDict):
    """The network-layer fields of a packet, decoded first (the general path)."""

    family: int
    src: int
    dst: int
    ttl: int
    proto: int
    length: int


def decode_ip(data: Buffer, *, iif: str = "", oif: str = "", mark: int = 0,
              start: int = 0, end: int | None = None) -> Packet:
    """Decode one IP packet from its raw layer-3 bytes.

    Args:
        data: the packet, starting at the IPv4 or IPv6 header.
        iif, oif, mark: hook metadata copied into the result.
        start, end: decode ``data[start:end]`` instead (a capture reader's buffer):
            the same result, without copying the bytes on the fast paths.

    Returns:
        The decoded :class:`Packet`.

    Raises:
        SourceError: the bytes are not a decodable IP packet (message says why).
    """
    size = (len(data) if end is None else end) - start
    # Fast paths: option-less, unfragmented IPv4 (the fixed layout) and extension-less
    # IPv6 carrying TCP or UDP, each read with one unpack_from. Anything unusual falls
    # through. They are inline on purpose: a helper call per packet would cost about a
    # tenth of the time. The IPv4 test is an inline copy of packets.layout.is_fixed,
    # interleaved with the unpack it needs (calling is_fixed first measured +33% per
    # decoded SYN, 300 ns on 900; tests/packets/test_layout.py holds the two to each
    # other). Each packet below is Packet(family=…, src=…, …) by position: by keyword it
    # measured 1,250 ns instead of 230, more than the rest of the decode
    # (tests/packets/test_decode.py compares them with the general path's, built by name).
    first = data[start] if size >= 40 else 0
    if first == 0x45:
        (_, total, frag, ttl, proto, src, dst, sport, dport, seq, ack, off, flags,
         win) = _V4_TCP.unpack_from(data, start)
        if not frag & _V4_FRAG_BITS and 20 <= total <= size:
            header = (off >> 4) << 2
            if proto == IPPROTO_TCP and header >= 20 and 20 + header <= total:
                return _new_packet(Packet, (4, src, dst, ttl, proto, total, sport, dport, flags,
                                            ABSENT, ABSENT, False, 0, seq, ack, win,
                                            total - 20 - header, None, iif, oif, mark, ABSENT))
            if proto == IPPROTO_UDP and total >= 28:
                return _new_packet(Packet, (4, src, dst, ttl, proto, total, sport, dport, ABSENT,
                                            ABSENT, ABSENT, False, 0, 0, 0, 0, total - 28, None,
                                            iif, oif, mark, ABSENT))
    elif first >> 4 == 6 and size >= 60:
        (payload, proto, ttl, s_hi, s_lo, d_hi, d_lo, sport, dport, seq, ack, off, flags,
         win) = _V6_TCP.unpack_from(data, start)
        total = 40 + payload
        header = (off >> 4) << 2
        if proto == IPPROTO_TCP and 60 <= total <= size and 20 <= header <= payload:
            return _new_packet(Packet, (6, (s_hi << 64) | s_lo, (d_hi << 64) | d_lo, ttl, proto,
                                        total, sport, dport, flags, ABSENT, ABSENT, False, 0,
                                        seq, ack, win, payload - header, None, iif, oif, mark,
                                        ABSENT))
        if proto == IPPROTO_UDP and 48 <= total <= size:
            return _new_packet(Packet, (6, (s_hi << 64) | s_lo, (d_hi << 64) | d_lo, ttl, proto,
                                        total, sport, dport, ABSENT, ABSENT, ABSENT, False, 0, 0,
                                        0, 0, payload - 8, None, iif, oif, mark, ABSENT))
    if start or end is not None:
        data = data[start:end]
    packet = _decode(data, quoted=False)
    if packet is None:  # pragma: no cover - _decode raises when not quoted
        raise SourceError("undecodable packet")
    if iif or oif or mark:
        packet = packet._replace(iif=iif, oif=oif, mark=mark)
    return packet


def _decode(data: Buffer, *, quoted: bool) -> Packet | None:
    """Decode the general case; a quoted packet returns ``None`` instead of raising."""
    try:
        if len(data) < 1:
            raise SourceError("empty packet")
        version = data[0] >> 4
        if version == 4:
            return _decode_v4(data, quoted)
        if version == 6:
            return _decode_v6(data, quoted)
        raise SourceError(f"not an IP packet (version {version})", raw=bytes(data[:4]))
    except SourceError:
        if quoted:
            return None
        raise


def _decode_v4(data: Buffer, quoted: bool) -> Packet:
    size = len(data)
    if size < 20:
        raise SourceError(f"truncated IPv4 header ({size} bytes, need 20)")
    version_ihl, total, frag, ttl, proto, src, dst = _V4.unpack_from(data)
    header = (version_ihl & 0x0F) * 4
    if header < 20:
        raise SourceError(f"bad IPv4 header length (IHL {header // 4}, minimum 5)")
    if header > size:
        raise SourceError(f"truncated IPv4 header ({size} bytes, IHL says {header})")
    if total == 0:
        total = size  # TSO/GSO: the length field is filled in by the NIC
    if total < header:
        raise SourceError(f"bad IPv4 total length {total} (header is {header} bytes)")
    end = min(total, size)
    offset = frag & _V4_OFFSET
    fragment = bool(frag & _MF) or offset != 0
    network = _Network(family=4, src=src, dst=dst, ttl=ttl, proto=proto, length=total)
    return _transport(network, data, header, end, fragment=fragment, offset=offset,
                      quoted=quoted)


def _decode_v6(data: Buffer, quoted: bool) -> Packet:
    size = len(data)
    if size < 40:
        raise SourceError(f"truncated IPv6 header ({size} bytes, need 40)")
    payload, proto, ttl, src_hi, src_lo, dst_hi, dst_lo = _V6.unpack_from(data)
    total = 40 + payload if payload else size  # 0: jumbogram or GSO
    end = min(total, size)
    offset, fragment, proto, pos = _skip_v6_extensions(data, proto, 40, end, quoted)
    network = _Network(family=6, src=(src_hi << 64) | src_lo, dst=(dst_hi << 64) | dst_lo,
                       ttl=ttl, proto=proto, length=total)
    return _transport(network, data, pos, end, fragment=fragment, offset=offset, quoted=quoted)


def _skip_v6_extensions(
    data: Buffer, proto: int, pos: int, end: int, quoted: bool
) -> tuple[int, bool, int, int]:
    """Walk the extension headers: ``(frag_offset, fragment, upper proto, offset)``."""
    offset, fragment = 0, False
    while proto in _V6_EXT_HEADERS:
        if pos + 8 > end:
            if quoted:  # a quote cut inside the extension headers: stop where it ends
                return offset, fragment, proto, end
            raise SourceError(f"truncated IPv6 extension header {proto} at byte {pos}")
        if proto == _FRAGMENT:
            proto, frag = _FRAG6.unpack_from(data, pos)
            offset, fragment = frag >> 3, True
            pos += 8
            if offset:
                break  # the rest of the headers are in the first fragment
            continue
        nxt, hdrlen = _EXT.unpack_from(data, pos)
        pos += (hdrlen + 2) * 4 if proto == _AH else (hdrlen + 1) * 8
        if pos > end and not quoted:
            raise SourceError(f"truncated IPv6 extension header {proto}: it runs to byte "
                              f"{pos}, the packet ends at {end}")
        proto = nxt
    return offset, fragment, proto, min(pos, end)


def _transport(
    network: _Network, data: Buffer, pos: int, end: int, *, fragment: bool, offset: int,
    quoted: bool,
) -> Packet:
    """Decode the transport header at ``data[pos:end]`` and build the packet."""
    proto = network["proto"]
    avail = end - pos  # bytes present: what header reads may use
    if offset:  # non-first fragment: no transport header
        return Packet(**network, fragment=fragment, frag_offset=offset,
                      payload_len=network["length"] - pos)
    if proto == IPPROTO_TCP:
        return _tcp(network, data, pos, avail, fragment=fragment, quoted=quoted)
    if proto == IPPROTO_UDP:
        return _ports_only(network, data, pos, avail, fragment=fragment, quoted=quoted,
                           tcp=False)
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        return _icmp(network, data, pos, end, fragment=fragment, quoted=quoted)
    return Packet(**network, fragment=fragment, payload_len=network["length"] - pos)


def _payload(network: _Network, pos: int, header: int) -> int:
    """Payload length as the headers declare it (a snap length cuts bytes, not length)."""
    return max(network["length"] - pos - header, 0)


def _tcp(
    network: _Network, data: Buffer, pos: int, avail: int, *, fragment: bool, quoted: bool
) -> Packet:
    if avail < 20:
        if quoted:  # the quote of an ICMP error keeps at least the 8 bytes of ports+seq
            return _ports_only(network, data, pos, avail, fragment=fragment, quoted=True,
                               tcp=True)
        raise SourceError(f"truncated TCP header ({avail} bytes, need 20)")
    sport, dport, seq, ack, off, flags, win = _TCP.unpack_from(data, pos)
    header = (off >> 4) * 4
    if header < 20 and not quoted:
        raise SourceError(f"bad TCP data offset {header // 4} (minimum 5)")
    return Packet(**network, sport=sport, dport=dport, tcp_flags=flags, fragment=fragment,
                  tcp_seq=seq, tcp_ack=ack, tcp_window=win,
                  payload_len=_payload(network, pos, header))


def _ports_only(
    network: _Network, data: Buffer, pos: int, avail: int, *, fragment: bool, quoted: bool,
    tcp: bool,
) -> Packet:
    """A UDP packet, or a quoted TCP packet cut short: ports (+ seq) and nothing more."""
    header, name = (20, "TCP") if tcp else (8, "UDP")
    if avail < header and not (quoted and avail >= 4):
        if quoted:
            return Packet(**network, fragment=fragment)
        raise SourceError(f"truncated {name} header ({avail} bytes, need {header})")
    sport, dport = _PORTS.unpack_from(data, pos)
    seq: int = _SEQ.unpack_from(data, pos + 4)[0] if tcp and avail >= 8 else 0
    return Packet(**network, sport=sport, dport=dport, fragment=fragment, tcp_seq=seq,
                  payload_len=_payload(network, pos, header))


def _icmp(
    network: _Network, data: Buffer, pos: int, end: int, *, fragment: bool, quoted: bool
) -> Packet:
    avail = end - pos
    if avail < 4:
        if quoted:
            return Packet(**network, fragment=fragment)
        raise SourceError(f"truncated ICMP header ({avail} bytes, need 4)")
    icmp_type, code = _TYPE_CODE.unpack_from(data, pos)
    errors = ICMP_ERROR_TYPES if network["proto"] == IPPROTO_ICMP else ICMPV6_ERROR_TYPES
    inner = None
    # The kernel never looks inside an error quoted by an error, and neither do we.
    if icmp_type in errors and not quoted and avail > 8:
        inner = _decode(memoryview(data)[pos + 8:end], quoted=True)
    # Echo request/reply carry an identifier that conntrack keys the connection by.
    echo = icmp_type in (_ECHO_TYPES if network["proto"] == IPPROTO_ICMP else _ECHOV6_TYPES)
    icmp_id = _ID.unpack_from(data, pos + 4)[0] if echo and avail >= 6 else ABSENT
    return Packet(**network, icmp_type=icmp_type, icmp_code=code, fragment=fragment,
                  payload_len=_payload(network, pos, 8), inner=inner, icmp_id=icmp_id)
