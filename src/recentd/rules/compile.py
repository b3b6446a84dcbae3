"""Rules → per-rule tuples of bound callables, so evaluation allocates nothing.

A compiled rule is a tuple ``(tests, kind, action, counters, position)``: ``tests``
are the rule's predicates, each called as ``test(packet, state)``, the IP part's
first (none when it matches everything), then the extensions' closures in rule
order; ``kind`` says what the target does; ``counters`` is the rule's
``[packets, bytes]`` list, updated in place; ``position`` is (table, chain, number).

Speed: the evaluator calls every test of every rule it reaches, so the common IP
tests are closures over plain ints that index the packet tuple directly (a
``NamedTuple`` attribute is an unspecialised lookup, an index with an int is not),
and each test is one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final, Literal

from recentd.errors import RuleError
from recentd.packets.packet import Packet
from recentd.rules.extensions.base import (
    ACCEPT,
    DROP,
    F_DST,
    F_FRAG_OFFSET,
    F_PROTO,
    F_SRC,
    CompileEnv,
    Extension,
    MatchFn,
    PacketState,
)
from recentd.rules.model import IpSpec, Rule, Table

#: Target kinds.
NONE, VERDICT, RETURN, JUMP, GOTO, EXTENSION = range(6)
_VERDICTS = {"ACCEPT": ACCEPT, "DROP": DROP}

#: Indexes of the counters and of the position in a :data:`CompiledRule`.
RULE_COUNTERS: Final = 3
RULE_POSITION: Final = 4

IpTest = Callable[[Packet], bool]
CompiledRule = tuple[tuple[MatchFn, ...], int, Any, list[int], tuple[str, str, int]]


@dataclass
class CompiledChain:
    name: str
    policy: int | None
    rules: tuple[CompiledRule, ...] = ()
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


def _net_match(index: Literal[1, 2], addr: int, mask: int, invert: bool) -> MatchFn:
    if invert:
        return lambda packet, state: (packet[index] & mask) != addr
    return lambda packet, state: (packet[index] & mask) == addr


def _iface_match(field_name: str, name: str, invert: bool) -> MatchFn:
    test = _iface_test(field_name, name, invert)
    return lambda packet, state: test(packet)


def _proto_match(proto: int, invert: bool) -> MatchFn:
    if invert:
        return lambda packet, state: packet[F_PROTO] != proto
    return lambda packet, state: packet[F_PROTO] == proto


def _fragment_match(wanted: bool) -> MatchFn:
    if wanted:
        return lambda packet, state: packet[F_FRAG_OFFSET] != 0
    return lambda packet, state: packet[F_FRAG_OFFSET] == 0


def compile_ip_tests(ip: IpSpec) -> tuple[MatchFn, ...]:
    """The IP part as rule tests (same order and meaning as :func:`compile_ip`)."""
    tests: list[MatchFn] = []
    if ip.src is not None:
        tests.append(_net_match(F_SRC, ip.src.addr, ip.src.mask, ip.inv_src))
    if ip.dst is not None:
        tests.append(_net_match(F_DST, ip.dst.addr, ip.dst.mask, ip.inv_dst))
    if ip.iif:
        tests.append(_iface_match("iif", ip.iif, ip.inv_iif))
    if ip.oif:
        tests.append(_iface_match("oif", ip.oif, ip.inv_oif))
    if ip.proto:
        tests.append(_proto_match(ip.proto, ip.inv_proto))
    if ip.fragment is not None:
        tests.append(_fragment_match(ip.fragment))
    return tuple(tests)


def _volatile(packet: Packet, state: PacketState) -> bool:
    """Runs just before a part with state of its own or a clock: the decision is not
    to be reused (:mod:`recentd.rules.memo`). Always holds."""
    state.volatile = True
    return True


def kernel_only(rule: Rule) -> str | None:
    """Why recentd cannot evaluate ``rule`` in user space (the first part that says
    so, named as written), or None when it can."""
    parts: list[tuple[str, Extension[Any], Any]] = [(m.name, m.ext, m.spec)
                                                    for m in rule.matches]
    if rule.target.ext is not None:
        parts.append((rule.target.name, rule.target.ext, rule.target.spec))
    for name, ext, spec in parts:
        reason = ext.kernel_only(spec)
        if reason is not None:
            return f"{name}: {reason}"
    return None


def compile_rule(rule: Rule, env: CompileEnv, position: tuple[str, str, int],
                 chains: dict[str, CompiledChain]) -> CompiledRule:
    reason = kernel_only(rule)
    if reason is not None:
        raise RuleError(f"{reason}: left to the kernel, recentd cannot evaluate it",
                        source=rule.source, line=rule.line)
    tests = compile_ip_tests(rule.ip)
    for match in rule.matches:
        if match.ext.volatile(match.spec):
            tests += (_volatile,)  # tests stop at the first failure: it runs iff the match does
        tests += (match.ext.compile(match.spec, env),)
    target = rule.target
    if target.ext is not None and target.ext.volatile(target.spec):
        tests += (_volatile,)  # last: runs iff the target does
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
    return (tests, kind, action, [rule.packets, rule.bytes], position)


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
        chains[chain.name].rules = tuple(
            compile_rule(rule, env, (table.name, chain.name, number), chains)
            for number, rule in enumerate(chain.rules, 1)
        )
    return chains

