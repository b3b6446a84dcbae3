"""``recentd logs replay`` transcripts, in-process: log lines in, ban records out.

Each test is one clause of the contract (issue 12, item 4): the window is inclusive and
the stamp comes first, families meet their own rules, masked lists ban networks,
addresses are canonical, times are the lines' own (local time, offsets, ``--year``).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recentd.cli.main import main

A, B, C = "203.0.113.5", "198.51.100.7", "2001:db8::7"
RULE = "-p tcp --dport 22 -m recent --name SSH_AUTH --rcheck --seconds 600 --hitcount 5 -j DROP"
SHOWN = ("-A INPUT -p tcp -m tcp --dport 22 -m recent --rcheck --seconds 600 --hitcount 5 "
         "--name SSH_AUTH --mask {mask} --rsource -j DROP")  # fmt: skip
UTC_2025_03_14 = 1741910400  # 2025-03-14T00:00:00Z


def fail(clock: str, addr: str = A, pid: int = 4242, day: str = "Mar 14") -> str:
    return f"{day} {clock} web1 sshd[{pid}]: Failed password for root from {addr} port 5123 ssh2"


def at(clock: str) -> float:
    """Epoch seconds of ``HH:MM:SS`` on 2025-03-14, UTC."""
    hh, mm, ss = (int(part) for part in clock.split(":"))
    return UTC_2025_03_14 + hh * 3600 + mm * 60 + ss


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class Replay:
    """Writes the config, rules and logs of one replay and runs it."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.capsys = tmp, capsys
        self.config = tmp / "recentd.toml"
        self.config.write_text('ip_list_tot = 1000\n[[watch]]\nsource = "/var/log/auth.log"\n'
                               'failure = "SSH_AUTH"\nsuccess = "SSH_AUTH"\n')  # fmt: skip
        self.out = tmp / "bans.jsonl"
        self.rules = [self.rules_file("rules.v4", RULE), self.rules_file("rules.v6", RULE)]
        self.stdout = ""

    def rules_file(self, name: str, *rules: str) -> Path:
        path = self.tmp / name
        body = "".join(f"-A INPUT {rule}\n" for rule in rules)
        path.write_text(f"*filter\n:INPUT ACCEPT [0:0]\n{body}COMMIT\n")
        return path

    def log(self, name: str, *lines: str) -> Path:
        path = self.tmp / name
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def run(self, *lines: str, logs: list[Path] | None = None,
            extra: tuple[str, ...] = ("--year", "2025")) -> list[dict[str, object]]:  # fmt: skip
        names = logs if logs is not None else [self.log("auth.log", *lines)]
        rules = [arg for path in self.rules for arg in ("--rules", str(path))]
        status = main(["logs", "replay", *map(str, names), "--config", str(self.config),
                       *rules, "--bans", str(self.out), *extra])  # fmt: skip
        self.stdout, err = self.capsys.readouterr()
        assert (status, err) == (0, "")
        return [json.loads(line) for line in self.out.read_text().splitlines()]


@pytest.fixture
def replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Replay:
    return Replay(tmp_path, capsys)


def brief(bans: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(ban["addr"], ban["line"], ban["ts"]) for ban in bans]


def test_the_fifth_failure_in_600_s_bans_at_its_line_window_inclusive(replay: Replay) -> None:
    bans = replay.run(fail("10:00:00"), fail("10:02:30"), fail("10:05:00"), fail("10:07:30"),
                      fail("10:10:00"))  # fmt: skip
    assert brief(bans) == [(A, 5, at("10:10:00"))]
    # until: the first of the five stamps leaves the window one tick (hz 250) after 600 s
    assert bans[0]["until"] == at("10:10:00") + 0.004
    assert bans[0]["list"] == "SSH_AUTH"
    assert bans[0]["rule"] == SHOWN.format(mask="255.255.255.255")
    assert "file" not in bans[0]


def test_one_second_too_late_bans_no_one_and_out_is_still_written(replay: Replay) -> None:
    bans = replay.run(fail("10:00:00"), fail("10:02:30"), fail("10:05:00"), fail("10:07:30"),
                      fail("10:10:01"))  # fmt: skip
    assert bans == []
    assert replay.out.read_text() == ""
    assert replay.stdout.splitlines()[-1] == "0 bans of 0 addresses by 2 rule(s)"


def test_more_failures_extend_the_ban_and_a_success_lifts_it(replay: Replay) -> None:
    five = [fail(f"10:00:0{second}") for second in range(5)]
    login = f"Mar 14 10:00:09 web1 sshd[77]: Accepted password for root from {A} port 1 ssh2"
    bans = replay.run(*five, fail("10:00:07"), login, fail("10:00:20"))
    assert brief(bans) == [(A, 5, at("10:00:04"))]
    assert bans[0]["extended"] == 1
    assert bans[0]["lifted_line"] == 7
    assert bans[0]["until"] == at("10:00:09")


def test_a_new_ban_after_the_last_one_ended(replay: Replay) -> None:
    first = [fail(f"10:00:0{second}") for second in range(5)]
    again = [fail(f"11:00:0{second}") for second in range(5)]
    bans = replay.run(*first, *again)
    assert brief(bans) == [(A, 5, at("10:00:04")), (A, 10, at("11:00:04"))]


def test_ipv4_events_meet_iptables_rules_and_ipv6_events_ip6tables_rules(
    replay: Replay,
) -> None:
    lines = [fail(f"10:00:0{second}", addr) for addr in (A, C) for second in range(5)]
    replay.rules = [replay.rules[1]]  # only rules.v6
    assert brief(replay.run(*lines)) == [(C, 10, at("10:00:04"))]
    replay.rules = [replay.rules_file("only.v4", RULE)]
    assert brief(replay.run(*lines)) == [(A, 5, at("10:00:04"))]


