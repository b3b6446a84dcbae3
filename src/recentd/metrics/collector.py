"""The Prometheus exposition of a running daemon: one custom collector read at scrape time.

Rules (with the package's): every family is built from the daemon's own counts when
Prometheus asks (nothing is incremented per packet for metrics); names are
``recentd_*``, counters end in ``_total``, durations in ``_seconds``; no address is a
label. The kernel's queue figures come from ``/proc/net/netfilter/nfnetlink_queue``
(the daemon's network namespace), parsed by :func:`parse_nfqueue`.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector

from recentd import __version__
from recentd.metrics import stats
from recentd.metrics.tally import Histogram, origin_class
from recentd.sources import SourceState

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from recentd.daemon import Daemon

NFQUEUE_PROC = Path("/proc/net/netfilter/nfnetlink_queue")


#: Every state a source can be in, as the metric's label values.
SOURCE_STATES = tuple(state.value for state in SourceState)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One line of ``/proc/net/netfilter/nfnetlink_queue``.

    Attributes:
        queue: the queue number.
        waiting: packets queued now, waiting for a verdict (``queue_total``).
        queue_dropped: packets dropped because the queue was full (fail-closed; with
            fail-open the kernel accepts them and counts nothing).
        user_dropped: packets the kernel could not send to the daemon (socket full).
    """

    queue: int
    waiting: int
    queue_dropped: int
    user_dropped: int


