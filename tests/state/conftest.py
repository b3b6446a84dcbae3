"""Helpers for state tests: tables made as the daemon makes them (by rules)."""

from __future__ import annotations

import ipaddress

import pytest

from recentd.recent import Command, RecentMatch, RecentTables

HZ = 250
SECOND = HZ
#: Two moments a day apart on the wall clock, in ns.
WALL = 1_800_000_000 * 10**9


def wall_at(tick: int) -> int:
    """The wall clock that goes with ``tick`` when nothing reboots (they advance together)."""
    return WALL + tick * 10**9 // HZ


def make_tables(*names: str, ring_hitcount: int = 0) -> RecentTables:
    tables = RecentTables(hz=HZ)
    for name in names:
        tables.acquire(RecentMatch(Command.SET, name=name, hitcount=ring_hitcount))
    return tables


def addr(text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(text)
    return ip.version, int(ip)


def stamps_of(tables: RecentTables, name: str, text: str) -> tuple[int, ...]:
    entry = tables[name].get(*addr(text))
    assert entry is not None, f"{text} missing from {name}"
    return entry.stamps


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"
