"""``recentd run --metrics``: the exposition scraped over HTTP in the server namespace while
the seed recipe bans a brute-forcing client; counters move as the traffic says, pass
``promtool check metrics``, and survive a SIGHUP reload."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live.conftest import seed_text
from tests.live.netns import CLIENT4, SERVER4, Testbed, sh
from tests.live.test_live_netns import Run, _rules

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PORT = 9817


def scrape(bed: Testbed) -> str:
    code = ("import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
            f"'http://127.0.0.1:{PORT}/metrics', timeout=5).read().decode())")
    return sh(*bed.exec(bed.server, sys.executable, "-c", code)).stdout


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[name, tuple(sorted(labels.items()))]


def login(run: Run, event: str) -> None:
    """What recentd-pam-hook sends: one Login line on the control socket (as root)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(run.socket))
        sock.sendall(json.dumps({"v": 1, "type": "Login", "addr": "198.51.100.9",
                                 "user": "alice", "service": "sshd", "event": event}).encode()
                     + b"\n")
        assert b"LoginResult" in sock.makefile("rb").readline()


def test_metrics_move_with_the_traffic_pass_promtool_and_survive_a_reload(testbed, tmp_path):
    testbed.serve(22)
    textfile = tmp_path / "recentd.prom"
    run = Run(testbed, tmp_path, _rules(tmp_path, seed_text(60)),
              "--metrics", str(PORT), "--metrics-textfile", str(textfile))
    idle = samples(scrape(testbed))
    assert value(idle, "recentd_packets_total", verdict="accept", hook="input") == 0
    assert value(idle, "recentd_build_info", version="0.1.0",
                 python=sys.version.split()[0]) == 1

    assert testbed.connect(CLIENT4, SERVER4, 22, 6) == ["ok"] * 4 + ["fail"] * 2
    login(run, "open")
    time.sleep(1.3)  # one daemon timer: journal synced, textfile rewritten
    text = scrape(testbed)
    busy = samples(text)
    print(text)  # the transcript of one scrape, in the test's output
    assert value(busy, "recentd_packets_total", verdict="accept", hook="input") == 4
    assert value(busy, "recentd_packets_total", verdict="drop", hook="input") == 1
    assert value(busy, "recentd_bans_pushed_total", list="SSH", origin="packet") == 1
    assert value(busy, "recentd_bans_active", list="SSH", origin="packet") == 1
    assert value(busy, "recentd_list_entries", list="SSH") == 1
    assert value(busy, "recentd_list_evictions_total", list="SSH") == 0
    assert value(busy, "recentd_backend_operations_total", operation="add", outcome="ok") == 1
    assert value(busy, "recentd_backend_operation_seconds_count", operation="add") == 1
    assert value(busy, "recentd_pam_events_total", event="open") == 1
    assert value(busy, "recentd_state_journal_writes_total") >= 1
    assert value(busy, "recentd_state_fsync_seconds_count") >= 1
    assert ("recentd_queue_dropped_packets_total", (("queue", "20"), ("reason", "user"))) in busy
    assert value(busy, "process_resident_memory_bytes") > 10_000_000
    assert value(busy, "process_cpu_seconds_total") > 0
    assert "recentd_source_lines_total" in text  # declared; moving: tests/metrics

    promtool = subprocess.run(["promtool", "check", "metrics"], input=text,
                              capture_output=True, text=True, check=False)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr
    assert samples(textfile.read_text())["recentd_bans_pushed_total",
                                         (("list", "SSH"), ("origin", "packet"))] == 1

    run.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "rules reloaded" not in run.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    after = samples(scrape(testbed))
    assert value(after, "recentd_reloads_total") == 1
    for name, labels in [("recentd_packets_total", {"verdict": "accept", "hook": "input"}),
                         ("recentd_packets_total", {"verdict": "drop", "hook": "input"}),
                         ("recentd_bans_pushed_total", {"list": "SSH", "origin": "packet"}),
                         ("recentd_pam_events_total", {"event": "open"})]:
        assert value(after, name, **labels) == value(busy, name, **labels), name
    # the reload flushed the set and re-asserted the ban from the table
    assert value(after, "recentd_backend_operations_total", operation="flush", outcome="ok") == 1
    assert value(after, "recentd_bans_pushed_total", list="SSH", origin="restore") == 1
    run.stop()

