"""Connection tracking as transcripts: packet, time, verdict in → ctstate out."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.packets.conntrack import (
    DEFAULT_MAX_ENTRIES,
    ConnTracker,
    CtDir,
    CtResult,
    CtState,
    TcpState,
    Timeouts,
)
from recentd.packets.decode import decode_ip
from recentd.packets.factory import PacketFactory
from recentd.packets.packet import Packet
from recentd.rules.model import CtState as RuleCtState

pf = PacketFactory()
C, S, R = "198.51.100.20", "192.0.2.1", "203.0.113.254"  # client, server, router
NEW, EST, REL, INV, UNT = (
    CtState.NEW,
    CtState.ESTABLISHED,
    CtState.RELATED,
    CtState.INVALID,
    CtState.UNTRACKED,
)
SEC = 1_000_000_000


def c2s(flags: str, seq: int, ack: int = 0, payload: bytes = b"", sport: int = 40000) -> Packet:
    return decode_ip(
        pf.tcp(C, S, sport=sport, dport=22, flags=flags, seq=seq, ack=ack, payload=payload)
    )


def s2c(flags: str, seq: int, ack: int = 0, payload: bytes = b"", dport: int = 40000) -> Packet:
    return decode_ip(
        pf.tcp(S, C, sport=22, dport=dport, flags=flags, seq=seq, ack=ack, payload=payload)
    )


@dataclass
class Script:
    """Feeds packets at times in seconds; ACCEPT commits, DROP does not."""

    ct: ConnTracker = field(default_factory=ConnTracker)
    last: CtResult | None = None

    def __call__(self, packet: Packet, at: float, verdict: str = "ACCEPT") -> CtState:
        self.last = self.ct.classify(packet, int(at * SEC))
        if verdict == "ACCEPT":
            self.ct.commit(self.last.pending)
        return self.last.state

    def run(self, transcript: list[tuple[float, Packet, CtState]]) -> None:
        for step, (at, packet, expected) in enumerate(transcript, 1):
            assert self(packet, at) == expected, f"step {step} at t={at}"


HANDSHAKE = [
    (0, c2s("S", 100), NEW),
    (0.01, s2c("SA", 5000, 101), EST),
    (0.02, c2s("A", 101, 5001), EST),
]


def test_three_way_handshake_and_close() -> None:
    script = Script()
    script.run(
        [
            *HANDSHAKE,
            (1, c2s("PA", 101, 5001, b"x" * 100), EST),
            (1.1, s2c("A", 5001, 201), EST),
            (2, c2s("FA", 201, 5001), EST),
            (2.1, s2c("FA", 5001, 202), EST),
            (2.2, c2s("A", 202, 5002), EST),
        ]
    )
    assert script.ct.state_of(c2s("A", 0), 3 * SEC) is TcpState.TIME_WAIT
    assert len(script.ct) == 1
    assert script.ct.state_of(c2s("A", 0), int(2.2 * SEC) + 120 * SEC) is None  # time_wait 120 s


def test_states_along_the_handshake() -> None:
    script = Script()
    states = []
    for at, packet, _ in HANDSHAKE:
        script(packet, at)
        states.append(script.ct.state_of(packet, int(at * SEC)))
    assert states == [TcpState.SYN_SENT, TcpState.SYN_RECV, TcpState.ESTABLISHED]
    assert script.last is not None and script.last.direction is CtDir.ORIGINAL


def test_dropped_syn_leaves_no_entry() -> None:
    script = Script()
    assert script(c2s("S", 100), 0, verdict="DROP") == NEW
    assert len(script.ct) == 0
    assert script(s2c("SA", 5000, 101), 0.01) == INV  # nothing to answer
    assert script(c2s("S", 100), 1) == NEW  # the retransmission is NEW again, and accepted
    assert len(script.ct) == 1
    assert script(s2c("SA", 5000, 101), 1.01) == EST


def test_retransmitted_syn_is_new_until_a_reply() -> None:
    Script().run([(0, c2s("S", 100), NEW), (1, c2s("S", 100), NEW), (3, c2s("S", 100), NEW)])


def test_syn_ack_with_wrong_ack_is_invalid() -> None:
    Script().run([(0, c2s("S", 100), NEW), (0.01, s2c("SA", 5000, 999), INV)])


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("F", INV),
        ("FA", INV),
        ("R", INV),
        ("RA", INV),
        ("SA", INV),
        ("", INV),
        ("SF", INV),
        ("A", NEW),
        ("PA", NEW),
    ],
)
def test_first_packet_without_entry(flags: str, expected: CtState) -> None:
    assert Script()(c2s(flags, 100, 1), 0) == expected


def test_no_pickup_without_tcp_loose() -> None:
    script = Script(ConnTracker(tcp_loose=False))
    assert script(c2s("A", 100, 1), 0) == INV
    assert script(c2s("S", 100), 0) == NEW


def test_picked_up_connection_becomes_established() -> None:
    Script().run(
        [
            (0, c2s("A", 100, 5000), NEW),
            (0.1, s2c("A", 5000, 100), EST),
            (0.2, c2s("PA", 100, 5000, b"abc"), EST),
        ]
    )


def test_ack_for_data_never_sent_is_invalid() -> None:
    script = Script()
    script.run([*HANDSHAKE, (1, s2c("A", 5001, 100_000), INV), (2, s2c("A", 5001, 101), EST)])
    liberal = Script(ConnTracker(tcp_be_liberal=True))
    liberal.run([*HANDSHAKE, (1, s2c("A", 5001, 100_000), EST)])


def test_rst_answering_syn_removes_the_entry() -> None:
    script = Script()
    script.run([(0, c2s("S", 100), NEW), (0.01, s2c("RA", 0, 101), EST)])
    assert len(script.ct) == 0
    assert script(s2c("SA", 5000, 101), 0.02) == INV


def test_rst_closes_an_established_connection() -> None:
    script = Script()
    script.run([*HANDSHAKE, (1, c2s("R", 101), EST)])
    assert script.ct.state_of(c2s("A", 0), SEC) is TcpState.CLOSE
    assert script.ct.state_of(c2s("A", 0), 12 * SEC) is None  # tcp_close: 10 s


def test_syn_after_close_reopens() -> None:
    script = Script()
    script.run(
        [
            *HANDSHAKE,
            (2, c2s("FA", 101, 5001), EST),
            (2.1, s2c("FA", 5001, 102), EST),
            (2.2, c2s("A", 102, 5002), EST),
            (3, c2s("S", 90_000), NEW),
        ]
    )
    assert script.ct.state_of(c2s("A", 0), 3 * SEC) is TcpState.SYN_SENT


def test_syn_in_established_is_ignored_but_passes() -> None:
    Script().run([*HANDSHAKE, (1, c2s("S", 777), EST), (1.1, c2s("A", 101, 5001), EST)])


def test_unanswered_syn_expires_after_syn_sent_timeout() -> None:
    script = Script()
    script.run([(0, c2s("S", 100), NEW), (119.9, s2c("SA", 5000, 101), EST)])
    late = Script()
    late.run([(0, c2s("S", 100), NEW), (120, s2c("SA", 5000, 101), INV)])
    assert len(late.ct) == 0


def test_custom_timeouts() -> None:
    script = Script(ConnTracker(timeouts=Timeouts(tcp_syn_sent=5)))
    script.run([(0, c2s("S", 100), NEW), (5, s2c("SA", 5000, 101), INV)])


# -- UDP, ICMP, generic ----------------------------------------------------------


def udp(src: str, dst: str, sport: int, dport: int) -> Packet:
    return decode_ip(pf.udp(src, dst, sport=sport, dport=dport))


def test_udp_new_then_established_and_timeouts() -> None:
    query, answer = udp(C, S, 5353, 53), udp(S, C, 53, 5353)
    script = Script()
    script.run([(0, query, NEW), (0.1, answer, EST), (0.2, query, EST)])
    assert script(query, 31) == NEW  # 30 s unreplied timeout passed (the 0.2 s packet refreshed)
    stream = Script()
    stream.run([(0, query, NEW), (1, answer, EST), (3, query, EST), (100, answer, EST)])
    # After 2 s of two-way traffic the entry is assured with the 120 s stream timeout.
    assert stream(query, 219) == EST
    assert stream(query, 400) == NEW


def test_icmp_echo_request_reply() -> None:
    req = decode_ip(pf.icmp(C, S))
    rep = decode_ip(pf.icmp(S, C, icmp_type=0))
    script = Script()
    script.run([(0, req, NEW), (0.01, rep, EST), (1, req, EST)])
    assert script(rep, 100) == INV  # icmp timeout 30 s: a lone echo reply is invalid
    assert Script()(decode_ip(pf.icmp(C, S, icmp_type=9)), 0) == INV  # router advert: no entry


def test_icmp_error_quoting_a_tracked_connection_is_related() -> None:
    syn_raw = pf.tcp(C, S, sport=40000, dport=22, flags="S", seq=100)
    script = Script()
    script(decode_ip(syn_raw), 0)
    unreachable = decode_ip(pf.icmp_error(R, C, syn_raw, icmp_type=3, code=1, quote_bytes=28))
    assert script(unreachable, 0.5) == REL
    assert script.last is not None and script.last.direction is CtDir.REPLY
    assert script.last.pending is None
    stranger = pf.tcp(C, S, sport=40001, dport=22, flags="S")
    assert script(decode_ip(pf.icmp_error(R, C, stranger)), 0.5) == INV
    # The error must go back to the quoted packet's sender.
    assert script(decode_ip(pf.icmp_error(R, S, syn_raw)), 0.5) == INV
    # Without an inner packet, an error cannot be related.
    bare = decode_ip(pf.icmp(R, C, icmp_type=3, rest=b"\0" * 4))
    assert script(bare, 0.5) == INV


def test_icmpv6_error_related_and_neighbour_discovery_untracked() -> None:
    a, b = "2001:db8::20", "2001:db8::1"
    raw = pf.udp(a, b, sport=33434, dport=33435)
    script = Script()
    assert script(decode_ip(raw), 0) == NEW
    assert script(decode_ip(pf.icmp_error("2001:db8::ff", a, raw, icmp_type=3)), 0.1) == REL
    assert script(decode_ip(pf.icmp(b, a, icmp_type=135)), 0.1) == UNT
    assert script(decode_ip(pf.icmp(a, b)), 0.2) == NEW  # echo request
    assert script(decode_ip(pf.icmp(b, a, icmp_type=129)), 0.3) == EST


def test_generic_protocol() -> None:
    gre_out = decode_ip(pf.ip(C, S, 47, b"\0" * 8))
    gre_back = decode_ip(pf.ip(S, C, 47, b"\0" * 8))
    Script().run([(0, gre_out, NEW), (1, gre_back, EST), (599, gre_out, EST), (1200, gre_out, NEW)])


def test_non_first_fragment_is_untracked() -> None:
    frag = decode_ip(pf.ip(C, S, 17, b"\0" * 16, frag_offset=10))
    script = Script()
    assert script(frag, 0) == UNT
    assert len(script.ct) == 0


# -- the table bound -------------------------------------------------------------


def test_default_bound_is_the_kernel_default() -> None:
    assert ConnTracker().max_entries == DEFAULT_MAX_ENTRIES == 262144


def test_full_table_early_drops_the_oldest_unassured_entry() -> None:
    script = Script(ConnTracker(max_entries=3))
    for port in (1, 2, 3, 4):
        assert script(c2s("S", 100, sport=port), port) == NEW
    assert len(script.ct) == 3
    # The first SYN's entry was dropped early: its SYN/ACK finds nothing.
    assert script(s2c("SA", 5000, 101, dport=1), 5) == INV
    assert script(s2c("SA", 5000, 101, dport=4), 5) == EST


def test_early_drops_skip_entries_assured_or_removed_since_they_came() -> None:
    """Early drop takes the oldest entry still unassured: not one assured by its
    handshake nor one an RST removed meanwhile, however old."""
    script = Script(ConnTracker(max_entries=4))
    for port in (1, 2, 3, 4):
        assert script(c2s("S", 100, sport=port), port) == NEW
    script(s2c("SA", 5000, 101, dport=1), 5)
    script(c2s("A", 101, 5001, sport=1), 6)  # port 1: assured
    script(s2c("R", 0, 101, dport=2), 7)  # port 2: reset, removed
    assert [conn.original[4] for conn in script.ct.unassured()] == [3, 4]
    assert script(c2s("S", 100, sport=5), 8) == NEW  # room: port 2 is gone
    assert script(c2s("S", 100, sport=6), 9) == NEW  # full: port 3, the oldest unassured, goes
    assert [conn.original[4] for conn in script.ct.unassured()] == [4, 5, 6]
    assert script(s2c("SA", 5000, 101, dport=1), 10) == EST  # the assured one stayed


def test_assured_entries_leave_no_trace_behind_in_the_early_drop_order() -> None:
    """Entries assured without any early drop do not pile up in the order early drops
    take (its stale places are compacted away)."""
    tracker = ConnTracker(max_entries=1_000_000)
    for port in range(20_000):
        syn = c2s("S", 100, sport=1024 + port % 60000)._replace(src=port + 1)
        tracker.commit(tracker.classify(syn, port).pending)
        reply = s2c("SA", 5000, 101, dport=1024 + port % 60000)._replace(dst=port + 1)
        tracker.classify(reply, port)
        ack = c2s("A", 101, 5001, sport=1024 + port % 60000)._replace(src=port + 1)
        tracker.classify(ack, port)
    assert len(tracker) == 20_000 and tracker.unassured() == []
    assert len(tracker._unassured) <= 4096 + 1


def test_full_table_of_assured_entries_drops_the_packet() -> None:
    script = Script(ConnTracker(max_entries=2))
    for port in (1, 2):
        script.run(
            [
                (0, c2s("S", 100, sport=port), NEW),
                (0.1, s2c("SA", 5000, 101, dport=port), EST),
                (0.2, c2s("A", 101, 5001, sport=port), EST),
            ]
        )
    assert script(c2s("S", 100, sport=3), 1) == INV
    assert script.last is not None and script.last.dropped
    assert len(script.ct) == 2
    # Once the assured entries have expired, a sweep makes room again.
    assert script(c2s("S", 100, sport=3), 432_001) == NEW


def test_expire_sweeps() -> None:
    script = Script()
    script(udp(C, S, 1, 2), 0)
    script(udp(C, S, 3, 4), 10)
    assert script.ct.expire(35 * SEC) == 1
    assert len(script.ct) == 1


def test_ctstate_bits_are_the_kernels() -> None:
    assert [s.value for s in (INV, EST, REL, NEW, UNT)] == [1, 2, 4, 8, 64]
    assert EST in (NEW | EST)
    assert REL not in (NEW | EST)


# -- properties ------------------------------------------------------------------

hosts = st.sampled_from([C, S, R])
flag_sets = st.sampled_from(["S", "SA", "A", "PA", "FA", "R", "RA", "F", ""])


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    src, dst = draw(hosts), draw(hosts)
    kind = draw(st.sampled_from(["tcp", "udp", "icmp", "err"]))
    if kind == "tcp":
        raw = pf.tcp(
            src,
            dst,
            sport=draw(st.sampled_from([22, 40000])),
            dport=draw(st.sampled_from([22, 40000])),
            flags=draw(flag_sets),
            seq=draw(st.sampled_from([0, 100, 101, 5000, 5001])),
            ack=draw(st.sampled_from([0, 101, 5001])),
        )
    elif kind == "udp":
        raw = pf.udp(src, dst, sport=draw(st.sampled_from([53, 5353])), dport=53)
    elif kind == "icmp":
        raw = pf.icmp(src, dst, icmp_type=draw(st.sampled_from([0, 8, 13, 9])))
    else:
        quoted = pf.tcp(dst, src, sport=40000, dport=22, flags="S", seq=100)
        raw = pf.icmp_error(src, dst, quoted)
    return decode_ip(raw)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(packets(), st.integers(0, 200), st.booleans()), max_size=40),
    st.integers(1, 4),
)
def test_random_streams_respect_the_bound_and_drops(
    stream: list[tuple[Packet, int, bool]], bound: int
) -> None:
    tracker = ConnTracker(max_entries=bound)
    never_committed = ConnTracker(max_entries=bound)
    now = 0
    for packet, step, accept in stream:
        now += step * SEC // 10
        result = tracker.classify(packet, now)
        assert result.state in (NEW, EST, REL, INV, UNT)
        assert (result.pending is not None) <= (result.state is NEW)
        if accept:
            tracker.commit(result.pending)
        assert len(tracker) <= bound
        never_committed.classify(packet, now)
        assert len(never_committed) == 0  # every packet dropped: no entry ever exists


def test_ctstate_converts_to_the_rule_engines_mask() -> None:
    for state in CtState:
        assert RuleCtState(int(state)).name == state.name


_SEGMENTS = [
    ("S", 100, 0, b""), ("S", 100, 0, b""), ("S", 5000, 0, b""), ("SA", 900, 101, b""),
    ("A", 101, 901, b""), ("PA", 101, 901, b"hello"), ("SA", 900, 101, b""), ("R", 101, 0, b""),
    ("FA", 106, 901, b""), ("S", 100, 0, b"x"),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SEGMENTS) - 1), st.booleans(), st.integers(0, 1),
                          st.sampled_from([0, 0, 1, 50, 300, 1300]), st.booleans()),
                max_size=80),
       st.booleans())
def test_remembered_repeats_change_nothing(
    stream: list[tuple[int, bool, int, int, bool]], liberal: bool
) -> None:
    """A tracker that remembers SYN repeats (ConnTracker._tcp_repeat) ends every step in
    the same state as one that runs the TCP tracker for every segment."""
    remembering, plain = ConnTracker(), ConnTracker()
    plain.remember_repeats = False
    for tracker in (remembering, plain):
        tracker.tcp_be_liberal = liberal
    now = 0
    for which, from_client, port, step, accept in stream:
        now += step * SEC // 10
        flags, seq, ack, payload = _SEGMENTS[which]
        packet = (c2s(flags, seq, ack, payload, sport=40000 + port) if from_client
                  else s2c(flags, seq, ack, payload, dport=40000 + port))
        results = []
        for tracker in (remembering, plain):
            result = tracker.classify(packet, now)
            if accept:
                tracker.commit(result.pending)
            results.append((result.state, result.direction, result.dropped,
                            result.pending is None))
        assert results[0] == results[1]
        assert _entries(remembering) == _entries(plain)


def _entries(tracker: ConnTracker) -> list[tuple[object, ...]]:
    return sorted(
        (conn.original, conn.expires_ns, conn.state, conn.win, conn.last_dir, conn.last_index,
         conn.closed, conn.liberal, conn.seen_reply, conn.assured)
        for key, conn in tracker.entries.items() if key == conn.original)


@pytest.mark.parametrize("remember", [True, False])
def test_repeated_syns_refresh_as_the_tcp_tracker_says(remember: bool) -> None:
    """A SYN retransmitted into SYN_SENT refreshes the entry's timeout each time (the
    remembered repeat, after two); a SYN into ESTABLISHED is ignored and refreshes
    nothing, even repeated at the tick the last segment set the timeout."""
    script = Script()
    script.ct.remember_repeats = remember
    conn_of = script.ct.entries.get
    script(c2s("S", 100, sport=41000), 0)
    for at in (1, 2, 3, 4):
        assert script(c2s("S", 100, sport=41000), at) is NEW
        syn_sent = conn_of((4, 6, c2s("S", 100).src, c2s("S", 100).dst, 41000, 22))
        assert syn_sent is not None and syn_sent.expires_ns == at * SEC + 120 * SEC
    script.run(HANDSHAKE)
    established = conn_of((4, 6, c2s("S", 100).src, c2s("S", 100).dst, 40000, 22))
    assert established is not None
    script(c2s("PA", 101, 5001, b"x"), 5)
    refreshed = established.expires_ns
    for at in (5, 5, 5, 9, 10):  # ignored: the timeout stays where the data put it
        script(c2s("S", 100), at)
        assert established.expires_ns == refreshed
