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

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from recentd.packets.conntrack_model import CtState
from recentd.packets.packet import Packet
from recentd.recent import DEFAULT_HZ, RecentTables
from recentd.rules import memo
from recentd.rules.compile import (
    EXTENSION,
    GOTO,
    JUMP,
    RETURN,
    RULE_COUNTERS,
    RULE_POSITION,
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
    F_FAMILY,
    F_LENGTH,
    F_MARK,
    F_SRC,
    F_TTL,
    REJECT,
    CompileEnv,
    LogEvent,
    PacketState,
)
from recentd.rules.fresh import Fresh, Template
from recentd.rules.interest import Interest, interests
from recentd.rules.model import OUTPUT_DEVICE_HOOKS, TRAVERSAL, Hook, Ruleset

RulePosition = tuple[str, str, int]


class Verdict(Enum):
    ACCEPT = ACCEPT
    DROP = DROP
    REJECT = REJECT


_VERDICTS = {v.value: v for v in Verdict}
#: Verdict by code (DROP 0, ACCEPT 1, REJECT 2): a tuple index, no enum hashing per packet.
_VERDICT_OF = tuple(_VERDICTS[code] for code in range(len(_VERDICTS)))
_OUTPUT = Hook.OUTPUT
#: Interned decisions kept per verdict; a rule set has few distinct paths in practice.
_INTERNED_MAX = 4096


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
        memo: remember decisions that changed nothing, for packets like them
            (:mod:`recentd.rules.memo`; exact — off only to compare).
        fresh: decide the first packet of a source no table knows from a template of
            its shape (:mod:`recentd.rules.fresh`; exact — off only to compare; by
            default as ``memo``).
    """

    def __init__(self, ruleset: Ruleset, tables: RecentTables | None = None,
                 hz: int = DEFAULT_HZ, *, memo: bool = True, fresh: bool | None = None) -> None:
        self.tables = tables if tables is not None else RecentTables(hz=hz)
        self.hz = hz
        self._use_memo = memo
        self._use_fresh = memo if fresh is None else fresh
        #: Counts rule-set replacements: a template (rules.fresh) holds for its own.
        self.generation = 0
        self._version = self.tables.version
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
        # hook name → family → the chains of the hook's path, each with the
        # ``forwarded`` flag `recent` needs, for a packet from elsewhere (index 0) and
        # for one made locally (index 1). Keyed by the hook's name: hashing an Enum
        # member calls Python code, hashing its name string does not.
        self._paths: dict[str, dict[int, tuple[_Steps, _Steps]]] = {}
        for hook, steps in TRAVERSAL.items():
            by_family = self._paths[hook._name_] = {}
            for family in (4, 6):
                chains = tuple(
                    (step in OUTPUT_DEVICE_HOOKS, found[step.value])
                    for step, table_name in steps
                    if (found := compiled.get((family, table_name))) is not None
                )
                by_family[family] = (chains, tuple((False, chain) for _, chain in chains))
        # Decisions without events, mark or reject type, by verdict code then path:
        # frozen values, so one object per distinct outcome serves every packet.
        self._interned: tuple[dict[tuple[RulePosition, ...], Decision], ...] = tuple(
            {} for _ in _VERDICT_OF)
        self._memo: dict[object, memo.Remembered] | None = {} if self._use_memo else None
        self._version[0] += 1  # what was remembered under the old rules, wherever kept, is void
        self.generation += 1
        fields = memo.key_fields(ruleset)
        #: Fresh-source templates (None: the rule set does not allow them).
        self.fresh = Fresh.of(ruleset, acquired, self.tables, fields) \
            if self._use_fresh else None
        self._memo_key = memo.key_getter(fields)
        #: The packet fields a remembered decision's key holds (besides hook, ``local``
        #: and conntrack state).
        self.memo_fields = tuple(Packet._fields[index] for index in fields)
        # (family, position) → the rule's counters: a remembered decision's increments
        self._counters_at = {
            (family, rule[RULE_POSITION]): rule[RULE_COUNTERS]
            for (family, _), chains in compiled.items()
            for chain in chains.values()
            for rule in chain.rules
        }

    def evaluate(self, packet: Packet, hook: Hook, now_ticks: int, *,  # noqa: PLR0912
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
        remembered = self._memo
        ctbit = int(ctstate)
        if remembered is not None:
            key = (hook._name_, local, ctbit, self._memo_key(packet))
            hit = remembered.get(key)
            # Inline copy of Remembered.holds and .bump (as in reuse below): the two calls
            # measured ~1,000 more instructions a packet (+2%) on bench/replay.py's
            # record-by-record replay (valgrind; wall-clock runs here are noisier than that).
            if hit is not None and hit[4] == self._version[0] and hit[2] <= now_ticks <= hit[3]:
                length = packet[F_LENGTH]
                for counters in hit[1]:
                    counters[0] += 1
                    counters[1] += length
                return hit[0]  # type: ignore[no-any-return]
        fresh, learning = self.fresh, None
        if fresh is not None and fresh.unknown(packet[F_FAMILY], packet[F_SRC]):
            shape = (hook._name_, local, ctbit, fresh.shape(packet))
            template = fresh.get(shape)
            if template is not None:
                return template.apply(  # type: ignore[no-any-return]
                    packet[F_FAMILY], packet[F_SRC], packet[F_TTL], now_ticks, packet[F_LENGTH])
            learning = (shape, *fresh.counts())
        state = self._state
        state.now, state.ctstate, state.conn = now_ticks, ctbit, conn
        state.mark, state.reject = packet[F_MARK], ""
        events = state.events
        if events:
            events.clear()
        state.reads.clear()
        state.policies.clear()
        state.volatile = False
        version = self._version[0]
        steps = self._paths[hook._name_][packet[F_FAMILY]]
        path: list[RulePosition] = []
        verdict = ACCEPT
        for forwarded, chain in steps[0] if not (hook is _OUTPUT if local is None else local) \
                else steps[1]:
            state.forwarded = forwarded
            verdict = _walk(chain, packet, state, path)
            if verdict != ACCEPT:
                break
        key_path = tuple(path)
        if events or state.mark or verdict == REJECT:
            return Decision(_VERDICT_OF[verdict], key_path, tuple(events), state.mark,
                            state.reject if verdict == REJECT else "")
        interned = self._interned[verdict]
        decision = interned.get(key_path)
        if decision is None:
            decision = Decision(_VERDICT_OF[verdict], key_path)
            if len(interned) < _INTERNED_MAX:
                interned[key_path] = decision
        if remembered is not None and not state.volatile and self._version[0] == version:
            self._remember(remembered, key, decision, packet[F_FAMILY], now_ticks)
        if learning is not None and not state.volatile:
            self._learn(learning, decision, packet, now_ticks)
        return decision

    def _bumps(self, decision: Decision, family: int) -> tuple[list[int], ...]:
        """The counters the walk just made incremented: its path's rules', then the
        built-in chains' whose policy applied."""
        counters_at = self._counters_at
        return (*(counters_at[(family, position)] for position in decision.path),
                *self._state.policies)

    def _learn(self, learning: tuple[object, tuple[int, ...], tuple[int, ...]],
               decision: Decision, packet: Packet, now: int) -> None:
        """Keep the template of a walk whose source no table knew (rules.fresh)."""
        fresh = self.fresh
        assert fresh is not None
        shape, created, evicted = learning
        family = packet[F_FAMILY]
        writes = fresh.writes(created, evicted, family=family, src=packet[F_SRC],
                              ttl=packet[F_TTL], now=now)
        if writes is not None:
            fresh.learn(shape, Template(decision, self._bumps(decision, family), writes,
                                        self.generation, decision.verdict is Verdict.ACCEPT))

    def recall_fresh(self, packet: Packet, hook: Hook, ctstate: int,
                     local: bool | None = None) -> Template | None:
        """The template for the first packet of a source no table knows, of this
        packet's shape, if one was learnt (rules.fresh)."""
        fresh = self.fresh
        if fresh is None:
            return None
        return fresh.get((hook._name_, local, int(ctstate), fresh.shape(packet)))

    def _remember(self, remembered: dict[object, memo.Remembered], key: object,
                  decision: Decision, family: int, now: int) -> None:
        """Keep a decision that changed nothing for the packets like this one."""
        state = self._state
        until = memo.until_of(state, now)
        if until < now:  # pragma: no cover - an answer holds at least at its own tick
            return
        if len(remembered) >= memo.CAPACITY:
            remembered.clear()
        remembered[key] = memo.Remembered(
            decision=decision, bumps=self._bumps(decision, family), since=now, until=until,
            version=self._version[0], accepts=decision.verdict is Verdict.ACCEPT)

    def recall(self, packet: Packet, hook: Hook, ctstate: int,
               local: bool | None = None) -> memo.Remembered | None:
        """The decision remembered for packets like this one, if any (it may no longer
        hold: see :meth:`reuse`)."""
        if self._memo is None:
            return None
        return self._memo.get((hook._name_, local, int(ctstate), self._memo_key(packet)))

    def reuse(self, remembered: memo.Remembered, now_ticks: int, length: int) -> Decision | None:
        """``remembered``'s decision for a packet of ``length`` bytes at ``now_ticks``,
        counted as :meth:`evaluate` would count it — or None when it no longer holds.

        For callers that find the entry by other means than :meth:`evaluate`'s key (the
        live pipeline keys it by raw header bytes); the check and the counting are
        evaluate's own (:meth:`~recentd.rules.memo.Remembered.holds`, ``bump``, inline).
        """
        # Inline copy of Remembered.holds and .bump: the two calls measured ~1,100 more
        # instructions a packet, +9% of the live pipeline's own, on a bench/live.py-like
        # flood (valgrind).
        if (remembered[4] != self._version[0]
                or not remembered[2] <= now_ticks <= remembered[3]):
            return None
        for counters in remembered[1]:
            counters[0] += 1
            counters[1] += length
        return remembered[0]  # type: ignore[no-any-return]

    def snapshot(self) -> Ruleset:
        """The rule set with the engine's current counters (for -L -v / save -c)."""
        return with_counters(self.ruleset, self._compiled)

    def hooks_needed(self) -> dict[tuple[int, Hook], Interest]:
        """Which (family, path) pairs and which protocols/ports the rules can act on."""
        return interests(self.ruleset)


