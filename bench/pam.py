"""Benchmark: how long ``recentd-pam-hook`` holds a login (issue 13).

The hook is spawned as ``pam_exec`` spawns it — a fresh process in its own session, only
the PAM environment (``PAM_TYPE``, ``PAM_RHOST``, ``PAM_USER``, ``PAM_SERVICE``,
``PAM_TTY``), stdin, stdout and stderr on ``/dev/null`` — 200 times each:

- daemon up: a real :class:`recentd.control.ControlServer` on a Unix socket, served by its
  own thread as the daemon's loop serves it, whose ``observe`` applies the login to a
  table (``-SSH``, pam_recent's forget) as the daemon will;
- daemon down: no socket at that path.

Each figure is the wall time from spawning to reaping the process, interpreter start
included (the program is written as pip writes the console script, pointed at this
checkout's sources). Targets: p99 up ≤ 50 ms, p99 down ≤ 50 ms.

Run: ``python bench/pam.py``. The last line is
``hook_ms_p50=<A> hook_ms_p99=<B> hook_ms_daemon_down=<C>``: A and B with the daemon up,
C the p99 with it down; the line before gives the daemon-down p50 and the interpreter's
own start (``python -c pass``, the floor).
"""

from __future__ import annotations

import ipaddress
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from recentd.control import ControlServer, Service  # noqa: E402
from recentd.observation import Observation  # noqa: E402
from recentd.pam.policy import apply_login, login_routes  # noqa: E402
from recentd.recent import Command, RecentMatch, RecentTables  # noqa: E402

RUNS = 200
PAM_ENV = {
    "PAM_TYPE": "open_session",
    "PAM_RHOST": "192.0.2.7",
    "PAM_USER": "alice",
    "PAM_SERVICE": "sshd",
    "PAM_TTY": "ssh",
}


def hook_program(directory: Path) -> Path:
    """The console script as pip writes it, running this checkout's sources."""
    program = directory / "recentd-pam-hook"
    program.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO / 'src')!r})\n"
        "from recentd.pam.hook import main\nsys.exit(main())\n"
    )
    program.chmod(0o755)
    return program


def spawn_ms(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True, check=True, cwd="/",
    )  # fmt: skip
    return (time.perf_counter() - began) * 1000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextmanager
def control_server(socket_path: Path) -> Iterator[list[Observation]]:
    """A real control server applying each login to table SSH; yields what it observed."""
    tables = RecentTables(hz=250)
    tables.acquire(RecentMatch(Command.SET, name="SSH"))
    routes = login_routes({"SSH": "-"})
    seen: list[Observation] = []

    def observe(observation: Observation) -> None:
        seen.append(observation)
        tables["SSH"].add(4, int(ipaddress.ip_address("192.0.2.7")), len(seen))  # a failure
        apply_login(tables, routes, observation, len(seen))

    server = ControlServer(socket_path, Service(tables, clock=lambda: len(seen), observe=observe))
    selector = selectors.DefaultSelector()
    server.register(selector)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for key, mask in selector.select(0.05):
                key.data(mask)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(5)
        server.close()
        selector.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="recentd-bench-pam-") as tmp:
        workdir = Path(tmp)
        program = [str(hook_program(workdir))]
        socket_path = workdir / "control.sock"
        argv = [*program, "--socket", str(socket_path)]
        python_ms = statistics.median(
            spawn_ms([sys.executable, "-c", "pass"], {}) for _ in range(20)
        )
        with control_server(socket_path) as seen:
            up = [spawn_ms(argv, PAM_ENV) for _ in range(RUNS)]
        assert len(seen) == RUNS, f"the daemon was told {len(seen)} of {RUNS} logins"
        down = [spawn_ms(argv, PAM_ENV) for _ in range(RUNS)]
    print(
        f"daemon up: p50 {statistics.median(up):.1f} ms, max {max(up):.1f} ms; "
        f"daemon down: p50 {statistics.median(down):.1f} ms, max {max(down):.1f} ms; "
        f"python_ms={python_ms:.1f}"
    )
    print(
        f"hook_ms_p50={statistics.median(up):.1f} hook_ms_p99={percentile(up, 0.99):.1f} "
        f"hook_ms_daemon_down={percentile(down, 0.99):.1f}"
    )


if __name__ == "__main__":
    main()
