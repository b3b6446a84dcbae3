"""Where the team's shared material is: ``../shared`` beside the checkout (as in CI, which
lays a copy of it beside the clone). Tests that read it skip with a printed reason when
it is absent; none copies it into the repository."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_RULES = SHARED / "real-rules"
PEER_LOGS = SHARED / "peer-logs"
GEN_AUTHLOG = SHARED / "bench" / "gen_authlog.py"
