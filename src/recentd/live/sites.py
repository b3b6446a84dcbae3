"""The split's queue: each packet decided by the recentd chain of the site it was
queued at (``rules/split.py`` rule 4), answered as that chain ended.

Site ``k``'s queues are ``base + 5k + i`` (``i``: the conntrack state, as the queue
hooks do); its engine evaluates the chain from the site's built-in chain, which marks
``RESUME | k`` only when the chain returns. The answer:

- the chain accepted: ``NF_ACCEPT`` (with the mark its MARK rules left, if changed);
- it dropped: ``NF_DROP``; it rejected: ``NF_REPEAT`` with the mark of that REJECT type,
  which the hook's first rules send to the kernel's own REJECT (``RECENTD-X<id>``);
- it returned: ``NF_REPEAT`` with the resume mark — the kernel runs the hook again and
  its first rule sends the packet on to the rest of the path after the jump.

One engine per site, all sharing the daemon's `recent` tables (a chain jumped to from
two sites keeps one ``limit`` bucket per site, as two copies of a rule would).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from recentd.errors import SourceError
from recentd.live.nfqnl import CT_NONE, NF_ACCEPT, NF_DROP, NF_REPEAT, QueuedPacket, with_mark
from recentd.live.verdict import HOOK_NAMES, Pipeline, engine_decider
from recentd.packets.decode import decode_ip
from recentd.recent import RecentTables
from recentd.rules.evaluate import Engine, Verdict
from recentd.rules.model import CtState, Hook
from recentd.rules.split import MARK_MASK, RESUME, STATES, Site

_STATES = tuple(CtState[name] for name in STATES)


@dataclass
class SitePipeline(Pipeline):
    """:class:`~recentd.live.verdict.Pipeline` for the split's sites (one engine each)."""

    engines: list[Engine] = field(default_factory=list)
    sites: tuple[Site, ...] = ()

    @classmethod
    def of(cls, sites: Sequence[Site], tables: RecentTables, hz: int,
           **kw: object) -> SitePipeline:  # fmt: skip
        engines = [Engine(site.ruleset, tables, hz) for site in sites]
        first = engine_decider(engines[0]) if engines else (lambda *_: NF_ACCEPT)
        return cls(first, engines=engines, sites=tuple(sites), **kw)  # type: ignore[arg-type]

    def replace(self, sites: Sequence[Site], tables: RecentTables, hz: int) -> None:
        """New rules: new engines (the tables stay)."""
        self.engines = [Engine(site.ruleset, tables, hz) for site in sites]
        self.sites = tuple(sites)

    def __call__(self, batch: object) -> list[int]:
        now = self.clock.now_ticks()
        packets = batch if isinstance(batch, Sequence) else batch.packets()  # type: ignore[attr-defined]
        return [self._site(queued, now) for queued in packets]

    def _site(self, queued: QueuedPacket, now: int) -> int:
        number, state = divmod(queued.queue - self.base_queue, len(STATES))
        if not 0 <= number < len(self.engines):
            return NF_ACCEPT if self.fail_open else NF_DROP
        indev, outdev = queued.indev, queued.outdev
        try:
            packet = decode_ip(queued.payload, iif=self._ifname(indev) if indev else "",
                               oif=self._ifname(outdev) if outdev else "", mark=queued.mark)
        except SourceError:
            self.counters.undecodable += 1
            return NF_ACCEPT if self.fail_open else NF_DROP
        ctstate = _STATES[state] if queued.ctinfo == CT_NONE else self._ctstate(queued)
        hook = HOOK_NAMES.get(queued.hook, "INPUT")
        enforcer = self.enforcer
        if enforcer and enforcer.active and self._banned(enforcer, packet, ctstate, hook, now):
            self.counters.banned_drops += 1
            return self._dropped(queued)
        site = self.sites[number]
        decision = self.engines[number].evaluate(packet, Hook(site.hook), now, ctstate=ctstate)
        if decision.verdict is not Verdict.ACCEPT:
            verdict = self._dropped(queued)
            self._plan(packet, ctstate, now)
            for kind, mark in site.rejects if decision.verdict is Verdict.REJECT else ():
                if kind == decision.reject_with:  # the kernel's REJECT sends the answer
                    return with_mark(NF_REPEAT, decision.mark & ~MARK_MASK | mark)
            return verdict
        self.counters.accepted += 1
        self.counters.accepted_by_hook[queued.hook] += 1
        return _accepted(decision.mark, queued.mark, site)

    def _dropped(self, queued: QueuedPacket) -> int:
        self.counters.dropped += 1
        self.counters.dropped_by_hook[queued.hook] += 1
        return NF_DROP


def _accepted(mark: int, queued_mark: int, site: Site) -> int:
    """The verdict of a chain that did not drop: it returned (resume after the jump), or
    it accepted (with the mark its MARK rules left, when they changed it)."""
    if mark & RESUME:
        return with_mark(NF_REPEAT, mark & ~MARK_MASK | site.resume_mark)
    return with_mark(NF_ACCEPT, mark) if mark != queued_mark else NF_ACCEPT
