import os
import shlex
import shutil

import pytest

from recentd.live.hooks import (
    Hooks,
    QueueFilter,
    choose_flavour,
    derive_filters,
    parse_queue_filter,
)
from recentd.rules.parser import load_ruleset
from tests.live.conftest import seed_text
from tests.live.netns import python_in_namespace


def test_seed_recipe_queues_only_new_tcp_22(tmp_path):
    path = tmp_path / "r"
    path.write_text(seed_text(v6=True))
    filters = derive_filters(load_ruleset(path))
    assert filters == [
        QueueFilter(4, "INPUT", 6, ((22, 22),), 8),
        QueueFilter(6, "INPUT", 6, ((22, 22),), 8),
    ]
    plan = [shlex.join(a) for a in Hooks(filters, 10).install_plan()]
    assert plan[:3] == [
        "iptables-legacy -w -t filter -N RECENTD-IN",
        "iptables-legacy -w -t filter -A RECENTD-IN -p 6 -m tcp --dport 22:22 -m conntrack --ctstate NEW -j NFQUEUE --queue-num 13 --queue-bypass",
        "iptables-legacy -w -t filter -I INPUT 1 -m comment --comment recentd-hook -j RECENTD-IN",
    ]
    assert plan[3].startswith("ip6tables-legacy")


def test_rules_narrow_the_queue_by_what_their_matches_require():
    """Ports (tcp/udp --dport, multiport --dports) and states, asked of the matches;
    inverted ones narrow nothing."""
    from recentd.rules import parse_ruleset_text  # noqa: PLC0415

    text = (
        "iptables -A INPUT -p udp -m multiport --dports 53,5353 -j DROP\n"
        "iptables -A INPUT -p tcp -m conntrack --ctstate NEW,ESTABLISHED ! --dport 22 -j DROP\n"
        "iptables -A INPUT -p tcp -m multiport ! --dports 80 -m state ! --state NEW -j DROP\n"
    )
    assert derive_filters(parse_ruleset_text(text).ruleset) == [
        QueueFilter(4, "INPUT", 17, ((53, 53), (5353, 5353)), 0),
        QueueFilter(4, "INPUT", 6, (), 10),
        QueueFilter(4, "INPUT", 6, (), 0),
    ]


def test_fail_closed_has_no_bypass():
    plan = Hooks(parse_queue_filter("4:INPUT:tcp:22"), 0, fail_open=False).install_plan()
    assert not any("--queue-bypass" in argv for argv in plan)


def test_remove_deletes_every_stale_jump_and_chain():
    calls = []
    jumps = {"iptables-legacy": 2}

    def runner(argv):
        calls.append(list(argv))
        if "-D" in argv and argv[argv.index("-D") + 1] == "INPUT" and jumps.get(argv[0], 0):
            jumps[argv[0]] -= 1
            return 0, ""
        return 1, "no such rule"

    hooks = Hooks([], 0, runner=runner)
    assert hooks.remove_stale() == 2
    assert ["iptables-legacy", "-w", "-t", "filter", "-X", "RECENTD-IN"] in calls
    assert ["ip6tables-legacy", "-w", "-t", "filter", "-X", "RECENTD-OUT"] in calls


def test_the_hooks_go_where_the_hosts_rules_are():
    nft_rules = "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n"
    legacy_rules, empty = "*filter\n-A INPUT -p tcp -j DROP\nCOMMIT\n", "*filter\nCOMMIT\n"
    nf, leg = "iptables v1.8.9 (nf_tables)", "iptables v1.8.9 (legacy)"
    assert choose_flavour(empty, nft_rules, leg) == (
        "nft", "the host's rules are in iptables-nft (1 rules, none in legacy)")
    assert choose_flavour(legacy_rules, empty, nf)[0] == "legacy"
    assert choose_flavour(legacy_rules, nft_rules, nf)[0] == "nft"
    assert choose_flavour(legacy_rules, nft_rules, leg)[0] == "legacy"
    assert choose_flavour(empty, empty, nf) == (
        "legacy", "no rules in either flavour: legacy, recentd's default")
    assert choose_flavour(None, empty, leg) == ("nft", "only iptables-nft is installed")
    flt = QueueFilter(4, "INPUT", 6, ((22, 22),))
    hooks = Hooks([flt], 5, flavour="nft", runner=lambda argv: (0, ""))
    assert {argv[0] for argv in hooks.install_plan()} == {"iptables-nft"}


@pytest.mark.netns
def test_hooks_join_the_hosts_iptables_nft_rules_in_a_namespace(tmp_path):
    if os.geteuid() != 0 or not shutil.which("iptables-nft"):
        pytest.skip("needs root and iptables-nft")
    rules = tmp_path / "seed.rules"
    rules.write_text(seed_text())
    code = (
        "import subprocess, sys\n"
        "from recentd.live.hooks import Hooks, derive_filters, detect_flavour\n"
        "from recentd.rules.parser import load_ruleset\n"
        "subprocess.run(['iptables-nft', '-A', 'INPUT', '-p', 'tcp', '--dport', '80',\n"
        "                '-j', 'ACCEPT'], check=True)  # the admin's own rule\n"
        "flavour, why = detect_flavour()\n"
        "print(flavour, why)\n"
        f"hooks = Hooks(derive_filters(load_ruleset({str(rules)!r})), 30, flavour=flavour)\n"
        "hooks.install()\n"
        "out = subprocess.run(['iptables-nft', '-S'], capture_output=True, text=True).stdout\n"
        "print('jump' if '-A INPUT -p tcp -m tcp --dport 22' in out or\n"
        "      '-j RECENTD-IN' in out else 'no jump')\n"
        "nft = subprocess.run(['nft', 'list', 'ruleset'], capture_output=True, text=True)\n"
        "print('RECENTD-IN' in nft.stdout)\n"
        "hooks.remove()\n"
        "out = subprocess.run(['iptables-nft', '-S'], capture_output=True, text=True).stdout\n"
        "print('RECENTD' in out)\n"
    )
    done = python_in_namespace("rdt-ipnft", code)
    assert done.stdout.splitlines() == [
        "nft the host's rules are in iptables-nft (1 rules, none in legacy)",
        "jump", "True", "False",
    ]
