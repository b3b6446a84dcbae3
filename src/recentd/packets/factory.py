"""Building packets and capture files, for tests and benchmarks.

:class:`PacketFactory` makes raw IPv4/IPv6 packets (the bytes NFQUEUE would hand
over) with every checksum correct, so they can be fed to :func:`decode_ip`, to a
real stack or written to a capture. :func:`write_pcap` and :func:`write_pcapng`
write ``(ts_ns, ip_bytes)`` records framed for any link type
:mod:`recentd.packets.capture` reads, and :func:`write_syn_flood_pcap` writes
large benchmark captures quickly (about a million packets in a few seconds) by
patching a template instead of building each packet.

Addresses may be given as strings, ``ipaddress`` objects or integers (an integer
needs ``family=``); the family of ``src`` decides IPv4 or IPv6. TCP flags may be
an int or letters (``"S"``, ``"SA"``, ``"FA"``, ``"R"``, ``"PA"`` …).

Example::

    pf = PacketFactory()
    syn = pf.tcp("203.0.113.7", "192.0.2.1", dport=22, flags="S", ttl=51)
    write_pcap(tmp_path / "ssh.pcap", [(0, syn), (1_000_000_000, syn)], linktype=LINKTYPE_ETHERNET)
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

from recentd.packets.packet import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "Address",
    "IpOptions",
    "PacketFactory",
    "checksum",
    "frame_ip",
    "write_pcap",
    "write_pcapng",
    "write_syn_flood_pcap",
]

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 113, 276

Address = str | int | ipaddress.IPv4Address | ipaddress.IPv6Address

_TCP_FLAG_LETTERS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20,
                     "E": 0x40, "C": 0x80}
_ICMP_ECHO_REQUEST = {4: 8, 6: 128}
_FRAGMENT_HEADER = 44
_AH = 51


class IpOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`PacketFactory.ip` the transport builders pass on."""

    ident: int
    frag_offset: int
    more_fragments: bool
    dont_fragment: bool
    options: bytes
    extensions: Sequence[int]
    length: int | None


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip(addr: Address, family: int | None = None) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(addr, int) and not isinstance(addr, bool):
        return ipaddress.IPv6Address(addr) if family == 6 else ipaddress.IPv4Address(addr)
    return ipaddress.ip_address(addr)


def tcp_flags(flags: int | str) -> int:
    """TCP flags from an int or letters (``"SA"`` → SYN|ACK)."""
    if isinstance(flags, int):
        return flags
    return sum(_TCP_FLAG_LETTERS[letter] for letter in set(flags.upper()))


