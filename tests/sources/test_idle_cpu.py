"""Idle sources cost nothing: no polling, no timer, no thread. A file source and a journal
source are left idle for 10 s under a select loop, as the daemon's loop would hold them;
the process's CPU time over that stretch is printed and must be ~0."""

from __future__ import annotations

import select
import time
from pathlib import Path

import pytest

from recentd.sources import Source
from recentd.sources.files import FileSource
from recentd.sources.journal import journal_source
from tests.sources.fakes import FailParser, expected, fail_lines, seen
from tests.sources.journal_files import JournalWriter, sshd_entry

IDLE_S = 10.0


def idle(sources: list[Source], seconds: float) -> tuple[float, int]:
    """CPU seconds used and wakeups seen while ``sources`` sit idle for ``seconds``."""
    fds = [fd for source in sources if (fd := source.fileno()) is not None]
    assert len(fds) == len(sources), "every source here has a descriptor"
    cpu, wakeups = time.process_time(), 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(fds, [], [], left)
        wakeups += len(ready)
        for source in sources:
            source.read()
    return time.process_time() - cpu, wakeups


@pytest.mark.slow
def test_idle_sources_use_no_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(fail_lines(expected(3)))
    (tmp_path / "journal").mkdir()
    JournalWriter(tmp_path / "journal").write([sshd_entry("FAIL 192.0.2.1 1", 1_700_000_000)])
    files = FileSource(log, FailParser())
    journal = journal_source(FailParser(), directory=tmp_path / "journal")
    sources: list[Source] = [files, journal]
    for source in sources:
        source.read()
    cpu_s, wakeups = idle(sources, IDLE_S)
    with capsys.disabled():
        print(f"\nidle_s={IDLE_S:.0f} cpu_s={cpu_s:.4f} wakeups={wakeups} "
              f"sources={[source.name for source in sources]}")
    assert wakeups == 0
    assert cpu_s < 0.05
    with log.open("ab") as file:                     # and still awake to the next line
        file.write(fail_lines(expected(1, start=50)))
    assert select.select([files.fileno()], [], [], 1.0)[0]
    assert seen(files.read()) == expected(1, start=50)
    for source in sources:
        source.close()
