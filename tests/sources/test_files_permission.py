"""An unreadable log is ``degraded`` with the reason, and recovers when it is made
readable — woken by the chmod itself, never a crash.

Root reads everything, so the source runs in a child process that is root without the
capabilities that bypass file modes (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH),
reading a file owned by ``nobody``: the mode alone decides, while the child still reaches
this checkout and its environment wherever they are (a clone in a 0700 directory too).
The test changes the file's mode. The child answers one JSON line for
each command it is sent: ``read`` reads now, ``wait`` waits for the source's descriptor
(at most 5 s) first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sources.fakes import expected, fail_lines

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = Path(__file__).resolve().parents[2]
CHILD = r"""
import json, select, sys
from recentd.sources.files import FileSource
from tests.sources.fakes import FailParser
source = FileSource(sys.argv[1], FailParser(), start_at_end=False)
for command in sys.stdin:
    woke = None
    if command.strip() == "wait":
        woke = bool(select.select([source.fileno()], [], [], 5.0)[0])
    found = source.read()
    status = source.status()
    print(json.dumps({"state": status.state.value, "detail": status.detail, "woke": woke,
                      "found": [str(o.address) for o in found]}), flush=True)
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="recentd-perm-"))
    directory.chmod(0o755)  # nobody may look inside; the file itself is what is denied
    yield directory
    shutil.rmtree(directory)


#: The capabilities that let root read a file its mode forbids.
BYPASS = "-dac_override,-dac_read_search"


def child_argv(log: Path) -> list[str]:
    unprivileged = ["setpriv", f"--inh-caps={BYPASS}", f"--bounding-set={BYPASS}"]
    prefix = unprivileged if os.geteuid() == 0 else []
    return [*prefix, sys.executable, "-c", CHILD, str(log)]


def test_permission_denied_is_degraded_then_recovers_on_chmod(shared_dir: Path) -> None:
    log = shared_dir / "auth.log"
    log.write_bytes(fail_lines(expected(2)))
    if os.geteuid() == 0:
        os.chown(log, 65534, 65534)  # not the child's file: its mode's "other" bits decide
    log.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(ROOT)])}
    child = subprocess.Popen(child_argv(log), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=env, cwd=shared_dir)
    assert child.stdin is not None and child.stdout is not None

    def ask(command: str) -> dict[str, object]:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(command + "\n")
        child.stdin.flush()
        answer: dict[str, object] = json.loads(child.stdout.readline())
        return answer

    try:
        denied = ask("read")
        assert denied["state"] == "degraded"
        assert "Permission denied" in str(denied["detail"]), denied
        assert denied["found"] == []
        log.chmod(0o644)
        recovered = ask("wait")
        assert recovered["woke"] is True             # the chmod woke it (IN_ATTRIB)
        assert recovered["state"] == "ok"
        assert recovered["found"] == [str(item.address) for item in expected(2)]
    finally:
        child.stdin.close()
        child.wait(timeout=10)
        child.stdout.close()
    assert child.returncode == 0
