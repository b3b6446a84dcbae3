"""The real PAM stack: pamtester drives a throw-away service whose session stack runs the
hook through pam_exec, exactly as sshd's would.

The service file goes in /etc/pam.d under a unique name and is removed even on failure;
libpam-wrapper (PAM_WRAPPER_SERVICE_DIR) runs the same stack without touching /etc/pam.d.
It runs as root too: the hook's interpreter here lives under /root (pyenv), which no
other user may execute, and only root may report logins anyway (pam_exec under sshd
runs as root; the refusal of anyone else is a dispatch transcript, tests/control).

The hook is the stack's only session module, so ``optional`` does not hide its exit
status: a hook that failed would fail the session, and pamtester with it.

The bound: each hook run ends within DEADLINE_S + WATCHDOG_GRACE_S (250 ms) of its start
(docs/pam.md); a pamtester open+close runs it twice, plus pamtester's and the
interpreter's start. The asserted bound adds a generous margin because CI machines are
loaded (2 cores, parallel jobs); the measured time is printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from recentd.observation import Evidence, Origin
from recentd.pam import hook

PAM_DIR = Path("/etc/pam.d")
#: Debian installs it in the multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu …).
PAM_WRAPPER = next(Path("/usr/lib").glob("*/libpam_wrapper.so"), Path("/usr/lib/libpam_wrapper.so"))
HOOK_RUN_S = hook.DEADLINE_S + hook.WATCHDOG_GRACE_S
#: Two hook runs (open, close) at their bound, and 1.5 s of slack for a loaded machine.
PAMTESTER_BOUND_S = 2 * HOOK_RUN_S + 1.5

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="pam_exec tests run as root (CI is)")


def service_text(program: Path, socket_path: Path, log: Path) -> str:
    return (
        "auth sufficient pam_permit.so\n"
        "account sufficient pam_permit.so\n"
        f"session optional pam_exec.so quiet log={log} {program} --socket {socket_path}\n"
    )


@pytest.fixture
def pam_service(hook_program, work_dir):
    """Make a PAM service for a socket path; yields a factory, removes the files after."""
    made: list[Path] = []

    def make(socket_path: Path) -> str:
        name = f"recentd-test-{uuid.uuid4().hex[:12]}"
        path = PAM_DIR / name
        path.write_text(service_text(hook_program, socket_path, work_dir / "hook.log"))
        made.append(path)
        return name

    yield make
    for path in made:
        path.unlink(missing_ok=True)


def pamtester(service: str, *, env: dict[str, str] | None = None):
    """``pamtester -I rhost=192.0.2.7 -I tty=ssh SERVICE alice open_session close_session``."""
    assert shutil.which("pamtester"), "pamtester is missing: scripts/setup.sh installs it"
    argv = ["pamtester", "-v", "-I", "rhost=192.0.2.7", "-I", "tty=ssh", service, "alice",
            "open_session", "close_session"]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=30, check=False, cwd="/"
    )
    return time.monotonic() - started, done


def hook_log(work_dir: Path) -> str:
    log = work_dir / "hook.log"
    return log.read_text() if log.exists() else ""


def test_a_login_and_its_end_reach_the_daemon(pam_service, daemon, work_dir):
    service = pam_service(daemon.socket_path)
    elapsed, done = pamtester(service)
    assert done.returncode == 0, done.stderr
    assert "successfully opened a session" in done.stdout
    assert [(o.evidence, str(o.address), o.kind, o.user, o.origin, o.detail) for o in daemon.seen] == [
        (Evidence.LOGIN, "192.0.2.7", "open", "alice", Origin("pam", service, "user alice"), "tty ssh"),
        (Evidence.LOGIN, "192.0.2.7", "close", "alice", Origin("pam", service, "user alice"), "tty ssh"),
    ]  # fmt: skip
    assert "recentd-pam-hook:" not in hook_log(work_dir)
    print(f"pamtester open+close with the daemon up: {elapsed * 1000:.0f} ms")


def test_the_login_is_not_delayed_with_the_socket_absent(pam_service, work_dir):
    elapsed, done = pamtester(pam_service(work_dir / "absent.sock"))
    assert done.returncode == 0, done.stderr
    assert "session has successfully been closed" in done.stdout
    assert hook_log(work_dir).count("not told: No such file or directory") == 2
    assert elapsed < PAMTESTER_BOUND_S, f"{elapsed:.3f} s"
    print(f"pamtester, socket absent: {elapsed * 1000:.0f} ms (bound {PAMTESTER_BOUND_S} s)")


def test_the_login_is_not_delayed_with_the_daemon_stopped(pam_service, daemon, work_dir):
    daemon.stop()
    elapsed, done = pamtester(pam_service(daemon.socket_path))
    assert done.returncode == 0, done.stderr
    assert hook_log(work_dir).count("not told") == 2
    assert daemon.seen == []
    assert elapsed < PAMTESTER_BOUND_S, f"{elapsed:.3f} s"
    print(f"pamtester, daemon stopped: {elapsed * 1000:.0f} ms (bound {PAMTESTER_BOUND_S} s)")


def test_the_login_is_not_held_by_a_daemon_that_never_answers(pam_service, hung_daemon, work_dir):
    elapsed, done = pamtester(pam_service(hung_daemon.socket_path))
    assert done.returncode == 0, done.stderr
    assert "session has successfully been closed" in done.stdout
    log = hook_log(work_dir)
    assert log.count("not told: timed out") + log.count("deadline reached") == 2, log
    assert 2 * hook.DEADLINE_S <= elapsed < PAMTESTER_BOUND_S, f"{elapsed:.3f} s"
    print(f"pamtester, hung daemon: {elapsed * 1000:.0f} ms (bound {PAMTESTER_BOUND_S} s)")


# ---- libpam-wrapper: the same stack without /etc/pam.d -------------------------------


def wrapped_env(service_dir: Path) -> dict[str, str]:
    assert PAM_WRAPPER.exists(), "libpam-wrapper is missing: scripts/setup.sh installs it"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LD_PRELOAD": os.fspath(PAM_WRAPPER),
        "PAM_WRAPPER": "1",
        "PAM_WRAPPER_SERVICE_DIR": os.fspath(service_dir),
    }


@pytest.fixture
def wrapped_service(hook_program, work_dir):
    def make(socket_path: Path) -> Path:
        service_dir = work_dir / "pam.d"
        service_dir.mkdir(mode=0o755, exist_ok=True)
        (service_dir / "recentd-wrapped").write_text(
            service_text(hook_program, socket_path, work_dir / "hook.log")
        )
        return service_dir

    return make


def test_pam_wrapper_stack_tells_the_daemon(wrapped_service, daemon):
    env = wrapped_env(wrapped_service(daemon.socket_path))
    _, done = pamtester("recentd-wrapped", env=env)
    assert done.returncode == 0, done.stderr
    assert [(str(o.address), o.kind, o.origin.name) for o in daemon.seen] == [
        ("192.0.2.7", "open", "recentd-wrapped"),
        ("192.0.2.7", "close", "recentd-wrapped"),
    ]
