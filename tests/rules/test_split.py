"""A whole-host rules file: what recentd evaluates, what stays in the kernel (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recentd.cli.main import main
from recentd.rules import load_rules, parse_ruleset_text
from recentd.rules.split import NO_LIST, split_ruleset

HOST = Path(__file__).resolve().parent.parent / "data" / "rules" / "host" / "whole-host.rules"


def _parts() -> dict[tuple[str, str], str]:
    split = split_ruleset(load_rules(HOST).ruleset)
    return {(p.table, p.chain): ("recentd" if p.by_recentd else p.why) for p in split.parts}


def test_the_seed_recipe_chain_is_recentds_the_rest_the_kernels() -> None:
    parts = _parts()
    assert parts[("filter", "SSH")] == "recentd"
    assert parts[("filter", "BLOCK")] == "reads no list: the kernel runs it as it is"
    assert parts[("filter", "INPUT")] == f"{HOST}:25: set: set asks the kernel's ipsets"
    assert parts[("nat", "POSTROUTING")] == "the nat table is the kernel's"
    assert parts[("mangle", "POSTROUTING")].endswith("CHECKSUM: CHECKSUM rewrites packets")
    assert parts[("mangle", "INPUT")] == "reads no list: the kernel runs it as it is"


def test_a_chain_jumping_to_a_kernel_chain_is_the_kernels() -> None:
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n"
            "-A A -j B\n-A B -m addrtype --dst-type LOCAL -j DROP\nCOMMIT\n")
    split = split_ruleset(parse_ruleset_text(text, source="t").ruleset)
    why = {p.chain: p.why for p in split.parts}
    assert why == {"INPUT": "jumps to A, which stays in the kernel",
                   "A": "jumps to B, which stays in the kernel",
                   "B": "t:7: addrtype: addrtype needs the kernel's routing table",
                   "FORWARD": NO_LIST, "OUTPUT": NO_LIST}


def test_check_passes_and_dry_run_prints_the_split(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(HOST)]) == 0
    capsys.readouterr()
    main(["run", "--rules", str(HOST), "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert "# recentd: iptables -t filter SSH (3 rules)" in out
    assert any(line.startswith("# kernel:  iptables -t nat POSTROUTING (1 rules)") for line in out)
