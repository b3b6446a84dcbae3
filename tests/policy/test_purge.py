"""Purge: per list, entries idle longer than ``purge_after`` go, on the daemon's timer."""

from __future__ import annotations

import ipaddress

from recentd.policy.purge import Purge, plan_purge
from recentd.policy.settings import ListPolicy, PolicyConfig
from recentd.recent import Command, RecentMatch, RecentTables

from .harness import PolicyHarness

HZ = 250
A, B, C = (int(ipaddress.ip_address(a)) for a in ("10.0.0.2", "10.0.0.3", "10.0.0.4"))


def test_only_entries_idle_longer_than_their_lists_limit_are_planned():
    tables = RecentTables(hz=HZ)
    for name in ("SSH", "KEEP"):
        tables.acquire(RecentMatch(Command.SET, name=name))
    tables["SSH"].add(4, A, 0)             # idle 100 s at t=100 s
    tables["SSH"].add(4, B, 0)
    tables["SSH"].add(4, B, 70 * HZ)       # refreshed: idle 30 s
    tables["KEEP"].add(4, C, 0)            # no purge_after for KEEP
    now = 100 * HZ
    assert plan_purge(tables, {"SSH": 60 * HZ}, now) == [Purge("SSH", 4, A, 100 * HZ)]
    assert plan_purge(tables, {"SSH": 100 * HZ}, now) == []  # idle exactly the limit: kept
    assert plan_purge(tables, {"NOSUCH": HZ}, now) == []


def test_the_daemon_purges_on_its_timer_and_says_so_in_the_history(tmp_path):
    policy = PolicyConfig(lists=(ListPolicy("RECIDIVE", purge_after_s=7 * 86400),))
    h = PolicyHarness(tmp_path, policy)
    old, fresh = ipaddress.ip_address("10.0.0.2"), ipaddress.ip_address("10.0.0.3")
    h.daemon.tables["RECIDIVE"].add(4, int(old), h.clock.now_ticks())
    h.step(6 * 86400)
    h.daemon.tables["RECIDIVE"].add(4, int(fresh), h.clock.now_ticks())
    h.step(86400 + 1)
    h.timer()
    assert not h.in_list("RECIDIVE", old)
    assert h.in_list("RECIDIVE", fresh)
    (event,) = h.daemon.policy.history.events(old)
    assert (event.what, event.table, event.action, event.origin, event.detail) == (
        "purge", "RECIDIVE", "-", "timer", "idle 604801 s")
