"""``rules check`` names every error of a file, each at FILE:LINE:COL (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recentd.cli.main import main
from recentd.rules.parser import check_ruleset_text

BAD = (
    "*filter\n"
    ":INPUT ACCEPT [0:0]\n"
    "-A INPUT -m bogus -j ACCEPT\n"          # 3:10 unsupported match
    "-A INPUT -p tcp --dport 99999 -j DROP\n"  # 4:17 bad port
    "-A INPUT -j NOPE\n"                     # 5:13 unknown target (found after reading)
    "-A INPUT -m ttl --ttl 300\n"            # 6:17 out of range
    "-A INPUT -p tcp --dport 22 -j ACCEPT\n"
    "COMMIT\n"
)


def test_every_error_is_named_in_line_order_then_the_file_errors() -> None:
    errors = check_ruleset_text(BAD, source="bad.rules")
    assert [(e.line, e.column) for e in errors] == [(3, 10), (4, 17), (6, 17), (5, 13)]
    assert all(e.source == "bad.rules" for e in errors)


def test_a_valid_file_has_no_error() -> None:
    assert check_ruleset_text("iptables -A INPUT -p tcp --dport 22 -j ACCEPT\n") == []


def test_rules_check_prints_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.rules"
    path.write_text(BAD)
    assert main(["rules", "check", str(path)]) == 2
    located = [line.split(": ", 1)[0] for line in capsys.readouterr().err.splitlines()
               if line.startswith(str(path))]
    assert located == [f"{path}:3:10", f"{path}:4:17", f"{path}:6:17", f"{path}:5:13"]


def test_save_still_stops_at_the_first(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.rules"
    path.write_text(BAD)
    assert main(["rules", "save", str(path)]) == 2
    located = [line.split(": ", 1)[0] for line in capsys.readouterr().err.splitlines()
               if line.startswith(str(path))]
    assert located == [f"{path}:3:10"]
