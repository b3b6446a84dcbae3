"""A daemon reloading hostile rule files (random and mutated bytes, Latin-1, CRLF, BOM,
truncated lines) never stops and never loses its rules or lists: a file that loads
replaces the rules, any other keeps the old ones (issue 10)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rules.test_fuzz_files import mutated_file
from tests.test_daemon_evidence import A, Harness


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated_file(), st.binary(max_size=300)))
def test_a_reload_of_any_bytes_keeps_the_daemon_deciding(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp))
        for _ in range(5):
            h.packet(A)
        assert h.transcript[-1] == "10.0.0.2 DROP"
        entries = [(e.addr, e.stamps) for e in h.daemon.tables["SSH"]]
        old = h.daemon.ruleset
        (Path(tmp) / "seed.rules").write_bytes(data)
        reloaded = h.daemon.reload()  # never raises: the one documented guard
        assert reloaded is (h.daemon.ruleset is not old)
        if "SSH" in h.daemon.tables:  # a rule still names the list: it kept its entries
            assert [(e.addr, e.stamps) for e in h.daemon.tables["SSH"]] == entries
        if not reloaded:
            h.packet(A)
            assert h.transcript[-1] == "10.0.0.2 DROP"  # the old rules still decide
