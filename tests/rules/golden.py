"""The golden corpus ``tests/data/rules/*.t``, in the shape of iptables' ``libxt_*.t``.

Format, line by line:

- ``:CHAIN1,CHAIN2`` – the chains the following rules are tried in;
- ``*table`` – the table for the following lines (default ``filter``);
- ``RULE;CANONICAL;OK`` – ``-A CHAIN RULE`` is accepted and ``iptables -S`` prints
  ``-A CHAIN CANONICAL`` (``=`` when the same as RULE; several rules separated
  by `` ||| `` when iptables expands the line);
- ``RULE;;FAIL`` – iptables refuses the rule;
- ``#`` comments.

The family comes from the file name: ``ip6t_*`` is IPv6, everything else IPv4.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "rules"
SEPARATOR = " ||| "


@dataclass(frozen=True)
class Case:
    path: Path
    line: int
    family: int
    table: str
    chains: tuple[str, ...]
    rule: str
    expected: tuple[str, ...]  # canonical rule texts; empty for FAIL
    ok: bool

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def family_of(path: Path) -> int:
    return 6 if path.name.startswith("ip6t_") else 4


def load_cases(directory: Path = DATA) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.t")):
        table = "filter"
        chains: tuple[str, ...] = ("INPUT",)
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith("*"):
                table = line[1:]
                continue
            if line.startswith(":"):
                chains = tuple(line[1:].split(","))
                continue
            rule, canonical, verdict = line.rsplit(";", 2)
            expected = () if verdict == "FAIL" else tuple(
                (rule if canonical == "=" else canonical).split(SEPARATOR)
            )
            cases.append(Case(path, number, family_of(path), table, chains, rule, expected,
                              verdict == "OK"))
    return cases
