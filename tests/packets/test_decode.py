"""decode_ip as transcripts: bytes in, decoded fields out."""

from __future__ import annotations

import contextlib
import ipaddress
import struct

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recentd.packets as packets
from recentd.errors import SourceError
from recentd.packets.decode import _decode, decode_ip
from recentd.packets.factory import PacketFactory, checksum
from recentd.packets.packet import ABSENT, Packet

pf = PacketFactory()
A, B = "203.0.113.7", "192.0.2.1"
A6, B6 = "2001:db8::7", "2001:db8::1"


def addr(text: str) -> int:
    return int(ipaddress.ip_address(text))


def test_ipv4_tcp_syn_every_field() -> None:
    raw = pf.tcp(A, B, sport=40000, dport=22, flags="S", seq=7, ack=0, window=1024, ttl=51)
    assert decode_ip(raw, iif="eth0", oif="", mark=0x10) == Packet(
        family=4,
        src=addr(A),
        dst=addr(B),
        ttl=51,
        proto=6,
        length=40,
        sport=40000,
        dport=22,
        tcp_flags=0x02,
        tcp_seq=7,
        tcp_window=1024,
        iif="eth0",
        mark=0x10,
    )


def test_ipv4_udp() -> None:
    raw = pf.udp(A, B, sport=5353, dport=53, payload=b"x" * 30)
    packet = decode_ip(raw)
    assert (packet.proto, packet.sport, packet.dport, packet.length, packet.payload_len) == (
        17,
        5353,
        53,
        58,
        30,
    )
    assert packet.tcp_flags == ABSENT


def test_small_udp_takes_the_general_path() -> None:
    packet = decode_ip(pf.udp(A, B, sport=1, dport=2))
    assert (packet.length, packet.sport, packet.dport, packet.payload_len) == (28, 1, 2, 0)


def test_tcp_payload_and_options() -> None:
    raw = pf.tcp(A, B, flags="PA", payload=b"y" * 100, tcp_options=b"\x02\x04\x05\xb4")
    packet = decode_ip(raw)
    assert (packet.length, packet.payload_len, packet.tcp_flags) == (144, 100, 0x18)


def test_ipv4_options_decode_like_plain() -> None:
    plain = decode_ip(pf.tcp(A, B, flags="S"))
    with_options = decode_ip(pf.tcp(A, B, flags="S", options=b"\x94\x04\x00\x00"))  # router alert
    assert with_options == plain._replace(length=44)


def test_ipv4_fragments() -> None:
    first = decode_ip(pf.udp(A, B, sport=1000, dport=53, payload=b"q" * 64, more_fragments=True))
    assert (first.fragment, first.frag_offset, first.sport, first.dport) == (True, 0, 1000, 53)
    rest = decode_ip(pf.ip(A, B, 17, b"r" * 16, frag_offset=9))
    assert (rest.fragment, rest.frag_offset, rest.sport, rest.dport, rest.proto) == (
        True,
        9,
        ABSENT,
        ABSENT,
        17,
    )
    assert rest.payload_len == 16
    df = decode_ip(pf.tcp(A, B, dont_fragment=True))
    assert not df.fragment


def test_ipv6_tcp_and_udp() -> None:
    packet = decode_ip(pf.tcp(A6, B6, sport=1, dport=443, flags="SA", ack=5, ttl=33))
    assert (packet.family, packet.src, packet.dst, packet.ttl, packet.length) == (
        6,
        addr(A6),
        addr(B6),
        33,
        60,
    )
    assert (packet.sport, packet.dport, packet.tcp_flags, packet.tcp_ack) == (1, 443, 0x12, 5)
    udp = decode_ip(pf.udp(A6, B6, sport=5, dport=6, payload=b"abc"))
    assert (udp.proto, udp.sport, udp.dport, udp.length, udp.payload_len) == (17, 5, 6, 51, 3)


@pytest.mark.parametrize("chain", [(0,), (43,), (60,), (51,), (0, 43, 60), (0, 51, 60)])
def test_ipv6_extension_headers_are_walked(chain: tuple[int, ...]) -> None:
    raw = pf.tcp(A6, B6, sport=1, dport=22, flags="S", extensions=chain)
    packet = decode_ip(raw)
    assert (packet.proto, packet.sport, packet.dport, packet.length) == (6, 1, 22, len(raw))


