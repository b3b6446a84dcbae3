"""Connection tracking after the split and speed-up: ICMP echo identifiers, the
re-exported names, lazily built entries, and the table's housekeeping."""

from __future__ import annotations

import pytest

from recentd.packets import conntrack
from recentd.packets.conntrack import ConnTracker, CtDir, CtState, TcpState, Timeouts
from recentd.packets.decode import decode_ip
from recentd.packets.factory import PacketFactory
from recentd.packets.packet import ABSENT, Packet

pf = PacketFactory()
C, S = "198.51.100.20", "192.0.2.1"
SEC = 1_000_000_000
NEW, EST, INV = CtState.NEW, CtState.ESTABLISHED, CtState.INVALID


def feed(ct: ConnTracker, packet: Packet, at: float, accept: bool = True) -> CtState:
    result = ct.classify(packet, int(at * SEC))
    if accept:
        ct.commit(result.pending)
    return result.state


@pytest.mark.parametrize(("a", "b"), [(C, S), ("2001:db8::20", "2001:db8::1")])
def test_concurrent_pings_are_separate_connections(a: str, b: str) -> None:
    v6 = ":" in a
    request, reply = (128, 129) if v6 else (8, 0)

    def ping(src: str, dst: str, kind: int, echo_id: int) -> Packet:
        return decode_ip(pf.icmp(src, dst, icmp_type=kind, echo_id=echo_id))

    ct = ConnTracker()
    assert feed(ct, ping(a, b, request, 1), 0) == NEW
    assert feed(ct, ping(a, b, request, 2), 0.1) == NEW  # another ping process: its own entry
    assert len(ct) == 2
    assert feed(ct, ping(b, a, reply, 2), 0.2) == EST
    assert feed(ct, ping(a, b, request, 1), 0.3) == NEW  # id 1 still has no reply
    assert feed(ct, ping(b, a, reply, 3), 0.4) == INV  # a reply nobody asked for
    assert feed(ct, ping(b, a, reply, 1), 0.5) == EST


def test_icmp_error_quoting_a_ping_is_related_to_its_entry() -> None:
    request = pf.icmp(C, S, echo_id=7)
    ct = ConnTracker()
    feed(ct, decode_ip(request), 0)
    error = ct.classify(decode_ip(pf.icmp_error("203.0.113.254", C, request, icmp_type=11)), SEC)
    assert (error.state, error.direction) == (CtState.RELATED, CtDir.REPLY)
    other = pf.icmp(C, S, echo_id=8)
    unrelated = decode_ip(pf.icmp_error("203.0.113.254", C, other, icmp_type=11))
    assert ct.classify(unrelated, SEC).state is INV


def test_every_public_name_of_the_unsplit_module_is_still_there() -> None:
    for name in ("DEFAULT_MAX_ENTRIES", "ConnTracker", "CtDir", "CtResult", "CtState",
                 "Pending", "TcpState", "Timeouts", "TCP_TRANSITIONS", "TCP_VALID_FLAGS",
                 "ICMP_REQUESTS", "ICMP_ERRORS", "ICMPV6_UNTRACKED", "Key"):
        assert hasattr(conntrack, name), name
    assert set(conntrack.__all__) <= set(dir(conntrack))


def test_results_carry_the_public_enum_members() -> None:
    ct = ConnTracker()
    syn = decode_ip(pf.tcp(C, S, flags="S", seq=100))
    first = ct.classify(syn, 0)
    assert first.state is CtState.NEW and first.direction is CtDir.ORIGINAL
    ct.commit(first.pending)
    answer = ct.classify(decode_ip(pf.tcp(S, C, sport=22, dport=40000, flags="SA", seq=9,
                                          ack=101)), 1)
    assert answer.state is CtState.ESTABLISHED and answer.direction is CtDir.REPLY
    assert answer.pending is None and not answer.dropped


def test_a_pending_entry_is_built_once_and_committed_once() -> None:
    ct = ConnTracker()
    pending = ct.classify(decode_ip(pf.udp(C, S, sport=5353, dport=53)), 0).pending
    assert pending is not None and "Pending" in repr(pending)
    ct.commit(pending)
    ct.commit(pending)  # the entry exists: the second commit changes nothing
    assert len(ct) == 1


def test_dropped_syns_build_nothing() -> None:
    ct = ConnTracker(max_entries=2)
    for port in range(1, 100):
        assert feed(ct, decode_ip(pf.tcp(C, S, sport=port, flags="S")), port, accept=False) == NEW
    assert len(ct) == 0 and not ct._table


def test_expire_also_sweeps_a_connection_whose_tuples_are_equal() -> None:
    # A host talking to itself from and to the same port: both tuples are one key.
    loop = decode_ip(pf.udp(C, C, sport=9, dport=9))
    ct = ConnTracker()
    assert feed(ct, loop, 0) == NEW
    assert feed(ct, loop, 1) == EST  # its own reply
    assert ct.expire(200 * SEC) == 1
    assert len(ct) == 0


def test_replaced_timeouts_apply_to_later_packets() -> None:
    ct = ConnTracker()
    ct.timeouts = Timeouts(udp=1)
    query = decode_ip(pf.udp(C, S, sport=5353, dport=53))
    assert feed(ct, query, 0) == NEW
    assert feed(ct, query, 1.5) == NEW  # expired after 1 s, not 30
    assert ct.timeouts.udp == 1


def test_state_of_is_none_for_non_tcp_entries() -> None:
    ct = ConnTracker()
    query = decode_ip(pf.udp(C, S, sport=5353, dport=53))
    feed(ct, query, 0)
    assert ct.state_of(query, 0) is None
    syn = decode_ip(pf.tcp(C, S, flags="S"))
    feed(ct, syn, 0)
    assert ct.state_of(syn, 0) is TcpState.SYN_SENT


def test_decoded_packets_carry_the_echo_identifier_only_for_echo() -> None:
    assert decode_ip(pf.icmp(C, S, echo_id=0x1234)).icmp_id == 0x1234
    assert decode_ip(pf.icmp(C, S, icmp_type=0, echo_id=9)).icmp_id == 9
    assert decode_ip(pf.icmp("2001:db8::1", "2001:db8::2", echo_id=77)).icmp_id == 77
    assert decode_ip(pf.icmp("2001:db8::1", "2001:db8::2", icmp_type=129, echo_id=5)).icmp_id == 5
    assert decode_ip(pf.icmp(C, S, icmp_type=13, echo_id=9)).icmp_id == ABSENT  # timestamp
    assert decode_ip(pf.tcp(C, S)).icmp_id == ABSENT
    assert decode_ip(pf.udp("2001:db8::1", "2001:db8::2")).icmp_id == ABSENT
    assert Packet(family=4, src=1, dst=2, ttl=64, proto=1, length=28).icmp_id == ABSENT
    assert Packet._fields[-1] == "icmp_id"
