"""The bulk replay path (:meth:`LogReplay.feed_text`) — compiled (``recentd/logs/_bulk.c``)
and in Python (:mod:`recentd.logs.bulk`) — and the line-by-line path
(:meth:`LogReplay.feed_lines`, the definition) give the same ``--bans`` records, the same
counts and leave the same state: on the shared generator's logs (across New Year, both
formats), on the peers' annotated logs, on every pair of sshd messages in one connection,
on the address texts and line shapes the compiled reader reads itself, and on generated
and mutated lines cut into chunks anywhere (hypothesis).
"""

from __future__ import annotations

import copy
import datetime
import gzip
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.cli import logs as logs_cli
from recentd.cli.main import main
from recentd.config import load_config
from recentd.logs import ClassicYear, RecordParser, SshdParser
from recentd.logs import replay as replay_module
from recentd.logs.replay import LogReplay
from recentd.rules.parser import load_rule_files
from tests.logs.test_fast_path import (
    SSH_LINES,
    corpus_lines,
    generate,
    log_line,
    needs_corpus,
    needs_generator,
)
from tests.shared import GEN_AUTHLOG, PEER_LOGS

UTC = datetime.UTC
NOW_NS = 1_764_000_000 * 10**9  # 2025-11-24: "now" for the no-year policy
#: Low hitcounts, so that the few lines of a test ban; a masked list beside the plain one.
RULES = """*filter
:INPUT ACCEPT [0:0]
-A INPUT -m recent --name SSH_AUTH --rcheck --seconds 600 --hitcount 2 -j DROP
-A INPUT -m recent --name SSH_NET --rcheck --seconds 60 --hitcount 3 --mask {mask} -j DROP
COMMIT
"""
#: Failures into two lists, successes out of one; and a config whose routes pick a user
#: category (so that the bulk path's failures go through the usual application too).
CONFIGS = {
    "failures": 'failure = "SSH_AUTH"\nsuccess = "SSH_AUTH"\n'
                '[[watch]]\nsource = "-"\nfailure = "SSH_NET"\n',
    "categories": 'failure = "SSH_AUTH"\nfailure_root = "SSH_NET"\n',
}  # fmt: skip


@pytest.fixture(scope="module")
def setups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, object]]:
    folder = tmp_path_factory.mktemp("bulk")
    rules = []
    for family, mask in (("v4", "255.255.255.0"), ("v6", "ffff:ffff:ffff:ffff::")):
        path = folder / f"rules.{family}"
        path.write_text(RULES.format(mask=mask))
        rules.append(path)
    ruleset = load_rule_files(rules).ruleset
    found = {}
    for name, routes in CONFIGS.items():
        config = folder / f"{name}.toml"
        config.write_text(f'ip_list_tot = 100\n[[watch]]\nsource = "/var/log/auth.log"\n{routes}')
        found[name] = (ruleset, load_config(config))
    return found


#: How ``replay`` feeds the lines: the bulk path compiled, the bulk path in Python, or
#: line by line (the definition).
PATHS = ("compiled", "python", "lines")


def replay(setup: tuple[object, object], text: str, cuts: Sequence[int], year: int | None,
           *, path: str) -> list[object]:  # fmt: skip
    """The ban records of ``text`` (its lines ended by ``\\n``) fed in chunks of whole
    lines ending at line numbers ``cuts`` along ``path``, each chunk's followed by the
    state it leaves."""
    ruleset, config = setup
    subject = LogReplay(ruleset, config.watch,  # type: ignore[attr-defined]
                        RecordParser(ClassicYear(year=year, now=NOW_NS, tz=UTC)),
                        config.module_params(), config.hz)  # type: ignore[attr-defined]  # fmt: skip
    subject.compiled = path == "compiled"
    lines = text.split("\n")[:-1]
    found: list[object] = []
    start = 0
    for end in [*sorted(set(cuts)), len(lines)]:
        if start < end <= len(lines):
            chunk = "".join(line + "\n" for line in lines[start:end])
            if path != "lines":
                subject.feed_text(chunk, start + 1)
            else:
                subject.feed_lines((number, line.rstrip("\r"))
                                   for number, line in enumerate(lines[start:end], start + 1))  # fmt: skip
            found.append(state(subject))
            start = end
    bans = [ban.as_json() for ban in subject.finish()]
    stats = subject.stats
    return [*found, bans, stats.lines, stats.untimed, list(stats.events.most_common()),
            stats.bulk_lines]


