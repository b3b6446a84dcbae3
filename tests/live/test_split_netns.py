"""Issue 16: a whole host's rules.v4 (nat, mangle, an ipset, LOG, REJECT around the seed
recipe) run by the kernel in one pair of namespaces and by ``recentd run`` in another:
the same traffic meets the same outcomes. recentd evaluates the recipe's chain (queued at
the jump, its RETURN resumed in the kernel's INPUT), the kernel all the rest."""

from __future__ import annotations

import ipaddress
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.netns import CLIENT4, CLIENT6, OTHER4, OTHER6, REPO, SERVER4, SERVER6, Testbed, sh
from tests.live.test_live_netns import Run

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HOST = REPO / "tests" / "data" / "rules" / "host" / "split-host.rules"
HOST6 = HOST.with_name("split-host.rules.v6")
BLOCKED4, BLOCKED6 = "10.77.0.4", "fd77::4"  # in the ipsets `bl` and `bl6`

#: argv: SRC DST PORT — one connect: ok, refused (a reset), timeout, or the errno's name
#: (an ICMP error: EHOSTUNREACH for host-prohibited; TCP takes ICMPv6 adm-prohibited as soft).
PROBE = r"""
import errno, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET)
s.settimeout(0.7)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3]))); print("ok")
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("timeout")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, "timeout"))
"""

#: The traffic, in order: (source, port).
TRAFFIC = (
    [(CLIENT4, 22)] * 6            # the recipe: the 4th new connection in 60 s is dropped
    + [(OTHER4, 22)] * 2           # another source is not
    + [(OTHER4, 80), (OTHER4, 8080)]  # accepted; REDIRECTed from 8080 to 80 (nat)
    + [(OTHER4, 23)]               # LOGged and REJECTed with icmp-host-prohibited
    + [(BLOCKED4, 80), (BLOCKED4, 22)]  # the ipset's source: BLOCK drops it
)
TRAFFIC6 = ([(CLIENT6, 22)] * 6 + [(OTHER6, 22)] * 2 + [(OTHER6, 80), (OTHER6, 8080)]
            + [(OTHER6, 23)] + [(BLOCKED6, 80), (BLOCKED6, 22)])


def _bed(prefix: str) -> Testbed:
    bed = Testbed(prefix).up()
    sh("ip", "-n", bed.client, "addr", "add", f"{BLOCKED4}/24", "dev", bed.veth_c, "nodad")
    sh("ip", "-n", bed.client, "addr", "add", f"{BLOCKED6}/64", "dev", bed.veth_c, "nodad")
    sh(*bed.exec(bed.server, "ipset", "create", "bl", "hash:ip"))
    sh(*bed.exec(bed.server, "ipset", "add", "bl", BLOCKED4))
    sh(*bed.exec(bed.server, "ipset", "create", "bl6", "hash:ip", "family", "inet6"))
    sh(*bed.exec(bed.server, "ipset", "add", "bl6", BLOCKED6))
    for src, dst in ((BLOCKED4, SERVER4), (BLOCKED6, SERVER6)):
        sh(*bed.exec(bed.client, "ping", "-c1", "-W2", "-I", src, dst), check=False)
    bed.serve(22)
    bed.serve(80)
    return bed


@pytest.fixture
def beds() -> Iterator[tuple[Testbed, Testbed]]:
    if not _tools():
        pytest.skip("needs root, iptables-legacy, ipset and iproute2")
    kernel = recentd = None
    try:
        kernel, recentd = _bed("lvk"), _bed("lvr")
        yield kernel, recentd
    finally:
        for bed in (kernel, recentd):
            if bed is not None:
                bed.down()


def _tools() -> bool:
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    return os.geteuid() == 0 and all(shutil.which(t) for t in ("iptables-legacy", "ipset", "ip"))


