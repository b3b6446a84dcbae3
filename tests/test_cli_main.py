"""The ``recentd`` command as a whole: fast start, global options, exit statuses, help.

Transcripts: a command line in, the status and the words out.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from recentd.cli.main import SUBCOMMANDS, command_of, main

SEED = Path(__file__).parent / "data" / "seeds" / "ipt_recent_howto.txt"


def modules_loaded_by(*argv: str) -> set[str]:
    """The recentd modules a fresh interpreter has imported after running ``argv``."""
    code = (
        "import sys\n"
        "from recentd.cli.main import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('recentd'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return set(out.splitlines()[-1].split())


def test_version_imports_no_command() -> None:
    assert modules_loaded_by("--version") == {
        "recentd", "recentd.cli", "recentd.cli.main", "recentd.cli.globals", "recentd.defaults",
    }  # fmt: skip


def test_ctl_imports_neither_the_rules_nor_the_packets_nor_the_server() -> None:
    loaded = modules_loaded_by("--socket", "/nonexistent.sock", "ctl", "status")
    assert "recentd.control.client" in loaded
    heavy = {m for m in loaded if m.startswith(("recentd.rules", "recentd.packets",
                                                "recentd.live", "recentd.control.server",
                                                "recentd.recent"))}  # fmt: skip
    assert heavy == set()


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["ctl", "status"], "ctl"),
        (["--socket", "ctl", "rules"], "rules"),  # a socket named "ctl"
        (["--config", "x.toml", "run", "--dry-run"], "run"),
        (["--version"], None),
        ([], None),
        (["frobnicate", "rules"], None),
    ],
)
def test_the_command_is_the_first_word_that_names_one(argv: list[str], command: str | None) -> None:
    assert command_of(argv) == command


def test_help_lists_every_command_without_importing_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for name, help_text in SUBCOMMANDS.items():
        assert name in out and help_text.split(":")[0] in out
    assert "--socket PATH" in out and "RECENTD_SOCKET" in out


INSTALLED = [name for name in SUBCOMMANDS if importlib.util.find_spec(f"recentd.cli.{name}")]


@pytest.mark.parametrize("command", INSTALLED)
def test_help_is_written_for_people(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """No reStructuredText markup leaks into --help; file modes read as chmod takes them."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: recentd {command}")
    for markup in ("``", ":mod:", ":class:", ":func:", ":meth:", ":data:"):
        assert markup not in out, f"{command} --help shows {markup}"
    if command == "run":
        assert "ip_list_perms = 0o644" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--rules", str(SEED), "--hz", "0", "--dry-run"],
        ["run", "--rules", str(SEED), "--hz", "many", "--dry-run"],
        ["run", "--frobnicate"],
        ["run", "--dry-run"],  # no rules anywhere
        ["replay", "x.pcap", "--rules", str(SEED), "--local", "not-an-address"],
        ["rules", "check", "/nonexistent/rules.v4"],
        ["ctl", "frobnicate"],
        ["--socket"],
    ],
    ids=["hz-range", "hz-type", "unknown-flag", "no-rules", "local", "missing-file",
         "ctl-command", "socket-without-path"],
)
def test_invalid_input_exits_2_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    try:
        status = main(argv)
    except SystemExit as exited:  # argparse's own refusals
        status = exited.code  # type: ignore[assignment]
    assert status == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(("recentd", "usage:", "recentd:"))


def test_config_given_before_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "recentd.toml"
    config.write_text(f'rules = "{SEED}"\nstate_dir = "{tmp_path / "state"}"\n')
    assert main(["--config", str(config), "run", "--dry-run"]) == 0
    before = capsys.readouterr().out
    assert "-j NFQUEUE" in before
    monkeypatch.setenv("RECENTD_CONFIG", str(config))
    assert main(["run", "--dry-run"]) == 0
    assert capsys.readouterr().out == before