def state(subject: LogReplay) -> tuple[object, ...]:
    years = subject.records.years
    parser = subject._readers[0].events  # the connections: private, but the state to compare
    assert isinstance(parser, SshdParser)
    sessions = [(key, copy.copy(session)) for key, session in parser.sessions.items()]
    tables = [(table.name, list(table)) for table in subject.tables]
    return years.year, years.month, subject._last_ns, sessions, tables


def assert_agree(setups: dict[str, tuple[object, object]], lines: Sequence[str],
                 cuts: Sequence[int] = (), year: int | None = 2025) -> tuple[int, int]:  # fmt: skip
    """Both paths give the same, in each config; the number of bans, and of lines the
    bulk path read at once (in the first config)."""
    text = "".join(line + "\n" for line in lines)
    bans, bulk_lines = 0, []
    for setup in setups.values():
        reference = replay(setup, text, cuts, year, path="lines")
        for path in ("compiled", "python"):
            bulk = replay(setup, text, cuts, year, path=path)
            assert bulk[:-1] == reference[:-1], path
        bans += len(bulk[-5])  # type: ignore[arg-type]
        bulk_lines.append(bulk[-1])
    return bans, bulk_lines[0]  # type: ignore[return-value]


@needs_generator
@pytest.mark.parametrize("fmt", ["classic", "rfc3339"])
@pytest.mark.parametrize("year", [2025, None])
def test_generated_logs_give_the_same_bans_across_new_year(
    setups: dict[str, tuple[object, object]], tmp_path: Path, fmt: str, year: int | None
) -> None:
    lines = generate(tmp_path, fmt)
    bans, bulk_lines = assert_agree(setups, lines, cuts=range(0, len(lines), 1500), year=year)
    assert bans > 50
    if fmt == "classic":  # (RFC 3339 lines all go line by line)
        assert bulk_lines > len(lines) // 3


@needs_corpus
@pytest.mark.parametrize("year", [2020, None])
def test_the_peers_logs_give_the_same_bans(
    setups: dict[str, tuple[object, object]], year: int | None
) -> None:
    lines = corpus_lines()
    bans, bulk_lines = assert_agree(setups, lines, cuts=range(0, len(lines), 97), year=year)
    assert bans > 10
    assert bulk_lines > 0  # (its lines are of many months: most go line by line)


def test_every_pair_of_messages_in_one_connection_gives_the_same(
    setups: dict[str, tuple[object, object]],
) -> None:
    for first in SSH_LINES:
        for second in SSH_LINES:
            lines = [f"Nov 20 00:00:0{n} srv1 sshd[7]: {text}"
                     for n, text in enumerate((first, second, SSH_LINES[4], first))]  # fmt: skip
            assert_agree(setups, lines)
            assert_agree(setups, lines, cuts=[1, 3])


def test_a_time_no_stamp_reads_and_a_count_waiting_take_the_usual_way(
    setups: dict[str, tuple[object, object]],
) -> None:
    """Lines the bulk path hands back: a date that does not exist (its events take the
    last time seen, here a cron line's, skipped in bulk) and a close after ``maximum
    authentication attempts`` that named no address yet."""
    lines = [
        "Feb 27 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
        "Feb 28 10:00:05 h CRON[2]: pam_unix(cron:session): session closed for user root",
        "Feb 30 10:00:06 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
        "Feb 28 10:00:07 h sshd[3]: Disconnecting: Too many authentication failures for x",
        "Feb 28 10:00:08 h sshd[3]: Connection closed by 192.0.2.2 port 9 [preauth]",
        "Feb 28 10:00:09 h sshd[3]: Failed password for x from 192.0.2.2 port 9 ssh2",
        "Feb 28 10:00:09 h sshd[3]: Failed password for x from 192.0.2.2 port 9 ssh2",
    ]
    assert assert_agree(setups, lines)[0] >= 2
    assert assert_agree(setups, lines, cuts=[1, 2, 3, 4, 5, 6])[0] >= 2


