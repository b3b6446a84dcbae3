"""The FUSE mount, for real: shell commands and raw write(2)s on the table files.

Needs root and /dev/fuse (CI has both); skipped with the reason otherwise.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from recentd.control.mount import mount

from .as_user import NOBODY, run_as
from .conftest import NOW
from .test_dispatch import EINVAL_WRITES

if not Path("/dev/fuse").exists():
    pytest.skip("no /dev/fuse on this machine: the kernel lacks FUSE", allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("mounting with allow_other needs root", allow_module_level=True)


@pytest.fixture
def mounted(daemon, public_dir):
    directory = public_dir / "xt_recent"
    directory.mkdir(mode=0o755)
    handle = mount(directory, daemon.server.path)
    try:
        yield directory
    finally:
        handle.close()
        if os.path.ismount(directory):  # the test broke the mount: never leave it behind
            subprocess.run(["fusermount3", "-u", "-z", str(directory)], check=False)


def write_once(path: Path, data: bytes) -> int:
    """One write(2) on a fresh file descriptor: its return value, or -errno."""
    fd = os.open(path, os.O_WRONLY)
    try:
        return os.write(fd, data)
    except OSError as exc:
        return -exc.errno
    finally:
        os.close(fd)


def test_echo_and_cat(mounted):
    ssh = mounted / "SSH"
    subprocess.run(["sh", "-c", f"echo +1.2.3.4 > {ssh}"], check=True, timeout=30)
    subprocess.run(["sh", "-c", f"echo +fd77::2 > {ssh}"], check=True, timeout=30)
    cat = subprocess.run(["cat", str(ssh)], check=True, capture_output=True, timeout=30)
    assert cat.stdout.decode() == (
        f"src=1.2.3.4 ttl: 0 last_seen: {NOW} oldest_pkt: 1 {NOW}\n"
        f"src=fd77:0000:0000:0000:0000:0000:0000:0002 ttl: 0 last_seen: {NOW} "
        f"oldest_pkt: 1 {NOW}\n"
    )


def test_files_carry_the_tables_mode_and_owner(mounted, daemon):
    assert sorted(os.listdir(mounted)) == ["SSH", "WEB"]
    info = os.stat(mounted / "SSH")
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 0, 0)
    daemon.server.service.tables.configure("WEB", ip_list_uid=NOBODY, ip_list_perms=0o640)
    info = os.stat(mounted / "WEB")
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o640, NOBODY)


@pytest.mark.parametrize("data", EINVAL_WRITES)
def test_spec_9_15_refused_writes(mounted, data):
    assert write_once(mounted / "SSH", data) == -errno.EINVAL


@pytest.mark.parametrize(
    ("data", "result"),
    [
        (b"+1.2.3.4", 8), (b"+1.2.3.5\n", 9), (b"+001.002.003.006", 16),
        (b"-9.9.9.9", 8), (b"/garbage", 8), (b"", 0), (b"+1.2.3.4" + b"\n" * 65, 47),
    ],
)  # fmt: skip
def test_spec_9_15_accepted_writes(mounted, data, result):
    assert write_once(mounted / "SSH", data) == result


def test_one_command_per_open_file(mounted):
    fd = os.open(mounted / "SSH", os.O_WRONLY)
    try:
        assert os.write(fd, b"+1.2.3.7\n") == 9
        with pytest.raises(OSError) as caught:
            os.write(fd, b"+1.2.3.8\n")
        assert caught.value.errno == errno.ESPIPE
    finally:
        os.close(fd)
    fd = os.open(mounted / "SSH", os.O_WRONLY)
    try:
        assert os.write(fd, b"/") == 1
        assert os.write(fd, b"+1.2.3.9") == 8
        with pytest.raises(OSError) as caught:
            os.write(fd, b"/")
        assert caught.value.errno == errno.ESPIPE
    finally:
        os.close(fd)
    assert (mounted / "SSH").read_text().startswith("src=1.2.3.9 ")


def test_a_user_the_mode_does_not_allow_is_refused(mounted):
    # SSH is 0600 root, WEB 0644 root: nobody reads WEB and nothing else.
    web = mounted / "WEB"
    subprocess.run(["sh", "-c", f"echo +5.5.5.5 > {web}"], check=True, timeout=30)
    denied = subprocess.run(
        ["sh", "-c", f"echo +6.6.6.6 > {web}"],
        user=NOBODY, group=NOBODY, extra_groups=[],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert denied.returncode != 0
    assert "Permission denied" in denied.stderr

    def as_nobody():
        outcomes = []
        for path, flags in [(mounted / "SSH", os.O_RDONLY), (web, os.O_WRONLY)]:
            try:
                os.close(os.open(path, flags))
                outcomes.append("opened")
            except OSError as exc:
                outcomes.append(errno.errorcode[exc.errno])
        outcomes.append(web.read_text())
        return outcomes

    assert run_as(NOBODY, NOBODY, as_nobody) == [
        "EACCES", "EACCES", f"src=5.5.5.5 ttl: 0 last_seen: {NOW} oldest_pkt: 1 {NOW}\n",
    ]  # fmt: skip


def test_no_new_files(mounted):
    with pytest.raises(PermissionError):
        (mounted / "NEW").write_text("+1.2.3.4")


MOUNT_THEN_SLEEP = (
    "import sys, time; from pathlib import Path; from recentd.control.mount import mount;"
    "mount(Path(sys.argv[1]), Path(sys.argv[2])); print('ready', flush=True); time.sleep(60)"
)


def test_a_mount_left_by_a_killed_daemon_is_replaced(daemon, public_dir):
    directory = public_dir / "stale"
    directory.mkdir(mode=0o755)
    child = subprocess.Popen(
        [sys.executable, "-c", MOUNT_THEN_SLEEP, str(directory), str(daemon.server.path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        with pytest.raises(OSError) as caught:
            os.listdir(directory)
        assert caught.value.errno == errno.ENOTCONN
        handle = mount(directory, daemon.server.path)
        try:
            assert sorted(os.listdir(directory)) == ["SSH", "WEB"]
        finally:
            handle.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
        subprocess.run(
            ["fusermount3", "-u", "-z", str(directory)], check=False, capture_output=True
        )
