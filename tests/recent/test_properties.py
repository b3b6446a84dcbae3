"""Invariants of the core, under random rules, addresses and times (hypothesis)."""

from __future__ import annotations

import contextlib
import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.errors import ProcWriteError, RecentOptionError
from recentd.recent import (
    Command,
    ModuleParams,
    ProcFile,
    RecentMatch,
    RecentOption,
    RecentTable,
    RecentTables,
    parse_recent,
    render_listing,
)

commands = st.sampled_from(list(Command))
rules = st.builds(
    lambda command, seconds, hitcount, rttl, reap, invert: RecentMatch(
        command,
        name="T",
        seconds=0 if command in (Command.SET, Command.REMOVE) else seconds,
        hitcount=0 if command in (Command.SET, Command.REMOVE) else hitcount,
        rttl=rttl and command in (Command.CHECK, Command.UPDATE),
        reap=reap and seconds > 0 and command in (Command.CHECK, Command.UPDATE),
        invert=invert,
    ),
    commands,
    st.integers(0, 5),
    st.integers(0, 6),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
# (rule index, address, ttl, time step in ticks)
events = st.lists(
    st.tuples(
        st.integers(0, 7), st.integers(0, 15), st.sampled_from([0, 63, 64]), st.integers(0, 600)
    ),
    max_size=60,
)


def _run(rule_list: list[RecentMatch], evs: list[tuple[int, int, int, int]], origin: int, tot: int):
    tables = RecentTables(ModuleParams(ip_list_tot=tot))
    for rule in rule_list:
        tables.acquire(rule)
    table = tables["T"]
    now = origin
    results = []
    for index, address, ttl, step in evs:
        now += step
        rule = rule_list[index % len(rule_list)]
        results.append(table.evaluate(rule, 4, 0x0A000000 | address, ttl, now))
        assert len(table) <= tot
        for entry in table:
            assert 1 <= len(entry.stamps) <= table.ring
    return results, table


@settings(max_examples=200, deadline=None)
@given(st.lists(rules, min_size=1, max_size=8), events, st.integers(1, 12))
def test_table_never_exceeds_ip_list_tot(rule_list, evs, tot) -> None:
    _run(rule_list, evs, 0, tot)


@settings(max_examples=200, deadline=None)
@given(st.lists(rules, min_size=1, max_size=8), events, st.integers(-(2**40), 2**40))
def test_decisions_are_invariant_under_a_clock_offset(rule_list, evs, offset) -> None:
    reference, _ = _run(rule_list, evs, 0, 8)
    shifted, _ = _run(rule_list, evs, 2**32 - 300 * 250 + offset, 8)
    assert shifted == reference


@settings(max_examples=200, deadline=None)
@given(
    st.lists(rules, min_size=1, max_size=8),
    events,
    st.integers(0, 5),
    st.integers(0, 6),
    st.integers(0, 15),
)
def test_rcheck_never_mutates_and_update_decides_like_rcheck(
    rule_list, evs, seconds, hitcount, address
) -> None:
    _, table = _run(rule_list, evs, 1000, 8)
    now = 1000 + sum(step for *_, step in evs) + 1
    rcheck = RecentMatch(Command.CHECK, name="T", seconds=seconds, hitcount=hitcount)
    before = render_listing(table), [e.addr for e in table]
    checked = table.evaluate(rcheck, 4, 0x0A000000 | address, 64, now)
    assert (render_listing(table), [e.addr for e in table]) == before
    update = RecentMatch(Command.UPDATE, name="T", seconds=seconds, hitcount=hitcount)
    assert table.evaluate(update, 4, 0x0A000000 | address, 64, now) == checked


@given(st.integers(2, 65535), st.integers(0, 2**64), st.integers(0, 10**6))
def test_a_fresh_entry_never_satisfies_two_hits(hitcount, origin, later) -> None:
    table = RecentTable("T", ring=32)
    table.evaluate(RecentMatch(Command.SET, name="T"), 4, 1, 64, origin)
    for seconds in (0, 1, 60, 2**32 - 1):
        check = RecentMatch(Command.CHECK, name="T", seconds=seconds, hitcount=hitcount)
        assert not table.evaluate(check, 4, 1, 64, origin + later)


@settings(max_examples=100, deadline=None)
@given(st.lists(rules, min_size=1, max_size=8), events)
def test_restoring_views_gives_the_same_answers(rule_list, evs) -> None:
    _, table = _run(rule_list, evs, 0, 8)
    clone = RecentTable("T", ring=table.ring, params=table.params)
    for view in table:
        clone.load(view)
    assert render_listing(clone) == render_listing(table)
    original = copy.deepcopy(table)
    now = sum(step for *_, step in evs) + 5
    for index, address, ttl, _ in evs:
        rule = rule_list[index % len(rule_list)]
        assert clone.evaluate(rule, 4, 0x0A000000 | address, ttl, now) == original.evaluate(
            rule, 4, 0x0A000000 | address, ttl, now
        )


option_names = st.sampled_from(
    [
        "--set",
        "--rcheck",
        "--update",
        "--remove",
        "--seconds",
        "--reap",
        "--hitcount",
        "--rttl",
        "--name",
        "--rsource",
        "--rdest",
        "--mask",
        "--bogus",
        "-s",
    ]
)
option_values = st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 2**33).map(str))


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.builds(RecentOption, option_names, option_values, st.booleans()), max_size=8),
    st.sampled_from([4, 6]),
)
def test_option_parsing_raises_only_typed_errors(options, family) -> None:
    with contextlib.suppress(RecentOptionError):
        parse_recent(options, family)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=80), st.from_regex(rb"\A[+\-/][0-9a-fA-F:.\n ]{0,50}\Z")))
def test_proc_writes_raise_only_typed_errors(data) -> None:
    table = RecentTable("T")
    try:
        written = ProcFile(table).write(data, now=1)
    except ProcWriteError:
        assert len(table) == 0
    else:
        assert written == min(len(data), 47)