def test_a_minute_or_second_out_of_range_is_no_time_whatever_came_before(
    setups: dict[str, tuple[object, object]],
) -> None:
    lines = [f"Mar  1 10:{clock} h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2"
             for clock in ("00:00", "75:00", "00:61", "00:60", "00:01")]  # fmt: skip
    assert assert_agree(setups, lines)[0] >= 1


def test_the_compiled_reader_is_built() -> None:
    """``pip install -e .`` (scripts/setup.sh) builds ``recentd/logs/_bulk.c``: without it
    ``logs replay`` still answers the same, in Python, ~4x slower (bench/logs.py)."""
    assert replay_module._compiled is not None, "recentd.logs._bulk is not built"


#: Address texts as sshd may write them, and as an attacker may: the compiled reader reads
#: dotted quads and plain IPv6 itself (ipaddress' rules), every other text goes to
#: parse_address; each must give what the line-by-line path gives.
ADDRESS_TEXTS = [
    "192.0.2.1", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.256", "1.2.3", "1.2.3.4.5",
    "1..2.3", "1.2.3.4.", "0001.2.3.4", "1.2.3.04", "2001:db8::1", "2001:DB8::A", "::",
    "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7", "1::2::3", ":1::2", "1::2:", "12345::1", "g::1", "::ffff:c000:201",
    "::ffff:192.0.2.7", "::FFFF:c000:0202", "0:0:0:0:0:ffff:c000:203", "fe80::1%eth0",
    "[2001:db8::9]", "host.example", "1.2.3.4:22", ":::", "2001:db8:0:0:0:0:0:1",
]  # fmt: skip


def test_address_texts_read_as_parse_address_reads_them(
    setups: dict[str, tuple[object, object]],
) -> None:
    lines = []
    for n, address in enumerate(ADDRESS_TEXTS):
        for attempt in range(3):
            lines += [
                f"Nov 20 00:{n:02d}:{attempt:02d} h sshd[{n}]: Invalid user a from {address} port 9",
                f"Nov 20 00:{n:02d}:{attempt:02d} h sshd[{n}]: Failed password for a from "
                f"{address} port 9 ssh2",
                f"Nov 20 00:{n:02d}:{attempt:02d} h sshd[{n}]: Connection closed by invalid user "
                f"b {address} port 9 [preauth]",
            ]  # fmt: skip
    assert assert_agree(setups, lines)[0] >= 10


#: Shapes the compiled reader decides on itself: users with blanks or none (the greedy
#: user of "Invalid user" and of the closes), the group's words without a user, long
#: lines, blanks and control characters, a "Received" line after authentication.
SHAPES = [
    "Invalid user a from 1.2.3.4 from 192.0.2.30 port 22",
    "Invalid user  from 192.0.2.31 port 22 [preauth]",
    "Invalid user from 192.0.2.32 port 22",
    "Invalid user x from 192.0.2.33 port 22 [preauth] [preauth]",
    "Connection closed by invalid user a b c 192.0.2.34 port 5 [preauth]",
    "Connection closed by user 192.0.2.35 port 5",
    "Connection closed by user  192.0.2.36 port 5",
    "Connection reset by authenticating user x 192.0.2.37 port 5 [preauth]",
    "Disconnected from user port 5",
    "Disconnected from invalid user 192.0.2.38 port 5",
    "Disconnected from 192.0.2.39 port 5x",
    "Disconnected from 192.0.2.40 port",
    "Received disconnect from 192.0.2.41 port 5:11: disconnected by user",
    "Received disconnect from 192.0.2.42 port 5:11: [preauth]",
    "Received disconnect from 192.0.2.43 port 5:11:  [preauth]",
    "Received whatever",
    "Failed password for root from 192.0.2.44 port 5 ssh1",
    "Failed password for root from 192.0.2.45 port 5 ssh3",
    "Failed password for root from 192.0.2.46 port 123456 ssh2",
    "Failed password for root from 192.0.2.47 port 0 ssh2",
    "Failed password for invalid user from 192.0.2.48 port 5 ssh2",
    "Failed\tpassword for root from 192.0.2.49 port 5 ssh2",
    "Failed password for ro\x1cot from 192.0.2.50 port 5 ssh2",
    "Invalid user " + "A" * 9000 + " from 192.0.2.51 port 5",
    "Invalid user " + "B" * 7900 + " from 192.0.2.52 port 5",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.53  user=bob smith",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.54  user=",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.55 [preauth]",
    "pam_unix(sshd:auth): check pass; user unknown",
    "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.56",
    # texts of one, two and four bytes a character (the compiled path reads a copy)
    "Invalid user j\u00f6rg from 192.0.2.57 port 5",
    "Failed password for \u4e2d\u6587 from 192.0.2.58 port 5 ssh2",
    "Failed password for x\U0001f600 from 192.0.2.59 port 5 ssh2",
    "Failed password for \ufffd from 192.0.2.60 port 5 ssh2",
]  # fmt: skip


