"""Observations write into recent lists as /proc writes do; the rules then decide.

Transcripts: log failures in, table entries out; then a packet from that address meets
the admin's rule.
"""

from __future__ import annotations

import ipaddress

from recentd.observation import (
    Action,
    Evidence,
    Observation,
    Origin,
    Route,
    TableWrite,
    apply_observation,
)
from recentd.packets.decode import decode_ip
from recentd.packets.factory import PacketFactory
from recentd.recent import RecentTables
from recentd.rules import Engine, Verdict, parse_ruleset_text
from recentd.rules.model import CtState, Hook

RULES = """\
iptables -A INPUT -p tcp --dport 22 -m recent --name SSH_AUTH --rcheck --seconds 600 --hitcount 3 -j DROP
"""
ATTACKER = ipaddress.ip_address("203.0.113.9")
ROUTES = [
    Route(Evidence.AUTH_FAILURE, "SSH_AUTH", Action.ADD),
    Route(Evidence.AUTH_SUCCESS, "SSH_AUTH", Action.REMOVE),
]
HZ = 250


def failure(address: ipaddress.IPv4Address | ipaddress.IPv6Address, line: int) -> Observation:
    return Observation(Evidence.AUTH_FAILURE, address, line * 10**9,
                       Origin("file", "/var/log/auth.log", f"line {line}"))


def engine() -> Engine:
    return Engine(parse_ruleset_text(RULES).ruleset, RecentTables(hz=HZ), hz=HZ)


def ssh_syn_verdict(rules: Engine, now: int) -> Verdict:
    packet = decode_ip(PacketFactory().tcp(ATTACKER, "192.0.2.1", dport=22))
    return rules.evaluate(packet, Hook.INPUT, now, ctstate=CtState.NEW).verdict


def test_three_failures_make_the_rule_drop_the_next_syn() -> None:
    rules = engine()
    for line in (1, 2):
        assert apply_observation(rules.tables, ROUTES, failure(ATTACKER, line), line * HZ) == [
            TableWrite("SSH_AUTH", Action.ADD, ATTACKER)
        ]
    assert ssh_syn_verdict(rules, 3 * HZ) is Verdict.ACCEPT
    apply_observation(rules.tables, ROUTES, failure(ATTACKER, 3), 3 * HZ)
    assert ssh_syn_verdict(rules, 3 * HZ) is Verdict.DROP
    assert ssh_syn_verdict(rules, 3 * HZ + 600 * HZ) is Verdict.ACCEPT  # the window passed


def test_a_success_forgets_the_failures() -> None:
    rules = engine()
    for line in (1, 2, 3):
        apply_observation(rules.tables, ROUTES, failure(ATTACKER, line), line * HZ)
    success = Observation(Evidence.AUTH_SUCCESS, ATTACKER, 4 * 10**9, Origin("file", "auth.log"))
    assert apply_observation(rules.tables, ROUTES, success, 4 * HZ) == [
        TableWrite("SSH_AUTH", Action.REMOVE, ATTACKER, changed=True)
    ]
    assert ssh_syn_verdict(rules, 4 * HZ) is Verdict.ACCEPT


def test_a_route_to_a_list_no_rule_names_writes_nothing() -> None:
    rules = engine()
    routes = [Route(Evidence.AUTH_FAILURE, "NOBODY", Action.ADD)]
    assert apply_observation(rules.tables, routes, failure(ATTACKER, 1), HZ) == []


def test_a_route_for_one_kind_ignores_the_others() -> None:
    rules = engine()
    routes = [Route(Evidence.AUTH_FAILURE, "SSH_AUTH", Action.ADD, kind="root")]
    assert apply_observation(rules.tables, routes, failure(ATTACKER, 1), HZ) == []
    root = Observation(Evidence.AUTH_FAILURE, ATTACKER, 10**9, Origin("journal", ""), kind="root")
    assert len(apply_observation(rules.tables, routes, root, HZ)) == 1