_Steps = tuple[tuple[bool, CompiledChain], ...]


def _walk(  # noqa: PLR0912 - one loop on the hot path; splitting it costs a call per rule
    chain: CompiledChain, packet: Packet, state: PacketState, path: list[RulePosition]
) -> int:
    """One built-in chain, with the chains it jumps to: the verdict code.

    The rules are walked with ``for`` over an iterator (much cheaper than indexing);
    a jump pushes the current iterator, which resumes after the jumping rule.
    """
    rules: Iterator[CompiledRule] = iter(chain.rules)
    stack: list[Iterator[CompiledRule]] = []
    length = packet[F_LENGTH]
    verdict: int
    while True:
        for tests, kind, action, counters, position in rules:
            for test in tests:
                if not test(packet, state):
                    break
            else:  # every test held: the rule matches (a ``break`` here leaves the rules loop)
                counters[0] += 1
                counters[1] += length
                path.append(position)
                if kind == VERDICT:
                    verdict = action
                    return verdict
                if kind == EXTENSION:
                    state.position = position
                    verdict = action(packet, state)
                    if verdict != CONTINUE:
                        return verdict
                elif kind == JUMP:
                    stack.append(rules)
                    rules = iter(action.rules)
                    break
                elif kind == GOTO:
                    rules = iter(action.rules)
                    break
                elif kind == RETURN:
                    # With an empty stack, an exhausted iterator: the policy applies.
                    rules = stack.pop() if stack else iter(())
                    break
        else:  # end of the chain: back to the caller, or the policy
            if not stack:
                break
            rules = stack.pop()
    chain.counters[0] += 1
    chain.counters[1] += length
    state.policies.append(chain.counters)
    assert chain.policy is not None
    return chain.policy
