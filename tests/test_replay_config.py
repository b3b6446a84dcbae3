"""``recentd replay --config``: the daemon's file decides the replay's rules and tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from recentd.cli.main import main
from recentd.packets.factory import write_pcap
from tests.test_replay_cli import SEED_RULES, T0, syn

ATTACKER, SPOOFED = "198.51.100.7", "203.0.113.{}"


def interleaved(tmp_path: Path) -> Path:
    """Six attempts from the attacker, each followed by one from a new (spoofed) source."""
    records = []
    for i in range(6):
        records.append((T0 + i * 200_000_000, syn(ATTACKER, 40000 + i)))
        records.append((T0 + i * 200_000_000 + 1, syn(SPOOFED.format(i + 1), 50000)))
    return write_pcap(tmp_path / "interleaved.pcap", records)


def _attacker_row(out: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(ATTACKER))


def test_the_configs_list_size_decides_as_the_daemon_would(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = interleaved(tmp_path), tmp_path / "rules.sh"
    rules.write_text(SEED_RULES)
    assert main(["replay", str(capture), "--rules", str(rules), "--no-progress"]) == 0
    assert _attacker_row(capsys.readouterr().out)[1:3] == ["6", "2"]  # the default list: caught

    config = tmp_path / "recentd.toml"
    config.write_text(f'rules = ["{rules}"]\nip_list_tot = 1\n')
    assert main(["replay", str(capture), "--config", str(config), "--no-progress"]) == 0
    # A one-entry list: each spoofed source evicts the attacker's entry, as in the kernel.
    assert _attacker_row(capsys.readouterr().out)[1:3] == ["6", "0"]


def test_rules_on_the_command_line_override_the_configs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture, rules = interleaved(tmp_path), tmp_path / "rules.sh"
    rules.write_text(SEED_RULES)
    config = tmp_path / "recentd.toml"
    config.write_text('rules = ["/nonexistent/rules.v4"]\nip_list_tot = 1\n')
    assert main(["replay", str(capture), "--config", str(config), "--rules", str(rules),
                 "--no-progress"]) == 0
    assert _attacker_row(capsys.readouterr().out)[1:3] == ["6", "0"]


def test_a_bad_config_or_none_at_all_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = interleaved(tmp_path)
    config = tmp_path / "recentd.toml"
    config.write_text("ip_list_tot = 0\n")
    assert main(["replay", str(capture), "--config", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "ip_list_tot" in err and f"{config}:1" in err and "Traceback" not in err
    assert main(["replay", str(capture), "--no-progress"]) == 2
    assert "no rules file" in capsys.readouterr().err
