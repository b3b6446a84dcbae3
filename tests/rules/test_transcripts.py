"""Transcripts: the seed recipes, packets in, verdicts and counters out."""

from __future__ import annotations

from pathlib import Path

from recentd.rules import Hook, parse_ruleset_text, render_list
from tests.rules.transcript import Script, syn

SEEDS = Path(__file__).resolve().parents[1] / "data" / "seeds"
SSH_RECIPE = """\
modprobe ipt_recent
iptables -N SSH_CHECK
iptables -I INPUT -p tcp –dport 22 -m state –state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state –state NEW -m recent –set –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –update –seconds 60 –hitcount 4 –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –rcheck –seconds 60 –hitcount 4 –name SSH -j DROP
service iptables save
"""


def test_seed_recipe_accepts_four_new_connections_then_drops() -> None:
    script = Script(SSH_RECIPE)
    attacker = syn("203.0.113.9")
    # -I puts the rcheck DROP rule first: 1–4 are stamped by --set and accepted.
    assert [script.verdict(t, attacker) for t in (0, 5, 10, 15)] == ["ACCEPT"] * 4
    assert script.verdict(20, attacker) == "DROP"
    assert script.verdict(30, attacker) == "DROP"
    assert script.verdict(30, syn("198.51.100.7")) == "ACCEPT"  # another source is unaffected
    assert script.counters("filter", "SSH_CHECK") == [(2, 120), (0, 0), (5, 300)]
    assert script.counters("filter", "INPUT") == [(7, 420)]


def test_seed_recipe_forgets_after_the_window() -> None:
    script = Script(SSH_RECIPE)
    attacker = syn("203.0.113.9")
    for t in (0, 1, 2, 3):
        script.send(t, attacker)
    assert script.verdict(4, attacker) == "DROP"
    # Dropped packets are not stamped (the DROP rule comes first): the stamps are
    # t=0..3, all older than 60 s at t=64.
    assert script.verdict(64, attacker) == "ACCEPT"


def test_seed_file_as_pasted_gives_the_recipe_and_warns() -> None:
    result = parse_ruleset_text((SEEDS / "ipt_recent_howto.txt").read_text(), source="seed")
    warnings = [n for n in result.notices if n.warning]
    assert [n.line for n in warnings] == [42, 44, 46, 48]
    assert warnings[0].corrected == (
        "iptables -I INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK"
    )
    assert warnings[0].column == 26
    table = result.ruleset.table(4, "filter")
    assert table is not None
    assert render_list(table).count("recent:") == 3


def test_other_traffic_is_not_checked() -> None:
    script = Script(SSH_RECIPE)
    web = syn("203.0.113.9", dport=80)
    assert all(script.verdict(t, web) == "ACCEPT" for t in range(10))
    assert script.counters("filter", "INPUT") == [(0, 0)]


BADGUY = """\
iptables -A FORWARD -m recent --name badguy --rcheck --seconds 60 -j DROP
iptables -A FORWARD -p tcp -i eth0 --dport 139 -m recent --name badguy --set -j DROP
"""


def test_badguy_example() -> None:
    script = Script(BADGUY)
    probe = syn("203.0.113.9", dport=139, dst="192.168.1.10", oif="eth1")
    later = syn("203.0.113.9", dport=443, dst="192.168.1.10", oif="eth1")
    other = syn("198.51.100.7", dport=443, dst="192.168.1.10", oif="eth1")
    assert script.verdict(0, later, Hook.FORWARD) == "ACCEPT"
    assert script.send(1, probe, Hook.FORWARD).path == (("filter", "FORWARD", 2),)
    assert script.verdict(2, later, Hook.FORWARD) == "DROP"
    assert script.verdict(2, other, Hook.FORWARD) == "ACCEPT"
    assert script.verdict(61, later, Hook.FORWARD) == "DROP"  # within 60 s of the t=1 stamp
    assert script.verdict(61.01, later, Hook.FORWARD) == "ACCEPT"
    # FORWARD has an output device: the entry records the pre-forwarding TTL (64+1).
    entry = script.tables["badguy"].get(4, syn("203.0.113.9").src)
    assert entry is not None
    assert entry.ttl == 65


def test_badguy_probe_on_other_interface_is_not_recorded() -> None:
    script = Script(BADGUY)
    probe = syn("203.0.113.9", dport=139, iif="eth1", oif="eth0")
    assert script.verdict(0, probe, Hook.FORWARD) == "ACCEPT"
    assert len(script.tables["badguy"]) == 0


KNOCK = """\
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 22 -m recent --rcheck --seconds 30 --name OPEN -j ACCEPT
-A INPUT -p tcp --dport 1111 -m recent --set --name KNOCK1 -j DROP
-A INPUT -p tcp --dport 2222 -m recent --rcheck --seconds 10 --name KNOCK1 -m recent --remove --name KNOCK1 -m recent --set --name OPEN -j DROP
COMMIT
"""


def test_port_knocking_set_and_remove() -> None:
    script = Script(KNOCK)
    host = "203.0.113.9"
    assert script.verdict(0, syn(host, 22)) == "DROP"
    assert script.verdict(1, syn(host, 2222)) == "DROP"  # second knock first: nothing opens
    assert "OPEN" not in [t.name for t in script.tables if len(t)]
    assert script.verdict(2, syn(host, 22)) == "DROP"
    assert script.verdict(3, syn(host, 1111)) == "DROP"
    assert script.verdict(5, syn(host, 2222)) == "DROP"
    assert len(script.tables["KNOCK1"]) == 0  # removed by the second knock
    assert script.verdict(6, syn(host, 22)) == "ACCEPT"
    assert script.verdict(6, syn("198.51.100.7", 22)) == "DROP"
    assert script.verdict(35, syn(host, 22)) == "ACCEPT"
    assert script.verdict(35.01, syn(host, 22)) == "DROP"


def test_port_knock_too_slow_does_not_open() -> None:
    script = Script(KNOCK)
    host = "203.0.113.9"
    script.send(0, syn(host, 1111))
    script.send(10.01, syn(host, 2222))
    assert script.verdict(11, syn(host, 22)) == "DROP"


LIMIT_RECIPE = """\
iptables -N NEWSSH
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -j NEWSSH
iptables -A NEWSSH -m limit --limit 3/min --limit-burst 3 -j ACCEPT
iptables -A NEWSSH -j DROP
"""


def test_limit_recipe() -> None:
    script = Script(LIMIT_RECIPE)
    # 3/min with burst 3: three at once, then one every 20 s, whoever sends them.
    verdicts = [script.verdict(0, syn(f"203.0.113.{n}")) for n in range(1, 6)]
    assert verdicts == ["ACCEPT"] * 3 + ["DROP"] * 2
    assert script.verdict(19.9, syn("198.51.100.1")) == "DROP"
    assert script.verdict(20, syn("198.51.100.2")) == "ACCEPT"
    assert script.verdict(20, syn("198.51.100.3")) == "DROP"
    assert script.counters("filter", "NEWSSH") == [(4, 240), (4, 240)]


def test_matches_stop_at_first_failure_but_keep_recent_side_effects() -> None:
    script = Script("iptables -A INPUT -p udp -m recent --set --name ORD -m udp --dport 1 -j DROP")
    packet = syn("10.77.0.2", dport=9999, proto=17)
    assert script.verdict(0, packet) == "ACCEPT"
    assert len(script.tables["ORD"]) == 1
    assert script.counters("filter", "INPUT") == [(0, 0)]
