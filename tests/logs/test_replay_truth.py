"""``recentd logs replay`` against the shared generator's ground truth.

With ``--rcheck --seconds 600 --hitcount 5 -j DROP`` on the failure list (and room for
every address: ``ip_list_tot`` large), the first ban of each address is exactly the
generator's ``bans_by_policy.attempts`` (address, line, epoch), in both of its formats,
nobody else is banned, and no legitimate user's address is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recentd.cli.main import main
from tests.shared import GEN_AUTHLOG

GENERATOR = GEN_AUTHLOG
RULE = ("-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --name SSH_AUTH "
        "--rcheck --seconds 600 --hitcount 5 -j DROP")  # fmt: skip
LEGIT = {"legit", "legit_office"}

pytestmark = pytest.mark.skipif(
    not GENERATOR.is_file(), reason=f"the shared generator is not at {GENERATOR}"
)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")  # the generator writes classic times in UTC
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _generate(tmp_path: Path, fmt: str, seed: int) -> tuple[Path, dict]:
    out = tmp_path / f"auth-{fmt}.log"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--lines", "20000", "--out", str(out),
         "--format", fmt, "--seed", str(seed), "--start", "2025-11-20T00:00:00"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out, json.loads(out.with_name(out.name + ".truth.json").read_text())


def _replay(tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    config = tmp_path / "recentd.toml"
    config.write_text('ip_list_tot = 100000\n[[watch]]\nsource = "/var/log/auth.log"\n'
                      'failure = "SSH_AUTH"\n')  # fmt: skip
    rules = []
    for family in ("v4", "v6"):
        path = tmp_path / f"rules.{family}"
        path.write_text(f"*filter\n:INPUT ACCEPT [0:0]\n{RULE}\nCOMMIT\n")
        rules += ["--rules", str(path)]
    out = tmp_path / "bans.jsonl"
    status = main(["logs", "replay", str(log), "--config", str(config), *rules,
                   "--bans", str(out), "--year", "2025"])  # fmt: skip
    assert (status, capsys.readouterr().err) == (0, "")
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize(("fmt", "seed"), [("classic", 21), ("rfc3339", 22)])
def test_first_bans_equal_the_generators_attempts_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, seed: int
) -> None:
    log, truth = _generate(tmp_path, fmt, seed)
    bans = _replay(tmp_path, log, capsys)
    first: dict[str, tuple[int, float]] = {}
    for ban in bans:
        first.setdefault(ban["addr"], (ban["line"], ban["ts"]))
    expected = {addr: (ban["line"], ban["epoch"])
                for addr, ban in truth["bans_by_policy"]["attempts"].items()}  # fmt: skip
    assert len(expected) > 10
    assert first == expected
    assert [ban["ts"] for ban in bans] == sorted(ban["ts"] for ban in bans)
    roles = {truth["addresses"][addr]["role"] for addr in first}
    assert not roles & LEGIT
    assert any(a["role"] in LEGIT and a["attempts"] for a in truth["addresses"].values())
