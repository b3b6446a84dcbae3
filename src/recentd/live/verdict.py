"""Per packet: decode, decide, answer — the pure part of the NFQUEUE loop.

:class:`Pipeline` is what a queue consumer calls with a received
:class:`~recentd.live.nfqueue.Batch` (or a sequence of
:class:`~recentd.live.nfqnl.QueuedPacket`); it returns one netfilter verdict per
packet. A batch's packets that remembered decisions or fresh-source templates answer are
read where they were received, without an object each (:meth:`Pipeline._from_buffer`).
Besides verdicts it decides commands (:mod:`recentd.commands`): when a DROP is
one the kernel may carry (:mod:`recentd.live.policy`), a :class:`~recentd.commands.Ban`.

Commands leave the moment they are decided, before the rest of the batch is decided:
the pipeline hands each to its :class:`~recentd.enforcer.Enforcer` (the daemon's one
guard), so the kernel starts dropping the source one libnftables transaction later
(~0.2 ms; ``bench/live.py``'s ban latency) instead of after the batch and its verdict
datagram. That is the one place a backend is called in the middle of a verdict batch,
once per new ban (never per packet: a banned source's packets still in the queue are
dropped by looking at :attr:`Enforcer.active`, without the rules or the backend);
``tests/live/test_pipeline.py`` asserts the order.

Conntrack state comes from the kernel, so ``-m state`` sees exactly what the
kernel's match would: the hooks send each state to its own queue (``N + i`` for
:data:`~recentd.live.hooks.STATE_QUEUES` ``[i]``), because this kernel lacks
``NETFILTER_NETLINK_GLUE_CT`` and refuses ``NFQA_CFG_F_CONNTRACK``. Where the
kernel does send ``NFQA_CT_INFO`` it is used instead.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from recentd.clock import Clock
from recentd.enforcer import Enforcer
from recentd.errors import SourceError
from recentd.live import nfqnl
from recentd.live.hooks import STATE_QUEUES
from recentd.live.nfqnl import NF_ACCEPT, NF_DROP, QueuedPacket
from recentd.live.nfqueue import Batch
from recentd.live.policy import BanPlanner
from recentd.packets.decode import decode_ip
from recentd.packets.layout import FIELD_BYTES, HEAD_BYTES, MIN_BYTES, is_fixed
from recentd.packets.packet import Packet
from recentd.rules.evaluate import Engine, Verdict
from recentd.rules.fresh import Template
from recentd.rules.model import CtState, Hook
from recentd.rules.rawmemo import RawMemo

HOOK_NAMES = {0: "PREROUTING", 1: "INPUT", 2: "FORWARD", 3: "OUTPUT", 4: "POSTROUTING"}
CT_STATES = {
    nfqnl.IP_CT_ESTABLISHED: CtState.ESTABLISHED,
    nfqnl.IP_CT_RELATED: CtState.RELATED,
    nfqnl.IP_CT_NEW: CtState.NEW,
    nfqnl.IP_CT_ESTABLISHED_REPLY: CtState.ESTABLISHED,
    nfqnl.IP_CT_RELATED_REPLY: CtState.RELATED,
}
#: The state each queue ``N + i`` carries, by ``i`` (an index, not a lookup by name:
#: this runs per packet).
_QUEUE_STATES = tuple(CtState[name] for name in STATE_QUEUES)
#: Where the source address lies in the first HEAD_BYTES bytes read as one integer.
_SRC_SHIFT = (HEAD_BYTES - FIELD_BYTES["src"][1]) * 8
#: Likewise the first byte (version and header length), the TTL and the total length.
_VERSION_SHIFT = (HEAD_BYTES - 1) * 8
_TTL_SHIFT = (HEAD_BYTES - FIELD_BYTES["ttl"][1]) * 8
_TOTAL_SHIFT = (HEAD_BYTES - 4) * 8
#: A context :class:`~recentd.live.nfqnl.Context` has not learnt yet.
_UNSEEN: tuple[int, ...] = ()


class Decider(Protocol):
    """The rules: a packet at a hook, at ``now`` ticks, in a conntrack state → verdict.

    Returns ``NF_ACCEPT`` or ``NF_DROP`` (REJECT is answered as DROP: a queue
    verdict cannot send the reset).
    """

    def __call__(self, packet: Packet, hook: str, now: int, ctstate: CtState) -> int: ...


def engine_decider(engine: Engine) -> Decider:
    """Adapt a :class:`recentd.rules.Engine`: hook names to :class:`Hook`, the
    :class:`Verdict` to a netfilter verdict (REJECT is answered as DROP)."""
    evaluate = engine.evaluate
    hooks = {hook.value: hook for hook in Hook}
    accept = Verdict.ACCEPT

    def decide(packet: Packet, hook: str, now: int, ctstate: CtState) -> int:
        verdict = evaluate(packet, hooks[hook], now, ctstate=ctstate).verdict
        return NF_ACCEPT if verdict is accept else NF_DROP

    return decide


@dataclass
class Counters:
    """What the pipeline did, for status output and the benchmark."""

    accepted: int = 0
    dropped: int = 0
    undecodable: int = 0
    bans_planned: int = 0
    #: drops of a banned source's packets that were queued before the ban landed
    banned_drops: int = 0
    #: decisions served by a remembered decision (raw bytes), without the rules; how a
    #: verdict was reached, not what was decided: left out of equality (the memo's tests
    #: compare the counters of pipelines with and without it)
    remembered: int = field(default=0, compare=False)
    #: accepted and dropped by netfilter hook number (0 PREROUTING … 4 POSTROUTING)
    accepted_by_hook: list[int] = field(default_factory=lambda: [0] * 5)
    dropped_by_hook: list[int] = field(default_factory=lambda: [0] * 5)


@dataclass
class Pipeline:
    """Decode → decide → verdict for one batch.

    Attributes:
        decide: the rules.
        clock: read once per batch; a batch is drained in well under a tick.
        planner: the offload policy, or ``None`` for no offload.
        fail_open: verdict for a packet that cannot be decoded.
        enforcer: carries out the commands as they are decided, and holds the bans in
            force (``None``: no offload; ``planner`` is then not consulted).
        on_verdict: called with each decoded packet, its verdict and the queued packet.
        raw_memo: decisions found by raw header bytes, before decoding
            (:mod:`recentd.rules.rawmemo`), over the engine behind ``decide``, and the
            first packets of sources no table knows by their shape's template
            (:mod:`recentd.rules.fresh`); used
            while there is no offload, planner or ``on_verdict`` (each needs the
            decoded packet; with offload, the kernel drops the flood anyway).
        The clock is read for wall time only when a ban is decided (its expiry is shown
        as wall time).
    """

    decide: Decider
    clock: Clock
    planner: BanPlanner | None = None
    fail_open: bool = True
    counters: Counters = field(default_factory=Counters)
    on_verdict: Callable[[Packet, int, QueuedPacket], None] | None = None
    base_queue: int = 0
    enforcer: Enforcer | None = None
    raw_memo: RawMemo | None = None
    _ifnames: dict[int, str] = field(default_factory=dict)
    #: :meth:`_from_buffer`'s run, kept (empty) between batches
    _run: _Run | None = field(default=None, repr=False, compare=False)

    def __call__(self, batch: Batch | Sequence[QueuedPacket]) -> list[int]:
        now = self.clock.now_ticks()
        raw = self.raw_memo
        if raw is None or self.planner or self.enforcer or self.on_verdict:
            one = self._one
            packets = batch if isinstance(batch, Sequence) else batch.packets()
            return [one(queued, now) for queued in packets]
        raw.sync()
        if type(batch) is Batch:  # not isinstance(…, Sequence): an ABC's check, per batch
            return self._from_buffer(batch, now, raw)
        assert isinstance(batch, Sequence)
        return self._remembered(batch, now, raw)

    def _from_buffer(self, batch: Batch, now: int,  # noqa: PLR0912, PLR0915
                     raw: RawMemo) -> list[int]:
        """:meth:`_remembered` over a received batch, reading each message in the receive
        buffer (:class:`~recentd.live.nfqnl.Context`: one ``unpack_from``, the header
        bytes as one integer) instead of building a :class:`QueuedPacket` for it: the
        same keys, so the same remembered decisions and templates, and the same verdicts,
        counters and tables (``tests/live/test_rawmemo.py``).

        New sources answered by one template in a row are a *run*, whose effects are
        applied at once (:class:`_Run`) before anything that reads the tables: the next
        packet that is not of the run, and the end of the batch. A packet this cannot
        read so, or that neither a remembered decision nor a template answers, is made a
        :class:`QueuedPacket` and goes the whole way (:meth:`_remembered`). Inline copies
        of :meth:`_remembered`'s loop body: this runs per packet."""
        verdicts: list[int] = []
        append = verdicts.append
        view, context_of, packet_at = batch.view, nfqnl.context_of, nfqnl.packet_at
        from_bytes, slow = int.from_bytes, self._remembered
        mask, fresh_mask = raw.mask, raw.fresh_mask
        get, get_template = raw.get, raw.get_template
        engine = raw.engine
        reuse, generation = engine.reuse, engine.generation
        counters = self.counters
        accepted_by_hook, dropped_by_hook = counters.accepted_by_hook, counters.dropped_by_hook
        accepted = dropped = 0
        size, context = -1, None
        run = self._run
        if run is None or run.index4 is not raw.fresh_index4:
            run = self._run = _Run(raw.fresh_index4)
        run.now = now
        checks, heads = run.checks, run.heads
        add_head = heads.append
        single = len(checks) == 1
        single_mask, single_entries, single_pending = checks[0] if single else (0, {}, set())
        # the last new source's shape, hook and context, and its template's verdict
        shape: int | None = None
        shape_hook, shape_known, fresh_verdict, slot = -1, None, NF_DROP, -1
        # packets decided by a template, by 2 * hook + verdict: counted once per batch
        tally = [0] * (2 * len(accepted_by_hook))
        last_key: tuple[bytes, ...] | None = None
        known: tuple[int, ...] | None = None
        template = None
        for start, end, hook in zip(batch.starts, batch.ends, batch.hooks, strict=True):
            if end - start != size:
                size = end - start
                context = context_of(size)
                if context is not None:
                    knowns, (first, last) = context.knowns, context.payload
                    length, shape, last_key = last - first, None, None
                    read = _reader(context)
                    last1 = last2 = last3 = b""
            if context is None or length < MIN_BYTES:
                run.flush()
                append(slow([packet_at(view, start, end)], now, raw)[0])
                size, shape = -1, None  # the walk may have learnt this size's context
                continue
            # its context as bytes, and its header bytes, in one read (int.from_bytes of
            # a memoryview slice copies it through a buffer: twice this)
            context1, context2, context3, head_bytes = read(view, start)
            if context2 != last2 or context3 != last3 or context1 != last1 or last_key is None:
                # a flood's packets share it: compared with the last one's, not hashed
                last1, last2, last3 = context1, context2, context3
                last_key = (context1, context2, context3)
                known = knowns.get(last_key, _UNSEEN)
                if known is _UNSEEN:
                    known = context.learn_bytes(last_key, view, start)
            head = from_bytes(head_bytes, "big")
            if known is None or head >> _VERSION_SHIFT != 0x45:
                run.flush()
                append(slow([packet_at(view, start, end)], now, raw)[0])
                shape = None
                continue
            if fresh_mask is not None:
                src = (head >> _SRC_SHIFT) & 0xFFFFFFFF
                # Fresh.unknown, inline (per packet), against the tables as the run
                # leaves them: the run's own sources are known, and any doubt applies it
                if single:  # one table: the same test without a loop (per packet)
                    table_key = src & single_mask
                    doubt = table_key in single_entries or table_key in single_pending
                else:
                    doubt = any(src & table_mask in entries or src & table_mask in pending
                                for table_mask, entries, pending in checks)
                if not doubt:
                    unknown = True
                elif heads:
                    run.flush()
                    unknown = not any(src & table_mask in entries
                                      for table_mask, entries, _ in checks)
                else:
                    unknown = False
                if unknown:
                    shaped = head & fresh_mask
                    # a flood's packets share their shape: compared with the last one's,
                    # its key made and looked up only when it changes
                    if shaped != shape or hook != shape_hook or known is not shape_known:
                        shape, shape_hook, shape_known, slot = shaped, hook, known, -1
                        template = get_template((hook, known, length, shaped))
                        if template is not None and template.generation == generation:
                            if template is not run.template:
                                run.flush()
                                run.template = template
                            fresh_verdict = NF_ACCEPT if template.accepts else NF_DROP
                            slot = 2 * hook + fresh_verdict
                    if slot >= 0:
                        add_head(head)
                        if single:
                            single_pending.add(table_key)
                        else:
                            for table_mask, _, pending in checks:
                                pending.add(src & table_mask)
                        tally[slot] += 1
                        append(fresh_verdict)
                        continue
            run.flush()
            found = get((hook, known, length, head & mask))
            if found is not None:
                decision = reuse(found, now, (head >> _TOTAL_SHIFT) & 0xFFFF)
                if decision is not None:
                    if decision.verdict is Verdict.ACCEPT:
                        accepted += 1
                        accepted_by_hook[hook] += 1
                        append(NF_ACCEPT)
                    else:
                        dropped += 1
                        dropped_by_hook[hook] += 1
                        append(NF_DROP)
                    continue
            append(slow([packet_at(view, start, end)], now, raw)[0])
            shape = None  # the walk may have learnt a template for it
        run.flush()
        for slot, count in enumerate(tally):
            if count:
                hook, verdict = divmod(slot, 2)
                if verdict == NF_ACCEPT:
                    accepted += count
                    accepted_by_hook[hook] += count
                else:
                    dropped += count
                    dropped_by_hook[hook] += count
        # the slow path counts its own packets: these are the ones decided here
        counters.remembered += accepted + dropped
        counters.accepted += accepted
        counters.dropped += dropped
        return verdicts

    def _remembered(self, packets: Sequence[QueuedPacket], now: int,  # noqa: PLR0912, PLR0915
                    raw: RawMemo) -> list[int]:
        """Each packet's verdict from a decision remembered for its raw bytes, or from
        the template for its shape when no table knows its source, if one holds; else
        from the rules (:meth:`_one`). One loop over the batch with what it reads bound
        to locals, and the counters counted once per batch: this runs per packet."""
        verdicts: list[int] = []
        append, one = verdicts.append, self._one
        mask, fresh_mask, tables = raw.mask, raw.fresh_mask, raw.fresh_index4
        get, get_template = raw.get, raw.get_template
        engine = raw.engine
        reuse, generation = engine.reuse, engine.generation
        counters = self.counters
        accepted_by_hook, dropped_by_hook = counters.accepted_by_hook, counters.dropped_by_hook
        accepted = dropped = 0
        for queued in packets:
            payload = queued[2]  # by index: a NamedTuple's attribute is a Python-level lookup
            # Inline copy of the first test of packets.layout.is_fixed (the call: 300 ns a
            # packet), which _one makes whole before it remembers: a key for a packet that
            # fails the rest finds nothing.
            if len(payload) < MIN_BYTES or payload[0] != 0x45:
                append(one(queued, now))
                continue
            # Everything the decision can depend on besides the bytes: the hook, then
            # ctinfo, mark, interfaces and queue (the conntrack state comes from the queue
            # or ctinfo), the length captured.
            head = int.from_bytes(payload[:HEAD_BYTES], "big")
            hook, known, size = queued[1], queued[3:8], len(payload)
            fresh_key = None
            if fresh_mask is not None:
                # A source no table knows, of a shape whose template the engine learnt
                # (rules.fresh): the template's effects, without decoding or the rules.
                src = (head >> _SRC_SHIFT) & 0xFFFFFFFF
                for table_mask, entries in tables:  # Fresh.unknown, inline: per packet
                    if src & table_mask in entries:
                        break
                else:
                    fresh_key = (hook, known, size, head & fresh_mask)
                    template = get_template(fresh_key)
                    if template is not None and template.generation == generation:
                        template.apply(4, src, payload[8], now, (payload[2] << 8) | payload[3])
                        if template.accepts:
                            accepted += 1
                            accepted_by_hook[hook] += 1
                            append(NF_ACCEPT)
                        else:
                            dropped += 1
                            dropped_by_hook[hook] += 1
                            append(NF_DROP)
                        continue
            key = (hook, known, size, head & mask)
            found = get(key)
            if found is not None:
                decision = reuse(found, now, (payload[2] << 8) | payload[3])
                if decision is not None:
                    if decision.verdict is Verdict.ACCEPT:
                        accepted += 1
                        accepted_by_hook[hook] += 1
                        append(NF_ACCEPT)
                    else:
                        dropped += 1
                        dropped_by_hook[hook] += 1
                        append(NF_DROP)
                    continue
            append(one(queued, now, raw, key, fresh_key))
        # _one counts its own packets: these are the ones decided here
        counters.remembered += accepted + dropped
        counters.accepted += accepted
        counters.dropped += dropped
        return verdicts

    def _one(self, queued: QueuedPacket, now: int, raw: RawMemo | None = None,
             key: object = None, fresh_key: object = None) -> int:
        ifnames = self._ifnames  # looked up here, _ifname() only for a new index: per packet
        indev, outdev = queued.indev, queued.outdev
        iif = (ifnames.get(indev) or self._ifname(indev)) if indev else ""
        oif = (ifnames.get(outdev) or self._ifname(outdev)) if outdev else ""
        try:
            packet = decode_ip(queued.payload, iif=iif, oif=oif, mark=queued.mark)
        except SourceError:
            self.counters.undecodable += 1
            return NF_ACCEPT if self.fail_open else NF_DROP
        ctstate = self._ctstate(queued)
        enforcer = self.enforcer
        hook = HOOK_NAMES.get(queued.hook, "INPUT")
        if enforcer and enforcer.active and self._banned(enforcer, packet, ctstate, hook, now):
            self.counters.dropped += 1
            self.counters.banned_drops += 1
            self.counters.dropped_by_hook[queued.hook] += 1
            verdict = NF_DROP
            if self.planner is not None and self.planner.case.recipe:
                self.planner.stamp(packet, now)  # what the kernel's drop logs for replay
        else:
            verdict = self.decide(packet, hook, now, ctstate)
            if raw is not None and is_fixed(queued.payload):
                raw.remember(key, packet, Hook(hook), ctstate)
                if fresh_key is not None:
                    raw.remember_fresh(fresh_key, packet, Hook(hook), ctstate)
            if verdict == NF_ACCEPT:
                self.counters.accepted += 1
                self.counters.accepted_by_hook[queued.hook] += 1
            else:
                self.counters.dropped += 1
                self.counters.dropped_by_hook[queued.hook] += 1
                self._plan(packet, ctstate, now)
        if self.on_verdict is not None:
            self.on_verdict(packet, verdict, queued)
        return verdict

    def _banned(self, enforcer: Enforcer, packet: Packet, ctstate: CtState, hook: str,
                now: int) -> bool:
        """Whether a ban in force covers this packet on ``hook`` (so the kernel, and rule
        R, drop it; traffic the kernel class leaves to user space goes to the rules)."""
        return (
            self.planner is not None
            and enforcer.holding(packet.family, packet.src, now) is not None
            and self.planner.case.covers(packet, ctstate, hook)
        )

    def _ctstate(self, queued: QueuedPacket) -> CtState:
        if queued.ctinfo != nfqnl.CT_NONE:
            return CT_STATES.get(queued.ctinfo, CtState.INVALID)
        offset = queued.queue - self.base_queue
        return _QUEUE_STATES[offset] if 0 <= offset < len(_QUEUE_STATES) else CtState.INVALID

    def _plan(self, packet: Packet, ctstate: CtState, now: int) -> None:
        planner, enforcer = self.planner, self.enforcer
        if planner is None or enforcer is None or not planner.case.plans_on(packet, ctstate):
            return
        ban = planner.plan_address(packet.family, packet.src, self.clock.read(), "packet")
        if ban is not None:
            self.counters.bans_planned += 1
            enforcer.carry_out(ban, now)

    def _ifname(self, index: int) -> str:
        name = self._ifnames.get(index)
        if name is None:
            try:
                name = socket.if_indextoname(index)
            except OSError:
                name = ""
            self._ifnames[index] = name
        return name


