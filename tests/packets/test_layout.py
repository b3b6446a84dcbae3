"""The fixed layout, one definition: its scalar and numpy forms agree with each other,
the decoder's fast path (an inline copy) takes exactly the packets it names, and the
field offsets it gives are where the decoder reads them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.packets import decode
from recentd.packets.decode import decode_ip
from recentd.packets.factory import PacketFactory
from recentd.packets.layout import FIELD_BYTES, HEAD_BYTES, MIN_BYTES, fixed_rows, is_fixed

pf = PacketFactory()
A, B = "203.0.113.7", "192.0.2.1"
SYN = pf.tcp(A, B, sport=40000, dport=22, flags="S")
UDP = pf.udp(A, B, sport=5353, dport=53, payload=b"what is the time")  # 44 bytes


def _with(packet: bytes, at: int, value: int) -> bytes:
    return packet[:at] + bytes([value]) + packet[at + 1:]


# (packet, fixed?) — why, in each case's name
CASES = {
    "tcp syn": (SYN, True),
    "udp": (UDP, True),
    "dont-fragment is no fragment bit": (_with(SYN, 6, 0x40), True),
    "more-fragments": (_with(SYN, 6, 0x20), False),
    "fragment offset": (_with(SYN, 7, 0x01), False),
    "ip options (header of 24 bytes)": (_with(SYN, 0, 0x46), False),
    "ipv6": (pf.tcp("2001:db8::7", "2001:db8::1", flags="S"), False),
    "icmp": (pf.icmp(A, B, payload=bytes(20)), False),
    "cut to 39 bytes": (SYN[:39], False),
    "total length beyond the bytes": (_with(SYN, 3, 41), False),
    "tcp data offset under 20": (_with(SYN, 32, 0x40), False),
    "tcp data offset past the total": (_with(SYN, 32, 0x60), False),
    "udp total under 28": (_with(_with(UDP, 2, 0), 3, 27), False),
}


@pytest.mark.parametrize(("packet", "fixed"), CASES.values(), ids=CASES.keys())
def test_which_packets_are_fixed(packet: bytes, fixed: bool) -> None:
    assert is_fixed(packet) == fixed
    assert _rows_form([packet]) == [fixed]


def _rows_form(packets: list[bytes]) -> list[bool]:
    rows = np.zeros((len(packets), MIN_BYTES), dtype=np.uint8)
    for index, packet in enumerate(packets):
        head = packet[:MIN_BYTES]
        rows[index, :len(head)] = np.frombuffer(head, dtype=np.uint8)
    size = np.array([len(packet) for packet in packets], dtype=np.int64)
    return [bool(value) for value in fixed_rows(rows, size)]


# packets near the layout: a valid one with a few bytes of its first 40 changed, cut short
# or lengthened
_near = st.builds(
    lambda base, changes, cut, extra: _cut(_changed(base, changes), cut) + extra,
    st.sampled_from([SYN, UDP, pf.tcp(A, B, flags="SA", payload=b"data" * 10)]),
    st.lists(st.tuples(st.integers(0, MIN_BYTES - 1), st.integers(0, 255)), max_size=3),
    st.integers(0, 8),
    st.binary(max_size=8),
)


def _changed(packet: bytes, changes: list[tuple[int, int]]) -> bytes:
    for at, value in changes:
        packet = _with(packet, at, value)
    return packet


def _cut(packet: bytes, cut: int) -> bytes:
    return packet[:len(packet) - cut]


@settings(max_examples=300, deadline=None)
@given(st.lists(_near | st.binary(min_size=0, max_size=60), min_size=1, max_size=20))
def test_the_two_forms_agree(packets: list[bytes]) -> None:
    assert _rows_form(packets) == [is_fixed(packet) for packet in packets]


class _GeneralPath(Exception):
    pass


def _general(data: object, *, quoted: bool) -> None:
    raise _GeneralPath


@settings(max_examples=300, deadline=None)
@given(_near)
def test_the_decoders_fast_path_takes_exactly_the_fixed_packets(packet: bytes) -> None:
    original = decode._decode
    decode._decode = _general  # type: ignore[assignment]
    try:
        fast = decode_ip(packet).family == 4
    except _GeneralPath:
        fast = False
    finally:
        decode._decode = original
    assert fast == is_fixed(packet)


@pytest.mark.parametrize("packet", [SYN, UDP, pf.tcp(A, B, flags="PA", seq=7, ack=9,
                                                      window=512, ttl=3, payload=b"x")])
def test_fields_lie_where_the_layout_says(packet: bytes) -> None:
    decoded = decode_ip(packet)
    for name, (first, end) in FIELD_BYTES.items():
        assert end <= HEAD_BYTES
        if name.startswith("tcp_") and decoded.proto != 6:
            continue
        assert getattr(decoded, name) == int.from_bytes(packet[first:end], "big"), name
