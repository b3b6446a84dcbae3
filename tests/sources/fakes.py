"""A tiny parser for the source tests, and the bytes the tests write.

``FAIL <addr> <epoch_ns>`` is one failed attempt; ``OPEN <addr> <epoch_ns>`` starts a
session that counts as a failure if the input ends before ``CLOSE <addr>`` (what
:meth:`LineParser.finish` is for). Anything else — random bytes, half lines — is nothing.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping, Sequence

from recentd.observation import Address, Evidence, Observation, Origin
from recentd.sources.lines import LineSpan
from recentd.testing.sources import Expected


class FailParser:
    def __init__(self) -> None:
        self.open_sessions: dict[Address, tuple[int, Origin]] = {}
        self.finished = 0

    def feed_lines(self, lines: Sequence[str], span: LineSpan) -> list[Observation]:
        found: list[Observation] = []
        for index, text in enumerate(lines):
            if text.startswith(("FAIL ", "OPEN ", "CLOSE ")):
                found += self.feed_line(text, span.origin(index))
        return found

    def feed_line(self, text: str, origin: Origin) -> list[Observation]:
        parts = text.split(" ")
        if len(parts) == 2 and parts[0] == "CLOSE":
            self.open_sessions.pop(_address(parts[1]) or ipaddress.IPv4Address(0), None)
            return []
        if len(parts) != 3 or parts[0] not in ("FAIL", "OPEN") or not parts[2].isdigit():
            return []
        address = _address(parts[1])
        if address is None:
            return []
        if parts[0] == "OPEN":
            self.open_sessions[address] = (int(parts[2]), origin)
            return []
        return [Observation(Evidence.AUTH_FAILURE, address, int(parts[2]), origin)]

    def feed_entry(self, fields: Mapping[str, str], origin: Origin) -> list[Observation]:
        return self.feed_line(fields.get("MESSAGE", ""), origin)

    def finish(self) -> list[Observation]:
        self.finished += 1
        still_open, self.open_sessions = self.open_sessions, {}
        return [
            Observation(Evidence.AUTH_FAILURE, address, wall_ns, origin, kind="preauth")
            for address, (wall_ns, origin) in still_open.items()
        ]


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def fail_line(item: Expected) -> bytes:
    return f"FAIL {item.address} {item.wall_ns}\n".encode()


def fail_lines(batch: Sequence[Expected]) -> bytes:
    return b"".join(fail_line(item) for item in batch)


def garbage(seed: int = 12) -> bytes:
    """Random bytes, invalid UTF-8, NULs, a 1 MB line — each ended by a newline."""
    rng = random.Random(seed)
    noise = bytes(rng.randrange(256) for _ in range(4096)).replace(b"\n", b" ")
    return b"\n".join([
        noise,
        b"FAIL \xff\xfe\xc3 192.0.2.200 1700000000000000000",
        b"\x00" * 100,
        b"FAIL 192.0.2.201 1700" + b"9" * 1_000_000,  # 1 MB: dropped, never cut
        b"",
    ])


def expected(n: int, *, start: int = 1, t0: int = 1_700_000_000_000_000_000) -> list[Expected]:
    return [
        Expected(Evidence.AUTH_FAILURE, ipaddress.ip_address(f"198.51.100.{i % 250 + 1}"),
                 t0 + i * 1000)
        for i in range(start, start + n)
    ]


def seen(found: Sequence[Observation]) -> list[Expected]:
    return [Expected.of(observation) for observation in found]