def test_the_shapes_the_compiled_reader_decides_on_agree(
    setups: dict[str, tuple[object, object]],
) -> None:
    for shape in SHAPES:
        lines = [f"Nov 20 00:00:0{n} srv1 sshd[7]: {text}"
                 for n, text in enumerate((shape, SSH_LINES[0], shape, SHAPES[0], shape))]  # fmt: skip
        assert_agree(setups, lines)
        assert_agree(setups, [*lines, "Nov 20 00:00:09 h CRON[1]: x", *lines], cuts=[2, 6])


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(log_line() | st.sampled_from(corpus_lines() or ("",)), max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    year=st.sampled_from([2025, None]),
)
def test_bulk_and_line_by_line_agree_on_any_lines(
    setups: dict[str, tuple[object, object]], lines: list[str], cuts: list[int],
    year: int | None,
) -> None:  # fmt: skip
    assert_agree(setups, "\n".join(lines).split("\n"), cuts, year)


@pytest.mark.parametrize("hz", [1, 100, 250, 1000, 100_000])
@pytest.mark.parametrize("year", [2025, 1965, 1901])
def test_ticks_and_ends_agree_at_any_hz_and_before_1970(tmp_path: Path, hz: int,
                                                        year: int) -> None:  # fmt: skip
    """The compiled path's floor arithmetic (time to ticks, a ban's end back to
    nanoseconds) is Python's, at every tick rate the config allows and before the epoch."""
    rules = tmp_path / "rules.v4"
    rules.write_text(RULES.format(mask="255.255.255.0"))
    config = tmp_path / "recentd.toml"
    config.write_text(f'hz = {hz}\n[[watch]]\nsource = "-"\nfailure = "SSH_AUTH"\n')
    setup = (load_rule_files([rules]).ruleset, load_config(config))
    lines = [f"Nov 20 00:0{n}:{s:02d} h sshd[{n}{s}]: Failed password for root from "
             f"192.0.2.{n} port 5 ssh2" for n in range(5) for s in range(0, 60, 7)]  # fmt: skip
    assert assert_agree({"hz": setup}, lines, year=year)[0] >= 5


def _ascii(line: str) -> str:
    return line.encode("ascii", "replace").decode()


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(
        log_line().map(_ascii)
        | st.sampled_from(SHAPES).map(lambda text: f"Nov 20 00:00:01 srv1 sshd[2]: {text}")
        | st.sampled_from([_ascii(line) for line in corpus_lines()] or [""]),
        max_size=30,
    ),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    year=st.sampled_from([2025, None]),
)
def test_the_compiled_path_agrees_on_any_ascii_lines(
    setups: dict[str, tuple[object, object]], lines: list[str], cuts: list[int],
    year: int | None,
) -> None:  # fmt: skip
    """ASCII lines, which the compiled path reads itself (the test above draws many it
    declines: a character that is not ASCII sends its line the usual way)."""
    assert_agree(setups, "\n".join(lines).split("\n"), cuts, year)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("compressed", [False, True])
