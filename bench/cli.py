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

Bytecode: an installed recentd starts from its modules' compiled bytecode (pip compiles
a package when it installs it); a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (this
project's environment sets it) compiles every module it imports at every start — for
``rules check``, ~40 modules, ~100 ms of the figure. The last line is measured as
installed (the tree's bytecode kept in a private cache, ``PYTHONPYCACHEPREFIX``); the
line before it gives the same figures without bytecode.

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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "tests" / "data" / "seeds" / "ipt_recent_howto.txt"
RECENTD = [sys.executable, "-m", "recentd.cli.main"]
STARTS = 20


def median_ms(argv: Sequence[str], env: Mapping[str, str] | None = None,
              starts: int = STARTS) -> float:  # fmt: skip
    """Median wall time of ``starts`` runs of ``argv`` (each must exit 0), after one run
    not counted (it writes the bytecode cache, where there is one)."""
    times = []
    for _ in range(starts + 1):
        began = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env)  # fmt: skip
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times[1:])


def with_bytecode(cache: Path) -> dict[str, str]:
    """The environment of an installed recentd: its modules' bytecode compiled once and
    kept (pip compiles a package at install), here in a private cache, so a checkout run
    with ``PYTHONDONTWRITEBYTECODE`` is measured as an admin's install starts."""
    env = {name: value for name, value in os.environ.items()
           if name != "PYTHONDONTWRITEBYTECODE"}  # fmt: skip
    return {**env, "PYTHONPYCACHEPREFIX": str(cache)}


def without_bytecode() -> dict[str, str]:
    """Every module compiled from source at every start (a checkout, no cache)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPYCACHEPREFIX"}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1"}


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


def figures(recentd: list[str], env: Mapping[str, str], big: Path, sock: Path | None
            ) -> dict[str, float]:  # fmt: skip
    return {
        "version_ms": median_ms([*recentd, "--version"], env),
        "ctl_status_ms": (median_ms([*recentd, "--socket", str(sock), "ctl", "status"], env)
                          if sock is not None else float("nan")),
        "rules_check_ms": median_ms([*recentd, "rules", "check", str(SEED)], env),
        "rules_check_200_ms": median_ms([*recentd, "rules", "check", str(big)], env),
        "python_ms": median_ms([sys.executable, "-c", "pass"], env),
    }  # fmt: skip


def main() -> None:
    recentd = recentd_command()
    with tempfile.TemporaryDirectory(prefix="recentd-bench-cli-") as tmp:
        workdir = Path(tmp)
        big = two_hundred_rules(workdir / "rules.v4")
        with running_daemon(workdir) as sock:
            source = figures(recentd, without_bytecode(), big, sock)
            installed = figures(recentd, with_bytecode(workdir / "pycache"), big, sock)
    print(f"entry point: {' '.join(recentd)}; python -c pass is the floor")
    print("without bytecode (every module compiled at each start): "
          + " ".join(f"{key}={value:.1f}" for key, value in source.items()))
    print(" ".join(f"{key}={value:.1f}" for key, value in installed.items()))


if __name__ == "__main__":
    main()