def _run_traffic(bed: Testbed, traffic: list[tuple[str, int]] = TRAFFIC) -> list[str]:
    out = []
    for src, port in traffic:
        server = SERVER6 if ":" in src else SERVER4
        done = sh(*bed.exec(bed.client, sys.executable, "-c", PROBE, src, server, str(port)))
        out.append(f"{src}:{port} {done.stdout.strip()}")
    return out


def _log_counts(bed: Testbed, flavour: str = "legacy", program: str = "iptables") -> dict[str, int]:
    """Packets that met each LOG rule (recentd's copies of a rule after the jump count with
    it: they are the same rule on the resumed path)."""
    saved = sh(*bed.exec(bed.server, f"{program}-{flavour}-save", "-c", "-t", "filter")).stdout
    counts: dict[str, int] = {}
    for line in saved.splitlines():
        found = re.match(r"\[(\d+):\d+\] -A \S+ .*--log-prefix \"([^\"]+)\"", line)
        if found:
            counts[found[2]] = counts.get(found[2], 0) + int(found[1])
    return counts


#: The recipe rejecting with a reset instead of dropping: recentd's chain answers REJECT,
#: and the kernel's own REJECT sends the reset (the offload's ban set would only drop).
REJECTING = (("--rsource -j DROP", "--rsource -j REJECT --reject-with tcp-reset"),
             ("-A SSH -m recent --update", "-A SSH -p tcp -m recent --update"))


@pytest.mark.parametrize(("offload", "variant", "refused", "flavour"), [
    (["--no-offload"], (), "timeout", "legacy"),
    ([], (), "timeout", "legacy"),
    (["--no-offload"], REJECTING, "refused", "legacy"),
    (["--no-offload"], (), "timeout", "nft"),
], ids=["queue-only", "offload", "reject", "iptables-nft"])
def test_the_host_behaves_as_the_kernel_would(beds: tuple[Testbed, Testbed], tmp_path: Path,
                                              offload: list[str],
                                              variant: tuple[tuple[str, str], ...],
                                              refused: str, flavour: str) -> None:
    kernel, recentd = beds
    if flavour == "nft":  # the host's rules are in iptables-nft: recentd restores there
        sh(*recentd.exec(recentd.server, "iptables-nft", "-A", "OUTPUT", "-o", "lo", "-j",
                         "ACCEPT"))
    text = HOST.read_text()
    for old, new in variant:
        text = text.replace(old, new)
    rules = tmp_path / "rules.v4"
    rules.write_text(text)
    done = subprocess.run(kernel.exec(kernel.server, "iptables-legacy-restore"),
                          input=text, text=True, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    run = Run(recentd, tmp_path, rules, *offload)
    assert f"hooks in iptables-{flavour}" in run.output()
    held = sh(*recentd.exec(recentd.server, f"iptables-{flavour}-save")).stdout
    assert "-j REDIRECT --to-ports 80" in held and "--match-set bl src" in held
    assert "-j RECENTD-Q0" in held and "NFQUEUE" in held

    expected = _run_traffic(kernel)
    assert _run_traffic(recentd) == expected
    assert expected[:6] == [f"{CLIENT4}:22 ok"] * 3 + [f"{CLIENT4}:22 {refused}"] * 3
    assert expected[6:] == [f"{OTHER4}:22 ok"] * 2 + [
        f"{OTHER4}:80 ok", f"{OTHER4}:8080 ok", f"{OTHER4}:23 EHOSTUNREACH",
        f"{BLOCKED4}:80 timeout", f"{BLOCKED4}:22 timeout"]
    assert _log_counts(recentd, flavour) == _log_counts(kernel)
    assert _log_counts(kernel)["ssh-ok: "] >= 5  # the recipe's RETURNs resumed in INPUT
    assert CLIENT4 in run.ctl("show", "SSH") and OTHER4 in run.ctl("show", "SSH")
    run.stop()
    after = sh(*recentd.exec(recentd.server, f"iptables-{flavour}-save")).stdout
    assert "RECENTD" not in after and "REDIRECT" not in after  # the tables as they were


def test_check_and_dry_run_say_what_recentd_evaluates() -> None:
    check = subprocess.run([sys.executable, "-m", "recentd.cli.main", "rules", "check",
                            str(HOST)], capture_output=True, text=True, check=False, cwd=REPO)
    assert check.returncode == 0, check.stderr
    dry = subprocess.run([sys.executable, "-m", "recentd.cli.main", "run", "--rules", str(HOST),
                          "--dry-run"], capture_output=True, text=True, check=False, cwd=REPO)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert "# recentd: iptables -t filter SSH (2 rules)" in lines
    assert any(line.startswith("# kernel:  iptables -t filter INPUT (10 rules): ")
               and line.endswith("set: set asks the kernel's ipsets") for line in lines)
    assert "# kernel:  iptables -t nat PREROUTING (1 rules): the nat table is the kernel's" in lines
    assert any(line.startswith("# site 0: iptables -t filter INPUT: at ") for line in lines)
    assert "#   -A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j RECENTD-Q0" in lines


def test_sigkill_fails_open_and_the_next_run_puts_the_file_back(beds: tuple[Testbed, Testbed],
                                                                 tmp_path: Path) -> None:
    """A killed run leaves its split in the kernel (the jump's queue bypassed: SSH still
    accepted); the next run says so, reloads on SIGHUP, and at stop leaves the rule file
    as the kernel would run it, never recentd's chains."""
    _kernel, bed = beds
    run = Run(bed, tmp_path, HOST, "--no-offload")
    run.proc.kill()
    run.proc.wait()
    assert "RECENTD-Q0" in sh(*bed.exec(bed.server, "iptables-legacy-save")).stdout
    assert _run_traffic(bed)[:4] == [f"{CLIENT4}:22 ok"] * 4  # fail-open: nothing decides
    run = Run(bed, tmp_path, HOST, "--no-offload", "-v")
    assert "a stopped run's split" in run.output()
    run.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "rules reloaded" not in run.output():
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.05)
    assert _run_traffic(bed)[:6] == [f"{CLIENT4}:22 ok"] * 3 + [f"{CLIENT4}:22 timeout"] * 3
    run.stop()
    after = sh(*bed.exec(bed.server, "iptables-legacy-save")).stdout
    assert "RECENTD" not in after
    assert "-A SSH -m recent --set --name SSH" in after  # the file, as the kernel runs it


