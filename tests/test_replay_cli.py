"""``recentd replay``: packets in (a capture), verdicts, tables and a summary out."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from recentd.cli.main import main
from recentd.packets.factory import PacketFactory, write_pcap, write_pcapng

SEED = Path(__file__).resolve().parent / "data" / "seeds" / "ipt_recent_howto.txt"
SEED_RULES = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp –dport 22 -m state –state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state –state NEW -m recent –set –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –update –seconds 60 –hitcount 4 –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –rcheck –seconds 60 –hitcount 4 –name SSH -j DROP
"""
T0 = 1_700_000_000_000_000_000
ATTACKER, FRIEND, SERVER = "198.51.100.7", "198.51.100.9", "192.0.2.1"


def syn(src: str, sport: int, ttl: int = 64) -> bytes:
    return PacketFactory().tcp(src, SERVER, sport=sport, dport=22, flags="S", ttl=ttl)


def attack(tmp_path: Path) -> tuple[Path, Path]:
    """Six new connections from the attacker within a second, one from a friend, and
    the attacker again 61 s later: accepted 1-4, dropped 5-6, friend and later accepted."""
    records = [(T0 + i * 100_000_000, syn(ATTACKER, 40000 + i)) for i in range(6)]
    records.append((T0 + 700_000_000, syn(FRIEND, 50000)))
    records.append((T0 + 62_000_000_000, syn(ATTACKER, 40100)))
    capture = write_pcap(tmp_path / "attack.pcap", records)
    rules = tmp_path / "rules.sh"
    rules.write_text(SEED_RULES)
    return capture, rules


def test_seed_recipe_verdicts_tables_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture, rules = attack(tmp_path)
    verdicts, tables = tmp_path / "verdicts.jsonl", tmp_path / "tables"
    status = main(
        [
            "replay",
            str(capture),
            "--rules",
            str(rules),
            "--verdicts",
            str(verdicts),
            "--tables-out",
            str(tables),
            "--no-progress",
        ]
    )
    assert status == 0
    records = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert [(r["n"], r["verdict"]) for r in records] == [
        (1, "ACCEPT"),
        (2, "ACCEPT"),
        (3, "ACCEPT"),
        (4, "ACCEPT"),
        (5, "DROP"),
        (6, "DROP"),
        (7, "ACCEPT"),
        (8, "ACCEPT"),
    ]
    assert records[0]["ts"] == "1700000000.000000000" and records[0]["src"] == ATTACKER
    listing = (tables / "SSH").read_text().splitlines()
    assert [line.split()[0] for line in listing] == [f"src={FRIEND}", f"src={ATTACKER}"]
    attacker = listing[1].split()
    # ttl 64; oldest_pkt 5: connections 1-4 are --set, the DROP rule comes first so 5 and 6
    # never reach --set, and the return 62 s later (window passed) is --set again.
    assert attacker[2] == "64" and attacker[6] == "5" and len(attacker) == 12
    out = capsys.readouterr().out
    assert "8 packets: 6 ACCEPT, 2 DROP" in out
    assert ATTACKER in out and "1700000000.400000000" in out  # first drop: packet 5
    # rule counters, as iptables -L -n -v shows them after this traffic
    assert "Chain INPUT (policy ACCEPT 6 packets, 240 bytes)" in out  # the 6 accepted fall through
    assert "    8   320 SSH_CHECK  6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:22 state NEW" in out
    assert "    2    80 DROP       0    --  *      *       0.0.0.0/0            0.0.0.0/0            state NEW recent: CHECK seconds: 60 hit_count: 4 name: SSH side: source mask: 255.255.255.255" in out


def test_the_pasted_seed_recipe_file_itself_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture, _ = attack(tmp_path)
    status = main(["replay", str(capture), "--rules", str(SEED), "--no-progress"])
    assert status == 0
    assert "8 packets: 6 ACCEPT, 2 DROP" in capsys.readouterr().out


def test_truncated_capture_reports_what_came_before_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture, rules = attack(tmp_path)
    data = capture.read_bytes()
    capture.write_bytes(data[:-10])  # cut into the last record
    verdicts = tmp_path / "verdicts.jsonl"
    status = main(
        [
            "replay",
            str(capture),
            "--rules",
            str(rules),
            "--verdicts",
            str(verdicts),
            "--no-progress",
        ]
    )
    assert status == 2
    assert len(verdicts.read_text().splitlines()) == 7
    captured = capsys.readouterr()
    assert "7 packets: 5 ACCEPT, 2 DROP" in captured.out
    assert str(capture) in captured.err and "8" in captured.err
    assert "Traceback" not in captured.err


