"""The shared testbed (:mod:`recentd.live.netns`), plus the repository root."""

from __future__ import annotations

from pathlib import Path

from recentd.live.netns import (
    CLIENT4,
    CLIENT6,
    OTHER4,
    OTHER6,
    SERVER4,
    SERVER6,
    Testbed,
    sh,
)

REPO = Path(__file__).resolve().parents[2]

__all__ = ["CLIENT4", "CLIENT6", "OTHER4", "OTHER6", "REPO", "SERVER4", "SERVER6", "Testbed", "sh"]
