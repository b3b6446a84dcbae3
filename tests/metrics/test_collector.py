"""The collector over a daemon without a kernel: a log file's lines in, the exposition's
source, list, ban and backend figures out; the Stats reply ``recentd top`` reads."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recentd.control.dispatch import Context, dispatch
from recentd.control.protocol import Stats, StatsReply, decode_reply, encode
from recentd.daemon import Daemon
from recentd.metrics.collector import parse_nfqueue
from recentd.metrics.exporter import parse_listen, registry_for
from recentd.metrics.tally import Histogram, origin_class


def _exposition(daemon: Daemon) -> dict:
    text = generate_latest(registry_for(daemon)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_a_log_file_moves_the_source_list_and_ban_figures(daemon):
    before = _exposition(daemon)
    assert before["recentd_source_lines_total", (("source", "file:auth.log"),)] == 0
    daemon.read_source(daemon.sources[0])
    after = _exposition(daemon)
    source = (("source", "file:auth.log"),)
    assert after["recentd_source_lines_total", source] == 7
    assert after["recentd_source_lines_matched_total", source] == 5
    assert after["recentd_source_lines_unparsed_total", source] == 1
    assert after["recentd_source_observations_total", source] == 5
    assert after["recentd_source_lag_seconds", source] == 6.0  # read at 00:00:10, line 00:00:04
    assert after["recentd_list_entries", (("list", "SSH"),)] == 1
    # the 4th failure bans; the 5th re-times the ban (a later expiry): two pushes, one ban
    assert after["recentd_bans_pushed_total", (("list", "SSH"), ("origin", "observation"))] == 2
    assert after["recentd_bans_active", (("list", "SSH"), ("origin", "observation"))] == 1
    assert after["recentd_backend_operations_total", (("operation", "add"), ("outcome", "ok"))] == 2


def test_stats_reply_carries_bans_events_and_survives_the_wire(daemon):
    daemon.read_source(daemon.sources[0])
    from recentd.control.dispatch import Service  # noqa: PLC0415

    service = Service(daemon.tables, clock=daemon.clock.now_ticks, wall=daemon.clock.wall_ns)
    from recentd.metrics.stats import daemon_stats  # noqa: PLC0415

    service.stats = lambda readable: daemon_stats(daemon, readable)
    reply = dispatch(Stats(), Context(service))
    assert isinstance(reply, StatsReply)
    again = decode_reply(encode(reply))
    assert again == reply
    assert [(b["address"], b["list"], b["origin_class"]) for b in reply.bans] == [
        ("203.0.113.9", "SSH", "observation")]
    assert [(e["kind"], e["address"]) for e in reply.events] == [("ban", "203.0.113.9")] * 2
    assert reply.lists == [{"name": "SSH", "entries": 1, "evictions": 0}]
    assert reply.counters["observations"] == 5


def test_nfqueue_proc_lines():
    text = ("   20  12345     0 2 65531     0     0      1234  1\n"
            "   23  12345     3 2 65531     7     2      99  1\nnot a line\n")
    assert [(q.queue, q.waiting, q.queue_dropped, q.user_dropped)
            for q in parse_nfqueue(text)] == [(20, 0, 0, 0), (23, 3, 7, 2)]


@pytest.mark.parametrize(("text", "expected"), [
    ("9100", ("127.0.0.1", 9100)), ("0.0.0.0:9100", ("0.0.0.0", 9100)),
    ("[::1]:9100", ("::1", 9100)),
])
def test_listen_addresses(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["localhost:9100", "70000", "1.2.3.4:x", ""])
def test_bad_listen_addresses_are_config_errors(text):
    from recentd.errors import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError):
        parse_listen(text)


def test_histogram_and_origin_labels():
    h = Histogram()
    for seconds in (0.00005, 0.0003, 0.0003, 2.0):
        h.observe(seconds)
    assert h.cumulative()[:3] == [("0.0001", 1), ("0.00025", 1), ("0.0005", 3)]
    assert h.cumulative()[-1] == ("+Inf", 4)
    assert origin_class("observation file /var/log/auth.log (line 3)") == "observation"
    assert origin_class("") == "unknown"
