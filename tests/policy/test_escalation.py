"""Escalation: a ban is evidence (``on_ban_of``) feeding a recidive list the rules read,
and a multiplier-and-cap for the kernel ban — both remembered across a restart."""

from __future__ import annotations

import ipaddress

from recentd.observation import Evidence
from recentd.policy.settings import ListPolicy, PolicyConfig

from .harness import PolicyHarness

A = ipaddress.ip_address("10.0.0.2")
POLICY = PolicyConfig(lists=(
    ListPolicy("SSH", ban_multiplier=2, ban_max_s=200),
    ListPolicy("RECIDIVE", on_ban_of=("SSH",)),
))  # fmt: skip


def offend(h: PolicyHarness) -> None:
    for _ in range(4):
        h.line(Evidence.AUTH_FAILURE, A)


def recidive_hits(h: PolicyHarness) -> int:
    entry = h.daemon.tables["RECIDIVE"].get(4, int(A))
    return 0 if entry is None else len(entry.stamps)


def test_repeat_offenders_are_banned_longer_and_then_by_the_recidive_rule(tmp_path):
    state = tmp_path / "state"
    h = PolicyHarness(tmp_path, POLICY, state_dir=state)
    offend(h)
    h.step(61)
    h.timer()
    offend(h)
    assert h.transcript == [
        "ban 10.0.0.2 60 s (observation file /var/log/auth.log (line 4))",
        "ban 10.0.0.2 120 s (observation file /var/log/auth.log (line 8))",  # x2
    ]
    assert recidive_hits(h) == 2
    h.step(121)
    h.timer()
    h.stop()  # state saved: tables (RECIDIVE) and history (2 bans)

    h2 = PolicyHarness(tmp_path, POLICY, state_dir=state, clock=h.clock)
    assert h2.daemon.policy.history.bans(A) == 2
    assert recidive_hits(h2) == 2
    offend(h2)
    assert h2.transcript == [
        "ban 10.0.0.2 200 s (observation file /var/log/auth.log (line 4))",  # x4, capped
    ]
    assert recidive_hits(h2) == 3
    h2.step(201)
    h2.timer()
    assert h2.kernel() == []
    h2.packet(A)  # SSH's window is over; RECIDIVE has 3 bans in a day: the rule drops
    assert h2.transcript[-1] == "10.0.0.2 DROP"
    h2.stop()


def test_a_re_timed_ban_keeps_its_length_and_is_not_counted_again(tmp_path):
    h = PolicyHarness(tmp_path, POLICY)
    offend(h)
    h.step(61)
    h.timer()
    offend(h)  # the second ban: 120 s
    h.step(10)
    offend(h)  # four more stamps move the rule's own expiry: re-timed, still the 2nd ban
    assert h.transcript[-1] == "ban 10.0.0.2 120 s (observation file /var/log/auth.log (line 12))"
    assert h.daemon.policy.history.bans(A) == 2
    h.timer()  # the stale check compares the rule's own expiry: the ban stays
    assert h.kernel() == [A]


def test_a_fresh_ban_from_a_list_that_asks_for_it_cuts_the_sources_connections(tmp_path):
    h = PolicyHarness(tmp_path, PolicyConfig(lists=(ListPolicy("SSH", cut_connections=True),)))
    offend(h)
    h.line(Evidence.AUTH_FAILURE, A)  # a re-timing is not a fresh ban: no second cut
    assert h.cut == [A]
    (tmp_path / "quiet").mkdir()
    quiet = PolicyHarness(tmp_path / "quiet")
    offend(quiet)
    assert quiet.kernel() == [A]
    assert quiet.cut == []  # off by default
