"""Rules → per-rule tuples of bound callables, so evaluation allocates nothing.

A compiled rule is a tuple ``(ip_test, matches, kind, action, counters, position)``:
``ip_test`` is None when the IP part matches everything; ``matches`` are the
extensions' closures in rule order; ``kind`` says what the target does; ``counters``
is the rule's ``[packets, bytes]`` list, updated in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from recentd.packets.packet import Packet
from recentd.rules.extensions.base import ACCEPT, DROP, CompileEnv, MatchFn
from recentd.rules.model import IpSpec, Rule, Table

#: Target kinds.
NONE, VERDICT, RETURN, JUMP, GOTO, EXTENSION = range(6)
_VERDICTS = {"ACCEPT": ACCEPT, "DROP": DROP}

IpTest = Callable[[Packet], bool]
CompiledRule = tuple[IpTest | None, tuple[MatchFn, ...], int, Any, list[int], tuple[str, str, int]]


@dataclass
class CompiledChain:
    name: str
    policy: int | None
    rules: list[CompiledRule] = field(default_factory=list)
    counters: list[int] = field(default_factory=lambda: [0, 0])


def _iface_test(field_name: str, name: str, invert: bool) -> IpTest:
    get: Callable[[Packet], str] = attrgetter(field_name)
    if name.endswith("+"):
        prefix = name[:-1]
        return lambda packet: get(packet).startswith(prefix) != invert
    return lambda packet: (get(packet) == name) != invert


def _net_test(field_name: str, addr: int, mask: int, invert: bool) -> IpTest:
    get: Callable[[Packet], int] = attrgetter(field_name)
    return lambda packet: ((get(packet) & mask) == addr) != invert


def compile_ip(ip: IpSpec) -> IpTest | None:
    """One predicate for the IP part, or None when it matches every packet."""
    tests: list[IpTest] = []
    for net, invert, attr in ((ip.src, ip.inv_src, "src"), (ip.dst, ip.inv_dst, "dst")):
        if net is not None:
            tests.append(_net_test(attr, net.addr, net.mask, invert))
    if ip.iif:
        tests.append(_iface_test("iif", ip.iif, ip.inv_iif))
    if ip.oif:
        tests.append(_iface_test("oif", ip.oif, ip.inv_oif))
    if ip.proto:
        proto, inv_proto = ip.proto, ip.inv_proto
        tests.append(lambda p: (p.proto == proto) != inv_proto)
    if ip.fragment is not None:
        wanted = ip.fragment
        tests.append(lambda p: (p.frag_offset != 0) == wanted)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    frozen = tuple(tests)
    return lambda packet: all(test(packet) for test in frozen)


def compile_rule(rule: Rule, env: CompileEnv, position: tuple[str, str, int],
                 chains: dict[str, CompiledChain]) -> CompiledRule:
    matches = tuple(m.ext.compile(m.spec, env) for m in rule.matches)
    target = rule.target
    kind: int
    action: Any = None
    if target.ext is not None:
        kind, action = EXTENSION, target.ext.compile(target.spec, env)
    elif not target.name:
        kind = NONE
    elif target.name in _VERDICTS:
        kind, action = VERDICT, _VERDICTS[target.name]
    elif target.name == "RETURN":
        kind = RETURN
    else:
        kind, action = (GOTO if target.goto else JUMP), chains[target.name]
    return (compile_ip(rule.ip), matches, kind, action, [rule.packets, rule.bytes], position)


def compile_table(table: Table, env: CompileEnv) -> dict[str, CompiledChain]:
    """All chains of a table; jumps refer to the target chain objects directly."""
    chains = {
        chain.name: CompiledChain(
            chain.name,
            None if chain.policy is None else _VERDICTS[chain.policy],
            counters=[chain.packets, chain.bytes],
        )
        for chain in table.chains
    }
    for chain in table.chains:
        chains[chain.name].rules = [
            compile_rule(rule, env, (table.name, chain.name, number), chains)
            for number, rule in enumerate(chain.rules, 1)
        ]
    return chains
