"""Persistence of the tables: a checksummed journal plus periodic snapshots.

See :mod:`recentd.state.store` for the theory of operation and the daemon's API.
"""

from recentd.state.codec import ApplyReport
from recentd.state.store import DEFAULT_STATE_DIR, STATE_VERSION, StateStore

__all__ = ["DEFAULT_STATE_DIR", "STATE_VERSION", "ApplyReport", "StateStore"]
