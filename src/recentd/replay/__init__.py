"""Replay: captured traffic through a rule set in virtual time (``recentd replay``).

Layout: :mod:`~recentd.replay.replayer` feeds records through connection tracking and
the engine and picks how chunks are replayed; :mod:`~recentd.replay.strategy` holds
the strategies' contract and the record-by-record one; :mod:`~recentd.replay.columns`
the fast one for floods (numpy, imported only when picked);
:mod:`~recentd.replay.summary` what a replay reports. Nothing here reads the wall
clock or a file, or touches the process (the CLI pauses the garbage collector).
"""

from __future__ import annotations

from recentd.replay.replayer import HOOKS, Evaluator, Replayer
from recentd.replay.summary import ReplaySummary, ReplayVerdict, SourceStats

__all__ = ["HOOKS", "Evaluator", "ReplaySummary", "ReplayVerdict", "Replayer", "SourceStats"]
