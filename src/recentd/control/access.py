"""Who may read or write a table: the kernel's /proc permission check, per table.

Rules (as ``generic_permission`` applies them to ``/proc/net/xt_recent/NAME``,
whose mode, owner and group come from ``ip_list_perms/uid/gid``):

1. The peer's class is *owner* if its uid is the table's uid, else *group* if its
   gid is the table's gid, else *other*; only that class's bits count.
2. uid 0 may always read and write (CAP_DAC_OVERRIDE), whatever the mode.

The peer is known by ``SO_PEERCRED``, which gives one gid: supplementary groups
are not consulted (reading them from ``/proc/PID/status`` would race with the pid).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from recentd.recent import ModuleParams

_READ, _WRITE = 4, 2


@dataclass(frozen=True, slots=True)
class Peer:
    """The process at the other end of a control connection."""

    pid: int
    uid: int
    gid: int

    @classmethod
    def of(cls, sock: socket.socket) -> Peer:
        """The credentials the kernel recorded when ``sock``'s peer connected."""
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return cls(pid, uid, gid)


#: The daemon itself, for in-process callers and tests.
ROOT = Peer(pid=0, uid=0, gid=0)


def may_read(params: ModuleParams, peer: Peer) -> bool:
    return _allowed(params, peer, _READ)


def may_write(params: ModuleParams, peer: Peer) -> bool:
    return _allowed(params, peer, _WRITE)


def _allowed(params: ModuleParams, peer: Peer, bit: int) -> bool:
    if peer.uid == 0:
        return True
    if peer.uid == params.ip_list_uid:
        shift = 6
    elif peer.gid == params.ip_list_gid:
        shift = 3
    else:
        shift = 0
    return bool((params.ip_list_perms >> shift) & bit)
