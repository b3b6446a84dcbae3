"""``LogReplay`` against a reference written from the contract's words, on random logs:
a ban starts at a failure that is the fifth within 600 s (inclusive) of an address not
banned at that moment, and lasts until the fifth most recent failure is 600 s (plus one
tick) old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.config import Watch
from recentd.logs import ClassicYear, RecordParser
from recentd.logs.replay import LogReplay
from recentd.rules.parser import parse_ruleset_text

RULES = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -m recent --name SSH_AUTH "
         "--rcheck --seconds 600 --hitcount 5 -j DROP\nCOMMIT\n")  # fmt: skip
START = datetime(2025, 3, 14, tzinfo=UTC)
ADDRESSES = ("203.0.113.1", "203.0.113.2", "198.51.100.9")
TICK = 0.004  # hz 250


def reference(events: list[tuple[int, str]]) -> list[tuple[str, int, float, float]]:
    """(addr, line, ts, until) per ban, from the words of the contract."""
    seen: dict[str, list[int]] = {}
    latest: dict[str, dict[str, float]] = {}  # addr → its latest ban
    bans: list[tuple[str, dict[str, float]]] = []
    for line, (offset, addr) in enumerate(events, 1):
        times = seen.setdefault(addr, [])
        times.append(offset)
        if len([t for t in times if t >= offset - 600]) < 5:
            continue
        now, until = START.timestamp() + offset, START.timestamp() + times[-5] + 600 + TICK
        held = latest.get(addr)
        if held is not None and held["until"] > now:
            held["until"] = max(held["until"], until)  # a ban in force is extended
            continue
        latest[addr] = {"line": line, "ts": now, "until": until}
        bans.append((addr, latest[addr]))
    return [(addr, int(ban["line"]), ban["ts"], ban["until"]) for addr, ban in bans]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.sampled_from(ADDRESSES)), max_size=80))
def test_bans_are_the_references(raw: list[tuple[int, str]]) -> None:
    events = sorted(raw, key=lambda pair: pair[0])
    replay = LogReplay(parse_ruleset_text(RULES, family=4).ruleset,
                       [Watch("/var/log/auth.log", failure="SSH_AUTH")],
                       RecordParser(ClassicYear(year=2025, tz=UTC)))  # fmt: skip
    for line, (offset, addr) in enumerate(events, 1):
        stamp = (START + timedelta(seconds=offset)).strftime("%b %e %H:%M:%S")
        replay.feed(f"{stamp} web1 sshd[{line}]: Failed password for root from {addr} "
                    f"port 4000 ssh2", line)  # fmt: skip
    got = [(b.addr, b.line, b.ts_ns / 10**9, b.until_ns / 10**9) for b in replay.finish()]
    want = reference(events)
    assert [g[:3] for g in got] == [w[:3] for w in want]
    assert [round(g[3], 3) for g in got] == [round(w[3], 3) for w in want]