@cache
def _reader(context: nfqnl.Context) -> Callable[[memoryview, int],
                                                 tuple[bytes, bytes, bytes, bytes]]:
    """Reads a message's context as bytes, then its first :data:`HEAD_BYTES` header bytes."""
    return context.spans_reader(HEAD_BYTES)


class _Run:
    """New sources in a row answered by one template, applied at once: the same entries,
    order, counts and rule counters as :meth:`~recentd.rules.fresh.Template.apply` one
    by one (``RecentTable.place_many4``), as the sources are distinct under each table's
    mask and unknown to it (:meth:`Pipeline._from_buffer` checks both, through
    :attr:`checks`).

    Attributes:
        checks: per table, its IPv4 mask, its entries and the run's keys in it.
        template: the run's template (None: no run yet).
        heads: each packet's first HEAD_BYTES header bytes as one integer, in order.
    """

    __slots__ = ("checks", "heads", "index4", "now", "template")

    def __init__(self, index4: Sequence[tuple[int, Mapping[int, list[int]]]]) -> None:
        self.index4 = index4
        self.checks = [(mask, entries, set[int]()) for mask, entries in index4]
        self.now = 0
        self.template: Template | None = None
        self.heads: list[int] = []

    def flush(self) -> None:
        """Apply the run's effects, and start an empty one."""
        heads, template = self.heads, self.template
        if not heads or template is None:
            return
        count = len(heads)
        total = sum([(head >> _TOTAL_SHIFT) & 0xFFFF for head in heads])
        for counters in template.bumps:
            counters[0] += count
            counters[1] += total
        srcs = [(head >> _SRC_SHIFT) & 0xFFFFFFFF for head in heads]
        ttls = [(head >> _TTL_SHIFT) & 0xFF for head in heads]
        nows = [self.now] * count
        for table, forwarded, stamps, kept in template.writes:
            table.place_many4(srcs, [(ttl + 1) & 0xFF for ttl in ttls] if forwarded else ttls,
                              nows, stamps=stamps, kept=kept)
        heads.clear()
        for _, _, pending in self.checks:
            pending.clear()