def parse_nfqueue(text: str) -> list[QueueStats]:
    """The queues of ``/proc/net/netfilter/nfnetlink_queue``'s text (bad lines skipped)."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 7 or not all(f.isdigit() for f in fields[:7]):
            continue
        found.append(QueueStats(int(fields[0]), int(fields[2]), int(fields[5]), int(fields[6])))
    return found


def read_nfqueue(path: Path = NFQUEUE_PROC) -> list[QueueStats]:
    try:
        return parse_nfqueue(path.read_text())
    except OSError:
        return []


def histogram_family(name: str, documentation: str, labels: Sequence[str],
                     series: Sequence[tuple[Sequence[str], Histogram]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for values, histogram in series:
        family.add_metric(list(values), histogram.cumulative(), histogram.total)
    return family


class DaemonCollector(Collector):
    """Yields every ``recentd_*`` family from ``daemon`` (see the module rules)."""

    def __init__(self, daemon: Daemon, nfqueue: Path = NFQUEUE_PROC) -> None:
        self.daemon = daemon
        self.nfqueue = nfqueue

    def collect(self) -> Iterator[Metric]:
        yield from self._build()
        yield from self._packets()
        yield from self._lists()
        yield from self._bans()
        yield from self._sources()
        yield from self._state()

    def _build(self) -> Iterator[Metric]:
        info = InfoMetricFamily("recentd_build", "recentd's version and Python")
        info.add_metric([], {"version": __version__, "python": platform.python_version()})
        yield info
        yield CounterMetricFamily("recentd_reloads", "SIGHUP reloads that took the new rules",
                                  value=self.daemon.reloads)  # fmt: skip

    def _packets(self) -> Iterator[Metric]:
        c = self.daemon.pipeline.counters
        packets = CounterMetricFamily("recentd_packets",
                                      "Queued packets decided, by verdict and netfilter hook",
                                      labels=["verdict", "hook"])  # fmt: skip
        for verdict, by_hook in (("accept", c.accepted_by_hook), ("drop", c.dropped_by_hook)):
            for hook, count in zip(stats.HOOK_NAMES, list(by_hook), strict=True):
                packets.add_metric([verdict, hook], count)
        yield packets
        yield CounterMetricFamily("recentd_packets_undecodable",
                                  "Queued packets that were not IP or could not be decoded "
                                  "(answered by the fail-open/closed choice)",
                                  value=c.undecodable)  # fmt: skip
        yield CounterMetricFamily("recentd_decisions_remembered",
                                  "Verdicts served from remembered decisions, without the rules",
                                  value=c.remembered)  # fmt: skip
        yield CounterMetricFamily("recentd_banned_drops",
                                  "Packets of a banned source already queued, dropped by lookup",
                                  value=c.banned_drops)  # fmt: skip
        waiting = GaugeMetricFamily("recentd_queue_waiting_packets",
                                    "Packets in the kernel queue waiting for a verdict",
                                    labels=["queue"])  # fmt: skip
        dropped = CounterMetricFamily("recentd_queue_dropped_packets",
                                      "Packets the kernel dropped: queue full (fail-closed) or "
                                      "not deliverable to the daemon (socket full)",
                                      labels=["queue", "reason"])  # fmt: skip
        first = self.daemon.config.queue_num
        for queue in read_nfqueue(self.nfqueue):
            if not first <= queue.queue < first + 8:
                continue  # another program's queue
            waiting.add_metric([str(queue.queue)], queue.waiting)
            dropped.add_metric([str(queue.queue), "queue_full"], queue.queue_dropped)
            dropped.add_metric([str(queue.queue), "user"], queue.user_dropped)
        yield waiting
        yield dropped

    def _lists(self) -> Iterator[Metric]:
        entries = GaugeMetricFamily("recentd_list_entries", "Addresses in each recent list",
                                    labels=["list"])  # fmt: skip
        evictions = CounterMetricFamily("recentd_list_evictions",
                                        "Entries pushed out of a full list (ip_list_tot)",
                                        labels=["list"])  # fmt: skip
        for table in list(self.daemon.tables):
            entries.add_metric([table.name], len(table))
            evictions.add_metric([table.name], table.evictions)
        yield entries
        yield evictions

    def _bans(self) -> Iterator[Metric]:
        daemon, tally = self.daemon, self.daemon.tally
        offloaded = stats.offloaded_list(daemon)
        active = GaugeMetricFamily("recentd_bans_active",
                                   "Bans in force in the kernel set, by list and origin",
                                   labels=["list", "origin"])  # fmt: skip
        by_origin: dict[str, int] = {}
        for ban in stats.bans(daemon):
            key = origin_class(ban.origin)
            by_origin[key] = by_origin.get(key, 0) + 1
        for origin, count in sorted(by_origin.items()):
            active.add_metric([offloaded, origin], count)
        yield active
        commands = dict(tally.commands)
        for kind, name, what in (("ban", "recentd_bans_pushed", "pushed into"),
                                 ("unban", "recentd_bans_withdrawn", "withdrawn from")):
            family = CounterMetricFamily(name, f"Bans {what} the backend, by list and origin",
                                         labels=["list", "origin"])  # fmt: skip
            for (k, table, origin), count in sorted(commands.items()):
                if k == kind:
                    family.add_metric([table, origin], count)
            yield family
        reader = daemon.stamp_reader
        yield CounterMetricFamily("recentd_stamps_replayed",
                                  "Drops the kernel logged for its bans and user space "
                                  "replayed on the lists (exact --update offload)",
                                  value=daemon.stamps_read)  # fmt: skip
        yield CounterMetricFamily("recentd_stamp_log_overflows",
                                  "Times the kernel's log of its drops overflowed the "
                                  "socket (ENOBUFS): those drops' stamps are missing",
                                  value=0 if reader is None else reader.lost)  # fmt: skip
        calls = CounterMetricFamily("recentd_backend_operations",
                                    "Backend transactions, by operation and outcome",
                                    labels=["operation", "outcome"])  # fmt: skip
        for (operation, outcome), count in sorted(dict(tally.backend_calls).items()):
            calls.add_metric([operation, outcome], count)
        yield calls
        yield histogram_family("recentd_backend_operation_seconds",
                               "Time of one backend transaction", ["operation"],
                               [([op], h) for op, h in sorted(dict(tally.backend_seconds).items())])
        logins = CounterMetricFamily("recentd_pam_events", "Logins told by the PAM hook",
                                     labels=["event"])  # fmt: skip
        control = daemon.control
        counted = dict(control.service.logins) if control is not None else {}
        for event in ("open", "close"):
            logins.add_metric([event], counted.get(event, 0))
        yield logins

    def _sources(self) -> Iterator[Metric]:
        families = {
            "lines": CounterMetricFamily("recentd_source_lines", "Log lines (or journal "
                                         "entries) read, by source", labels=["source"]),
            "matched": CounterMetricFamily("recentd_source_lines_matched",
                                           "Lines that gave evidence", labels=["source"]),
            "unparsed": CounterMetricFamily("recentd_source_lines_unparsed",
                                            "Lines not understood (no header, or overlong)",
                                            labels=["source"]),
            "observations": CounterMetricFamily("recentd_source_observations",
                                                "Observations written into the lists",
                                                labels=["source"]),
        }  # fmt: skip
        lag = GaugeMetricFamily("recentd_source_lag_seconds",
                                "Delay from the last observation's own time to its reading",
                                labels=["source"])  # fmt: skip
        state = GaugeMetricFamily(
            "recentd_source_state",
            "1 for the state each source is in (ok, waiting, degraded, finished), 0 for the "
            "others; the fleet's link to its store is the source 'fleet'",
            labels=["source", "state"],
        )  # fmt: skip
        for f in stats.sources(self.daemon):
            for name in SOURCE_STATES:
                state.add_metric([f.name, name], 1.0 if f.state == name else 0.0)
            families["lines"].add_metric([f.name], f.lines)
            families["matched"].add_metric([f.name], f.matched)
            families["unparsed"].add_metric([f.name], f.unparsed)
            families["observations"].add_metric([f.name], f.observations)
            lag.add_metric([f.name], f.lag_s)
        yield from families.values()
        yield lag
        yield state

    def _state(self) -> Iterator[Metric]:
        store = self.daemon.store
        writes = store.writes if store is not None else 0
        yield CounterMetricFamily("recentd_state_journal_writes",
                                  "Records appended to the state journal",
                                  value=writes)  # fmt: skip
        series = [((), store.fsync_seconds)] if store is not None else []
        yield histogram_family("recentd_state_fsync_seconds", "Time of one journal fsync",
                               [], series)  # fmt: skip
