"""Reports: a replay's events in, the typed value and one self-contained HTML file out."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recentd.cli.main import main
from recentd.packets.factory import PacketFactory, write_pcap
from recentd.report import BanRow, ReportData, RuleCounter, TimelineBuilder
from recentd.report.html import render, write_report
from tests.shared import GEN_AUTHLOG
from tests.test_replay_cli import SEED_RULES, SERVER

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def brute_force_capture(tmp_path: Path) -> tuple[Path, Path]:
    """Three attackers at different paces over ten minutes, and twenty quiet clients."""
    factory, records = PacketFactory(), []
    for index, (attacker, gap_s) in enumerate([("198.51.100.7", 2), ("198.51.100.8", 5),
                                                ("2001:db8::66", 11)]):  # fmt: skip
        for n in range(600 // gap_s):
            records.append((T0 + index * S + n * gap_s * S,
                            factory.tcp(attacker, "2001:db8::1" if ":" in attacker else SERVER,
                                        sport=20000 + n, dport=22, flags="S")))
    for n in range(20):
        records.append((T0 + n * 29 * S, factory.tcp(f"203.0.113.{n + 1}", SERVER,
                                                     sport=30000 + n, dport=22, flags="S")))
    records.sort(key=lambda record: record[0])
    capture = write_pcap(tmp_path / "brute.pcap", records)
    rules = tmp_path / "rules.sh"
    rules.write_text(SEED_RULES + SEED_RULES.replace("iptables ", "ip6tables "))
    return capture, rules


def test_the_timeline_builder_cuts_seconds_into_steps():
    builder = TimelineBuilder()
    for second in range(10):
        builder.attempt("a", T0 + second * S)
    builder.attempt("b", T0 + 3 * S)
    builder.drop("a", T0 + 6 * S)
    builder.ban("a", T0 + 6 * S)
    timeline, distribution = builder.build(top=1, buckets=5)
    assert timeline.step_s == 2.0
    assert timeline.start_ns == T0
    assert [(r.source, r.attempts, r.drops, r.bans) for r in timeline.sources] == [
        ("a", (2, 2, 2, 2, 2), (0, 0, 0, 1, 0), (0, 0, 0, 1, 0))]
    assert distribution == (10, 1)


def test_render_escapes_and_needs_no_network():
    builder = TimelineBuilder()
    builder.attempt("<b>x</b>", T0)
    timeline, distribution = builder.build()
    page = render(ReportData("<title>", "s & t", timeline, distribution,
                             (RuleCounter("filter INPUT #1", "-j <DROP>", 3, 120),),
                             (BanRow("<b>x</b>", T0, None, "why <not>"),)))  # fmt: skip
    assert "<title>&lt;title&gt;</title>" in page
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in page
    assert "<td>2023-11-14 22:13:20 UTC</td><td>still</td>" in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_replay_report_flag_writes_the_page(tmp_path, capsys):
    capture, rules = brute_force_capture(tmp_path)
    out = tmp_path / "report.html"
    assert main(["replay", str(capture), "--rules", str(rules), "--no-progress",
                 "--report", str(out)]) == 0
    printed = capsys.readouterr().out
    page = out.read_text()
    assert page.count("<figure data-plot=") == 2
    assert page.count("<svg") == 2
    # the three attackers are dropped, the quiet clients are not
    bans = re.findall(r"<tr><td>([^<]+)</td><td>2023", page)
    assert sorted(bans) == ["198.51.100.7", "198.51.100.8", "2001:db8::66"]
    assert "packets dropped by the rules" in page
    # the rule counters are the summary's (iptables -L -v), rule by rule
    assert "iptables filter SSH_CHECK #1" in page
    assert "ip6tables filter SSH_CHECK #1" in page
    assert "23 sources, 3 dropped" in page
    assert "packets:" in printed
    assert len(page) < 600_000, "inline SVG stays small"


@pytest.mark.parametrize("bad", ["/nonexistent-dir/r.html"])
def test_an_unwritable_report_is_one_line(tmp_path, capsys, bad):
    capture, rules = brute_force_capture(tmp_path)
    assert main(["replay", str(capture), "--rules", str(rules), "--no-progress",
                 "--report", bad]) == 1
    assert "recentd: /nonexistent-dir" in capsys.readouterr().err


def test_write_report_replaces_atomically(tmp_path):
    builder = TimelineBuilder()
    timeline, distribution = builder.build()
    target = tmp_path / "r.html"
    target.write_text("old")
    write_report(target, ReportData("t", "s", timeline, distribution))
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


RULES = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -m recent --name SSH_AUTH "
         "--rcheck --seconds 600 --hitcount 5 -j DROP\nCOMMIT\n")


def generated_log(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A generated auth log (the shared generator, fixed seed), a config watching it into
    SSH_AUTH, and the rule that bans from that list."""
    if not GEN_AUTHLOG.is_file():
        pytest.skip(f"the auth-log generator is not at {GEN_AUTHLOG}")
    log = tmp_path / "auth.log"
    subprocess.run([sys.executable, str(GEN_AUTHLOG), "--lines", "4000", "--out", str(log),
                    "--seed", "7"], check=True, capture_output=True)  # fmt: skip
    config = tmp_path / "recentd.toml"
    config.write_text('ip_list_tot = 10000\n[[watch]]\nsource = "/var/log/auth.log"\n'
                      'failure = "SSH_AUTH"\n')
    rules = tmp_path / "rules.v4"
    rules.write_text(RULES)
    return log, config, rules


def test_logs_replay_report_flag_writes_the_page(tmp_path, capsys):
    log, config, rules = generated_log(tmp_path)
    out, bans = tmp_path / "report.html", tmp_path / "bans.jsonl"
    assert main(["logs", "replay", str(log), "--config", str(config), "--rules", str(rules),
                 "--year", "2025", "--bans", str(bans), "--report", str(out)]) == 0
    page = out.read_text()
    assert page.count("<svg") == 2
    banned = sorted(json.loads(line)["addr"] for line in bans.read_text().splitlines())
    assert banned and sorted(re.findall(r"<tr><td>([^<]+)</td><td>20", page)) == banned
    assert "list SSH_AUTH" in page and "failed attempts" in page
    assert "<script" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)
