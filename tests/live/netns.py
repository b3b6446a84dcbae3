"""The shared testbed (:mod:`recentd.live.netns`), the repository root, and a runner of
Python code in a throw-away network namespace."""

from __future__ import annotations

import os
import random
import subprocess
import sys
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

__all__ = ["CLIENT4", "CLIENT6", "OTHER4", "OTHER6", "REPO", "SERVER4", "SERVER6", "Testbed",
           "python_in_namespace", "sh"]


def python_in_namespace(prefix: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with this checkout's recentd inside a fresh network namespace of its own
    (named from ``prefix``, unique), deleted afterwards even on failure; asserts it exited 0.
    """
    ns = f"{prefix}-{os.getpid()}-{random.randrange(1 << 24):06x}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            capture_output=True, text=True, check=False, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert done.returncode == 0, done.stderr
    return done
