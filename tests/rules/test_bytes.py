"""Bytes as iptables takes them: a Latin-1 byte in a rule file is one byte, kept as it is.

A rule file is read as UTF-8 with ``surrogateescape``: a byte that is not UTF-8
(``\\xfc``, Latin-1 ``ü``) becomes a lone surrogate in the text and goes back out
as the same byte. Transcripts: file bytes in → rules, lengths and rendered bytes out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recentd.cli.main import main
from recentd.errors import RuleError
from recentd.rules import load_rules, parse_ruleset_text, render_save
from recentd.rules.lexer import wire_bytes
from tests.shared import REAL_RULES

REPRO = REAL_RULES / "repro"
HEAD = b"*filter\n:INPUT ACCEPT [0:0]\n"


def _file(tmp_path: Path, body: bytes, name: str = "r.rules") -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


def _saved(path: Path) -> bytes:
    return wire_bytes(render_save(load_rules(path).ruleset, 4, stamp=lambda: "T"))


def test_latin1_comment_is_kept_byte_for_byte(tmp_path: Path) -> None:
    path = _file(tmp_path, HEAD + b'-A INPUT -m comment --comment "f\xfcr" -j ACCEPT\nCOMMIT\n')
    assert b'-A INPUT -m comment --comment "f\xfcr" -j ACCEPT\n' in _saved(path)


def test_latin1_recent_name_from_a_script_line(tmp_path: Path) -> None:
    path = _file(tmp_path, b"iptables -A INPUT -m recent --set --name B\xfcro\n", "r.sh")
    assert b"--set --name B\xfcro --mask" in _saved(path)


def test_comment_length_counts_bytes_as_iptables_does(tmp_path: Path) -> None:
    # 255 Latin-1 bytes fit; 128 UTF-8 `ü' are 256 bytes, cut to 255 as iptables cuts
    # them (iptables-legacy-restore --test accepts the file; -save shows the half `ü').
    fits = _file(tmp_path, HEAD + b'-A INPUT -m comment --comment "' + b"\xfc" * 255
                 + b'"\nCOMMIT\n', "fits.rules")
    assert b"\xfc" * 255 in _saved(fits)
    too_long = _file(tmp_path, HEAD + b'-A INPUT -m comment --comment "' + "ü".encode() * 128
                     + b'"\nCOMMIT\n', "long.rules")
    assert b'--comment "' + "ü".encode() * 127 + b'\xc3"\n' in _saved(too_long)


def test_recent_name_is_cut_to_199_bytes_not_characters(tmp_path: Path) -> None:
    # A multi-byte character cut in half stays as its first bytes, as the kernel holds them.
    path = _file(tmp_path, b"iptables -A INPUT -m recent --set --name " + b"a" * 198
                 + "ü".encode() + b"\n", "r.sh")
    assert b"--name " + b"a" * 198 + b"\xc3 --mask" in _saved(path)


def test_text_that_cannot_come_from_a_file_is_a_rule_error() -> None:
    # A surrogate outside the escape range cannot be written back as bytes.
    with pytest.raises(RuleError) as info:
        parse_ruleset_text("iptables -A INPUT -m comment --comment '\ud800' -j DROP\n",
                           source="api")
    assert (info.value.source, info.value.line, info.value.column) == ("api", 1, 41)


@pytest.mark.parametrize("action", ["check", "save", "list"])
def test_cli_writes_the_original_byte_back(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], action: str
) -> None:
    path = _file(tmp_path, HEAD + b'-A INPUT -m comment --comment "f\xfcr" -j ACCEPT\nCOMMIT\n')
    assert main(["rules", action, str(path)]) == 0
    out, err = capsysbinary.readouterr()
    if action == "check":
        assert err.splitlines()[0].endswith(b": 1 rules OK (IPv4 filter)")
    else:
        assert b"f\xfcr" in out


def test_cli_error_on_a_latin1_line_prints_it(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = _file(tmp_path, HEAD + b'-A INPUT -m comment --comment "f\xfcr" --nope\nCOMMIT\n')
    assert main(["rules", "check", str(path)]) == 2
    _, err = capsysbinary.readouterr()
    assert err.startswith(str(path).encode() + b":3:37: unknown option")
    assert b'"f\xfcr"' in err


@pytest.mark.parametrize("name", ["latin1-comment.rules", "latin1-recent-name.sh"])
def test_repro_files_load(name: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    if not REPRO.is_dir():
        pytest.skip(f"{REPRO} is absent: the shared repro files are not on this machine")
    for action in ("check", "save", "list"):
        assert main(["rules", action, str(REPRO / name)]) == 0
    out, _ = capsysbinary.readouterr()
    assert b"B\xfcro" in out
