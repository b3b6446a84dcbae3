"""`recentd run --dry-run` on the real rule files recentd loads: per drop rule, offloaded
or why not (the expected counts beside the files' names)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recentd.errors import RecentError
from recentd.live.policy import find_offload_case, offload_report
from recentd.rules.parser import load_ruleset
from tests.live.netns import REPO
from tests.shared import REAL_RULES

#: file → (drop rules offloaded, drop rules answered), for every loaded file with one.
EXPECTED = {
    "003-modernhoneynet-ssh-deterrent-1.sh": (1, 1),
    "004-modernhoneynet-ssh-deterrent-2.sh": (0, 2),
    "007-fetchapply-secharden-ssh.sh": (0, 2),
    "008-stashhouse-ssh-blocker.sh": (0, 2),
    "009-centos6-block-portscan.sh": (1, 4),
    "010-r0pchainz-portscan-hashlimit-ipset.sh": (1, 4),  # FORWARD's first rule
    "011-console-utils-block-failed-logins.sh": (0, 1),
    "013-jarkom-portscan-no10.sh": (0, 2),
    "014-nexus-iptables.rules.v4": (0, 2),
    "015-nexus-iptables.rules.v6": (0, 2),
    "016-tablewall-firewall6.extracted.rules": (0, 1),
    "017-tablewall-firewall.extracted.rules": (0, 1),
    "018-debian-scripts-iptables.init": (1, 1),  # --mask 255.255.255.255: one address
    "019-debian-scripts-myrules.sh": (1, 1),  # `--second 500` is --seconds, as getopt reads it
    "020-nullkru-dinimer.sh": (0, 1),
    "021-id774-rules-2016.rules.v4": (0, 4),
    "023-vps-config-iptables-fast-setup.extracted.rules": (0, 6),
    "026-linguisto-iptables.rules": (0, 1),
    "027-didaktikm-portknock.rules": (0, 6),
    "028-andreotec-archlinux.iptables-save": (0, 3),
    "029-opennic-tier2-dns.rules": (0, 1),
    "030-brp-fivem-host.rules.v4": (0, 2),
    "032-mtdframework-recon.sh": (2, 6),
    "033-iptables-boilerplate-all-new-limit.extracted.rules": (0, 1),
    "033-iptables-boilerplate-all-new-limit.sh": (0, 1),
    "034-cvc-ansible-firewalld-direct.extracted.rules": (0, 1),
    "035-devzat-iptables.extracted.rules": (0, 1),
    "035-devzat-iptables.sh": (0, 1),
}

#: The same with stamping (the kernel logs its drops and user space replays their writes):
#: the --update recipes offload too.
EXPECTED_STAMPING = {
    **EXPECTED,
    "007-fetchapply-secharden-ssh.sh": (2, 2),
    "011-console-utils-block-failed-logins.sh": (1, 1),
    "013-jarkom-portscan-no10.sh": (2, 2),
    "028-andreotec-archlinux.iptables-save": (1, 3),
    "033-iptables-boilerplate-all-new-limit.extracted.rules": (1, 1),
    "033-iptables-boilerplate-all-new-limit.sh": (1, 1),
}

FILES = sorted((REAL_RULES / "files").iterdir()) if (REAL_RULES / "files").is_dir() else []


def _answers(*, stamping: bool = False) -> dict[str, list[str]]:
    out = {}
    for path in FILES:
        try:
            ruleset = load_ruleset(path)
        except RecentError:
            continue  # recentd refuses it (and says where); nothing to offload
        lines = offload_report(ruleset, stamping=stamping)
        if lines:
            out[path.name] = lines
    return out


@pytest.mark.parametrize(("stamping", "expected"), [(False, EXPECTED), (True, EXPECTED_STAMPING)])
def test_each_loaded_file_says_per_drop_rule_offloaded_or_why_not(stamping, expected):
    if not FILES:
        pytest.skip(f"no real rule files at {REAL_RULES}")
    answers = _answers(stamping=stamping)
    got = {name: (sum(a.endswith(": offloaded") for a in lines), len(lines))
           for name, lines in answers.items()}  # fmt: skip
    assert got == expected
    for lines in answers.values():
        for line in lines:
            assert line.endswith(": offloaded") or ": not offloaded: " in line
            assert not line.endswith(": not offloaded: ")


def test_the_recipes_people_run():
    if not FILES:
        pytest.skip(f"no real rule files at {REAL_RULES}")
    by_name = {path.name: path for path in FILES}
    honeynet = find_offload_case(load_ruleset(by_name["003-modernhoneynet-ssh-deterrent-1.sh"]))
    assert honeynet is not None and honeynet.name == "sshattack"
    # the badguy list, checked after other rules, in INPUT and FORWARD
    recon = find_offload_case(load_ruleset(by_name["032-mtdframework-recon.sh"]))
    assert recon is not None and recon.ban_class.hooks == ("input", "forward")
    # the most common SSH recipe: --set, then --update … -j DROP inline in INPUT
    path = by_name["033-iptables-boilerplate-all-new-limit.extracted.rules"]
    assert find_offload_case(load_ruleset(path)) is None
    case = find_offload_case(load_ruleset(path), stamping=True)
    assert case is not None and [m.command.name for m in case.recipe] == ["SET", "UPDATE"]


def test_dry_run_prints_the_answers():
    if not FILES:
        pytest.skip(f"no real rule files at {REAL_RULES}")
    path = REAL_RULES / "files" / "032-mtdframework-recon.sh"
    done = subprocess.run(
        [sys.executable, "-m", "recentd.cli.main", "run", "--rules", str(path), "--dry-run"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("# offload")]
    assert lines[0].startswith("# offload: a source with 1 hits in 86400 s in list 'portscan'")
    assert lines[1].endswith("032-mtdframework-recon.sh:23 (IPv4 INPUT → INPUT, list "
                             "'portscan'): offloaded")
    assert len(lines) == 7
