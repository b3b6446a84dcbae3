"""Counting against the shared generator's ground truth: per address, our failures
equal its ``attempts`` count exactly, in both of its formats.

The generator (../shared/bench/gen_authlog.py) writes bursts, slow attackers, IPv6
rotators, scanners, banner grabs, legitimate users who mistype, and user names that
inject ``from <victim>``; its truth counts every ``Failed`` line once and a
pre-auth connection with a user and no ``Failed`` line once at its close.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from recentd.logs import Outcome
from tests.shared import GEN_AUTHLOG

from .helpers import events

GENERATOR = GEN_AUTHLOG

pytestmark = pytest.mark.skipif(
    not GENERATOR.is_file(), reason=f"the shared generator is not at {GENERATOR}"
)


def _generate(tmp_path: Path, fmt: str, seed: int, lines: int) -> tuple[list[str], dict]:
    out = tmp_path / f"auth-{fmt}.log"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--lines", str(lines), "--out", str(out),
         "--format", fmt, "--seed", str(seed), "--start", "2025-11-20T00:00:00"],
        check=True, capture_output=True,
    )
    truth = json.loads(out.with_name(out.name + ".truth.json").read_text())
    return out.read_text().splitlines(), truth


@pytest.mark.parametrize(("fmt", "seed"), [("classic", 11), ("rfc3339", 12)])
def test_failures_per_address_equal_the_generators_attempts(
    tmp_path: Path, fmt: str, seed: int
) -> None:
    lines, truth = _generate(tmp_path, fmt, seed, 20_000)
    counted: Counter[str] = Counter(
        str(e.address) for e in events(lines, year=2025) if e.outcome is Outcome.FAILURE
    )
    expected = {a: v["attempts"] for a, v in truth["addresses"].items() if v["attempts"]}
    assert truth["edge_counts"].get("spoof", 0) > 0, "the sample has no injected user names"
    differences = {
        address: (expected.get(address, 0), counted.get(address, 0))
        for address in set(expected) | set(counted)
        if expected.get(address, 0) != counted.get(address, 0)
    }
    assert differences == {}, "address: (truth, ours)"
    assert sum(counted.values()) == truth["ban_counts"]["attempts"]["counted_failures"]


def test_successes_are_the_legitimate_logins(tmp_path: Path) -> None:
    lines, truth = _generate(tmp_path, "classic", 13, 5_000)
    successes = {str(e.address) for e in events(lines, year=2025) if e.outcome is Outcome.SUCCESS}
    roles = {truth["addresses"][a]["role"] for a in successes}
    assert successes and roles <= {"legit", "legit_office"}


def test_event_times_are_the_lines_own(tmp_path: Path) -> None:
    lines, _ = _generate(tmp_path, "rfc3339", 14, 2_000)
    found = events(lines)
    first = min(e.time for e in found if e.time is not None)
    assert first >= 1_763_596_800 * 10**9  # 2025-11-20T00:00:00Z, the --start
    assert any(e.time is not None and e.time % 10**9 for e in found)  # microseconds kept
