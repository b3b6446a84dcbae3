"""A real ``redis-server`` (or ``valkey-server``) for the fleet's tests, started by the tests
themselves on a private Unix socket in a temporary directory, with ACLs on: the default
user is off, and each host has its own user allowed only the fleet's keys and the
commands a member needs. Stopped and removed even when a test fails."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: What a member needs (docs/fleet.md, "Security"); nothing else.
MEMBER_COMMANDS = ("-@all +ping +hello +auth +client|setname +multi +exec "
                   "+xadd +xread +xrange +xrevrange +hset +hgetall")  # fmt: skip
HOSTS = {"host-a": "~recentd:*", "host-b": "~recentd:*", "host-c": "~recentd:*",
         "host-d": "~recentd:*", "intruder": "~other:*"}  # fmt: skip


@dataclass
class Store:
    """One store process: its socket, its directory, and how to stop and start it again."""

    program: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def password_file(self, host: str) -> Path:
        path = self.directory / f"{host}.password"
        if not path.exists():
            path.write_text(f"pw-{host}\n")
            path.chmod(0o600)
        return path

    def _config(self) -> Path:
        lines = ["port 0", f"unixsocket {self.socket}", "unixsocketperm 700",
                 f"dir {self.directory}", 'save ""', "appendonly yes", "appendfsync always",
                 "user default off"]  # fmt: skip
        for host, keys in HOSTS.items():
            self.password_file(host)
            lines.append(f"user {host} on >pw-{host} resetkeys {keys} resetchannels "
                         f"{MEMBER_COMMANDS}")  # fmt: skip
        path = self.directory / "redis.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        self.process = subprocess.Popen([self.program, str(self._config())],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.program} did not start (see {self.directory})")
            time.sleep(0.01)

    def _listening(self) -> bool:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(self.socket))
            except OSError:
                return False
        return True

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.socket.unlink(missing_ok=True)


def _store(program: str, tmp_path: Path) -> Iterator[Store]:
    path = shutil.which(program)
    if path is None:
        reason = f"{program} is not installed"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    store = Store(path, tmp_path / program)
    store.directory.mkdir()
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(params=["redis-server", "valkey-server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store, once per server program (Valkey is not in Debian 12: skipped, said why)."""
    yield from _store(request.param, tmp_path)
