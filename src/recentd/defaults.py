"""Every built-in default of recentd's configuration, stated once.

:mod:`recentd.config` (flags, TOML keys, ``--help``), the command line, the daemon, the
control server and client, and the state store all take their defaults from here;
nothing else writes one of these values down (``grep`` for the literal finds only this
file and docs).

The command line reads this module at every start, so it imports nothing of recentd:
``HZ`` is the core's own default (:data:`recentd.recent.ticks.DEFAULT_HZ`), looked up
only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

#: Where ``recentd run`` listens and ``recentd ctl`` connects.
SOCKET = Path("/run/recentd/control.sock")
#: Where the snapshot, the journal and the sources' checkpoints live.
STATE_DIR = Path("/var/lib/recentd")
#: The configuration file the docs and examples name (read only when given).
CONFIG = Path("/etc/recentd/recentd.toml")
#: The first of the NFQUEUE numbers the hooks use (one per conntrack state).
QUEUE_NUM = 0
#: Environment variables standing in for the global options ``--socket`` and ``--config``.
SOCKET_ENV = "RECENTD_SOCKET"
CONFIG_ENV = "RECENTD_CONFIG"

if TYPE_CHECKING:
    #: Ticks per second of the table stamps: Debian's kernel HZ (the core's own default).
    HZ: int


def __getattr__(name: str) -> int:
    if name == "HZ":
        from recentd.recent.ticks import DEFAULT_HZ  # noqa: PLC0415 - see the module rules

        return DEFAULT_HZ
    raise AttributeError(f"module 'recentd.defaults' has no attribute {name!r}")


__all__ = ["CONFIG", "CONFIG_ENV", "HZ", "QUEUE_NUM", "SOCKET", "SOCKET_ENV", "STATE_DIR"]
