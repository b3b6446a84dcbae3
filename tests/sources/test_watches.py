"""``[[watch]]`` tables into the daemon (``recentd run --config``): sources, their routes,
checkpoint keys, ``--dry-run`` and the warning for a list no rule holds."""

from __future__ import annotations

import ipaddress
import logging
import time
from pathlib import Path

import pytest

from recentd.backends.memory import MemoryBanBackend
from recentd.cli.main import main
from recentd.cli.run import source_specs, unheld_lists
from recentd.config import Watch, load_config
from recentd.daemon import Daemon, DaemonConfig
from recentd.errors import ConfigError
from recentd.observation import Action, Evidence, Route
from recentd.sources.watches import watched_sources
from recentd.testing.clock import FakeClock

RECIPE = """\
*filter
:INPUT ACCEPT [0:0]
:SSH_CHECK - [0:0]
-A INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
-A SSH_CHECK -m recent --name SSH_AUTH --rcheck --seconds 600 --hitcount 5 -j DROP
COMMIT
"""
A = ipaddress.IPv4Address("203.0.113.5")


def config_file(tmp_path: Path, *watches: str) -> Path:
    rules = tmp_path / "rules.v4"
    rules.write_text(RECIPE)
    path = tmp_path / "recentd.toml"
    body = "".join(f"[[watch]]\n{watch}\n" for watch in watches)
    path.write_text(f'rules = ["{rules}"]\nstate_dir = "{tmp_path / "state"}"\n{body}')
    return path


def test_watches_of_one_source_share_it_with_their_routes_together() -> None:
    found = watched_sources([
        Watch("/var/log/auth.log", failure="SSH_AUTH"),
        Watch("journal", failure="SSH_AUTH", success="SSH_AUTH"),
        Watch("/var/log/auth.log", success="SSH_OK"),
        Watch("-", failure="PIPE"),
    ])  # fmt: skip
    assert [(w.key, w.lists) for w in found] == [
        ("file:/var/log/auth.log", ("SSH_AUTH", "SSH_OK")),
        ("journal", ("SSH_AUTH",)),
        ("stdin", ("PIPE",)),
    ]
    assert found[0].routes == (Route(Evidence.AUTH_FAILURE, "SSH_AUTH", Action.ADD),
                               Route(Evidence.AUTH_SUCCESS, "SSH_OK", Action.REMOVE))  # fmt: skip


def test_one_source_read_by_two_parsers_is_refused() -> None:
    with pytest.raises(ConfigError, match="one source, one parser"):
        watched_sources([Watch("/var/log/auth.log", failure="A", origin="x.toml:3"),
                         Watch("/var/log/auth.log", parser="dropbear", failure="B")])  # fmt: skip


def test_lines_appended_to_a_watched_file_ban_without_a_packet(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("Mar 14 10:00:00 web1 sshd[1]: Server listening on 0.0.0.0 port 22.\n")
    config = load_config(config_file(tmp_path, f'source = "{log}"\nfailure = "SSH_AUTH"'))
    clock = FakeClock(start_ns=10**12, wall_origin_ns=time.time_ns() - 10**12)
    backend = MemoryBanBackend()
    daemon = Daemon(
        DaemonConfig(list(config.rules), sources=source_specs(config)), clock=clock,
        runner=lambda argv: (0, ""), backend_factory=lambda case: backend,
    )  # fmt: skip
    daemon._setup_offload()
    daemon.open_sources()
    assert [w.spec.key for w in daemon.sources] == [f"file:{log}"]
    with log.open("a") as out:  # only new lines count: the old one is before the start
        stamp = time.strftime("%b %e %H:%M:%S")  # now, in local time as syslog writes it
        for port in range(5):
            out.write(f"{stamp} web1 sshd[9]: Failed password for root from {A} "
                      f"port {4000 + port} ssh2\n")  # fmt: skip
    assert daemon.read_source(daemon.sources[0]) == 5
    assert daemon.enforcer is not None
    ban = daemon.enforcer.active[4, int(A)]
    assert 598 <= ban.timeout_s <= 600  # the five stamps are this second's
    daemon.close_sources()


def test_dry_run_lists_the_watched_sources_and_the_lists_they_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, 'source = "/var/log/auth.log"\nfailure = "SSH_AUTH"\n'
                         'success = "SSH_AUTH"', 'source = "journal"\nfailure = "SSH_AUTH"')  # fmt: skip
    assert main(["run", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    watch_lines = [line for line in out if line.startswith(("# watch", "#   an event"))]
    assert watch_lines == [
        "# watch file /var/log/auth.log (sshd): failure: +SSH_AUTH, success: -SSH_AUTH",
        "#   an event that makes the rule on SSH_AUTH match bans at once, no packet needed",
        "# watch the journal (sshd): failure: +SSH_AUTH",
        "#   an event that makes the rule on SSH_AUTH match bans at once, no packet needed",
    ]
    assert not (tmp_path / "state").exists()


def test_a_list_no_rule_holds_is_a_warning_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = config_file(tmp_path, 'source = "/var/log/auth.log"\nfailure = "SSH_TYPO"')
    with caplog.at_level(logging.WARNING, logger="recentd.run"):
        assert main(["run", "--config", str(config), "--dry-run"]) == 0
    assert [record.getMessage() for record in caplog.records] == [
        "[[watch]] /var/log/auth.log: no rule holds list SSH_TYPO; its events are written "
        "nowhere (the kernel would have no /proc/net/xt_recent file for it)"
    ]
    loaded = load_config(config)
    daemon = Daemon(DaemonConfig(list(loaded.rules)), runner=lambda argv: (0, ""))
    assert len(unheld_lists(daemon, loaded)) == 1
