"""A recent table: entries keyed by (family, masked address), in LRU order, bounded.

Rules of the table (spec §1.3–§1.5, §2):

1. At most one entry per (family, address); the address is masked with the
   *table's* mask, fixed by the rule that created the table.
2. An entry keeps a ring of ``ring`` stamps (a power of two). ``index`` counts
   the slot written next, from 1; once the ring is full the oldest slot is reused.
3. Only ``--set``, an ``--update`` that matches, and ``+addr`` refresh an entry's
   LRU position. ``--rcheck`` never does, even when it matches.
4. Creating an entry in a full table first evicts the least recently refreshed one.
5. ``--reap`` looks at the single LRU head only, and never removes the entry the
   same packet is about to stamp.

Representation, chosen for speed and memory (a benchmark holds a million
entries): an ``OrderedDict`` from an integer key to a list
``[ttl, index, stamp0, stamp1, …]``. The key is the masked address, with bit 128
set for IPv6 so the two families never collide. Stamps are tick integers; the
list grows one slot per stamp until the ring is full, so an address seen once
costs one stamp, not a whole ring as in the kernel.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from recentd.recent.match import ALL_ONES_MASK, DEFAULT_RING, Command, RecentMatch
from recentd.recent.params import ModuleParams, Quirks
from recentd.recent.ticks import DEFAULT_HZ

#: Set on IPv6 keys so that an IPv6 address never equals an IPv4 one.
V6_TAG = 1 << 128
_V4 = 4

_TTL, _INDEX, _STAMPS = 0, 1, 2


def key_of(family: int, addr: int) -> int:
    """The table key of an (already masked) address."""
    return addr if family == _V4 else addr | V6_TAG


def family_addr_of(key: int) -> tuple[int, int]:
    """Inverse of :func:`key_of`."""
    return (6, key ^ V6_TAG) if key & V6_TAG else (4, key)


@dataclass(frozen=True, slots=True)
class EntryView:
    """A read-only copy of one entry, as /proc shows it.

    Attributes:
        family, addr: the stored (masked) address.
        ttl: recorded TTL; 0 is a wildcard.
        index: the kernel's ``index``: the next slot to write, counting from 1
            (printed as ``oldest_pkt``).
        stamps: the stamps in slot order (not chronological once the ring wrapped).
        last_seen: the most recent stamp.
    """

    family: int
    addr: int
    ttl: int
    index: int
    stamps: tuple[int, ...]
    last_seen: int


class RecentTable:
    """One named table. Every method takes the time it needs as ``now`` (ticks).

    Args:
        name: the table name.
        mask: the 128-bit mask of the rule that created the table.
        ring: stamps per entry (a power of two).
        params: module parameters of this table.
        hz: tick rate, to turn ``--seconds`` into ticks.
        quirks: kernel bugs to reproduce (default: none).
        version: a one-item list counting every change to an entry, shared by the
            tables of one :class:`~recentd.recent.RecentTables` (its own if omitted):
            a remembered decision (``recentd.rules.memo``) holds while it is unchanged.
    """

    def __init__(
        self,
        name: str,
        *,
        mask: int = ALL_ONES_MASK,
        ring: int = DEFAULT_RING,
        params: ModuleParams | None = None,
        hz: int = DEFAULT_HZ,
        quirks: Quirks | None = None,
        version: list[int] | None = None,
    ) -> None:
        self.name = name
        self.mask = mask
        self.hz = hz
        self.quirks = quirks or Quirks()
        self._u32_wrap = self.quirks.seconds_u32_wrap
        self.params = params or ModuleParams()
        self._limit = self.params.ip_list_tot
        self._mask4 = mask >> 96
        self._mask6 = mask
        self._ring = ring
        self._entries: OrderedDict[int, list[int]] = OrderedDict()
        # Keys changed since the feed last handed them to its subscribers; None while
        # nobody subscribes (the hot path then skips the bookkeeping).
        self._changed: set[int] | None = None
        self._flushed = False
        self._subscribers: list[Subscription] = []
        #: Entries pushed out by a full table (LRU head), since the table was made.
        self.evictions = 0
        #: Entries created (``--set``, ``+addr``), since the table was made (how the rules'
        #: fresh-source templates, :mod:`recentd.rules.fresh`, see what a walk created).
        self.created = 0
        self._version = version if version is not None else [0]

    # ---- size and parameters -------------------------------------------------------

    @property
    def ring(self) -> int:
        """Stamps kept per entry."""
        return self._ring

    def __len__(self) -> int:
        return len(self._entries)

    def grow_ring(self, ring: int) -> bool:
        """Make the ring at least ``ring`` slots. Growing flushes the table, as in the
        kernel (spec §1.6). Returns whether it grew."""
        if ring <= self._ring:
            return False
        self._ring = ring
        self.flush()
        return True

    def reconfigure(self, params: ModuleParams) -> None:
        """Apply new module parameters now; a lower ``ip_list_tot`` evicts LRU heads."""
        self.params = params
        self._limit = params.ip_list_tot
        while len(self._entries) > params.ip_list_tot:
            self._evict_head()

    # ---- the match ------------------------------------------------------------------

    def key(self, family: int, addr: int) -> int:
        """The key of ``addr`` under this table's mask."""
        if family == _V4:
            return addr & self._mask4
        return (addr & self._mask6) | V6_TAG

    def evaluate(self, match: RecentMatch, family: int, addr: int, ttl: int, now: int) -> bool:
        """Run one `-m recent` match against this table (spec §2), side effects included.

        Args:
            match: the rule's options (``match.name`` is this table).
            family: 4 or 6.
            addr: the packet address the rule's ``side`` selects, unmasked.
            ttl: the packet's TTL or hop limit, already adjusted for hooks with an
                output device (see :func:`forwarded_ttl`).
            now: the current time in ticks.

        Returns:
            Whether the match matched (after ``!``).
        """
        # self.key(), inlined: this runs for every recent match of every packet.
        key = addr & self._mask4 if family == _V4 else (addr & self._mask6) | V6_TAG
        entries = self._entries
        entry = entries.get(key)
        # --rttl: a recorded TTL of 0, or a packet TTL of 0, is a wildcard (spec §1.4).
        if entry is not None and match.rttl and ttl and entry[_TTL] and entry[_TTL] != ttl:
            entry = None
        command = match.command
        if entry is None:
            if command is not Command.SET:
                return match.invert
            if len(entries) >= self._limit:
                self._evict_head()
            entries[key] = [ttl, 1, now]  # _create(), inlined for the hot path
            self.created += 1
            self._version[0] += 1
            if self._changed is not None:
                self._changed.add(key)
            return not match.invert
        if command is Command.SET:
            self._stamp(key, entry, now)
            entry[_TTL] = ttl
            return not match.invert
        if command is Command.REMOVE:
            self._delete(key)
            return not match.invert
        # window_ticks() inlined: this is the hot path of every --rcheck/--update.
        window = match.seconds * self.hz
        if self._u32_wrap:
            window %= 2**32
        oldest_ok = now - window
        result = match.invert ^ _condition(entry, match.seconds, match.hitcount, oldest_ok)
        will_update = command is Command.UPDATE and result
        if match.reap:
            self._reap_head(oldest_ok, key, will_update)
        if will_update:
            self._stamp(key, entry, now)
            entry[_TTL] = ttl
        return result

    def stable_until(self, match: RecentMatch, family: int, addr: int, ttl: int,
                     now: int) -> float:
        """The last tick up to which this match keeps the answer it gives at ``now``,
        provided the table does not change meanwhile (``inf``: for ever).

        Only time moves, and time only takes stamps out of the window: an answer
        resting on ``--hitcount`` stamps in the window turns when the one that
        completes the count (the ``hitcount``-th newest in the window) leaves it;
        every other answer (no entry, no ``--seconds``, too few stamps) stays. The
        arguments are those of :meth:`evaluate`, whose answer is not recomputed.
        """
        entry = self._entries.get(self.key(family, addr))
        if entry is None or not match.seconds:
            return math.inf
        if match.rttl and ttl and entry[_TTL] and entry[_TTL] != ttl:
            return math.inf
        window = match.seconds * self.hz
        if self._u32_wrap:
            window %= 2**32
        oldest_ok = now - window
        in_window = sorted((stamp for stamp in entry[_STAMPS:] if stamp >= oldest_ok),
                           reverse=True)
        needed = max(match.hitcount, 1)
        if len(in_window) < needed:
            return math.inf
        return in_window[needed - 1] + window

    # ---- a new source's entry, all at once (rules.fresh) ------------------------------

    def knows(self, family: int, addr: int) -> bool:
        """Whether a packet from ``addr`` (masked here) would find an entry."""
        key = addr & self._mask4 if family == _V4 else (addr & self._mask6) | V6_TAG
        return key in self._entries

    def entry_of(self, family: int, addr: int) -> list[int] | None:
        """A copy of the entry a packet from ``addr`` would find, as stored (TTL, index,
        stamps in slot order), or None."""
        key = addr & self._mask4 if family == _V4 else (addr & self._mask6) | V6_TAG
        entry = self._entries.get(key)
        return None if entry is None else list(entry)

    def place(self, family: int, addr: int, ttl: int, now: int, *, stamps: int = 1,
              kept: bool = True) -> None:
        """What the `recent` matches of one packet's walk leave for an address the
        table did not know (:meth:`knows`), when they created its entry at ``now``: the
        LRU head evicted if the table is full, then the entry — TTL ``ttl``, ``stamps``
        stamps of ``now`` (fewer than the ring holds) — at the tail, or (``kept``
        False: created, then removed by the same walk) no entry. The same entries,
        order and counts as those matches' own steps (``tests/rules/test_evaluate_fresh.py``).
        """
        key = addr & self._mask4 if family == _V4 else (addr & self._mask6) | V6_TAG
        entries = self._entries
        if len(entries) >= self._limit:  # _evict_head(), inline: per packet of a flood
            evicted, _ = entries.popitem(last=False)
            self.evictions += 1
            self._version[0] += 1
            if self._changed is not None:
                self._changed.add(evicted)
        self.created += 1
        self._version[0] += 1
        if kept:
            entries[key] = [ttl, 1, now] if stamps == 1 else [ttl, stamps, *(now,) * stamps]
        if self._changed is not None:
            self._changed.add(key)

    def place_many4(self, addrs: list[int], ttls: list[int], nows: list[int], *,
                    stamps: int = 1, kept: bool = True) -> None:
        """:meth:`place` for IPv4 addresses ``addrs`` in turn, at ``nows`` with TTLs
        ``ttls``, when their keys are distinct and the table knows none of them: the
        same entries, order, counts and changes, with the evictions taken at once
        (``tests/rules/test_evaluate_fresh.py``)."""
        mask, entries, limit = self._mask4, self._entries, self._limit
        keys = [addr & mask for addr in addrs]
        changed, version = self._changed, self._version
        count = len(keys)
        if not kept:
            # Nothing stays: only the first can find the table full.
            if count and len(entries) >= limit:
                self._evict_head()
        else:
            evict = len(entries) + count - limit  # one per place into a full table
            skip = 0
            if evict > 0:
                old = min(evict, len(entries))
                popitem = entries.popitem
                if changed is None:  # _evict_head, inline: per packet of a flood
                    for _ in range(old):
                        popitem(last=False)
                else:
                    for _ in range(old):
                        changed.add(popitem(last=False)[0])
                skip = evict - old  # the first new entries go too, pushed out by later ones
                self.evictions += evict
                version[0] += evict
            if stamps == 1:
                made = [[ttl, 1, now] for ttl, now in zip(ttls[skip:], nows[skip:], strict=True)]
            else:
                made = [[ttl, stamps, *(now,) * stamps]
                        for ttl, now in zip(ttls[skip:], nows[skip:], strict=True)]
            entries.update(zip(keys[skip:], made, strict=True))
        self.created += count
        version[0] += count
        if changed is not None:
            changed.update(keys)

    def representation(self) -> tuple[OrderedDict[int, list[int]], int, int, int, int, int,
                                      list[int], set[int] | None]:  # fmt: skip
        """The representation itself (entries, IPv4 mask, IPv6 mask, the IPv6 tag, ring,
        ``ip_list_tot``, the shared version, the changed keys or None), for the one twin
        of :meth:`add` and :meth:`stamps` that writes it: ``recentd/logs/_bulk.c``
        (``table_add``, ``hit_stamp``), the compiled replay of auth logs. It adds what it
        created and evicted to :attr:`created` and :attr:`evictions` itself."""
        return (self._entries, self._mask4, self._mask6, V6_TAG, self._ring, self._limit,
                self._version, self._changed)  # fmt: skip

    def index4(self) -> tuple[int, Mapping[int, list[int]]]:
        """The IPv4 mask and the entries by key (read only: for hot paths that test
        many addresses, as :meth:`knows` does, without a call each: rules.fresh)."""
        return self._mask4, self._entries

    # ---- /proc-style operations -------------------------------------------------------

    def add(self, family: int, addr: int, now: int) -> None:
        """``+addr``: create the entry with TTL 0, or stamp the existing one (TTL kept).

        The address is masked with the table's mask, so that packets find it — the
        kernel stores it literally and packets then never match it (a bug, see
        docs/deviations.md); ``Quirks.unmasked_proc_writes`` reproduces that.
        """
        key = self._proc_key(family, addr)
        entry = self._entries.get(key)
        if entry is None:
            self._create(key, 0, now)
        else:
            self._stamp(key, entry, now)

    def remove(self, family: int, addr: int) -> bool:
        """``-addr``: delete the entry if there is one; returns whether there was."""
        key = self._proc_key(family, addr)
        if key not in self._entries:
            return False
        self._delete(key)
        return True

    def _proc_key(self, family: int, addr: int) -> int:
        """The key a /proc write names: masked, unless the kernel's quirk is asked for."""
        if self.quirks.unmasked_proc_writes:
            return key_of(family, addr)
        return self.key(family, addr)

    def flush(self) -> None:
        """``/``: delete every entry."""
        self._entries.clear()
        self._version[0] += 1
        if self._changed is not None:
            self._changed.clear()
            self._flushed = True

    # ---- reading ----------------------------------------------------------------------

    def get(self, family: int, addr: int) -> EntryView | None:
        """The entry a packet from ``addr`` would find (masked), if any."""
        key = self.key(family, addr)
        entry = self._entries.get(key)
        return None if entry is None else self._view(key, entry)

    def stamps(self, family: int, addr: int) -> tuple[int, ...]:
        """The stamps of the entry a packet from ``addr`` would find (masked), in slot
        order; ``()`` if there is none. :meth:`get` without the view: ``recentd logs
        replay`` asks this after every event it writes."""
        entry = self._entries.get(self.key(family, addr))
        return () if entry is None else tuple(entry[_STAMPS:])

    def __iter__(self) -> Iterator[EntryView]:
        """Entries from least to most recently refreshed."""
        for key, entry in list(self._entries.items()):
            yield self._view(key, entry)

    def _view(self, key: int, entry: list[int]) -> EntryView:
        family, addr = family_addr_of(key)
        index = entry[_INDEX]
        stamps = tuple(entry[_STAMPS:])
        return EntryView(family, addr, entry[_TTL], index, stamps, stamps[(index - 1) % self._ring])

    # ---- restoring state ----------------------------------------------------------------

    def load(self, view: EntryView) -> None:
        """Put an entry back as it was (used by snapshot restore); it becomes the
        most recently refreshed. Stamps beyond the ring are dropped oldest first."""
        stamps = list(view.stamps)
        index = view.index
        if len(stamps) > self._ring:
            chronological = sorted(stamps)[-self._ring :]
            stamps, index = chronological, self._ring
        key = key_of(view.family, view.addr)
        if key not in self._entries and len(self._entries) >= self.params.ip_list_tot:
            self._evict_head()
        self._entries[key] = [view.ttl, index, *stamps]
        self._entries.move_to_end(key)
        self._version[0] += 1
        if self._changed is not None:
            self._changed.add(key)

    # ---- the change feed (journal, metrics, fleet) ----------------------------------------

    def subscribe(self, *, limit: int = 1_000_000) -> Subscription:
        """A new consumer of this table's changes, from now on.

        Each subscription sees every change, whatever the others read. Its pending
        changes are bounded: past ``limit`` changed entries it forgets them and its next
        :meth:`Subscription.read` says ``resync`` (take the whole table instead).
        """
        subscription = Subscription(self, limit)
        self._subscribers.append(subscription)
        if self._changed is None:
            self._changed, self._flushed = set(), False
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._collect()
            self._subscribers.remove(subscription)
        if not self._subscribers:
            self._changed, self._flushed = None, False

    def _collect(self) -> None:
        """Hand the changes gathered since the last call to every subscriber.

        The hot path adds to one set whatever the number of subscribers; the set is
        spread here, when a consumer reads (the last subscriber takes it without a copy).
        """
        changed, flushed = self._changed, self._flushed
        if changed is None or not (changed or flushed):
            return
        self._changed, self._flushed = set(), False
        *others, last = self._subscribers
        for subscription in others:
            subscription._absorb(set(changed), flushed)
        last._absorb(changed, flushed)

    def _changes_of(self, changed: set[int], flushed: bool) -> TableChanges:
        """The current state of the ``changed`` keys, as a :class:`TableChanges`.

        Every change but a deletion also refreshes the entry's LRU position, so the
        changed entries that still exist are exactly the most recently refreshed
        ones: they are returned in LRU order, found by walking back from the tail.
        """
        live: list[EntryView] = []
        for key in reversed(self._entries):
            if len(live) == len(changed):
                break
            if key in changed:
                live.append(self._view(key, self._entries[key]))
        live.reverse()
        present = {key_of(view.family, view.addr) for view in live}
        deleted = [family_addr_of(key) for key in changed - present]
        return TableChanges(flushed=flushed, deleted=deleted, updated=live)

    # ---- internals ---------------------------------------------------------------------

    def _create(self, key: int, ttl: int, now: int) -> None:
        entries = self._entries
        if len(entries) >= self._limit:
            self._evict_head()
        entries[key] = [ttl, 1, now]
        self.created += 1
        self._version[0] += 1
        if self._changed is not None:
            self._changed.add(key)

    def _evict_head(self) -> None:
        key, _ = self._entries.popitem(last=False)
        self.evictions += 1
        self._version[0] += 1
        if self._changed is not None:
            self._changed.add(key)

    def _delete(self, key: int) -> None:
        del self._entries[key]
        self._version[0] += 1
        if self._changed is not None:
            self._changed.add(key)

    def _stamp(self, key: int, entry: list[int], now: int) -> None:
        slot = entry[_INDEX] & (self._ring - 1)
        if slot == len(entry) - _STAMPS:
            entry.append(now)
        else:
            entry[_STAMPS + slot] = now
        entry[_INDEX] = slot + 1
        self._entries.move_to_end(key)
        self._version[0] += 1
        if self._changed is not None:
            self._changed.add(key)

    def _reap_head(self, oldest_ok: int, working_key: int, will_update: bool) -> None:
        head_key = next(iter(self._entries))
        if head_key == working_key and will_update:
            return
        head = self._entries[head_key]
        last_seen = head[_STAMPS + ((head[_INDEX] - 1) & (self._ring - 1))]
        if last_seen < oldest_ok:
            self._delete(head_key)


