"""``recentd ctl`` in-process against a test daemon: command line in, output out."""

from __future__ import annotations

import json

import pytest

from recentd.cli.main import main

from .conftest import NOW


def ctl(daemon, *argv):
    command, *rest = argv
    return main(["ctl", command, "--socket", str(daemon.server.path), *rest])


def test_write_then_show_prints_the_proc_listing(daemon, capsys):
    assert ctl(daemon, "write", "SSH", "+10.77.0.2") == 0
    assert ctl(daemon, "write", "SSH", "+fd77::2") == 0
    assert ctl(daemon, "show", "SSH") == 0
    assert capsys.readouterr().out == (
        f"src=10.77.0.2 ttl: 0 last_seen: {NOW} oldest_pkt: 1 {NOW}\n"
        f"src=fd77:0000:0000:0000:0000:0000:0000:0002 ttl: 0 last_seen: {NOW} "
        f"oldest_pkt: 1 {NOW}\n"
    )


def test_show_json_is_a_record_a_script_can_use(daemon, capsys):
    clock = daemon.server.service.clock.__self__  # the FakeClock whose now_ticks it is
    ctl(daemon, "write", "SSH", "+10.77.0.2")
    clock.advance(5)
    ctl(daemon, "write", "SSH", "+10.77.0.2")
    ctl(daemon, "write", "SSH", "+fd77::2")
    clock.advance(0.5)  # the listing's moment
    assert ctl(daemon, "show", "SSH", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "table": "SSH",
        "time": "2026-12-06T23:33:20.123Z",
        "entries": [
            {"addr": "10.77.0.2", "family": 4, "ttl": 0, "hits": 2,
             "last_seen_age_s": 0.5, "last_seen": "2026-12-06T23:33:19.623Z",
             "stamps": [{"age_s": 5.5, "time": "2026-12-06T23:33:14.623Z"},
                        {"age_s": 0.5, "time": "2026-12-06T23:33:19.623Z"}]},
            {"addr": "fd77::2", "family": 6, "ttl": 0, "hits": 1,
             "last_seen_age_s": 0.5, "last_seen": "2026-12-06T23:33:19.623Z",
             "stamps": [{"age_s": 0.5, "time": "2026-12-06T23:33:19.623Z"}]},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    "placement",
    [
        lambda sock: ["--socket", sock, "ctl", "status"],  # before the command, as git -C
        lambda sock: ["ctl", "--socket", sock, "status"],  # as fail2ban-client -s
        lambda sock: ["ctl", "status", "--socket", sock],  # after the command
        lambda sock: ["--socket", "/nonexistent.sock", "ctl", "status", "--socket", sock],
    ],
    ids=["global", "ctl", "command", "later-wins"],
)
def test_the_socket_goes_anywhere(daemon, capsys, placement):
    assert main(placement(str(daemon.server.path))) == 0
    assert "tables: 2, entries: 0, hz: 250" in capsys.readouterr().out


def test_the_socket_from_the_environment(daemon, capsys, monkeypatch):
    monkeypatch.setenv("RECENTD_SOCKET", str(daemon.server.path))
    assert main(["ctl", "status"]) == 0
    assert "tables: 2" in capsys.readouterr().out


def test_a_flag_beats_the_environment(daemon, capsys, monkeypatch, public_dir):
    monkeypatch.setenv("RECENTD_SOCKET", str(public_dir / "none.sock"))
    assert main(["--socket", str(daemon.server.path), "ctl", "status"]) == 0
    capsys.readouterr()
    assert main(["ctl", "status"]) == 1
    assert "none.sock" in capsys.readouterr().err


def test_a_refused_write_exits_2_with_errno_and_message(daemon, capsys):
    assert ctl(daemon, "write", "SSH", "+1.2.3") == 2
    assert capsys.readouterr().err == (
        "recentd: SSH: write '+1.2.3' refused: EINVAL (not an IPv4 address)\n"
    )


def test_unknown_table_exits_2(daemon, capsys):
    assert ctl(daemon, "show", "NOPE") == 2
    assert capsys.readouterr().err == (
        "recentd: NOPE: show refused: ENOENT (no table named 'NOPE')\n"
    )


def test_list_and_status(daemon, capsys):
    ctl(daemon, "write", "WEB", "+1.1.1.1")
    assert ctl(daemon, "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "NAME                  ENTRIES      MAX  RING  MODE  UID   GID",
        "SSH                         0      100    32  0600  0     0",
        "WEB                         1      100    32  0644  0     0",
    ]
    assert ctl(daemon, "status") == 0
    out = capsys.readouterr().out
    assert "tables: 2, entries: 1, hz: 250" in out


def test_no_daemon_is_one_line_and_exit_1(public_dir, capsys):
    status = main(["ctl", "list", "--socket", str(public_dir / "none.sock")])
    assert status == 1
    assert capsys.readouterr().err == (
        f"recentd: recentd is not running (no daemon listening on {public_dir / 'none.sock'})\n"
    )


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["ctl", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "recentd ctl write SSH +192.0.2.7" in out
    assert "recentd ctl show SSH" in out


# Spec §9.15 through the command line: each LINE is one write on a fresh file, as
# `echo -n LINE > /proc/net/xt_recent/SSH` would be.
REFUSED_LINES = [
    "x", "clear", "+1.2.3", "+1.2.3.4 ", "+ 1.2.3.4", "+1.2.3.256", "+1.2.3.4.5",
    "+0x1.2.3.4", "+fd77::zz", "+", "+1.2.3.9\nfd77::1",
]  # fmt: skip


@pytest.mark.parametrize("line", REFUSED_LINES)
def test_spec_9_15_refused_lines(daemon, capsys, line):
    assert ctl(daemon, "write", "SSH", line) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"recentd: SSH: write {line!r} refused: EINVAL")
    assert ctl(daemon, "show", "SSH") == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("line", "listed"),
    [
        ("+1.2.3.4", ["1.2.3.4"]),
        ("+1.2.3.5\n", ["1.2.3.5"]),
        ("+001.002.003.006", ["1.2.3.6"]),
        ("-9.9.9.9", []),
        ("/garbage", []),
        ("+1.2.3.7\n+1.2.3.8\n", ["1.2.3.7"]),  # only the first address of a write
        ("+fd77::1", ["fd77:0000:0000:0000:0000:0000:0000:0001"]),
    ],
)
def test_spec_9_15_accepted_lines(daemon, capsys, line, listed):
    assert ctl(daemon, "write", "SSH", line) == 0
    capsys.readouterr()
    assert ctl(daemon, "show", "SSH") == 0
    out = capsys.readouterr().out
    assert [row.split()[0].removeprefix("src=") for row in out.splitlines()] == listed


def test_minus_and_flush_through_the_cli(daemon, capsys):
    for line in ("+10.0.0.1", "+10.0.0.2", "-10.0.0.1"):
        assert ctl(daemon, "write", "SSH", line) == 0
    assert ctl(daemon, "show", "SSH") == 0
    assert [row.split()[0] for row in capsys.readouterr().out.splitlines()] == ["src=10.0.0.2"]
    assert ctl(daemon, "write", "SSH", "/") == 0
    assert ctl(daemon, "show", "SSH") == 0
    assert capsys.readouterr().out == ""
