"""The hook as pam_exec runs it, and daemons for it to talk to: real, absent, hung."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

import pytest

import recentd
from recentd.control import Service
from recentd.observation import Observation
from tests.control.conftest import make_service
from tests.control.loop import TestLoop

#: The sources under test (this checkout's, not an installed copy's).
SRC = Path(recentd.__file__).resolve().parent.parent


def write_hook_program(directory: Path) -> Path:
    """An executable like the ``recentd-pam-hook`` console script pip writes, running the
    sources under test whatever the environment (pam_exec passes only the PAM one)."""
    program = directory / "recentd-pam-hook"
    program.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "from recentd.pam.hook import main\n"
        "sys.exit(main())\n"
    )
    program.chmod(0o755)
    return program


@pytest.fixture
def work_dir():
    """A directory every user can traverse: pam_exec and its child may run as anyone."""
    path = Path(tempfile.mkdtemp(prefix="recentd-pam-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hook_program(work_dir) -> Path:
    return write_hook_program(work_dir)


class Daemon:
    """A control server on a real socket, collecting the observations it is told."""

    def __init__(self, socket_path: Path) -> None:
        self.seen: list[Observation] = []
        self.service: Service = make_service()
        self.service.observe = self.seen.append
        self.loop = TestLoop(socket_path, self.service).start()
        self.socket_path = socket_path
        self.running = True

    def stop(self) -> None:
        """Stop as ``systemctl stop recentd`` would: the socket goes with the daemon."""
        if self.running:
            self.running = False
            self.loop.stop()


@pytest.fixture
def daemon(work_dir):
    running = Daemon(work_dir / "control.sock")
    yield running
    running.stop()


class Hung:
    """A daemon that takes connections and never answers (``accepting=False``: it never
    even accepts; the kernel's backlog completes the connect)."""

    def __init__(self, socket_path: Path, *, accepting: bool) -> None:
        self.socket_path = socket_path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(os.fspath(socket_path))
        self._listener.listen(16)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        if accepting:
            self._thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                self._held.append(self._listener.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for sock in self._held:
            sock.close()
        self._listener.close()


@pytest.fixture(params=["accepts", "never_accepts"])
def hung_daemon(work_dir, request):
    hung = Hung(work_dir / "control.sock", accepting=request.param == "accepts")
    yield hung
    hung.close()
