"""packaging/grafana-recentd.json is built on exactly the exposition's names: every name it
queries is exposed, and every ``recentd_*`` family exposed is on the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest

from recentd.metrics.exporter import registry_for

DASHBOARD = Path(__file__).resolve().parents[2] / "packaging" / "grafana-recentd.json"
SUFFIXES = ("_bucket", "_sum", "_count")


def _exposed(daemon) -> dict[str, str]:
    text = generate_latest(registry_for(daemon)).decode()
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))


def _queried() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["definition"])
    return set(re.findall(r"\b((?:recentd|process)_[a-z_]+)", " ".join(exprs)))


def _family(name: str, exposed: dict[str, str]) -> str:
    """The ``# TYPE`` name a queried sample name belongs to (a histogram's ``x_bucket`` → ``x``)."""
    if name in exposed:
        return name
    for suffix in SUFFIXES:
        if exposed.get(name.removesuffix(suffix)) == "histogram":
            return name.removesuffix(suffix)
    raise AssertionError(f"the dashboard queries {name}, which recentd does not expose")


def test_the_dashboard_queries_exactly_what_is_exposed(daemon):
    exposed = _exposed(daemon)
    queried = {_family(name, exposed) for name in _queried()}
    recentd = {name for name in exposed if name.startswith("recentd_")}
    assert recentd - queried == set(), "exposed but not on the dashboard"
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= queried


def test_counters_end_in_total_and_histograms_in_seconds(daemon):
    exposed = _exposed(daemon)
    for name, kind in exposed.items():
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name
