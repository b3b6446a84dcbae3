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
"""

from recentd.control.access import ROOT, Peer
from recentd.control.client import ControlClient
from recentd.control.dispatch import Context, Service, dispatch
from recentd.control.protocol import PROTOCOL_VERSION
from recentd.control.server import DEFAULT_SOCKET, ControlServer

__all__ = [
    "DEFAULT_SOCKET",
    "PROTOCOL_VERSION",
    "ROOT",
    "Context",
    "ControlClient",
    "ControlServer",
    "Peer",
    "Service",
    "dispatch",
]
