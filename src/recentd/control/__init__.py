"""Control of a running daemon: the protocol, its server, client, mount and systemd glue.

For the daemon's main loop (one thread, one ``selectors`` selector)::

    service = Service(tables, clock=now_ticks, after_write=make_durable,
                      state=store.status)
    server = ControlServer(config.socket, service)
    server.register(selector)          # key.data(mask) is the handler to call
    mounted = mount(config.mount, config.socket)   # optional: FUSE, its own thread
    ...
    mounted.close(); server.close()

Modules: :mod:`~recentd.control.protocol` (the wire), :mod:`~recentd.control.dispatch`
(requests → replies, pure), :mod:`~recentd.control.access` (per-table permissions),
:mod:`~recentd.control.server`, :mod:`~recentd.control.client`,
:mod:`~recentd.control.mount` (FUSE), :mod:`~recentd.control.systemd` (sd_notify).

The dispatch function is :func:`recentd.control.dispatch.dispatch` (its module's name
would shadow it here). Names are imported on first use (PEP 562), so ``recentd ctl``
loads the client and the protocol, not the server, the mount and the tables they serve.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recentd.control.access import ROOT, Peer
    from recentd.control.client import ControlClient
    from recentd.control.dispatch import Context, Service
    from recentd.control.protocol import PROTOCOL_VERSION
    from recentd.control.server import DEFAULT_SOCKET, ControlServer

_HOMES = {
    "ROOT": "access", "Peer": "access", "ControlClient": "client", "Context": "dispatch",
    "Service": "dispatch", "PROTOCOL_VERSION": "protocol",
    "DEFAULT_SOCKET": "server", "ControlServer": "server",
}  # fmt: skip

__all__ = [
    "DEFAULT_SOCKET",
    "PROTOCOL_VERSION",
    "ROOT",
    "Context",
    "ControlClient",
    "ControlServer",
    "Peer",
    "Service",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'recentd.control' has no attribute {name!r}")
    return getattr(importlib.import_module(f"recentd.control.{home}"), name)
