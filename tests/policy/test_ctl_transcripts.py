"""``recentd ctl why``, ``unban`` and ``allow`` against a daemon with its policy, over a
real control socket: command line in, output out (text and --json)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from recentd.cli.main import main
from recentd.observation import Evidence
from recentd.policy.settings import ListPolicy, PolicyConfig
from tests.control.loop import TestLoop

from .harness import PolicyHarness

A = ipaddress.ip_address("10.0.0.2")
POLICY = PolicyConfig(lists=(ListPolicy("RECIDIVE", on_ban_of=("SSH",)),))


@pytest.fixture
def banned(tmp_path):
    """A at 22:30:00 sends a SYN, fails as root at :01, :03, :05 (banned), and is written
    into SSH by hand at :07."""
    h = PolicyHarness(tmp_path, POLICY)
    loop = TestLoop(tmp_path / "control.sock", h.service).start()
    h.packet(A)
    h.step(1)
    for _ in range(3):
        h.line(Evidence.AUTH_FAILURE, A, user="root")
        h.step(2)
    h.socket = str(tmp_path / "control.sock")
    yield h
    loop.stop()


def ctl(h, capsys, *argv):
    command, *rest = argv
    status = main(["ctl", command, "--socket", h.socket, *rest])
    out = capsys.readouterr()
    return status, out.out + out.err


WHY = """\
10.0.0.2 at 2023-11-14T22:30:07.000Z
  allowed: no
  in list SSH: 5 hit(s), first 7 s ago, last 0 s ago
  in list RECIDIVE: 1 hit(s), first 2 s ago, last 2 s ago
  (stamps the history does not name were made by packet rules: --set, --update)
  banned in the kernel until 2023-11-14T22:31:00.004Z: 4 hits in 60 s in list SSH (decided by observation file /var/log/auth.log (line 3))
    rule: a source with 4 hits in 60 s in list 'SSH' goes into an nftables set; the kernel then drops its tcp to port 22, new connections (IPv4, input) until the rule would stop matching
  history (last 32 events per address, 10000 addresses):
    2023-11-14T22:30:05.000Z failure +SSH from file /var/log/auth.log (line 3): user root (x3 since 2023-11-14T22:30:01.000Z)
    2023-11-14T22:30:05.000Z ban SSH from observation file /var/log/auth.log (line 3): 4 hits in 60 s in list SSH; 55 s
    2023-11-14T22:30:05.000Z ban +RECIDIVE from ban SSH (observation file /var/log/auth.log (line 3)): 4 hits in 60 s in list SSH; 55 s
    2023-11-14T22:30:07.000Z control +SSH from control write
"""


def test_why_then_unban_then_why(banned, capsys):
    assert ctl(banned, capsys, "write", "SSH", "+10.0.0.2") == (0, "")
    assert ctl(banned, capsys, "why", "10.0.0.2") == (0, WHY)
    assert ctl(banned, capsys, "unban", "10.0.0.2") == (0, (
        "10.0.0.2: removed from list SSH\n"
        "10.0.0.2: removed from list RECIDIVE\n"
        "10.0.0.2: removed from kernel set (nftables inet recentd)\n"))
    assert banned.kernel() == []
    assert ctl(banned, capsys, "unban", "10.0.0.2") == (
        0, "10.0.0.2: in no list and no kernel set\n")
    status, out = ctl(banned, capsys, "why", "10.0.0.2")
    assert status == 0
    assert out.splitlines()[1:4] == [
        "  allowed: no", "  in no list", "  not banned in the kernel"]
    assert out.splitlines()[-1] == (
        "    2023-11-14T22:30:07.000Z unban SSH from control: recentd ctl unban")


def test_the_json_forms(banned, capsys):
    status, out = ctl(banned, capsys, "why", "10.0.0.2", "--json")
    assert status == 0
    record = json.loads(out)
    assert record["kernel_ban"]["until"] == "2023-11-14T22:31:00.004Z"
    assert record["lists"][0] == {"list": "SSH", "hits": 4, "ttl": 64, "first_age_s": 7.0,
                                  "last_age_s": 2.0}  # fmt: skip
    assert record["events"][0] == {
        "time": "2023-11-14T22:30:05.000Z", "what": "failure", "list": "SSH", "action": "+",
        "origin": "file /var/log/auth.log (line 3)", "detail": "user root", "count": 3,
        "since": "2023-11-14T22:30:01.000Z"}  # fmt: skip
    assert ctl(banned, capsys, "unban", "10.0.0.2", "--json") == (0, json.dumps(
        {"addr": "10.0.0.2", "removed": ["list SSH", "list RECIDIVE",
                                         "kernel set (nftables inet recentd)"]},
        indent=2) + "\n")  # fmt: skip


def test_allow_withdraws_the_ban_and_refuses_writes(banned, capsys):
    assert ctl(banned, capsys, "allow", "10.0.0.0/24", "--for", "1h") == (0, (
        "10.0.0.0/24: allowed until 2023-11-14T23:30:07.000Z\n"
        "10.0.0.2: kernel ban withdrawn\n"))
    assert ctl(banned, capsys, "allow", "192.0.2.7", "--json") == (0, json.dumps(
        {"network": "192.0.2.7", "until": None, "withdrawn": []}, indent=2) + "\n")
    assert ctl(banned, capsys, "write", "SSH", "+10.0.0.2") == (2, (
        "recentd: SSH: write '+10.0.0.2' refused: EPERM (10.0.0.2 is allowed (10.0.0.0/24: "
        "allowed by ctl (recentd ctl allow)): not added to SSH (recentd ctl write --force "
        "adds it; it is still never banned in the kernel))\n"))
    assert ctl(banned, capsys, "write", "--force", "SSH", "+10.0.0.2") == (0, "")
    assert ctl(banned, capsys, "allow", "10.0.0.2", "--for", "soon") == (2, (
        "recentd: allow: --for: 'soon' is not a duration (whole seconds, or a number with one "
        "unit of s, m, h, d, w: \"7d\")\n"))
    status, out = ctl(banned, capsys, "why", "10.0.0.2")
    assert status == 0
    assert out.splitlines()[1] == (
        "  allowed: 10.0.0.0/24: allowed by ctl (recentd ctl allow)")


def test_set_changes_a_lists_settings_at_run_time(banned, capsys):
    status, out = ctl(banned, capsys, "set", "SSH", "purge_after=7d", "ip_list_tot=500",
                      "cut_connections=true")  # fmt: skip
    assert (status, out) == (0, (
        "SSH: ip_list_tot = 500\n"
        "SSH: purge_after = 604800\n"
        "SSH: on_ban_of = []\n"
        "SSH: ban_multiplier = 1.0\n"
        "SSH: ban_max = 0\n"
        'SSH: login = ""\n'
        "SSH: cut_connections = true\n"))
    assert banned.daemon.tables["SSH"].params.ip_list_tot == 500
    assert banned.daemon.policy.purge_limits() == {"SSH": 604800 * 250}
    assert ctl(banned, capsys, "set", "SSH", "ban_max=a while") == (2, (
        "recentd: SSH: set refused: recentd ctl set: lists.SSH.ban_max: 'a while' is not a "
        "duration (whole seconds, or a number with one unit of s, m, h, d, w: \"7d\")\n"))
    status, out = ctl(banned, capsys, "set", "RECIDIVE", "on_ban_of=[\"SSH\"]", "--json")
    assert status == 0
    assert json.loads(out)["settings"]["on_ban_of"] == ["SSH"]