def test_ipv6_fragments() -> None:
    first = decode_ip(pf.udp(A6, B6, sport=9, dport=10, payload=b"z" * 40, more_fragments=True))
    assert (first.fragment, first.frag_offset, first.proto, first.sport) == (True, 0, 17, 9)
    rest = decode_ip(pf.ip(A6, B6, 6, b"z" * 8, frag_offset=6, extensions=(0,)))
    assert (rest.fragment, rest.frag_offset, rest.proto, rest.sport, rest.tcp_flags) == (
        True,
        6,
        6,
        ABSENT,
        ABSENT,
    )


@pytest.mark.parametrize("proto", [50, 59])
def test_ipv6_esp_and_no_next_header_end_the_walk(proto: int) -> None:
    packet = decode_ip(pf.ip(A6, B6, proto, b"\0" * 12, extensions=(60,)))
    assert (packet.proto, packet.sport, packet.payload_len) == (proto, ABSENT, 12)


def test_icmp_echo() -> None:
    packet = decode_ip(pf.icmp(A, B, echo_id=3, echo_seq=4, payload=b"p" * 56))
    assert (packet.proto, packet.icmp_type, packet.icmp_code, packet.length) == (1, 8, 0, 84)
    assert packet.inner is None and packet.sport == ABSENT


@pytest.mark.parametrize(
    ("quote", "sport", "seq", "flags"),
    [
        (20, ABSENT, 0, ABSENT),
        (24, 40000, 0, ABSENT),
        (28, 40000, 99, ABSENT),
        (40, 40000, 99, 0x02),
        (576, 40000, 99, 0x02),
    ],
)
def test_icmp_error_quotes_are_decoded_as_far_as_they_go(
    quote: int, sport: int, seq: int, flags: int
) -> None:
    syn = pf.tcp(A, B, sport=40000, dport=22, flags="S", seq=99)
    error = decode_ip(pf.icmp_error("198.51.100.1", A, syn, icmp_type=3, code=1, quote_bytes=quote))
    assert (error.icmp_type, error.icmp_code, error.src) == (3, 1, addr("198.51.100.1"))
    inner = error.inner
    assert inner is not None
    assert (inner.src, inner.dst, inner.proto, inner.length) == (addr(A), addr(B), 6, 40)
    assert (inner.sport, inner.tcp_seq, inner.tcp_flags) == (sport, seq, flags)


def test_icmp_error_with_unreadable_quote_has_no_inner() -> None:
    error = decode_ip(pf.icmp(A, B, icmp_type=11, rest=b"\0" * 4, payload=b"\x10garbage"))
    assert error.icmp_type == 11 and error.inner is None


def test_icmpv6_error_and_no_nesting() -> None:
    udp = pf.udp(B6, A6, sport=33434, dport=33435)
    first = pf.icmp_error("2001:db8::ff", B6, udp, icmp_type=3)
    packet = decode_ip(first)
    assert packet.inner is not None and packet.inner.dport == 33435
    nested = decode_ip(pf.icmp_error("2001:db8::fe", "2001:db8::ff", first, icmp_type=1))
    assert nested.inner is not None and nested.inner.icmp_type == 3
    assert nested.inner.inner is None  # an error quoted by an error is not looked into


def test_non_error_icmp_types_have_no_inner() -> None:
    packet = decode_ip(pf.icmp(A, B, icmp_type=0, payload=pf.tcp(A, B)))
    assert packet.inner is None


def test_trailing_padding_ignored_and_snaplen_tolerated() -> None:
    raw = pf.tcp(A, B, flags="A", payload=b"d" * 100)
    padded = decode_ip(raw + b"\0" * 6)
    assert padded == decode_ip(raw)
    cut = decode_ip(raw[:54])  # a 54-byte snap length: headers complete
    assert (cut.length, cut.sport, cut.payload_len) == (140, 40000, 100)


def test_tso_zero_total_length_uses_the_bytes() -> None:
    raw = pf.tcp(A, B, flags="A", payload=b"d" * 10, length=0)
    packet = decode_ip(raw)
    assert (packet.length, packet.payload_len) == (50, 10)


@pytest.mark.parametrize("make", [bytes, bytearray, memoryview])
def test_buffer_types(make: type) -> None:
    raw = pf.tcp(A6, B6, flags="S", extensions=(0,))
    assert decode_ip(make(raw)) == decode_ip(raw)


def test_metadata_on_the_general_path() -> None:
    packet = decode_ip(pf.icmp(A, B), iif="lo", oif="eth1", mark=7)
    assert (packet.iif, packet.oif, packet.mark) == ("lo", "eth1", 7)