@dataclass(frozen=True, slots=True)
class TableChanges:
    """What changed in a table between two reads of one :class:`Subscription`.

    Apply in this order to reproduce the table: if ``resync``, take the whole table
    (the subscription fell too far behind and forgot its changes); otherwise, if
    ``flushed``, empty it; delete ``deleted``; then load ``updated`` in order (least
    recently refreshed first).
    """

    flushed: bool
    deleted: list[tuple[int, int]]
    updated: list[EntryView]
    resync: bool = False


class Subscription:
    """One consumer's view of a table's change feed (see :meth:`RecentTable.subscribe`)."""

    def __init__(self, table: RecentTable, limit: int) -> None:
        self.table = table
        self.limit = limit
        self._keys: set[int] = set()
        self._flushed = False
        self._resync = False

    def read(self) -> TableChanges:
        """What changed since this subscription's last read (or its start), and forget it."""
        self.table._collect()
        keys, flushed, resync = self._keys, self._flushed, self._resync
        self._keys, self._flushed, self._resync = set(), False, False
        if resync:
            return TableChanges(flushed=False, deleted=[], updated=[], resync=True)
        return self.table._changes_of(keys, flushed)

    def skip(self) -> None:
        """Forget the pending changes (the consumer just took the whole table)."""
        self.table._collect()
        self._keys, self._flushed, self._resync = set(), False, False

    def close(self) -> None:
        """Stop receiving changes; safe to call twice."""
        self.table._unsubscribe(self)

    def _absorb(self, changed: set[int], flushed: bool) -> None:
        if self._resync:
            return
        if flushed:  # what changed before the flush is gone with it
            self._keys, self._flushed = changed, True
        elif self._keys:
            self._keys |= changed
        else:
            self._keys = changed
        if len(self._keys) > self.limit:
            self._keys, self._flushed, self._resync = set(), False, True


def _condition(entry: list[int], seconds: int, hitcount: int, oldest_ok: int) -> bool:
    """Whether an entry satisfies ``--seconds``/``--hitcount`` (spec §2.1).

    A stamp is in the window when ``now - stamp <= window``, i.e. ``stamp >= oldest_ok``.
    """
    if not seconds:
        return not hitcount or len(entry) - _STAMPS >= hitcount
    hits = 0
    for stamp in entry[_STAMPS:]:
        if stamp >= oldest_ok:
            hits += 1
            if hits >= hitcount:
                return True
    return False


def forwarded_ttl(ttl: int) -> int:
    """The TTL xt_recent records on hooks with an output device: the TTL "as seen
    before forwarding", ``ttl + 1`` in 8 bits (so 255 becomes the wildcard 0)."""
    return (ttl + 1) & 0xFF
