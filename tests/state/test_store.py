"""The state store as transcripts: changes in, restart (or reboot), the same tables out."""

from __future__ import annotations

import pytest

from recentd.errors import StateFileError
from recentd.recent import Command, RecentMatch, RecentTables
from recentd.state import StateStore
from recentd.state.framing import MAGIC, frame

from .conftest import HZ, SECOND, WALL, addr, make_tables, stamps_of, wall_at


def listing(tables, name):
    return [(e.family, e.addr, e.ttl, e.index, e.stamps) for e in tables[name]]


def fresh_store(state_dir, tables, tick=1000):
    store = StateStore(state_dir)
    store.restore(tables, tick, wall_at(tick))
    return store


def test_journal_restores_entries_in_lru_order_same_clock(state_dir):
    tables = make_tables("SSH", ring_hitcount=4)
    store = fresh_store(state_dir, tables)
    for tick, text in [(1000, "10.0.0.1"), (1010, "fd77::1"), (1020, "10.0.0.1")]:
        tables["SSH"].add(*addr(text), tick)
    store.record(tables, WALL + 20 * 10**9 // HZ, 1020)
    store.sync()
    store.close()

    again = make_tables("SSH", ring_hitcount=4)
    StateStore(state_dir).restore(again, 1020, WALL + 20 * 10**9 // HZ)

    assert listing(again, "SSH") == listing(tables, "SSH")
    assert [e.addr for e in again["SSH"]] == [addr("fd77::1")[1], addr("10.0.0.1")[1]]


def test_reboot_recomputes_stamps_as_ages_against_the_new_clock(state_dir):
    tables = make_tables("SSH")
    store = fresh_store(state_dir, tables, tick=5_000_000)
    tables["SSH"].add(*addr("10.0.0.1"), 5_000_000 - 30 * SECOND)  # seen 30 s before
    store.record(tables, WALL, 5_000_000)
    store.sync()
    store.close()

    # Reboot: the monotonic clock restarts near 0; the machine was down for 60 s.
    rebooted = make_tables("SSH")
    StateStore(state_dir).restore(rebooted, 12_345, WALL + 60 * 10**9)

    (stamp,) = stamps_of(rebooted, "SSH", "10.0.0.1")
    assert 12_345 - stamp == 90 * SECOND


def test_ages_are_rescaled_when_hz_changes(state_dir):
    tables = make_tables("SSH")
    store = fresh_store(state_dir, tables)
    tables["SSH"].add(*addr("10.0.0.1"), 1000 - 10 * SECOND)  # 10 s old at 250 Hz
    store.record(tables, wall_at(1000), 1000)
    store.close()

    at_1000hz = RecentTables(hz=1000)
    at_1000hz.acquire(RecentMatch(Command.SET, name="SSH"))
    StateStore(state_dir).restore(at_1000hz, 50_000, wall_at(1000))

    (stamp,) = stamps_of(at_1000hz, "SSH", "10.0.0.1")
    assert 50_000 - stamp == 10 * 1000


def test_deletions_flushes_and_evictions_replay(state_dir):
    tables = make_tables("SSH", "HTTP")
    store = fresh_store(state_dir, tables)
    for text in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        tables["SSH"].add(*addr(text), 1000)
        tables["HTTP"].add(*addr(text), 1000)
    store.record(tables, wall_at(1000), 1000)
    tables["SSH"].remove(*addr("2.2.2.2"))
    tables["HTTP"].flush()
    tables["HTTP"].add(*addr("9.9.9.9"), 1001)
    store.record(tables, wall_at(1001), 1001)
    store.close()

    again = make_tables("SSH", "HTTP")
    StateStore(state_dir).restore(again, 1001, wall_at(1001))

    assert listing(again, "SSH") == listing(tables, "SSH")
    assert listing(again, "HTTP") == listing(tables, "HTTP")
    assert len(again["HTTP"]) == 1


def test_compaction_keeps_state_and_removes_the_old_journal(state_dir):
    tables = make_tables("SSH")
    store = fresh_store(state_dir, tables)
    tables["SSH"].add(*addr("1.1.1.1"), 1000)
    store.record(tables, wall_at(1000), 1000)
    store.compact(tables, wall_at(1000), 1000)
    tables["SSH"].add(*addr("2.2.2.2"), 1005)
    store.record(tables, wall_at(1005), 1005)
    store.close()

    assert sorted(p.name for p in state_dir.iterdir()) == ["journal.1", "snapshot"]
    again = make_tables("SSH")
    report = StateStore(state_dir).restore(again, 1005, wall_at(1005))
    assert listing(again, "SSH") == listing(tables, "SSH")
    assert report.loaded == 2


def test_record_compacts_by_itself_past_the_size_limit(state_dir):
    tables = make_tables("SSH")
    store = StateStore(state_dir, compact_bytes=2000)
    store.restore(tables, 1000, wall_at(1000))
    for n in range(200):
        tables["SSH"].add(4, 0x0A000000 + n, 1000 + n)
        store.record(tables, wall_at(1000 + n), 1000 + n)
    store.close()

    assert store.generation > 0
    again = make_tables("SSH")
    StateStore(state_dir).restore(again, 1200, wall_at(1200))
    assert listing(again, "SSH") == listing(tables, "SSH")


def test_a_torn_last_record_is_ignored_and_cut_off(state_dir):
    tables = make_tables("SSH")
    store = fresh_store(state_dir, tables)
    tables["SSH"].add(*addr("1.1.1.1"), 1000)
    store.record(tables, wall_at(1000), 1000)
    store.close()
    journal = state_dir / "journal.0"
    good_size = journal.stat().st_size
    with journal.open("ab") as out:  # a crash half-way through the next append
        out.write(frame({"wall_ns": WALL, "tick": 1, "hz": HZ, "tables": {}})[:7])

    again = make_tables("SSH")
    store = StateStore(state_dir)
    store.restore(again, 1000, wall_at(1000))
    assert journal.stat().st_size == good_size
    again["SSH"].add(*addr("2.2.2.2"), 1001)
    store.record(again, wall_at(1001), 1001)
    store.close()

    third = make_tables("SSH")
    StateStore(state_dir).restore(third, 1001, wall_at(1001))
    assert len(third["SSH"]) == 2


def test_corruption_before_the_tail_is_an_error_not_silence(state_dir):
    tables = make_tables("SSH")
    store = fresh_store(state_dir, tables)
    for n in range(3):
        tables["SSH"].add(4, n + 1, 1000)
        store.record(tables, wall_at(1000), 1000)
    store.close()
    journal = state_dir / "journal.0"
    data = bytearray(journal.read_bytes())
    data[len(MAGIC) + 60] ^= 0xFF  # inside an early record
    journal.write_bytes(bytes(data))

    with pytest.raises(StateFileError) as caught:
        StateStore(state_dir).restore(make_tables("SSH"), 1000, wall_at(1000))
    assert caught.value.path == str(journal)
    assert "corrupt record" in str(caught.value)


def test_a_corrupt_snapshot_raises_and_keeps_the_journal(state_dir):
    tables = make_tables("SSH")
    store = fresh_store(state_dir, tables)
    tables["SSH"].add(*addr("1.1.1.1"), 1000)
    store.compact(tables, wall_at(1000), 1000)
    tables["SSH"].add(*addr("2.2.2.2"), 1000)
    store.record(tables, wall_at(1000), 1000)
    store.close()
    snapshot = state_dir / "snapshot"
    snapshot.write_bytes(snapshot.read_bytes()[:-5])
    journal_bytes = (state_dir / "journal.1").read_bytes()

    with pytest.raises(StateFileError) as caught:
        StateStore(state_dir).restore(make_tables("SSH"), 1000, wall_at(1000))

    assert caught.value.path == str(snapshot)
    assert (state_dir / "journal.1").read_bytes() == journal_bytes


def test_another_format_version_names_path_and_versions(state_dir):
    state_dir.mkdir()
    journal = state_dir / "journal.0"
    header = {"format": "recentd-state", "version": 99, "kind": "journal", "generation": 0}
    journal.write_bytes(MAGIC + frame(header))

    with pytest.raises(StateFileError) as caught:
        StateStore(state_dir).restore(make_tables("SSH"), 1000, wall_at(1000))

    error = caught.value
    assert (error.path, error.found, error.expected) == (str(journal), 99, 1)
    assert str(error) == f"{journal}: state format version 99, this recentd reads version 1"


def test_not_a_state_file(state_dir):
    state_dir.mkdir()
    (state_dir / "snapshot").write_bytes(b"hello")
    with pytest.raises(StateFileError, match="bad magic"):
        StateStore(state_dir).restore(make_tables("SSH"), 1000, wall_at(1000))


def test_a_journal_without_its_snapshot_is_refused(state_dir):
    state_dir.mkdir()
    (state_dir / "journal.3").write_bytes(MAGIC)
    with pytest.raises(StateFileError, match="snapshot that is missing"):
        StateStore(state_dir).restore(make_tables("SSH"), 1000, wall_at(1000))


def test_tables_gone_are_dropped_and_new_tables_are_written_whole(state_dir):
    tables = make_tables("SSH", "OLD")
    store = fresh_store(state_dir, tables)
    tables["OLD"].add(*addr("1.1.1.1"), 1000)
    store.record(tables, wall_at(1000), 1000)
    store.close()

    without_old = make_tables("SSH")
    report = StateStore(state_dir).restore(without_old, 1000, wall_at(1000))
    assert report.skipped_tables == {"OLD"}

    tables = make_tables("SSH")
    store = fresh_store(state_dir, tables)
    tables.acquire(RecentMatch(Command.SET, name="NEW"))
    tables["NEW"].add(*addr("5.5.5.5"), 1000)
    assert store.record(tables, wall_at(1000), 1000)
    store.close()
    again = make_tables("SSH", "NEW")
    StateStore(state_dir).restore(again, 1000, wall_at(1000))
    assert len(again["NEW"]) == 1


def test_nothing_changed_writes_nothing(state_dir):
    tables = make_tables("SSH")
    store = fresh_store(state_dir, tables)
    assert store.record(tables, wall_at(1000), 1000) is False
    store.close()