def _header(ihl: int = 5, total: int = 40) -> bytes:
    return struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0, 0, 64, 6, 0, b"\1\2\3\4", b"\5\6\7\x08"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty packet"),
        (b"\x50" + b"\0" * 39, "not an IP packet (version 5)"),
        (b"\x45" + b"\0" * 10, "truncated IPv4 header (11 bytes"),
        (_header(ihl=4) + b"\0" * 20, "bad IPv4 header length (IHL 4"),
        (_header(ihl=15) + b"\0" * 20, "truncated IPv4 header (40 bytes, IHL says 60)"),
        (_header(total=12) + b"\0" * 20, "bad IPv4 total length 12"),
        (_header(total=30) + b"\0" * 10, "truncated TCP header (10 bytes"),
        (
            _header() + struct.pack("!HHIIBBHHH", 1, 2, 0, 0, 0x40, 2, 0, 0, 0),
            "bad TCP data offset 4",
        ),
        (pf.udp(A, B)[:24], "truncated UDP header"),
        (pf.icmp(A, B)[:22], "truncated ICMP header"),
        (pf.tcp(A6, B6)[:39], "truncated IPv6 header"),
        (pf.tcp(A6, B6, extensions=(0,))[:44], "truncated IPv6 extension header 0"),
        (
            pf.tcp(A6, B6, extensions=(60,))[:40] + b"\x06\x20" + b"\0" * 30,
            "truncated IPv6 extension header 60: it runs to byte 304, the packet ends at 68",
        ),
    ],
)
def test_undecodable_packets_raise_source_error(data: bytes, message: str) -> None:
    with pytest.raises(SourceError) as info:
        decode_ip(data)
    assert message in info.value.message


def test_factory_checksums_are_valid() -> None:
    raw = pf.tcp(A, B, payload=b"odd")
    assert checksum(raw[:20]) == 0
    pseudo = raw[12:20] + struct.pack("!BBH", 0, 6, len(raw) - 20)
    assert checksum(pseudo + raw[20:]) == 0
    assert dpkt.ip.IP(raw).data.sum == dpkt.ip.IP(bytes(dpkt.ip.IP(raw))).data.sum


# -- properties ------------------------------------------------------------------

ports = st.integers(0, 65535)
u32 = st.integers(0, 2**32 - 1)


@settings(max_examples=200, deadline=None)
@given(
    v6=st.booleans(),
    udp=st.booleans(),
    sport=ports,
    dport=ports,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 255),
    ttl=st.integers(0, 255),
    payload=st.binary(max_size=40),
)
def test_fast_path_agrees_with_general_path_and_dpkt(
    v6: bool,
    udp: bool,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    ttl: int,
    payload: bytes,
) -> None:
    src, dst = (A6, B6) if v6 else (A, B)
    if udp:
        raw = pf.udp(src, dst, sport=sport, dport=dport, payload=payload, ttl=ttl)
    else:
        raw = pf.tcp(
            src,
            dst,
            sport=sport,
            dport=dport,
            flags=flags,
            seq=seq,
            ack=ack,
            payload=payload,
            ttl=ttl,
        )
    fast = decode_ip(raw)
    assert fast == _decode(raw, quoted=False)
    oracle = (dpkt.ip6.IP6 if v6 else dpkt.ip.IP)(raw)
    l4 = oracle.data
    assert (fast.sport, fast.dport, fast.payload_len) == (l4.sport, l4.dport, len(l4.data))
    assert fast.ttl == (oracle.hlim if v6 else oracle.ttl)
    if not udp:
        assert (fast.tcp_seq, fast.tcp_ack, fast.tcp_flags) == (l4.seq, l4.ack, l4.flags)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_raise_only_source_error(data: bytes) -> None:
    with contextlib.suppress(SourceError):
        decode_ip(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            pf.tcp(A, B),
            pf.tcp(A6, B6, extensions=(0, 44)),
            pf.icmp_error(B, A, pf.tcp(A, B)),
            pf.udp(A6, B6),
        ]
    ),
    st.data(),
)
def test_mutated_packets_raise_only_source_error(base: bytes, data: st.DataObject) -> None:
    mutated = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    with contextlib.suppress(SourceError):
        decode_ip(bytes(mutated[:cut]))


def test_public_surface() -> None:
    assert {
        "decode_ip",
        "read_capture",
        "CapturedPacket",
        "ConnTracker",
        "CtState",
        "Packet",
        "ABSENT",
    } <= set(packets.__all__)
    assert all(hasattr(packets, name) for name in packets.__all__)
