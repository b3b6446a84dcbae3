"""Benchmark: lines per second of the sshd parser behind the sources' seam (issue 12).

A 200k-line log from ``../shared/bench/gen_authlog.py`` (classic by default, or
``--format rfc3339``) is split into lines and fed to a fresh
:class:`recentd.logs.observe.ObservingParser` in batches of 4096 lines (what a file
source hands over after one large read), best of three runs, CPU time of this process.
Beside it, in the same run and on the same lines, the yardstick: one bare compiled
regex (a classic header match) per line, the floor of any per-line design in Python.

Run: ``python bench/parse.py [--lines N] [--format classic|rfc3339] [--generator PATH]``. The last line is
``parse_lines_per_s=<N> regex_lines_per_s=<R>``; the line before it gives the number of
observations (it must not change with the parser's speed).
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from recentd.logs import ClassicYear, RecordParser  # noqa: E402
from recentd.logs.observe import ObservingParser  # noqa: E402
from recentd.logs.parsers import make_parser  # noqa: E402
from recentd.sources.lines import LineSpan  # noqa: E402

GENERATOR = REPO.parents[0] / "shared" / "bench" / "gen_authlog.py"
BATCH = 4096
RUNS = 3
_YARDSTICK = re.compile(r"(\S+ +\S+ \S+) (\S+) ([^\s\[]+)\[(\d+)\]: (.*)")


def generate(directory: Path, lines: int, fmt: str, generator: Path) -> list[str]:
    out = directory / f"auth-{fmt}.log"
    subprocess.run(
        [sys.executable, str(generator), "--lines", str(lines), "--out", str(out),
         "--format", fmt, "--seed", "1", "--start", "2025-11-20T00:00:00"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out.read_text().splitlines()


def parse_once(lines: list[str]) -> int:
    parser = ObservingParser(
        make_parser("sshd"), RecordParser(ClassicYear(year=2025, tz=datetime.UTC)), now=lambda: 0
    )
    found = 0
    for start in range(0, len(lines), BATCH):
        batch = lines[start : start + BATCH]
        found += len(parser.feed_lines(batch, LineSpan("file", "auth.log", start + 1)))
    return found + len(parser.finish())


def regex_once(lines: list[str]) -> int:
    match = _YARDSTICK.fullmatch
    return sum(1 for line in lines if match(line))


def best_rate(run: Callable[[list[str]], int], lines: list[str]) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(RUNS):
        started = time.process_time()
        result = run(lines)
        best = min(best, time.process_time() - started)
    return len(lines) / best, result


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--lines", type=int, default=200_000)
    options.add_argument("--format", choices=("classic", "rfc3339"), default="classic")
    options.add_argument("--generator", type=Path, default=GENERATOR)
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        lines = generate(Path(directory), args.lines, args.format, args.generator)
    regex_rate, matched = best_rate(regex_once, lines)
    parse_rate, observations = best_rate(parse_once, lines)
    print(f"lines={len(lines)} format={args.format} observations={observations} "
          f"regex_matched={matched}")  # fmt: skip
    print(f"parse_lines_per_s={parse_rate:.0f} regex_lines_per_s={regex_rate:.0f}")


if __name__ == "__main__":
    main()
