"""recentd-pam-hook: a session event in, one Login request out, exit 0 within the bound.

In-process transcripts for what the hook sends; the program itself, run as pam_exec
runs it (a fresh process, only the PAM environment), for what it never does: fail or
wait past its deadline.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
import tomllib

import pytest

from recentd import defaults
from recentd.control.protocol import PROTOCOL_VERSION, Login, LoginResult, decode_request, encode
from recentd.errors import ControlError
from recentd.observation import Evidence, Origin
from recentd.pam import hook
from recentd.pam.hook import login_request, main

from .conftest import SRC

PAM_ENV = {
    "PAM_TYPE": "open_session",
    "PAM_RHOST": "192.0.2.7",
    "PAM_USER": "alice",
    "PAM_SERVICE": "sshd",
    "PAM_TTY": "ssh",
    "PAM_RUSER": "",
}
#: DEADLINE_S + WATCHDOG_GRACE_S (250 ms) after main starts, plus the interpreter's
#: start; the margin is generous because CI machines are loaded (2 cores, parallel jobs).
PROCESS_BOUND_S = hook.DEADLINE_S + hook.WATCHDOG_GRACE_S + 0.75


def test_the_request_is_the_protocols_login():
    line = login_request(PAM_ENV)
    assert line == encode(Login("192.0.2.7", "alice", "sshd", "open", "ssh"))
    assert hook.PROTOCOL_VERSION == PROTOCOL_VERSION


def test_the_reply_it_waits_for_is_the_protocols():
    assert encode(LoginResult("192.0.2.7", "open")).startswith(b'{"v":1,"type":"LoginResult"')


@pytest.mark.parametrize(
    ("pam_type", "event"), [("open_session", "open"), ("close_session", "close")]
)
def test_session_events(pam_type, event):
    request = decode_request(login_request({**PAM_ENV, "PAM_TYPE": pam_type}))
    assert request == Login("192.0.2.7", "alice", "sshd", event, "ssh")


@pytest.mark.parametrize("pam_type", ["auth", "account", "password", "", "open"])
def test_other_module_types_send_nothing(pam_type):
    assert login_request({**PAM_ENV, "PAM_TYPE": pam_type}) is None


def test_no_address_sends_nothing():
    assert login_request({**PAM_ENV, "PAM_RHOST": "client.example.org"}) is None


def test_garbage_in_the_names_still_gives_a_valid_request():
    env = {**PAM_ENV, "PAM_USER": 'a"l\\i\nce\udcff\U0001f600', "PAM_SERVICE": "s" * 1000}
    request = decode_request(login_request(env))
    assert isinstance(request, Login)
    assert request.user == 'a"l\\i\nce\ufffd\U0001f600'
    assert request.service == "s" * hook.MAX_FIELD


def test_told_to_a_running_daemon(daemon, capsys):
    assert main(["--socket", str(daemon.socket_path)], PAM_ENV) == 0
    [seen] = daemon.seen
    assert (seen.evidence, seen.address, seen.origin, seen.user, seen.kind) == (
        Evidence.LOGIN, ipaddress.ip_address("192.0.2.7"), Origin("pam", "sshd", "user alice"),
        "alice", "open",
    )  # fmt: skip
    assert capsys.readouterr().err == ""


def test_a_refusal_is_reported_on_stderr_and_still_exits_0(daemon, capsys):
    env = {**PAM_ENV, "PAM_RHOST": "::ffff:192.0.2.7"}
    daemon.service.observe = _refuse
    assert main(["--socket", str(daemon.socket_path)], env) == 0
    assert "recentd refused:" in capsys.readouterr().err


def _refuse(observation):
    raise ControlError("no")


def test_even_a_bug_in_the_hook_exits_0(monkeypatch, capsys):
    def broken(environ):
        raise KeyError("PAM_TYPE")

    monkeypatch.setattr(hook, "login_request", broken)
    assert main(["--socket", "/nonexistent"], PAM_ENV) == 0
    assert "internal error, nothing sent: KeyError('PAM_TYPE')" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ("/run/recentd/control.sock", 0.2)),
        (["--socket", "/x.sock", "--deadline-ms", "50"], ("/x.sock", 0.05)),
        (["--deadline-ms", "999999"], ("/run/recentd/control.sock", 2.0)),
        (["--deadline-ms", "-5"], ("/run/recentd/control.sock", 0.2)),
        (["--frobnicate"], ("/run/recentd/control.sock", 0.2)),
    ],
)
def test_options(argv, expected):
    assert hook._options(argv) == expected


# ---- the program, as pam_exec runs it ------------------------------------------------


def run_hook(
    program, socket_path, env=PAM_ENV, *env_entries: str
) -> tuple[float, subprocess.CompletedProcess]:
    """Run the hook with exactly ``env`` (as pam_exec's execve gives it); seconds taken."""
    entries = [f"{name}={value}" for name, value in env.items()] + list(env_entries)
    started = time.monotonic()
    done = subprocess.run(
        ["env", "-i", *entries, os.fspath(program), "--socket", os.fspath(socket_path)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    return time.monotonic() - started, done


def test_program_tells_a_running_daemon(hook_program, daemon):
    elapsed, done = run_hook(hook_program, daemon.socket_path)
    assert (done.returncode, done.stderr) == (0, b"")
    assert [o.address for o in daemon.seen] == [ipaddress.ip_address("192.0.2.7")]
    print(f"hook with the daemon up: {elapsed * 1000:.0f} ms")


def test_program_with_the_socket_absent(hook_program, work_dir):
    elapsed, done = run_hook(hook_program, work_dir / "absent.sock")
    assert done.returncode == 0
    assert b"not told: No such file or directory" in done.stderr
    assert elapsed < PROCESS_BOUND_S, f"took {elapsed:.3f} s"


def test_program_with_the_daemon_stopped(hook_program, work_dir):
    path = work_dir / "stale.sock"  # a dead daemon's socket file: nobody listening
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(os.fspath(path))
    elapsed, done = run_hook(hook_program, path)
    assert done.returncode == 0
    assert b"Connection refused" in done.stderr
    assert elapsed < PROCESS_BOUND_S, f"took {elapsed:.3f} s"


def test_program_with_a_daemon_that_never_answers(hook_program, hung_daemon):
    elapsed, done = run_hook(hook_program, hung_daemon.socket_path)
    assert done.returncode == 0
    assert b"not told" in done.stderr or b"deadline reached" in done.stderr
    assert hook.DEADLINE_S <= elapsed < PROCESS_BOUND_S, f"took {elapsed:.3f} s"
    print(f"hook against a hung daemon: {elapsed * 1000:.0f} ms (bound {PROCESS_BOUND_S} s)")


def test_the_watchdog_ends_a_hook_stuck_past_its_deadline():
    # Stuck where no socket timeout reaches (a stand-in for any hang): the watchdog
    # thread ends the process, with status 0, DEADLINE + WATCHDOG_GRACE after main began.
    stuck = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from recentd.pam import hook; "
        "hook._send = lambda *args: time.sleep(30); "
        "sys.exit(hook.main(['--socket', '/nonexistent'], {'PAM_TYPE': 'open_session', "
        "'PAM_RHOST': '192.0.2.7'}))"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", stuck, os.fspath(SRC)], capture_output=True, timeout=30, check=False
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0
    assert b"deadline reached; the login goes on without recentd" in done.stderr
    assert hook.DEADLINE_S + hook.WATCHDOG_GRACE_S <= elapsed < PROCESS_BOUND_S, f"{elapsed:.3f} s"


def test_program_takes_pam_execs_rhost_not_one_from_the_user_environment(hook_program, daemon):
    # pam_exec puts the PAM environment (which pam_env may fill from the user's files)
    # first and its PAM_RHOST item after it: the later one is the one to believe.
    env = {name: value for name, value in PAM_ENV.items() if name != "PAM_RHOST"}
    _, done = run_hook(
        hook_program, daemon.socket_path, env, "PAM_RHOST=203.0.113.66", "PAM_RHOST=192.0.2.7"
    )
    assert done.returncode == 0
    assert [str(o.address) for o in daemon.seen] == ["192.0.2.7"]


def test_program_imports_nothing_heavy():
    probe = (
        "import sys, recentd.pam.hook as h; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('recentd') "
        "or m in ('socket', 'signal', 'threading', 'json', 'enum', 'dataclasses', 'ipaddress', 'typing', 're', 'collections'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": os.fspath(SRC)},
    )  # fmt: skip
    assert done.stdout.split() == [
        "recentd",
        "recentd.pam",
        "recentd.pam.address",
        "recentd.pam.hook",
    ]


def test_installed_as_a_console_script():
    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["recentd-pam-hook"] == "recentd.pam.hook:main"


def test_its_default_socket_is_the_daemons():
    assert str(defaults.SOCKET) == hook.DEFAULT_SOCKET
