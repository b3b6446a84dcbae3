"""The set of named tables of one network namespace, and their lifetime.

Rules of lifetime (spec §4):

1. Tables are found by name only: IPv4 and IPv6 rules naming the same table share it.
2. Every rule holding a `-m recent` match holds one reference. The table is
   destroyed, entries and all, when the last reference goes.
3. The first rule fixes the table's mask. Any later rule that needs a larger
   ring grows it, which flushes the table; nothing ever shrinks it.
4. When a rule set is replaced, the new rules acquire before the old release,
   so lists survive every edit while some rule still names them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from recentd.recent.match import RecentMatch
from recentd.recent.params import ModuleParams, Quirks
from recentd.recent.table import RecentTable
from recentd.recent.ticks import DEFAULT_HZ


class RecentTables:
    """All tables, by name.

    Args:
        params: module parameters given to each new table (each table can then be
            reconfigured on its own with :meth:`configure`).
        hz: tick rate of the ``now`` values the tables will be given.
        quirks: kernel bugs to reproduce (default: none).
    """

    def __init__(
        self,
        params: ModuleParams | None = None,
        *,
        hz: int = DEFAULT_HZ,
        quirks: Quirks | None = None,
    ) -> None:
        self.params = params or ModuleParams()
        self.hz = hz
        self.quirks = quirks or Quirks()
        self._tables: dict[str, RecentTable] = {}
        # Per table, the hitcounts of the rules holding it: the reference count, and
        # what the ring must hold if ip_pkt_list_tot changes at run time.
        self._holders: dict[str, Counter[int]] = {}
        #: Counts every change to any entry of any table (see RecentTable's ``version``).
        self.version: list[int] = [0]

    def acquire(self, match: RecentMatch) -> RecentTable:
        """Take a reference for one rule: create the table or grow its ring."""
        table = self._tables.get(match.name)
        if table is None:
            table = RecentTable(
                match.name,
                mask=match.mask,
                ring=match.ring_slots(self.params.ip_pkt_list_tot),
                params=self.params,
                hz=self.hz,
                quirks=self.quirks,
                version=self.version,
            )
            self._tables[match.name] = table
            self._holders[match.name] = Counter()
        else:
            table.grow_ring(match.ring_slots(table.params.ip_pkt_list_tot))
        self._holders[match.name][match.hitcount] += 1
        return table

    def release(self, match: RecentMatch) -> None:
        """Drop one rule's reference; the last one destroys the table."""
        holders = self._holders.get(match.name)
        if holders is None or holders[match.hitcount] <= 0:
            return
        holders[match.hitcount] -= 1
        if holders.total() == 0:
            self.version[0] += 1
            del self._tables[match.name]
            del self._holders[match.name]

    def configure(self, name: str, **changes: int) -> ModuleParams:
        """Change one table's module parameters while it runs.

        A lower ``ip_list_tot`` evicts the least recently refreshed entries; a higher
        ``ip_pkt_list_tot`` grows the ring (flushing, as any ring growth does).

        Raises:
            KeyError: no such table.
            ConfigError: a value out of the kernel's limits.
        """
        table = self._tables[name]
        params = table.params.with_changes(**changes)
        table.reconfigure(params)
        needed = max(
            RecentMatch.ring_for(hitcount, params.ip_pkt_list_tot)
            for hitcount in self._holders[name]
        )
        table.grow_ring(needed)
        return params

    def get(self, name: str) -> RecentTable | None:
        return self._tables.get(name)

    def __getitem__(self, name: str) -> RecentTable:
        return self._tables[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tables

    def __iter__(self) -> Iterator[RecentTable]:
        return iter(list(self._tables.values()))

    def __len__(self) -> int:
        return len(self._tables)

    def names(self) -> list[str]:
        return sorted(self._tables)

    def references(self, name: str) -> int:
        """How many rules hold the table."""
        holders = self._holders.get(name)
        return 0 if holders is None else holders.total()