@dataclass(frozen=True)
class PacketFactory:
    """Builds raw IP packets with correct checksums.

    Attributes:
        ttl: default TTL / hop limit.
        family: family for integer addresses (string addresses carry their own).
    """

    ttl: int = 64
    family: int = 4

    # -- network layer --------------------------------------------------------

    def ip(
        self,
        src: Address,
        dst: Address,
        proto: int,
        payload: bytes = b"",
        *,
        ttl: int | None = None,
        ident: int = 0,
        frag_offset: int = 0,
        more_fragments: bool = False,
        dont_fragment: bool = False,
        options: bytes = b"",
        extensions: Sequence[int] = (),
        length: int | None = None,
    ) -> bytes:
        """An IPv4 or IPv6 packet around ``payload``.

        Args:
            frag_offset, more_fragments: make a fragment (offset in 8-byte units);
                for IPv6 a fragment header is added after ``extensions``.
            options: IPv4 options (padded to a multiple of 4 bytes).
            extensions: IPv6 extension header types to insert, in order (0, 43, 60
                get 8 zero-padded bytes, 51 (AH) 12 bytes).
            length: override the length field (to build inconsistent packets).
        """
        source, dest = _ip(src, self.family), _ip(dst, self.family)
        hop = self.ttl if ttl is None else ttl
        if source.version == 4:
            return self._ipv4(source.packed, dest.packed, proto, payload, ttl=hop,
                              frag=(ident, frag_offset, more_fragments, dont_fragment),
                              options=options, length=length)
        frag = (ident, frag_offset, more_fragments) if frag_offset or more_fragments else None
        return self._ipv6(source.packed, dest.packed, proto, payload, hop=hop,
                          extensions=extensions, frag=frag, length=length)

    @staticmethod
    def _ipv4(
        src: bytes, dst: bytes, proto: int, payload: bytes, *, ttl: int,
        frag: tuple[int, int, bool, bool], options: bytes, length: int | None,
    ) -> bytes:
        ident, offset, more, dont = frag
        options += b"\0" * (-len(options) % 4)
        ihl = 5 + len(options) // 4
        total = ihl * 4 + len(payload) if length is None else length
        flags = offset | (0x2000 if more else 0) | (0x4000 if dont else 0)
        header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ident, flags, ttl, proto, 0,
                             src, dst) + options
        csum = checksum(header)
        return header[:10] + struct.pack("!H", csum) + header[12:] + payload

    @staticmethod
    def _ipv6(
        src: bytes, dst: bytes, proto: int, payload: bytes, *, hop: int, extensions: Sequence[int],
        frag: tuple[int, int, bool] | None, length: int | None,
    ) -> bytes:
        kinds = [*extensions, *([_FRAGMENT_HEADER] if frag else [])]
        chain = b""
        for i, kind in enumerate(kinds):
            nxt = kinds[i + 1] if i + 1 < len(kinds) else proto
            if kind == _FRAGMENT_HEADER and frag:
                ident, offset, more = frag
                chain += struct.pack("!BxHI", nxt, (offset << 3) | int(more), ident)
            elif kind == _AH:
                chain += struct.pack("!BB", nxt, 1) + b"\0" * 10  # 12 bytes: (1 + 2) * 4
            else:
                chain += struct.pack("!BB", nxt, 0) + b"\0" * 6
        first = kinds[0] if kinds else proto
        plen = len(chain) + len(payload) if length is None else length
        return struct.pack("!IHBB16s16s", 0x60000000, plen, first, hop, src, dst) + chain + payload

    # -- transport layer ------------------------------------------------------

    def tcp(
        self,
        src: Address,
        dst: Address,
        *,
        sport: int = 40000,
        dport: int = 22,
        flags: int | str = "S",
        seq: int = 1000,
        ack: int = 0,
        window: int = 64240,
        payload: bytes = b"",
        tcp_options: bytes = b"",
        ttl: int | None = None,
        **ip_kwargs: Unpack[IpOptions],
    ) -> bytes:
        """A TCP segment in an IP packet (extra keywords go to :meth:`ip`)."""
        tcp_options += b"\0" * (-len(tcp_options) % 4)
        offset = (5 + len(tcp_options) // 4) << 4
        segment = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                              offset, tcp_flags(flags), window, 0, 0) + tcp_options + payload
        segment = self._with_l4_checksum(src, dst, IPPROTO_TCP, segment, 16)
        return self.ip(src, dst, IPPROTO_TCP, segment, ttl=ttl, **ip_kwargs)

    def udp(
        self,
        src: Address,
        dst: Address,
        *,
        sport: int = 40000,
        dport: int = 53,
        payload: bytes = b"",
        ttl: int | None = None,
        **ip_kwargs: Unpack[IpOptions],
    ) -> bytes:
        """A UDP datagram in an IP packet."""
        datagram = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        datagram = self._with_l4_checksum(src, dst, IPPROTO_UDP, datagram, 6)
        return self.ip(src, dst, IPPROTO_UDP, datagram, ttl=ttl, **ip_kwargs)

    def icmp(
        self,
        src: Address,
        dst: Address,
        *,
        icmp_type: int | None = None,
        code: int = 0,
        echo_id: int = 1,
        echo_seq: int = 1,
        payload: bytes = b"",
        rest: bytes | None = None,
        ttl: int | None = None,
        **ip_kwargs: Unpack[IpOptions],
    ) -> bytes:
        """An ICMP (IPv4) or ICMPv6 (IPv6) message; default an echo request.

        ``rest`` replaces the 4 bytes after the checksum (echo identifier and sequence).
        """
        v6 = _ip(src, self.family).version == 6
        kind = _ICMP_ECHO_REQUEST[6 if v6 else 4] if icmp_type is None else icmp_type
        second = struct.pack("!HH", echo_id, echo_seq) if rest is None else rest
        message = struct.pack("!BBH", kind, code, 0) + second + payload
        proto = IPPROTO_ICMPV6 if v6 else IPPROTO_ICMP
        if v6:
            message = self._with_l4_checksum(src, dst, proto, message, 2)
        else:
            message = message[:2] + struct.pack("!H", checksum(message)) + message[4:]
        return self.ip(src, dst, proto, message, ttl=ttl, **ip_kwargs)

    def icmp_error(
        self,
        src: Address,
        dst: Address,
        quoted: bytes,
        *,
        icmp_type: int | None = None,
        code: int = 0,
        quote_bytes: int = 576,
        ttl: int | None = None,
    ) -> bytes:
        """An ICMP error from ``src`` to ``dst`` quoting ``quoted`` (default
        destination unreachable; ``quote_bytes`` cuts the quote as routers do)."""
        v6 = _ip(src, self.family).version == 6
        kind = (1 if v6 else 3) if icmp_type is None else icmp_type
        return self.icmp(src, dst, icmp_type=kind, code=code, rest=b"\0" * 4,
                         payload=quoted[:quote_bytes], ttl=ttl)

    def _with_l4_checksum(
        self, src: Address, dst: Address, proto: int, segment: bytes, at: int
    ) -> bytes:
        source, dest = _ip(src, self.family), _ip(dst, self.family)
        if source.version == 4:
            pseudo = source.packed + dest.packed + struct.pack("!BBH", 0, proto, len(segment))
        else:
            pseudo = source.packed + dest.packed + struct.pack("!I3xB", len(segment), proto)
        csum = checksum(pseudo + segment)
        if proto == IPPROTO_UDP and csum == 0:
            csum = 0xFFFF  # 0 means "no checksum" in UDP
        return segment[:at] + struct.pack("!H", csum) + segment[at + 2:]


