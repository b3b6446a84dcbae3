"""Benchmark: how long the ``recentd`` command takes to start (issue 11).

Median wall time of 20 process starts each of:

- ``recentd --version``;
- ``recentd --socket S ctl status`` against a running daemon — a real ``recentd run``
  with the seed recipe inside a private network namespace (as root; the host's firewall
  is never touched), its control socket in a temporary directory;
- ``recentd rules check`` on the seed recipe file (the blog post as pasted, prose and
  typographic dashes included), and on a 200-rule iptables-save file.

Beside them, the same run measures ``python3 -c pass`` (the interpreter's own start, the
floor every figure stands on). Targets: version ≤ 80 ms, ctl status ≤ 120 ms, rules
check ≤ 250 ms.

Run: ``python bench/cli.py`` (root for ``ctl_status_ms``; otherwise it is reported as
``nan``). The last line is ``version_ms=<A> ctl_status_ms=<B> rules_check_ms=<C>``
followed by ``rules_check_200_ms`` and ``python_ms``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "tests" / "data" / "seeds" / "ipt_recent_howto.txt"
RECENTD = [sys.executable, "-m", "recentd.cli.main"]
STARTS = 20


def median_ms(argv: Sequence[str], starts: int = STARTS) -> float:
    """Median wall time of ``starts`` runs of ``argv`` (each must exit 0)."""
    times = []
    for _ in range(starts):
        began = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def recentd_command() -> list[str]:
    """The installed entry point when there is one (what an admin runs), else ``-m``."""
    script = Path(sys.executable).with_name("recentd")
    return [str(script)] if script.exists() else RECENTD


def two_hundred_rules(path: Path) -> Path:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for i in range(200):
        port = 1000 + i
        if i % 4 == 0:
            lines.append(f"-A INPUT -p tcp -m tcp --dport {port} -m state --state NEW "
                         f"-m recent --set --name P{i} --mask 255.255.255.255 --rsource")
        elif i % 4 == 1:
            lines.append(f"-A INPUT -p tcp -m tcp --dport {port} -m state --state NEW -m recent "
                         f"--update --seconds 60 --hitcount 4 --name P{i - 1} "
                         "--mask 255.255.255.255 --rsource -j DROP")
        elif i % 4 == 2:
            lines.append(f"-A INPUT -s 10.{i}.0.0/16 -p udp -m udp --dport {port} -j ACCEPT")
        else:
            lines.append(f"-A INPUT -p tcp -m multiport --dports {port},{port + 1} "
                         "-m limit --limit 5/min -j LOG --log-prefix \"drop: \"")
    lines.append("COMMIT")
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def running_daemon(workdir: Path) -> Iterator[Path | None]:
    """A real ``recentd run`` in a private namespace; its socket (None when not root)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        yield None
        return
    ns = f"rdbench-{uuid.uuid4().hex[:8]}"
    sock = workdir / "control.sock"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    daemon = None
    try:
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", ns, *RECENTD, "run", "--rules", str(SEED), "--socket",
             str(sock), "--state-dir", str(workdir / "state"), "--no-offload"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert daemon.stdout is not None
        for line in daemon.stdout:
            if line.strip() == "recentd: ready":
                break
        else:
            raise SystemExit("bench/cli.py: the daemon did not start")
        yield sock
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    recentd = recentd_command()
    with tempfile.TemporaryDirectory(prefix="recentd-bench-cli-") as tmp:
        workdir = Path(tmp)
        big = two_hundred_rules(workdir / "rules.v4")
        python_ms = median_ms([sys.executable, "-c", "pass"])
        version_ms = median_ms([*recentd, "--version"])
        check_ms = median_ms([*recentd, "rules", "check", str(SEED)])
        check_200_ms = median_ms([*recentd, "rules", "check", str(big)])
        with running_daemon(workdir) as sock:
            status_ms = (
                median_ms([*recentd, "--socket", str(sock), "ctl", "status"])
                if sock is not None else float("nan")
            )  # fmt: skip
    print(f"python -c pass: {python_ms:.1f} ms (the floor); entry point: {' '.join(recentd)}")
    print(f"version_ms={version_ms:.1f} ctl_status_ms={status_ms:.1f} "
          f"rules_check_ms={check_ms:.1f} rules_check_200_ms={check_200_ms:.1f} "
          f"python_ms={python_ms:.1f}")


if __name__ == "__main__":
    main()
