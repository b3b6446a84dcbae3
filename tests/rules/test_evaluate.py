"""The evaluator: traversal order, jumps, targets, marks, counters, interest."""

from __future__ import annotations

from recentd.packets.packet import IPPROTO_UDP
from recentd.rules import CtState, Engine, Hook, Interest, LogEvent, parse_ruleset_text
from tests.rules.transcript import Script, syn


def test_jump_goto_return_and_policy() -> None:
    script = Script("""\
*filter
:INPUT DROP [0:0]
:A - [0:0]
:B - [0:0]
-A INPUT -p tcp --dport 22 -j A
-A INPUT -p tcp --dport 80 -g B
-A INPUT -p tcp -j ACCEPT
-A A -s 10.0.0.1 -j RETURN
-A A -j DROP
-A B -s 10.0.0.1 -j RETURN
COMMIT
""")
    assert script.verdict(0, syn("10.0.0.1", 22)) == "ACCEPT"   # RETURN back to INPUT rule 3
    assert script.verdict(0, syn("10.0.0.2", 22)) == "DROP"
    # goto: RETURN from B goes back past INPUT, to the policy.
    decision = script.send(0, syn("10.0.0.1", 80))
    assert decision.verdict.name == "DROP"
    assert decision.path == (("filter", "INPUT", 2), ("filter", "B", 1))
    assert script.verdict(0, syn("10.0.0.2", 80)) == "DROP"  # end of B: policy as well


def test_targets_log_mark_reject() -> None:
    script = Script("""\
iptables -t mangle -A PREROUTING -p tcp -j MARK --set-mark 0x10/0xf0
iptables -A INPUT -m mark --mark 0x10/0xf0 -j LOG --log-prefix "seen: " --log-level 6
iptables -A INPUT -p tcp --dport 23 -j NFLOG --nflog-group 5
iptables -A INPUT -p tcp --dport 23 -j REJECT --reject-with tcp-reset
iptables -A INPUT -j REJECT
""")
    decision = script.send(0, syn("10.0.0.1", 23))
    assert decision.verdict.name == "REJECT" and decision.reject_with == "tcp-reset"
    assert decision.mark == 0x10
    assert decision.events == (LogEvent("LOG", "seen: ", 6, 0, "filter", "INPUT", 1),
                               LogEvent("NFLOG", "", 0, 5, "filter", "INPUT", 2))
    udp = script.send(0, syn("10.0.0.1", 53, proto=IPPROTO_UDP))
    assert udp.reject_with == "icmp-port-unreachable" and udp.mark == 0


def test_ipv6_default_reject() -> None:
    script = Script("ip6tables -A INPUT -s fd77::/64 -j REJECT")
    decision = script.send(0, syn("fd77::2", dst="fd77::1"))
    assert decision.reject_with == "icmp6-port-unreachable"
    assert script.verdict(0, syn("10.0.0.1")) == "ACCEPT"  # no IPv4 rules


def test_connmark_save_and_restore_per_connection() -> None:
    engine = Engine(parse_ruleset_text("""\
iptables -t mangle -A PREROUTING -j CONNMARK --restore-mark
iptables -t mangle -A PREROUTING -m mark --mark 0 -p tcp --dport 22 -j MARK --set-mark 7
iptables -t mangle -A PREROUTING -j CONNMARK --save-mark
""").ruleset)
    first = engine.evaluate(syn("10.0.0.1", 22), Hook.INPUT, 0, conn="c1")
    reply = engine.evaluate(syn("10.0.0.1", 1000), Hook.INPUT, 1, conn="c1",
                            ctstate=CtState.ESTABLISHED)
    other = engine.evaluate(syn("10.0.0.1", 1000), Hook.INPUT, 1, conn="c2")
    assert (first.mark, reply.mark, other.mark) == (7, 7, 0)


def test_state_and_interfaces() -> None:
    script = Script("iptables -P INPUT DROP\n"
                    "iptables -A INPUT -i lo -j ACCEPT\n"
                    "iptables -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT\n"
                    "iptables -A INPUT ! -i eth+ -j ACCEPT\n")
    assert script.verdict(0, syn("127.0.0.1", iif="lo")) == "ACCEPT"
    assert script.send(0, syn("10.0.0.1"), ctstate=CtState.ESTABLISHED).verdict.name == "ACCEPT"
    assert script.verdict(0, syn("10.0.0.1", iif="eth3")) == "DROP"
    assert script.verdict(0, syn("10.0.0.1", iif="wlan0")) == "ACCEPT"


def test_output_path_records_the_ttl_unchanged() -> None:
    script = Script("iptables -A OUTPUT -m recent --set --name OUT --rdest")
    script.send(0, syn("10.0.0.1", ttl=30), Hook.OUTPUT)
    entry = script.tables["OUT"].get(4, syn("10.77.0.1").src)
    assert entry is not None and entry.ttl == 30


def test_hooks_needed() -> None:
    engine = Engine(parse_ruleset_text("""\
iptables -N SSH_CHECK
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
iptables -A SSH_CHECK -m recent --set --name SSH
iptables -A FORWARD -p udp -m multiport --dports 53,5000:5010 -j ACCEPT
ip6tables -P INPUT DROP
""").ruleset)
    assert engine.hooks_needed() == {
        (4, Hook.INPUT): Interest(False, frozenset({(6, 22, 22)})),
        (4, Hook.FORWARD): Interest(False, frozenset({(17, 53, 53), (17, 5000, 5010)})),
        (6, Hook.INPUT): Interest(True),
    }


def test_unrestricted_rule_needs_everything() -> None:
    engine = Engine(parse_ruleset_text("iptables -A OUTPUT -m recent --set").ruleset)
    assert engine.hooks_needed() == {(4, Hook.OUTPUT): Interest(True)}