# ---------------------------------------------------------------------------
# Framing and capture writers


def frame_ip(ip: bytes, linktype: int = LINKTYPE_RAW, *, vlans: Sequence[int] = ()) -> bytes:
    """Wrap a raw IP packet in the link-layer header of ``linktype``.

    ``vlans`` adds 802.1Q tags (outermost first; the first of two or more uses the
    802.1ad ethertype) on Ethernet.
    """
    v6 = bool(ip) and ip[0] >> 4 == 6
    ethertype = 0x86DD if v6 else 0x0800
    if linktype == LINKTYPE_ETHERNET:
        tags = b"".join(
            struct.pack("!HH", 0x88A8 if i == 0 and len(vlans) > 1 else 0x8100, vid)
            for i, vid in enumerate(vlans))
        return (b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + tags
                + struct.pack("!H", ethertype) + ip)
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01", ethertype) + ip
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, b"\x02\0\0\0\0\x01") + ip
    if linktype == LINKTYPE_NULL:
        return struct.pack("<I", 24 if v6 else 2) + ip
    if linktype == LINKTYPE_LOOP:
        return struct.pack(">I", 24 if v6 else 2) + ip
    return ip


def write_pcap(
    path: str | Path,
    records: Iterable[tuple[int, bytes]],
    *,
    linktype: int = LINKTYPE_RAW,
    nanosecond: bool = True,
    big_endian: bool = False,
    snaplen: int = 262144,
    frame: bool = True,
) -> Path:
    """Write ``(ts_ns, ip_bytes)`` records as a classic pcap file.

    Args:
        frame: wrap each record with :func:`frame_ip`; ``False`` writes the bytes
            as given (for non-IP frames or hand-made damage).
        nanosecond: nanosecond magic; otherwise microseconds (``ts_ns`` truncated).
    """
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    divisor = 1 if nanosecond else 1000
    record = struct.Struct(order + "IIII")
    out = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    for ts_ns, data in records:
        body = frame_ip(data, linktype) if frame else data
        sec, frac = divmod(ts_ns, 1_000_000_000)
        out += record.pack(sec, frac // divisor, len(body), len(body))
        out += body
    target = Path(path)
    target.write_bytes(out)
    return target


def write_pcapng(
    path: str | Path,
    records: Iterable[tuple[int, bytes]],
    *,
    linktype: int = LINKTYPE_RAW,
    tsresol: int = 9,
    big_endian: bool = False,
    simple: bool = False,
    frame: bool = True,
) -> Path:
    """Write ``(ts_ns, ip_bytes)`` records as a one-section, one-interface pcapng.

    Args:
        tsresol: the interface's ``if_tsresol`` option byte (9 = nanoseconds,
            6 = microseconds, 0x80 | k = 2^-k seconds).
        simple: write simple packet blocks (no timestamps) instead of enhanced ones.
    Concatenating two such files gives a valid two-section file.
    """
    order = ">" if big_endian else "<"
    out = bytearray(_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)))
    options = struct.pack(order + "HHB3x", 9, 1, tsresol) + struct.pack(order + "HH", 0, 0)
    out += _block(order, 1, struct.pack(order + "HHI", linktype, 0, 0) + options)
    for ts_ns, data in records:
        body = frame_ip(data, linktype) if frame else data
        padded = body + b"\0" * (-len(body) % 4)
        if simple:
            out += _block(order, 3, struct.pack(order + "I", len(body)) + padded)
            continue
        ticks = _ticks(ts_ns, tsresol)
        out += _block(order, 6, struct.pack(order + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF,
                                            len(body), len(body)) + padded)
    target = Path(path)
    target.write_bytes(out)
    return target