def test_pcapng_and_local_addresses(tmp_path: Path) -> None:
    reply = PacketFactory().tcp(SERVER, ATTACKER, sport=22, dport=40000, flags="SA")
    records = [(T0, syn(ATTACKER, 40000)), (T0 + 1000, reply)]
    capture = write_pcapng(tmp_path / "two.pcapng", records)
    rules = tmp_path / "rules.sh"
    rules.write_text(SEED_RULES)
    verdicts = tmp_path / "v.jsonl"
    assert (
        main(
            [
                "replay",
                str(capture),
                "--rules",
                str(rules),
                "--local",
                SERVER,
                "--verdicts",
                str(verdicts),
                "--no-progress",
            ]
        )
        == 0
    )
    records_out = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert [(r["hook"], r["verdict"]) for r in records_out] == [
        ("INPUT", "ACCEPT"),
        (None, "ACCEPT"),
    ]


def test_bad_rules_are_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, _ = attack(tmp_path)
    rules = tmp_path / "bad.rules"
    rules.write_text("iptables -A INPUT -m recent --set --rcheck -j DROP\n")
    assert main(["replay", str(capture), "--rules", str(rules), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{rules}:1:" in err and "cannot be used together" in err and "Traceback" not in err


def test_missing_files_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = attack(tmp_path)
    assert main(["replay", str(capture), "--rules", str(tmp_path / "nope.rules"), "--no-progress"]) == 2  # a missing input is invalid input, as a missing capture is
    err = capsys.readouterr().err
    assert err == f"recentd: {tmp_path / 'nope.rules'}: cannot read: No such file or directory\n"
    assert main(["replay", str(tmp_path / "nope.pcap"), "--rules", str(rules), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert f"{tmp_path / 'nope.pcap'}" in captured.err and "Traceback" not in captured.err


def test_a_flood_prints_the_same_with_or_without_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --verdicts the capture is read in columns and the flood decided from
    remembered decisions; the summary and tables are those of the packet-by-packet path
    (--verdicts) but for the line saying so."""
    # 7 sources, 1 ms apart: each has 4 accepted, then its first drop is decided by the
    # rules (and remembered), the other 38 from memory: 300 - 7 * 5; and the first packet
    # of the 6 sources after the first from the template the first one left (no table
    # knew them: rules.fresh): + 6 = 271
    records = [(T0 + i * 1_000_000, syn(f"198.51.100.{i % 7 + 1}", 40000 + i)) for i in range(300)]
    capture = write_pcap(tmp_path / "flood.pcap", records)
    rules = tmp_path / "rules.sh"
    rules.write_text(SEED_RULES)
    outputs = []
    for extra in ([], ["--verdicts", str(tmp_path / "v.jsonl")]):
        tables = tmp_path / f"tables{len(extra)}"
        assert main(["replay", str(capture), "--rules", str(rules), "--tables-out",
                     str(tables), "--no-progress", *extra]) == 0
        outputs.append((capsys.readouterr().out, (tables / "SSH").read_text()))
    (fast, fast_table), (slow, slow_table) = outputs
    assert "300 packets: 28 ACCEPT, 272 DROP; 300 evaluated" in slow
    assert "; 271 decided from remembered decisions" in fast.splitlines()[0]
    assert fast.replace("; 271 decided from remembered decisions", "") == slow
    assert fast_table == slow_table


def test_without_numpy_replay_reads_record_by_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy is the "replay" extra: without it the capture is read record by record and
    the answers are the same (only slower, and nothing is said about remembering)."""
    capture, rules = attack(tmp_path)
    assert main(["replay", str(capture), "--rules", str(rules), "--no-progress"]) == 0
    with_numpy = capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "recentd.packets.columns", None)  # import fails
    assert main(["replay", str(capture), "--rules", str(rules), "--no-progress"]) == 0
    without = capsys.readouterr().out
    assert "decided from remembered decisions" in with_numpy
    assert without == re.sub(r"; \d+ decided from remembered decisions", "", with_numpy)


def test_the_command_pauses_the_collector_and_the_library_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cycle collector is the process's: ``recentd replay`` pauses it around the
    replay and restores it; ``Replayer.replay`` itself leaves it as it finds it."""
    import gc  # noqa: PLC0415 - only this test looks at it

    from recentd.replay import Replayer  # noqa: PLC0415

    seen: list[bool] = []
    library = Replayer.replay

    def replay(self: Replayer, *args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return library(self, *args, **kwargs)  # type: ignore[arg-type]

    capture, rules = attack(tmp_path)
    assert gc.isenabled()
    monkeypatch.setattr(Replayer, "replay", replay)
    assert main(["replay", str(capture), "--rules", str(rules), "--no-progress"]) == 0
    assert (seen, gc.isenabled()) == ([False], True)

    from recentd.packets.columns import read_columns  # noqa: PLC0415 - numpy
    from recentd.rules import Engine, load_ruleset  # noqa: PLC0415

    replayer = Replayer(Engine(load_ruleset(rules)))
    seen.clear()
    replayer.replay(read_columns(capture), progress=lambda done: seen.append(gc.isenabled()))
    assert seen and all(seen)
