"""The replay summary's per-source counts are bounded and say what they know: any source
that sent more than the floor is listed, a listed source's count brackets its true
count, and a source that kept ahead of the floor has its exact count (Space-Saving)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.packets.packet import Packet
from recentd.replay.summary import ReplaySummary, ReplayVerdict

CAPACITY = 8


def _summary_of(stream: list[int], capacity: int = CAPACITY) -> ReplaySummary:
    summary = ReplaySummary(capacity=capacity)
    for n, src in enumerate(stream, 1):
        summary.add(ReplayVerdict(n, n, "ACCEPT", "INPUT", Packet(4, src, 1, 64, 6, 40)))
    return summary


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=60), max_size=400))
def test_counts_bracket_the_truth_and_no_source_above_the_floor_is_left_out(
        stream: list[int]) -> None:
    summary = _summary_of(stream)
    truth = Counter(stream)
    assert summary.packets == len(stream)  # the totals are exact
    assert len(summary.sources) <= 2 * CAPACITY
    for src, count in truth.items():
        stats = summary.sources.get((4, src))
        if stats is None:
            assert count <= summary.floor
        else:
            assert stats.packets <= count <= stats.packets + stats.missed
    assert summary.floor <= len(stream) // CAPACITY  # Space-Saving's bound: N / capacity


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=100, max_value=10_000), max_size=600),
       st.integers(min_value=0, max_value=2))
def test_a_source_that_sent_more_than_its_share_from_the_start_has_its_exact_count(
        spoofed: list[int], every: int) -> None:
    """One heavy source, one packet in every ``every + 2`` from the first on, among
    spoofed ones that each send few: its count is exact, as is each spoofed source's
    while the sources fit."""
    stream: list[int] = []
    for index, src in enumerate(spoofed):
        if index % (every + 2) == 0:
            stream.append(1)
        stream.append(src)
    summary = _summary_of(stream)
    truth = Counter(stream)
    if truth[1]:
        stats = summary.sources[(4, 1)]
        assert (stats.packets, stats.missed) == (truth[1], 0)
    if len(truth) <= 2 * CAPACITY:
        assert {src: stats.packets for (_, src), stats in summary.sources.items()} == truth
        assert summary.floor == 0


def test_a_flood_of_single_packets_leaves_the_attacker_on_top() -> None:
    stream = [1000 + index for index in range(5_000)]
    stream[::50] = [7] * len(stream[::50])  # the attacker: 2% of the packets, from the first
    summary = _summary_of(stream, capacity=100)  # its share: more than 1 / 100
    (top, stats), *_ = sorted(summary.sources.items(), key=lambda item: -item[1].packets)
    assert (top, stats.packets, stats.missed) == ((4, 7), 100, 0)
    assert summary.admitted > 4_000 and len(summary.sources) <= 200


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(1, 5), st.booleans()), max_size=30), max_size=12))
def test_sources_admitted_in_bulk_are_those_admitted_one_by_one(
        batches: list[list[tuple[int, bool]]]) -> None:
    """``admit_many`` (replay's columns: a chunk's new sources at once) makes the same
    records, compactions and floor as ``admit`` source by source."""
    one, bulk = ReplaySummary(capacity=4), ReplaySummary(capacity=4)
    n = 0
    for batch in batches:
        sources, numbers, counts = [], [], []
        dropped = bool(batch) and batch[0][1]
        for count, _ in batch:
            n += 1
            sources.append((4, n))
            numbers.append(n)
            counts.append(count)
            one.admit((4, n), n, count, (n, n * 10) if dropped else None)
        bulk.admit_many(sources, numbers, counts, [n * 10 for n in numbers] if dropped else None)
        assert list(bulk.sources.items()) == list(one.sources.items())
        assert (bulk.floor, bulk.admitted) == (one.floor, one.admitted)
