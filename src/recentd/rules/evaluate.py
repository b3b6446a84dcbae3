"""The rule engine: a packet, a hook and a time in; a :class:`Decision` out.

Theory of operation (the kernel's ``ipt_do_table``): for each (hook, table) of the
packet's path, walk the hook's chain; the first rule whose IP part and matches
all hold counts the packet and applies its target. A jump pushes a return point,
a goto does not; RETURN (or the end of a user chain) pops, and an empty stack
means the built-in chain's policy. ACCEPT moves on to the next table of the path;
DROP and REJECT end it. Matches run left to right and stop at the first failure;
`recent` side effects of earlier matches stay (spec §2.7).

Sans-I/O: time is ``now_ticks``, conntrack state is an argument, nothing is read
or written outside the engine. One engine is not thread-safe (it reuses one
:class:`PacketState`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from recentd.packets.conntrack import CtState
from recentd.packets.packet import Packet
from recentd.recent import DEFAULT_HZ, RecentTables
from recentd.rules.compile import (
    EXTENSION,
    GOTO,
    JUMP,
    RETURN,
    VERDICT,
    CompiledChain,
    CompiledRule,
    compile_table,
)
from recentd.rules.counters import with_counters
from recentd.rules.extensions.base import (
    ACCEPT,
    CONTINUE,
    DROP,
    REJECT,
    CompileEnv,
    LogEvent,
    PacketState,
)
from recentd.rules.interest import Interest, interests
from recentd.rules.model import OUTPUT_DEVICE_HOOKS, TRAVERSAL, Hook, Ruleset

RulePosition = tuple[str, str, int]


class Verdict(Enum):
    ACCEPT = ACCEPT
    DROP = DROP
    REJECT = REJECT


_VERDICTS = {v.value: v for v in Verdict}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules did to one packet.

    Attributes:
        verdict: ACCEPT, DROP or REJECT.
        path: (table, chain, rule number) of every rule that matched, in order.
        events: LOG/NFLOG events.
        mark: the packet mark after MARK targets.
        reject_with: the ``--reject-with`` type when the verdict is REJECT.
    """

    verdict: Verdict
    path: tuple[RulePosition, ...]
    events: tuple[LogEvent, ...] = ()
    mark: int = 0
    reject_with: str = ""


class Engine:
    """A compiled rule set bound to `recent` tables, limit buckets and counters.

    Args:
        ruleset: the rules; their counters are the starting counters.
        tables: the `recent` tables (shared with the control plane); a fresh
            :class:`RecentTables` if omitted.
        hz: tick rate of ``now_ticks``.
    """

    def __init__(self, ruleset: Ruleset, tables: RecentTables | None = None,
                 hz: int = DEFAULT_HZ) -> None:
        self.tables = tables if tables is not None else RecentTables(hz=hz)
        self.hz = hz
        self._hashlimit: dict[tuple[int, str], Any] = {}
        self._connmarks: dict[object, int] = {}
        self._state = PacketState()
        self._acquired: list[Any] = []
        self.ruleset = ruleset
        self._compiled: dict[tuple[int, str], dict[str, CompiledChain]] = {}
        self.replace(ruleset)

    def replace(self, ruleset: Ruleset) -> None:
        """Swap in a new rule set, as a legacy table replacement does.

        The new rules acquire their `recent` tables before the old ones release
        theirs, so lists survive while any rule names them; limit buckets start
        afresh; hashlimit tables (kept by family and name) and CONNMARK marks stay.
        """
        compiled: dict[tuple[int, str], dict[str, CompiledChain]] = {}
        acquired: list[Any] = []
        for table in ruleset.tables:
            env = CompileEnv(self.hz, self.tables, self._hashlimit, self._connmarks,
                             table.family, acquired)
            compiled[(table.family, table.name)] = compile_table(table, env)
        old, self._acquired = self._acquired, acquired
        for match in old:
            self.tables.release(match)
        self._compiled, self.ruleset = compiled, ruleset
        self._paths = {
            (family, hook): tuple(
                (step in OUTPUT_DEVICE_HOOKS, chains[step.value])
                for step, table in steps
                if (chains := compiled.get((family, table))) is not None
            )
            for family in (4, 6)
            for hook, steps in TRAVERSAL.items()
        }

    def evaluate(self, packet: Packet, hook: Hook, now_ticks: int, *,
                 ctstate: int = CtState.NEW, conn: object = None,
                 local: bool | None = None) -> Decision:
        """Run ``packet`` through every table of ``hook``'s path.

        Args:
            packet: the packet (its ``mark`` is the starting mark).
            hook: INPUT (PREROUTING then INPUT), FORWARD (PREROUTING, FORWARD,
                POSTROUTING), OUTPUT (OUTPUT, POSTROUTING), or PREROUTING /
                POSTROUTING alone.
            now_ticks: the time in ticks (jiffies).
            ctstate: the conntrack state bit (:class:`CtState`).
            conn: a hashable connection key for CONNMARK, or None.
            local: the packet was made on this host (default: True for OUTPUT).
        """
        state = self._state
        state.now, state.ctstate, state.conn = now_ticks, int(ctstate), conn
        state.mark, state.reject = packet.mark, ""
        events = state.events
        if events:
            events.clear()
        is_local = hook is Hook.OUTPUT if local is None else local
        path: list[RulePosition] = []
        verdict = ACCEPT
        for has_out_device, chain in self._paths[(packet.family, hook)]:
            state.forwarded = has_out_device and not is_local
            verdict = _walk(chain, packet, state, path)
            if verdict != ACCEPT:
                break
        return Decision(_VERDICTS[verdict], tuple(path), tuple(events) if events else (),
                        state.mark, state.reject if verdict == REJECT else "")

    def snapshot(self) -> Ruleset:
        """The rule set with the engine's current counters (for -L -v / save -c)."""
        return with_counters(self.ruleset, self._compiled)

    def hooks_needed(self) -> dict[tuple[int, Hook], Interest]:
        """Which (family, path) pairs and which protocols/ports the rules can act on."""
        return interests(self.ruleset)


def _walk(  # noqa: PLR0912 - one loop on the hot path; splitting it costs a call per rule
    chain: CompiledChain, packet: Packet, state: PacketState, path: list[RulePosition]
) -> int:
    rules: list[CompiledRule] = chain.rules
    index = 0
    stack: list[tuple[list[CompiledRule], int]] = []
    length = packet.length
    while True:
        if index >= len(rules):
            if stack:
                rules, index = stack.pop()
                continue
            break
        ip_test, matches, kind, action, counters, position = rules[index]
        index += 1
        if ip_test is not None and not ip_test(packet):
            continue
        for match in matches:
            if not match(packet, state):
                break
        else:
            matches = ()
        if matches:
            continue
        counters[0] += 1
        counters[1] += length
        path.append(position)
        if kind == VERDICT:
            return int(action)
        if kind == EXTENSION:
            state.position = position
            verdict: int = action(packet, state)
            if verdict != CONTINUE:
                return verdict
        elif kind == JUMP:
            stack.append((rules, index))
            rules, index = action.rules, 0
        elif kind == GOTO:
            rules, index = action.rules, 0
        elif kind == RETURN:
            if not stack:
                break
            rules, index = stack.pop()
    chain.counters[0] += 1
    chain.counters[1] += length
    assert chain.policy is not None
    return chain.policy