def _ticks(ts_ns: int, tsresol: int) -> int:
    if tsresol & 0x80:
        return ts_ns * (1 << (tsresol & 0x7F)) // 1_000_000_000
    if tsresol <= 9:
        return ts_ns // int(10 ** (9 - tsresol))
    return ts_ns * int(10 ** (tsresol - 9))


def _block(order: str, kind: int, body: bytes) -> bytes:
    size = 12 + len(body)
    return struct.pack(order + "II", kind, size) + body + struct.pack(order + "I", size)


# ---------------------------------------------------------------------------
# Benchmark captures


def write_syn_flood_pcap(
    path: str | Path,
    n_packets: int,
    n_sources: int,
    *,
    dst: str = "192.0.2.1",
    dport: int = 22,
    first_source: str = "198.18.0.1",
    start_ns: int = 1_700_000_000_000_000_000,
    interval_ns: int = 1_000,
    ttl: int = 64,
    extra: Iterable[tuple[int, bytes]] = (),
) -> Path:
    """Write a raw-IP pcap of ``n_packets`` IPv4 TCP SYNs to ``dst:dport``.

    Packet ``i`` comes from ``first_source + i % n_sources`` (the RFC 2544
    benchmark range by default) with source port ``1024 + i % 60000``, at
    ``start_ns + i * interval_ns``. Checksums are correct: they are patched into a
    template incrementally, which is what makes a million packets take seconds.
    ``extra`` records ``(ts_ns, ip_bytes)``, in time order, are written among the
    flood's, each before the first flood packet stamped after it (a real attacker
    inside a flood).
    """
    if n_sources < 1:
        raise ValueError("n_sources must be at least 1")
    template = PacketFactory(ttl=ttl).tcp("0.0.0.0", dst, sport=0, dport=dport, flags="S",  # noqa: S104
                                          seq=0)
    ip_sum, tcp_sum = _unfolded(template[:20]), _unfolded(template[20:], template[12:20])
    record = struct.Struct("<IIII")
    first = int(ipaddress.IPv4Address(first_source))
    target = Path(path)
    with target.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
        buf = bytearray()
        pending = iter(extra)
        next_extra = next(pending, None)
        for i in range(n_packets):
            src = (first + i % n_sources) & 0xFFFFFFFF
            sport = 1024 + i % 60000
            ts_ns = start_ns + i * interval_ns
            while next_extra is not None and next_extra[0] <= ts_ns:
                buf += _extra_record(record, *next_extra)
                next_extra = next(pending, None)
            buf += _flood_record(record, template, ts_ns, src=src,
                                 sport=sport, ip_sum=ip_sum, tcp_sum=tcp_sum)
            if len(buf) > 1 << 20:
                out.write(buf)
                buf.clear()
        out.write(buf)
        for ts_ns, packet in ([] if next_extra is None else [next_extra]) + list(pending):
            out.write(_extra_record(record, ts_ns, packet))
    return target


def _extra_record(record: struct.Struct, ts_ns: int, packet: bytes) -> bytes:
    sec, nsec = divmod(ts_ns, 1_000_000_000)
    return record.pack(sec, nsec, len(packet), len(packet)) + packet


def _unfolded(data: bytes, pseudo_addrs: bytes = b"") -> int:
    """Sum of 16-bit words with the checksum field zeroed; addresses added if given."""
    words: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    if pseudo_addrs:  # TCP: template checksum field is at 16, addresses of 0.0.0.0 → dst
        words -= struct.unpack_from("!H", data, 16)[0]
        words += sum(struct.unpack("!4H", pseudo_addrs)) + IPPROTO_TCP + len(data)
    else:
        words -= struct.unpack_from("!H", data, 10)[0]
    return words


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _flood_record(
    record: struct.Struct, template: bytes, ts_ns: int, *, src: int, sport: int, ip_sum: int,
    tcp_sum: int,
) -> bytes:
    src_words = (src >> 16) + (src & 0xFFFF)
    packet = bytearray(template)
    struct.pack_into("!HI", packet, 10, _fold(ip_sum + src_words), src)
    struct.pack_into("!H", packet, 20, sport)
    struct.pack_into("!H", packet, 36, _fold(tcp_sum + src_words + sport))
    sec, nsec = divmod(ts_ns, 1_000_000_000)
    return record.pack(sec, nsec, len(packet), len(packet)) + packet
