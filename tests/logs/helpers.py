"""Transcript helpers: lines in, (line, outcome, address, kind) out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from zoneinfo import ZoneInfo

from recentd.logs import AuthEvent, ClassicYear, RecordParser, SshdParser

UTC = ZoneInfo("UTC")


def events(
    lines: Iterable[str], *, year: int | None = 2025, now: int = 0, tz: tzinfo | None = UTC
) -> list[AuthEvent]:
    """Every event the sshd parser makes from ``lines`` (numbered from 1)."""
    records = RecordParser(ClassicYear(year=year, now=now, tz=tz))
    parser = SshdParser()
    found: list[AuthEvent] = []
    for number, text in enumerate(lines, 1):
        found += parser.feed(records.parse(text, number))
    return found + parser.close()


def transcript(lines: Iterable[str], **options: object) -> list[tuple[int, str, str, str]]:
    """(line, outcome, address, kind) per event: what a transcript test compares."""
    return [
        (e.line, e.outcome.value, str(e.address), e.kind.value)
        for e in events(lines, **options)  # type: ignore[arg-type]
    ]


def messages(*texts: str, pid: int = 4242, program: str = "sshd") -> list[str]:
    """Classic syslog lines of one sshd process, one second apart."""
    return [
        f"Mar 14 10:22:{second:02d} web1 {program}[{pid}]: {text}"
        for second, text in enumerate(texts)
    ]
