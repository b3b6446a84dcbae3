"""Every built-in default of recentd's configuration, stated once.

:mod:`recentd.config` (flags, TOML keys, ``--help``), the daemon, the control server and
client, and the state store all take their defaults from here; nothing else writes one
of these values down (``grep`` for the literal finds only this file and docs).
"""

from __future__ import annotations

from pathlib import Path

from recentd.recent.ticks import DEFAULT_HZ

#: Where ``recentd run`` listens and ``recentd ctl`` connects.
SOCKET = Path("/run/recentd/control.sock")
#: Where the snapshot, the journal and the sources' checkpoints live.
STATE_DIR = Path("/var/lib/recentd")
#: The first of the NFQUEUE numbers the hooks use (one per conntrack state).
QUEUE_NUM = 0
#: Ticks per second of the table stamps: Debian's kernel HZ (the core's own default).
HZ = DEFAULT_HZ

__all__ = ["HZ", "QUEUE_NUM", "SOCKET", "STATE_DIR"]
