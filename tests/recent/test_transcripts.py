"""Spec §9, items 1–13 and 18: events in, decisions and table state out.

Every transcript runs under four clock origins (see conftest), which is item 14:
the results must not depend on where the clock starts or whether it crosses
2**31 or 2**32.
"""

from __future__ import annotations

from recentd.recent import ModuleParams, Quirks

from .script import HZ, Net, match

A = "10.77.0.2"


def test_1_classic_ssh_pair(origin: int) -> None:
    net = Net(origin)
    r1 = net.rule("--set --name SSH")
    r2 = net.rule("--update --seconds 60 --hitcount 4 --name SSH")
    seen = []
    for ms in range(6):
        seen.append([*net.at(ms // 4).send(A, r1, r2), net.nstamps("SSH", A)])
    assert seen == [
        [True, False, 1],
        [True, False, 2],
        [True, False, 3],
        [True, True, 5],
        [True, True, 7],
        [True, True, 9],
    ]


def test_2_exact_hitcount(origin: int) -> None:
    net = Net(origin)
    net.rule("--set --name T")
    for t in (0, 0, 0, 361):
        net.at(t).proc("T", f"+{A}".encode())
    checks = {
        "--rcheck --seconds 1 --hitcount 2": False,
        "--rcheck --seconds 1 --hitcount 1": True,
        "--rcheck --hitcount 4": True,
        "--rcheck --hitcount 5": False,
        "--rcheck --seconds 2 --hitcount 4": True,
    }
    rules = {text: net.rule(f"{text} --name T") for text in checks}
    net.at(362)
    assert {text: net.send(A, rule)[0] for text, rule in rules.items()} == checks


def test_3_seconds_boundary_is_inclusive(origin: int) -> None:
    net = Net(origin)
    net.rule("--set --name T")
    check = net.rule("--rcheck --seconds 1 --name T")
    net.at(0).proc("T", f"+{A}".encode())
    assert net.at(HZ).send(A, check) == [True]
    assert net.at(HZ + 1).send(A, check) == [False]


def test_4_seconds_times_hz_does_not_wrap(origin: int) -> None:
    """The kernel computes seconds*HZ in 32 bits: 17179870 s becomes 204 ticks.
    recentd does not (docs/deviations.md); Quirks.kernel() reproduces it."""
    for quirks, expected in ((None, [True, True, True]), (Quirks.kernel(), [True, False, True])):
        net = Net(origin, quirks=quirks)
        net.rule("--set --name T")
        rules = [
            net.rule(f"--rcheck --seconds {s} --name T") for s in (17179869, 17179870, 17179871)
        ]
        net.at(0).proc("T", f"+{A}".encode())
        assert net.at(300).send(A, *rules) == expected


def test_5_ring_wraps_at_32(origin: int) -> None:
    net = Net(origin)
    r = net.rule("--set --name T")
    for t in range(33):
        net.at(t).send(A, r)
    entry = net.tables["T"].get(4, 0x0A4D0002)
    assert entry is not None
    assert (len(entry.stamps), entry.index) == (32, 1)
    assert entry.last_seen == entry.stamps[0] == origin + 32
    full = net.rule("--rcheck --hitcount 32 --name T")
    assert net.send(A, full) == [True]


def test_6_ring_sizing(origin: int) -> None:
    net = Net(origin)
    net.rule("--update --hitcount 3 --name T")
    assert net.tables["T"].ring == 4
    for t in range(1, 7):
        net.at(t).proc("T", f"+{A}".encode())
    listing = net.listing("T")
    s = [origin + t for t in range(1, 7)]
    assert listing.endswith(f"oldest_pkt: 2 {s[4]}, {s[5]}, {s[2]}, {s[3]}\n")
    net.rule("--rcheck --hitcount 2 --name T")
    assert (net.tables["T"].ring, len(net.tables["T"])) == (4, 1)
    net.rule("--set --name T")
    assert (net.tables["T"].ring, len(net.tables["T"])) == (32, 0)
    net.rule("--rcheck --hitcount 1 --name ONE")
    net.rule("--rcheck --hitcount 5 --name FIVE")
    assert (net.tables["ONE"].ring, net.tables["FIVE"].ring) == (1, 8)


def test_7_ring_of_65536_counts_every_slot(origin: int) -> None:
    """The kernel's u16 index wraps to 0 and never counts slot 65535 (oldest_pkt: 0,
    65535 stamps listed). recentd counts all 65536 (docs/deviations.md)."""
    net = Net(origin)
    net.rule("--rcheck --hitcount 65535 --name BIG")
    table = net.tables["BIG"]
    assert table.ring == 65536
    net.at(0).proc("BIG", f"+{A}".encode())
    key = table.key(4, 0x0A4D0002)
    for t in range(1, 65535):  # the core's own stamping path, without 65k ProcFile objects
        table.add(4, 0x0A4D0002, origin + t)
    entry = table.get(4, 0x0A4D0002)
    assert entry is not None and (entry.index, len(entry.stamps)) == (65535, 65535)
    table.add(4, 0x0A4D0002, origin + 65535)
    entry = table.get(4, 0x0A4D0002)
    assert entry is not None and (entry.index, len(entry.stamps)) == (65536, 65536)
    assert entry.last_seen == origin + 65535
    table.add(4, 0x0A4D0002, origin + 65536)
    entry = table.get(4, 0x0A4D0002)
    assert entry is not None and (entry.index, len(entry.stamps)) == (1, 65536)
    assert entry.last_seen == origin + 65536 and key == 0x0A4D0002


def _fill_100(net: Net) -> None:
    for t, host in enumerate(["10.0.0.1"] + [f"10.1.0.{i}" for i in range(1, 100)]):
        net.at(t).proc("T", f"+{host}".encode())


def test_8_eviction_follows_refresh_order(origin: int) -> None:
    net = Net(origin)
    net.rule("--set --name T")
    check = net.rule("--rcheck --name T")
    _fill_100(net)
    assert net.at(200).send("10.0.0.1", check) == [True]  # rcheck refreshes nothing
    net.at(201).proc("T", b"+10.1.0.1")  # +B1 refreshes B1
    net.at(202).proc("T", b"+10.9.0.1")  # N1 evicts A, the LRU head
    assert "10.0.0.1" not in net.listed("T")
    net.at(203).proc("T", b"+10.9.0.2")  # N2 evicts B2, not the refreshed B1
    listed = net.listed("T")
    assert "10.1.0.2" not in listed and "10.1.0.1" in listed and len(listed) == 100


def test_8_variant_matching_update_protects(origin: int) -> None:
    net = Net(origin)
    net.rule("--set --name T")
    update = net.rule("--update --name T")
    _fill_100(net)
    assert net.at(200).send("10.0.0.1", update) == [True]
    net.at(201).proc("T", b"+10.9.0.1")
    listed = net.listed("T")
    assert "10.0.0.1" in listed and "10.1.0.1" not in listed


def test_9_rttl(origin: int) -> None:
    net = Net(origin)
    set_ = net.rule("--set --name T")
    rttl = net.rule("--rcheck --rttl --name T")
    plain = net.rule("--rcheck --name T")
    update = net.rule("--update --name T")
    net.at(0).send(A, set_, ttl=64)
    assert net.at(1).send(A, rttl, ttl=63) == [False]
    assert net.send(A, rttl, ttl=64) == [True]
    assert net.send(A, plain, ttl=63) == [True]
    assert net.tables["T"].get(4, 0x0A4D0002).ttl == 64  # type: ignore[union-attr]
    net.proc("T", b"+10.77.0.9")
    assert net.send("10.77.0.9", rttl, ttl=17) == [True]
    assert net.tables["T"].get(4, 0x0A4D0009).ttl == 0  # type: ignore[union-attr]
    assert net.send(A, update, ttl=99) == [True]
    assert net.tables["T"].get(4, 0x0A4D0002).ttl == 99  # type: ignore[union-attr]


def test_10_table_mask_groups_addresses(origin: int) -> None:
    net = Net(origin)
    set24 = net.rule("--set --name T --mask 255.255.255.0")
    set32 = net.rule("--set --name T --mask 255.255.255.255")
    net.at(0).send("10.77.0.2", set24)
    net.at(1).send("10.77.0.3", set32)  # the table's mask (first creator's) wins
    assert net.listed("T") == ["10.77.0.0"] and net.nstamps("T", "10.77.0.0") == 2
    # recentd masks /proc additions too, so they group like packets (docs/deviations.md)
    net.proc("T", b"+10.77.0.3")
    assert net.listed("T") == ["10.77.0.0"] and net.nstamps("T", "10.77.0.0") == 3
    net.proc("T", b"-10.77.0.0")
    assert net.listed("T") == []


def test_10_kernel_quirk_stores_proc_additions_literally(origin: int) -> None:
    net = Net(origin, quirks=Quirks.kernel())
    set24 = net.rule("--set --name T --mask 255.255.255.0")
    net.at(0).send("10.77.0.2", set24)
    net.proc("T", b"+10.77.0.3")
    assert net.listed("T") == ["10.77.0.0", "10.77.0.3"]


def test_11_reap_one_stale_head_per_packet(origin: int) -> None:
    net = Net(origin)
    net.rule("--set --name T")
    reap = net.rule("--rcheck --seconds 1 --reap --name T")
    for t, host in enumerate(["10.0.0.1", "10.0.0.2", "10.0.0.3"]):
        net.at(t).proc("T", f"+{host}".encode())
    net.at(1000).proc("T", f"+{A}".encode())
    assert net.send("10.99.0.1", reap) == [False]  # unlisted source: no reap
    assert len(net.listed("T")) == 4
    removed = []
    for _ in range(3):
        before = set(net.listed("T"))
        assert net.send(A, reap) == [True]
        removed += sorted(before - set(net.listed("T")))
    assert removed == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    net.send(A, reap)
    assert net.listed("T") == [A]  # A is the head and fresh: nothing removed


def test_11_reap_removes_its_own_stale_entry_on_rcheck(origin: int) -> None:
    net = Net(origin)
    net.rule("--set --name T")
    reap = net.rule("--rcheck --seconds 1 --reap --name T")
    net.at(0).proc("T", f"+{A}".encode())
    assert net.at(1000).send(A, reap) == [False]
    assert net.listed("T") == []


def test_11_reap_never_removes_the_entry_being_updated(origin: int) -> None:
    net = Net(origin)
    net.rule("--set --name T")
    rule = net.rule("! --update --seconds 1 --reap --name T")
    net.at(0).proc("T", f"+{A}".encode())
    assert net.at(1000).send(A, rule) == [True]
    assert net.stamps("T", A) == (0, 1000)


def test_12_inversion(origin: int) -> None:
    net = Net(origin)
    not_set = net.rule("! --set --name T")
    not_rcheck = net.rule("! --rcheck --name T")
    not_remove = net.rule("! --remove --name T")
    assert net.at(0).send(A, not_set, not_set) == [False, False]
    assert net.nstamps("T", A) == 2
    assert net.send("10.99.0.1", not_rcheck) == [True]
    assert net.listed("T") == [A]
    assert net.send(A, not_remove) == [False] and net.listed("T") == []
    assert net.send(A, not_remove) == [True]
    net.rule("--set --name U")
    not_update = net.rule("! --update --hitcount 3 --name U")
    net.proc("U", f"+{A}".encode())
    seen = [(net.at(t).send(A, not_update)[0], net.nstamps("U", A)) for t in (1, 2, 3, 4)]
    assert seen == [(True, 2), (True, 3), (False, 3), (False, 3)]


def test_13_update_without_match_changes_nothing(origin: int) -> None:
    net = Net(origin)
    set_ = net.rule("--set --name T")
    update = net.rule("--update --hitcount 5 --name T")
    net.at(0).send(A, set_, ttl=64)
    net.at(1).proc("T", b"+10.0.0.9")
    assert net.at(2).send(A, update, ttl=99) == [False]
    assert net.stamps("T", A) == (0,)
    assert net.tables["T"].get(4, 0x0A4D0002).ttl == 64  # type: ignore[union-attr]
    assert net.listed("T") == [A, "10.0.0.9"]
    assert net.send("10.55.0.1", update) == [False] and len(net.listed("T")) == 2


def test_14_a_stamp_equal_to_zero_is_an_ordinary_stamp() -> None:
    net = Net(0)
    set_ = net.rule("--set --name T")
    check = net.rule("--rcheck --seconds 1 --hitcount 1 --name T")
    net.at(0).send(A, set_)
    assert net.stamps("T", A) == (0,)
    assert net.at(250).send(A, check) == [True]
    assert net.at(251).send(A, check) == [False]


def test_14_fresh_entry_never_satisfies_two_hits(origin: int) -> None:
    net = Net(origin)
    set_ = net.rule("--set --name T")
    checks = [net.rule(f"--rcheck --seconds 60 --hitcount {h} --name T") for h in (2, 3, 20)]
    assert net.at(0).send(A, set_, *checks) == [True, False, False, False]


def test_18_lifetime_by_reference_count() -> None:
    net = Net(0)
    r4 = net.rule("--set --name SHARED")
    r6 = net.rule("--set --name SHARED", family=6)
    net.at(0).send(A, r4)
    net.send("fd77::2", r6)
    assert net.listed("SHARED") == [A, "fd77::2"]  # one table, both families
    # a replacement acquires the new rules before releasing the old: entries survive
    replacement = net.rule("--set --name SHARED")
    net.tables.release(r4)
    net.tables.release(r6)
    assert net.listed("SHARED") == [A, "fd77::2"]
    net.tables.release(replacement)
    assert "SHARED" not in net.tables
    again = net.rule("--set --name SHARED")
    assert net.listed("SHARED") == [] and again.name in net.tables


def test_params_are_per_table_and_settable_at_run_time() -> None:
    net = Net(0, params=ModuleParams(ip_list_tot=5))
    net.rule("--set --name T")
    net.rule("--set --name U")
    for i in range(5):
        net.at(i).proc("T", f"+10.0.0.{i}".encode())
    net.tables.configure("T", ip_list_tot=2)
    assert net.listed("T") == ["10.0.0.3", "10.0.0.4"]
    assert net.tables["U"].params.ip_list_tot == 5
    net.tables.configure("T", ip_pkt_list_tot=20)
    assert net.tables["T"].ring == 32
    net.tables.configure("U", ip_pkt_list_tot=40)
    assert net.tables["U"].ring == 64
    assert match("--set").ring_slots(20) == 32
