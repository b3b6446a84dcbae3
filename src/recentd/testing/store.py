"""A real ``redis-server`` (or ``valkey-server``) for the fleet's tests and benchmark,
started on a private Unix socket in a directory of the caller's, with ACLs on: the
default user is off, each host has its own user (:func:`recentd.fleet.settings.acl_rule`),
persistence is on (``appendonly``), so a restart keeps the stream as production would."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recentd.fleet.settings import acl_rule


@dataclass
class Store:
    """One store process: ``program`` run in ``directory``; ``users``: host → key prefix
    (a host given another prefix than the fleet's is refused by its ACL)."""

    program: str
    directory: Path
    users: Mapping[str, str] = field(default_factory=dict)
    #: ``always`` (the tests: a restart keeps every entry) or Redis's default ``everysec``.
    appendfsync: str = "always"
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def password_file(self, host: str) -> Path:
        """The host's password file (root's, mode 0600), written on first use."""
        path = self.directory / f"{host}.password"
        if not path.exists():
            path.write_text(f"pw-{host}\n")
            path.chmod(0o600)
        return path

    def _config(self) -> Path:
        lines = ["port 0", f"unixsocket {self.socket}", "unixsocketperm 700",
                 f"dir {self.directory}", 'save ""', "appendonly yes",
                 f"appendfsync {self.appendfsync}",
                 "user default off"]  # fmt: skip
        for host, prefix in self.users.items():
            self.password_file(host)
            lines.append(f"user {acl_rule(host, f'pw-{host}', prefix)}")
        path = self.directory / "redis.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        """Start the store and wait until it accepts connections (10 s at most).

        Raises:
            RuntimeError: it exited or did not listen in time (its log is not kept).
        """
        quiet = subprocess.DEVNULL
        self.process = subprocess.Popen([self.program, str(self._config())], stdout=quiet,
                                        stderr=quiet)  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.program} did not start (config in {self.directory})")
            time.sleep(0.01)

    def _listening(self) -> bool:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(self.socket))
            except OSError:
                return False
        return True

    def stop(self) -> None:
        """Stop the store (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
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
