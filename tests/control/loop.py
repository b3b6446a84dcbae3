"""A tiny daemon loop for tests: the way ``recentd run`` plugs the server in.

One thread owns a selector, the server and the tables; nothing else touches the
tables while it runs. ``stop()`` wakes it through a pipe registered like any
adapter (``key.data(mask)``).
"""

from __future__ import annotations

import os
import selectors
import threading
from pathlib import Path

from recentd.control import ControlServer, Service


class TestLoop:
    __test__ = False

    def __init__(self, socket_path: Path, service: Service) -> None:
        self.selector = selectors.DefaultSelector()
        self.server = ControlServer(socket_path, service)
        self.server.register(self.selector)
        self._wake_r, self._wake_w = os.pipe()
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="test-daemon", daemon=True)

    def _on_wake(self, mask: int) -> None:
        os.read(self._wake_r, 64)
        self._running = False

    def _run(self) -> None:
        while self._running:
            for key, mask in self.selector.select(1.0):
                key.data(mask)

    def start(self) -> TestLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join(10)
        self.server.close()
        self.selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