def test_the_ipv6_host_behaves_as_the_kernel_would(beds: tuple[Testbed, Testbed],
                                                   tmp_path: Path) -> None:
    """The same with rules.v6 (ip6tables-legacy in the kernel's pair)."""
    kernel, recentd = beds
    done = subprocess.run(kernel.exec(kernel.server, "ip6tables-legacy-restore"),
                          input=HOST6.read_text(), text=True, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    run = Run(recentd, tmp_path, HOST6, "--no-offload")
    held = sh(*recentd.exec(recentd.server, "ip6tables-legacy-save")).stdout
    assert "-j RECENTD-Q0" in held and "--match-set bl6 src" in held

    expected = _run_traffic(kernel, TRAFFIC6)
    assert _run_traffic(recentd, TRAFFIC6) == expected
    assert expected == [f"{CLIENT6}:22 ok"] * 3 + [f"{CLIENT6}:22 timeout"] * 3 + [
        f"{OTHER6}:22 ok"] * 2 + [f"{OTHER6}:80 ok", f"{OTHER6}:8080 ok", f"{OTHER6}:23 timeout",
                                  f"{BLOCKED6}:80 timeout", f"{BLOCKED6}:22 timeout"]
    assert (_log_counts(recentd, program="ip6tables")
            == _log_counts(kernel, program="ip6tables"))
    assert f"src={ipaddress.ip_address(CLIENT6).exploded} " in run.ctl("show", "SSH6")
    run.stop()
    assert "RECENTD" not in sh(*recentd.exec(recentd.server, "ip6tables-legacy-save")).stdout
