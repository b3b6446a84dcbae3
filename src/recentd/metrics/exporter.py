"""Serving the exposition: over HTTP (``--metrics ADDR:PORT``) and as a node_exporter
textfile (``--metrics-textfile PATH``, replaced atomically by a rename).

Rules: the HTTP server is prometheus-client's, in its own daemon thread; it only reads
(see :mod:`recentd.metrics.stats` for how reads stay safe). Process CPU and memory are
the client's process collector (``process_cpu_seconds_total``,
``process_resident_memory_bytes``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client import start_http_server as _start_http_server
from prometheus_client import write_to_textfile as _write_to_textfile

from recentd.errors import ConfigError
from recentd.metrics.collector import DaemonCollector

if TYPE_CHECKING:
    from recentd.daemon import Daemon

DEFAULT_HOST = "127.0.0.1"


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6]:PORT`` or a bare ``PORT`` (then 127.0.0.1) → (host, port).

    Raises:
        ConfigError: not an IP address and a port 1-65535.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, text
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise ConfigError("expected ADDR:PORT or PORT (ADDR an IP address)",
                          key="metrics", value=text) from None  # fmt: skip
    if not 0 < port < 65536:
        raise ConfigError("port out of range 1-65535", key="metrics", value=text)
    return host, port


def registry_for(daemon: Daemon) -> CollectorRegistry:
    """The daemon's figures and the process's, in one registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    ProcessCollector(registry=registry)
    return registry


class Exporter:
    """The daemon's metrics outputs; :meth:`tick` rewrites the textfile (daemon timer)."""

    def __init__(self, daemon: Daemon, listen: str | None, textfile: Path | None) -> None:
        self.registry = registry_for(daemon)
        self.listen = parse_listen(listen) if listen else None
        self.textfile = textfile
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> None:
        """Bind the HTTP server (if asked). Raises OSError when the port is taken."""
        if self.listen is not None:
            host, port = self.listen
            self._server, self._thread = _start_http_server(port, addr=host,
                                                            registry=self.registry)  # fmt: skip
        self.tick()

    @property
    def port(self) -> int | None:
        """The bound port (useful with port 0 in tests)."""
        return int(self._server.server_port) if self._server is not None else None

    def tick(self) -> None:
        if self.textfile is not None:
            _write_to_textfile(str(self.textfile), self.registry)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        self.tick()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