def test_a_masked_list_bans_the_network(replay: Replay) -> None:
    masked = RULE.replace("--rcheck", "--rcheck --mask 255.255.255.0")
    replay.rules = [replay.rules_file("masked.v4", masked)]
    lines = [fail(f"10:00:0{n}", f"203.0.113.{n + 1}") for n in range(5)]
    bans = replay.run(*lines)
    assert brief(bans) == [("203.0.113.0/24", 5, at("10:00:04"))]
    assert bans[0]["rule"] == SHOWN.format(mask="255.255.255.0")


def test_addresses_are_canonical(replay: Replay) -> None:
    lines = [fail("10:00:00", "::ffff:203.0.113.5"), fail("10:00:01", A),
             fail("10:00:02", "::FFFF:203.0.113.5"), fail("10:00:03", A),
             fail("10:00:04", "::ffff:203.0.113.5")]  # fmt: skip
    lines += [fail(f"10:01:0{n}", "2001:0DB8:0:0:0:0:0:0007") for n in range(5)]
    assert brief(replay.run(*lines)) == [(A, 5, at("10:00:04")), (C, 10, at("10:01:04"))]


def test_several_logs_each_record_names_its_file_and_its_line(replay: Replay) -> None:
    old = replay.log("auth.log.1", *(fail(f"10:00:0{n}") for n in range(3)))
    new = replay.log("auth.log", "Mar 14 10:00:05 web1 CRON[1]: noise",
                     *(fail(f"10:00:0{n}") for n in range(6, 9)))  # fmt: skip
    bans = replay.run(logs=[old, new])
    assert [(ban["addr"], ban["file"], ban["line"]) for ban in bans] == [(A, str(new), 3)]
    assert bans[0]["ts"] == at("10:00:07")


def test_rfc3339_offsets_are_honoured_and_ts_keeps_every_digit(replay: Replay) -> None:
    lines = [f"2025-03-14T12:00:0{n}.12345678{n}+02:00 web1 sshd[9]: Failed password for root "
             f"from {A} port 1 ssh2" for n in range(5)]  # fmt: skip
    bans = replay.run(*lines, extra=())
    assert bans[0]["ts_ns"] == int(at("10:00:04")) * 10**9 + 123456784
    assert bans[0]["ts"] == (int(at("10:00:04")) * 10**9 + 123456784) / 10**9


def test_classic_times_are_local_time(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    bans = replay.run(*(fail(f"19:00:0{n}") for n in range(5)))
    assert bans[0]["ts"] == at("10:00:04")  # 19:00 in Tokyo is 10:00 UTC


def test_year_is_the_first_lines_and_new_year_moves_on(replay: Replay) -> None:
    lines = [fail(f"23:59:5{n}", day="Dec 31") for n in range(3)]
    lines += [fail(f"00:00:0{n}", day="Jan  1") for n in range(2)]
    bans = replay.run(*lines, extra=("--year", "2024"))
    assert bans[0]["ts"] == 1735689601  # 2025-01-01T00:00:01Z


def test_without_year_the_most_recent_year_that_is_not_in_the_future(replay: Replay) -> None:
    bans = replay.run(*(fail(f"10:00:0{n}", day="Jan  1") for n in range(5)), extra=())
    year = time.gmtime().tm_year
    expected = time.mktime((year, 1, 1, 10, 0, 4, 0, 0, 0))
    assert bans[0]["ts"] == (expected if expected <= time.time() else
                             time.mktime((year - 1, 1, 1, 10, 0, 4, 0, 0, 0)))  # fmt: skip


def test_the_configs_rules_when_none_are_given(replay: Replay) -> None:
    rules = replay.rules_file("from-config.v4", RULE)
    replay.config.write_text(f'rules = ["{rules}"]\n' + replay.config.read_text())
    replay.rules = []
    assert brief(replay.run(*(fail(f"10:00:0{n}") for n in range(5)))) == [
        (A, 5, at("10:00:04"))
    ]


def test_the_summary_names_bans_lines_and_events(replay: Replay) -> None:
    replay.run(*(fail(f"10:00:0{n}") for n in range(5)), "Mar 14 10:00:09 web1 CRON[1]: x")
    lines = replay.stdout.splitlines()
    assert lines[0].split() == ["BANNED", "BANS", "FIRST", "BAN", "(LINE)"]
    assert lines[1].split()[:2] == [A, "1"]
    assert lines[-2].endswith("5 events (5 failure password)")
    assert lines[-2].startswith("6 lines (")
    assert lines[-1] == "1 bans of 1 addresses by 2 rule(s)"


def test_a_config_without_watch_is_invalid_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("ip_list_tot = 10\n")
    log = tmp_path / "auth.log"
    log.write_text(fail("10:00:00") + "\n")
    assert main(["logs", "replay", str(log), "--config", str(config)]) == 2
    assert "no [[watch]] table" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_on_a_terminal_leaves_stdout_and_the_bans_alone(
    replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recentd.cli.logs.PROGRESS_BYTES", 0)
    terminal = _Terminal()
    monkeypatch.setattr("recentd.cli.logs.sys.stderr", terminal)
    lines = [fail(f"10:00:0{n}") for n in range(5)] * 4
    bans = replay.run(*lines)
    assert brief(bans)[0] == (A, 5, at("10:00:04"))
    assert replay.stdout.splitlines()[-1].startswith("1 bans of 1 addresses")
    assert "replaying auth.log" in terminal.getvalue()
