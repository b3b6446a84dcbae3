"""``recentd logs scan`` transcripts, run in-process."""

from __future__ import annotations

import gzip
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recentd.cli.main import main

A, B = "203.0.113.5", "2001:db8::7"
LOG = "\n".join([
    f"Mar 14 10:22:01 web1 sshd[4242]: Failed password for root from {A} port 51234 ssh2",
    f"Mar 14 10:22:03 web1 sshd[4242]: Failed password for root from {A} port 51234 ssh2",
    f"Mar 14 10:22:05 web1 sshd[4243]: Invalid user oracle from {A} port 51240",
    f"Mar 14 10:22:05 web1 sshd[4243]: Connection closed by invalid user oracle {A} port 51240 [preauth]",
    "Mar 14 10:22:06 web1 CRON[99]: pam_unix(cron:session): session opened for user root",
    f"Mar 14 10:30:00 web1 sshd[5001]: Accepted publickey for alice from {B} port 50022 ssh2: ED25519 SHA256:x",
]) + "\n"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "auth.log"
    path.write_text(LOG)
    return path


def scan(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["logs", "scan", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def read_events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_summary_per_address(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = scan(str(log), "--year", "2025", capsys=capsys)
    assert (status, err) == (0, "")
    rows = [line.split()[:4] for line in out.splitlines()[1:3]]
    assert rows == [[A, "3", "0", "1"], [B, "0", "1", "0"]]
    assert out.splitlines()[-1] == (
        f"6 lines ({log}): 3 failures, 1 successes, 1 probes from 2 addresses"
    )


@pytest.fixture
def tz_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tz_tokyo")
def test_events_file(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "events.jsonl"
    assert scan(str(log), "--year", "2025", "--events", str(out), capsys=capsys)[0] == 0
    found = read_events(out)
    assert [(e["line"], e["addr"], e["event"], e["kind"], e["user"]) for e in found] == [
        (1, A, "failure", "password", "root"),
        (2, A, "failure", "password", "root"),
        (3, A, "probe", "invalid_user", "oracle"),
        (4, A, "failure", "preauth_close", "oracle"),
        (6, B, "success", "publickey", "alice"),
    ]
    # classic times are local time: 10:22:01 in Tokyo is 01:22:01 UTC
    assert found[0]["ts"] == "1741915321.000000000"
    assert "file" not in found[0]


def test_several_logs_gzip_and_the_file_field(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rotated = tmp_path / "auth.log.1.gz"
    rotated.write_bytes(gzip.compress(LOG.encode()))
    out = tmp_path / "events.jsonl"
    status, _, _ = scan(str(rotated), str(log), "--events", str(out), capsys=capsys)
    assert status == 0
    found = read_events(out)
    assert [e["file"] for e in found] == [str(rotated)] * 5 + [str(log)] * 5
    assert [e["line"] for e in found[:5]] == [1, 2, 3, 4, 6]


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LOG.encode())))
    status, out, _ = scan("-", capsys=capsys)
    assert status == 0 and out.splitlines()[-1].startswith("6 lines (-): 3 failures")


def test_an_unreadable_log_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = scan(str(tmp_path / "missing.log"), capsys=capsys)
    assert (status, out) == (2, "")
    assert err == f"recentd logs scan: cannot read {tmp_path / 'missing.log'}: No such file or directory\n"
    status, _, err = scan(str(tmp_path), capsys=capsys)
    assert status == 2 and err.count("\n") == 1 and "Is a directory" in err


def test_a_damaged_gzip_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "auth.log.2.gz"
    broken.write_bytes(gzip.compress(LOG.encode() * 50)[:-30])
    status, _, err = scan(str(broken), capsys=capsys)
    assert status == 2 and err.startswith(f"recentd logs scan: {broken}:")
    assert "damaged compressed data" in err and err.count("\n") == 1


def test_an_empty_log_still_writes_its_events_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty, out = tmp_path / "empty.log", tmp_path / "events.jsonl"
    empty.write_text("")
    status, text, _ = scan(str(empty), "--events", str(out), capsys=capsys)
    assert status == 0 and out.read_text() == ""
    assert text.strip() == f"0 lines ({empty}): 0 failures, 0 successes, 0 probes from 0 addresses"


def test_bad_year_is_an_option_error(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["logs", "scan", str(log), "--year", "25x"])
    assert exited.value.code == 2
    assert "not a year" in capsys.readouterr().err


def test_help_teaches_without_markup(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["logs", "scan", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "journalctl -u ssh -o json | recentd logs scan -" in text
    assert "--year" in text and "exit status" in text
    assert "``" not in text and ":class:" not in text


def test_logs_without_an_action_shows_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs"]) == 2
    assert "scan" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_on_a_terminal_leaves_stdout_alone(
    log: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("recentd.cli.logs.PROGRESS_BYTES", 0)
    monkeypatch.setattr("recentd.cli.logs.sys.stderr", _Terminal())
    status, out, _ = scan(str(log), capsys=capsys)
    assert status == 0
    assert out.splitlines()[-1].startswith("6 lines (")
    assert out.splitlines()[0].startswith("ADDRESS")