def test_the_chunks_replay_reads_are_the_lines_scan_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, compressed: bool
) -> None:
    """Whole lines each ended by ``\\n``, numbered on, decoded as the line reader decodes
    them: a UTF-8 sequence cut by a chunk's end, a bad byte, ``\\r\\n``, no last ``\\n``."""
    data = b"".join([
        "Nov 20 00:00:01 h sshd[1]: Failed password for \u00e9t\u00e9 from 192.0.2.1 port 1 "
        "ssh2\r\n".encode(),
        b"bad \xff\xfe byte\n", b"\n", b"\r\n",
        "  x\u2028y\n".encode(), "caf\u00e9 \U0001f600 no newline".encode(),
    ])  # fmt: skip
    path = tmp_path / ("auth.log.gz" if compressed else "auth.log")
    path.write_bytes(gzip.compress(data) if compressed else data)
    monkeypatch.setattr(logs_cli, "CHUNK_BYTES", chunk)
    chunks = list(logs_cli._chunks(str(path), "replaying"))
    lines = [(first + n, line.rstrip("\r"))
             for first, text in chunks for n, line in enumerate(text.split("\n")[:-1])]  # fmt: skip
    assert all(text.endswith("\n") for _, text in chunks)
    assert lines == list(logs_cli._lines(str(path)))
    assert len(lines) == 6


def bans_line_by_line(names: list[str], config: Path, rules: list[Path], year: int) -> str:
    """What ``--bans`` held before the bulk path: every LOG's lines one by one."""
    loaded = load_config(config)
    subject = LogReplay(load_rule_files(rules).ruleset, loaded.watch,
                        RecordParser(ClassicYear(year=year)), loaded.module_params(),
                        loaded.hz)  # fmt: skip
    for name in names:
        subject.start_file(name if len(names) > 1 else None)
        subject.feed_lines(logs_cli._lines(name))
    return "".join(json.dumps(ban.as_json()) + "\n" for ban in subject.finish())


@pytest.mark.parametrize("source", ["generator", "peers"])
def test_the_command_writes_the_bans_the_line_by_line_path_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    source: str,
) -> None:  # fmt: skip
    """``recentd logs replay … --bans OUT`` (the bulk path, chunks of 4 KiB here) against
    the line-by-line path: the generator's log (one LOG), the peers' logs (several)."""
    if source == "generator" and not GEN_AUTHLOG.is_file():
        pytest.skip(f"no {GEN_AUTHLOG}")
    if source == "peers" and not PEER_LOGS.is_dir():
        pytest.skip(f"no {PEER_LOGS}")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(logs_cli, "CHUNK_BYTES", 4096)
    if source == "generator":
        names = [str(tmp_path / "auth.log")]
        subprocess.run([sys.executable, str(GEN_AUTHLOG), "--lines", "20000", "--out", names[0],
                        "--seed", "7", "--start", "2025-11-20T00:00:00"],
                       check=True, capture_output=True)  # fmt: skip
    else:
        names = [str(path) for path in sorted((PEER_LOGS / "cases").iterdir())]
    config = tmp_path / "recentd.toml"
    config.write_text('ip_list_tot = 100000\n[[watch]]\nsource = "/var/log/auth.log"\n'
                      'failure = "SSH_AUTH"\nsuccess = "SSH_AUTH"\n')  # fmt: skip
    rules = []
    for family, mask in (("v4", "255.255.255.0"), ("v6", "ffff:ffff:ffff:ffff::")):
        path = tmp_path / f"rules.{family}"
        path.write_text(RULES.format(mask=mask))
        rules.append(path)
    out = tmp_path / "bans.jsonl"
    argv = ["logs", "replay", *names, "--config", str(config), "--bans", str(out),
            "--year", "2025"]  # fmt: skip
    for path in rules:
        argv += ["--rules", str(path)]
    assert (main(argv), capsys.readouterr().err) == (0, "")
    expected = bans_line_by_line(names, config, rules, 2025)
    assert out.read_text() == expected
    assert expected.count("\n") > 5
    monkeypatch.undo()
    time.tzset()
