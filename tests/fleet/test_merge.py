"""The fleet's rules as transcripts: events from peers in, what this host does out."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from recentd.fleet.events import FleetEvent, Op
from recentd.fleet.merge import Caps, Merge

NET = ipaddress.ip_network("192.0.2.7/32")


def ban(host: str, at: int, until: int, net: str = "192.0.2.7/32", lst: str = "SSH") -> FleetEvent:
    return FleetEvent.of(ipaddress.ip_network(net), op=Op.BAN, list_name=lst, at_ms=at,
                         until_ms=until, host=host, reason="r", eid=f"{host}:{at}")


def unban(host: str, at: int) -> FleetEvent:
    return FleetEvent.of(NET, op=Op.UNBAN, list_name="SSH", at_ms=at, until_ms=0, host=host,
                         reason="operator", eid=f"{host}:{at}")


def transcript(merge: Merge, events: list[FleetEvent], now: int = 100) -> list[str]:
    out = []
    for event in events:
        d = merge.receive(event, now)
        out.append(f"{d.outcome.value} {d.until_ms or ''} {d.why}".replace("  ", " ").strip())
    return out


def test_latest_expiry_wins() -> None:
    merge = Merge("me", ["SSH"], Caps())
    assert transcript(merge, [ban("a", 10, 5000), ban("b", 20, 3000), ban("c", 30, 9000),
                              ban("a", 10, 5000)]) == [
        "adopt 5000 r", "ignored already held to a later expiry", "adopt 9000 r",
        "ignored repeat"]


def test_an_unban_removes_older_bans_and_a_ban_older_than_an_unban_is_ignored() -> None:
    merge = Merge("me", ["SSH"], Caps())
    assert transcript(merge, [ban("a", 10, 5000), unban("b", 50), ban("c", 40, 9000),
                              ban("c", 60, 9000)]) == [
        "adopt 5000 r", "lift unban by b", "ignored lifted by a later unban", "adopt 9000 r"]


def test_own_events_other_lists_expired_and_protected_are_not_adopted() -> None:
    merge = Merge("me", ["SSH"], Caps(), [ipaddress.ip_network("192.0.2.0/24")])
    assert transcript(merge, [ban("me", 10, 5000), ban("a", 10, 5000, lst="WEB"),
                              ban("a", 10, 50, net="10.0.0.1/32"), ban("a", 10, 5000)]) == [
        "ignored own event", "ignored list WEB not shared", "ignored expired",
        "refused protected network 192.0.2.0/24"]  # fmt: skip


def test_per_origin_caps_rate_duration_count() -> None:
    merge = Merge("me", ["SSH"], Caps(rate_per_min=2, max_duration_s=60, max_count=10))
    events = [ban("a", 10, 10**9, net=f"10.0.0.{i}/32") for i in range(3)]
    assert transcript(merge, [*events, ban("b", 10, 10**9)]) == [
        "adopt 60100 r", "adopt 60100 r", "refused rate cap: a sent 2 bans in the last minute",
        "adopt 60100 r"]  # fmt: skip
    assert transcript(merge, [ban("a", 10, 10**9, net="10.0.0.2/32")], now=60_200) == [
        "adopt 120200 r"]  # a minute later the rate allows it again
    merge = Merge("me", ["SSH"], Caps(max_count=2))
    events = [ban("a", 10, 5000, net=f"10.0.0.{i}/32") for i in range(3)]
    assert transcript(merge, events)[2] == "refused count cap: a holds 2 bans in force"
    assert transcript(merge, [ban("a", 10, 9000, net="10.0.0.9/32")], now=6000) == [
        "adopt 9000 r"]  # the first two ended: room again


def test_quorum_waits_for_k_distinct_hosts() -> None:
    merge = Merge("me", ["SSH"], Caps(quorum=2))
    assert transcript(merge, [ban("a", 10, 5000), ban("a", 20, 6000), ban("b", 30, 4000)]) == [
        "pending 1 of 2 hosts", "pending 1 of 2 hosts", "adopt 6000 r"]


def test_a_repeat_costs_nothing_against_the_caps() -> None:
    merge = Merge("me", ["SSH"], Caps(rate_per_min=1))
    assert transcript(merge, [ban("a", 10, 5000), ban("a", 10, 5000)]) == [
        "adopt 5000 r", "ignored repeat"]


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans(), st.integers(1, 100),
                          st.integers(101, 10_000)), max_size=30))  # fmt: skip
def test_the_held_expiry_never_shrinks_while_no_unban_comes(
    events: list[tuple[str, bool, int, int]]
) -> None:
    merge = Merge("me", ["SSH"], Caps())
    held = 0
    for host, is_ban, at, until in events:
        event = ban(host, at, until) if is_ban else unban(host, at)
        decision = merge.receive(event, 50)
        if decision.outcome.value == "lift":
            held = 0
        elif decision.outcome.value == "adopt":
            assert decision.until_ms > held
            held = decision.until_ms


def test_expire_forgets_ended_bans_and_old_unbans() -> None:
    merge = Merge("me", ["SSH"], Caps(max_duration_s=10))
    assert transcript(merge, [ban("a", 10, 5000), ban("b", 10, 9000, net="10.0.0.1/32"),
                              unban("c", 50)]) == [
        "adopt 5000 r", "adopt 9000 r", "lift unban by c"]  # fmt: skip
    merge.expire(6000)
    assert [(ipaddress.ip_address(first), length) for _list, _family, first, length
            in merge.held] == [(ipaddress.ip_address("10.0.0.1"), 32)]
    assert list(merge.lifted.values()) == [50]  # a ban decided before it may still come
    merge.expire(20_000)  # no ban may last past 10 s: nothing older can come any more
    assert (merge.held, merge.lifted) == ({}, {})


_EVENTS = st.lists(st.builds(
    lambda op, host, lst, last, at, length: (
        ban(host, at, at + length, net=f"10.0.0.{last}/32", lst=lst) if op
        else FleetEvent.of(ipaddress.ip_network(f"10.0.0.{last}/32"), op=Op.UNBAN,
                           list_name=lst, at_ms=at, until_ms=0, host=host, reason="operator",
                           eid=f"{host}:{at}")),
    st.booleans(), st.sampled_from(["me", "a", "b"]), st.sampled_from(["SSH", "WEB"]),
    st.integers(1, 4), st.integers(0, 200), st.integers(1, 300)), max_size=40)  # fmt: skip


@given(_EVENTS, st.sampled_from([Caps(), Caps(rate_per_min=3, max_duration_s=1, max_count=2)]))
def test_a_reply_received_at_once_is_decided_as_event_by_event(
    events: list[FleetEvent], caps: Caps
) -> None:
    """receive_many's short path for the usual ban decides as receive does, in order."""
    one_by_one, at_once = Merge("me", ["SSH"], caps), Merge("me", ["SSH"], caps)
    assert at_once.receive_many(events, 100) == [one_by_one.receive(e, 100) for e in events]
    assert (at_once.held, at_once.lifted) == (one_by_one.held, one_by_one.lifted)
