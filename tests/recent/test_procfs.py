"""Spec §9.15–16: /proc/net/xt_recent writes and the listing, case by case."""

from __future__ import annotations

import errno

import pytest

from recentd.errors import ProcWriteError
from recentd.recent import Command, ProcFile, RecentMatch, RecentTable, render_listing

EINVAL_WRITES = [
    b"x",
    b"clear",
    b"+1.2.3",
    b"+1.2.3.4 ",
    b"+ 1.2.3.4",
    b"+1.2.3.256",
    b"+1.2.3.4.5",
    b"+0x1.2.3.4",
    b"+fd77::zz",
    b"+",
    b"+1.2.3.9\nfd77::1",
]


@pytest.mark.parametrize("line", EINVAL_WRITES)
def test_rejected_writes_are_einval_and_change_nothing(line: bytes) -> None:
    table = RecentTable("T")
    with pytest.raises(ProcWriteError) as caught:
        ProcFile(table).write(line, now=1)
    assert caught.value.errno == errno.EINVAL
    assert len(table) == 0


@pytest.mark.parametrize(
    ("line", "returned", "listed"),
    [
        (b"+1.2.3.4", 8, ["1.2.3.4"]),
        (b"+1.2.3.5\n", 9, ["1.2.3.5"]),
        (b"+001.002.003.006", 16, ["1.2.3.6"]),
        (b"-9.9.9.9", 8, []),
        (b"/garbage", 8, []),
        (b"", 0, []),
        (b"+1.2.3.7\n" + b"#" * 64, 47, ["1.2.3.7"]),
        (b"+1.2.3.7\n+1.2.3.8\n", 18, ["1.2.3.7"]),
        (b"+fd77::1", 8, ["fd77:0000:0000:0000:0000:0000:0000:0001"]),
        (b"+::ffff:1.2.3.4\n", 16, ["0000:0000:0000:0000:0000:ffff:0102:0304"]),
    ],
)
def test_accepted_writes(line: bytes, returned: int, listed: list[str]) -> None:
    table = RecentTable("T")
    assert ProcFile(table).write(line, now=7) == returned
    assert [
        row.split()[0].removeprefix("src=") for row in render_listing(table).splitlines()
    ] == listed


def test_one_command_per_open_file() -> None:
    table = RecentTable("T")
    handle = ProcFile(table)
    assert handle.write(b"+1.2.3.4", now=1) == 8
    with pytest.raises(ProcWriteError) as caught:
        handle.write(b"+1.2.3.5", now=1)
    assert caught.value.errno == errno.ESPIPE
    assert len(table) == 1


def test_flush_does_not_move_the_offset() -> None:
    table = RecentTable("T")
    handle = ProcFile(table)
    assert handle.write(b"/", now=1) == 1
    assert handle.write(b"+1.2.3.4", now=1) == 8
    with pytest.raises(ProcWriteError) as caught:
        handle.write(b"/", now=1)
    assert caught.value.errno == errno.ESPIPE


def test_plus_on_existing_entry_stamps_it_and_keeps_ttl() -> None:
    table = RecentTable("T")
    ProcFile(table).write(b"+10.77.0.2", now=100)
    ProcFile(table).write(b"+10.77.0.2", now=105)
    assert render_listing(table) == "src=10.77.0.2 ttl: 0 last_seen: 105 oldest_pkt: 2 100, 105\n"


def test_golden_listing_lines() -> None:
    """The kernel's own lines, from spec §5.1 and §9.16."""
    table = RecentTable("T")
    set_ = RecentMatch(Command.SET, name="T")
    for now in (4294987005, 4294987018, 4294987031):
        table.evaluate(set_, 4, 0x0A4D0002, 64, now)
    table.evaluate(set_, 6, 0xFD770000000000000000000000000002, 33, 4294987040)
    assert render_listing(table) == (
        "src=10.77.0.2 ttl: 64 last_seen: 4294987031 oldest_pkt: 3 "
        "4294987005, 4294987018, 4294987031\n"
        "src=fd77:0000:0000:0000:0000:0000:0000:0002 ttl: 33 last_seen: 4294987040 "
        "oldest_pkt: 1 4294987040\n"
    )
