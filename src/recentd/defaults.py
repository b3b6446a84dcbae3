"""Where recentd puts things when nobody says otherwise: each default stated once.

Imported by the command line at start, so it imports nothing.
"""

from __future__ import annotations

from pathlib import Path

#: The daemon's control socket (``recentd run --socket``, ``recentd ctl --socket``).
SOCKET = Path("/run/recentd/control.sock")
#: The daemon's state directory (snapshot, journal, source positions).
STATE_DIR = Path("/var/lib/recentd")
#: The configuration file the docs and examples name (never read unless given).
CONFIG = Path("/etc/recentd/recentd.toml")
#: Environment variables standing in for the global options.
SOCKET_ENV = "RECENTD_SOCKET"
CONFIG_ENV = "RECENTD_CONFIG"
