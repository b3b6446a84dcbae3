"""Parsing scripts and save files: commands, notices, positions of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from recentd.errors import RecentOptionError, RuleError
from recentd.rules import load_ruleset, parse_ruleset_text, render_rules, render_save
from recentd.rules.lexer import Token, tokenize, tokenize_restore


def save(text: str, family: int = 4) -> str:
    return render_save(parse_ruleset_text(text).ruleset, family, stamp=lambda: "T")


def rules_S(text: str, family: int = 4, table: str = "filter") -> list[str]:
    found = parse_ruleset_text(text).ruleset.table(family, table)
    assert found is not None
    return render_rules(found).splitlines()


def test_shell_quoting() -> None:
    assert [t.text for t in tokenize("""a 'b c' "d \\"e\\"" f\\ g''""")] == [
        "a", "b c", 'd "e"', "f g"]
    assert tokenize("x  --comment") == [Token("x", 1), Token("--comment", 4)]


def test_unterminated_quote_points_at_it() -> None:
    with pytest.raises(RuleError) as info:
        parse_ruleset_text("iptables -A INPUT -m comment --comment 'oops", source="f.sh")
    assert (info.value.source, info.value.line, info.value.column) == ("f.sh", 1, 40)


def test_restore_quoting_is_not_shell_quoting() -> None:
    assert [t.text for t in tokenize_restore('--comment "it\\\'s" \'a')] == [
        "--comment", "it's", "'a"]


def test_script_lines_and_notices() -> None:
    result = parse_ruleset_text(
        "#!/bin/sh\n# a comment\n\nmodprobe ipt_recent\nsudo /sbin/iptables -N X\n"
        "iptables-legacy -A X -j DROP\nservice iptables save\n", source="s.sh")
    assert [(n.line, n.message) for n in result.notices] == [
        (4, "skipped: not an iptables command"), (7, "skipped: not an iptables command")]
    assert rules_S("iptables -N X\niptables -A X -j DROP") == ["-P INPUT ACCEPT",
        "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT", "-N X", "-A X -j DROP"]


@pytest.mark.parametrize("dash", ["–", "—", "−"])
def test_typographic_dashes_are_fixed_with_a_warning(dash: str) -> None:
    result = parse_ruleset_text(f"iptables -A INPUT -p tcp {dash}dport 22 {dash}j ACCEPT")
    (notice,) = result.notices
    assert notice.warning and notice.column == 26
    assert notice.corrected == "iptables -A INPUT -p tcp --dport 22 -j ACCEPT"
    assert "corrected: iptables -A INPUT" in str(notice)


def test_quoted_typographic_dash_is_data() -> None:
    result = parse_ruleset_text("iptables -A INPUT -m comment --comment '–x'")
    assert not result.notices


def test_commands_edit_in_place() -> None:
    script = "\n".join([
        "iptables -A INPUT -s 10.0.0.1 -j ACCEPT",
        "iptables -A INPUT -s 10.0.0.2 -j ACCEPT",
        "iptables -I INPUT -s 10.0.0.3 -j DROP",
        "iptables -I INPUT 2 -s 10.0.0.4 -j DROP",
        "iptables -D INPUT -s 10.0.0.1 -j ACCEPT",
        "iptables -R INPUT 1 -s 10.0.0.5 -j DROP",
        "iptables --delete INPUT 3",
        "iptables -P FORWARD DROP",
        "iptables -N OLD",
        "iptables -A INPUT -j OLD",
        "iptables -E OLD NEW",
        "iptables -N GONE",
        "iptables -X GONE",
    ])
    assert rules_S(script) == [
        "-P INPUT ACCEPT", "-P FORWARD DROP", "-P OUTPUT ACCEPT", "-N NEW",
        "-A INPUT -s 10.0.0.5/32 -j DROP", "-A INPUT -s 10.0.0.4/32 -j DROP",
        "-A INPUT -j NEW"]


def test_insert_of_an_address_list_reverses_it_as_iptables_does() -> None:
    assert rules_S("iptables -I INPUT -s 1.1.1.1,2.2.2.2 -d 3.3.3.3,4.4.4.4")[3:] == [
        "-A INPUT -s 2.2.2.2/32 -d 4.4.4.4/32", "-A INPUT -s 2.2.2.2/32 -d 3.3.3.3/32",
        "-A INPUT -s 1.1.1.1/32 -d 4.4.4.4/32", "-A INPUT -s 1.1.1.1/32 -d 3.3.3.3/32"]


@pytest.mark.parametrize(("script", "message"), [
    ("iptables -A NOPE -j DROP", "No chain/target/match by that name"),
    ("iptables -N X\niptables -N X", "Chain already exists"),
    ("iptables -N X\niptables -A INPUT -j X\niptables -X X", "Too many links"),
    ("iptables -N X\niptables -A X -j DROP\niptables -X X", "Directory not empty"),
    ("iptables -D INPUT -j DROP", "Bad rule"),
    ("iptables -D INPUT 1", "Index of deletion too big"),
    ("iptables -P INPUT RETURN", "Bad policy name"),
    ("iptables -N A\niptables -N B\niptables -A A -j B\niptables -A B -j A",
     "Too many levels of symbolic links"),
    ("iptables -A INPUT -j NOWHERE", "Couldn't load target `NOWHERE'"),
    ("iptables -A INPUT -m owner --uid-owner 0", "unsupported match `owner'; supported"),
    ("iptables -A INPUT -m state --state NEW --bogus", 'unknown option "--bogus"'),
    ("iptables -t security -A INPUT -j SECMARK", "Couldn't load target `SECMARK'"),
    ("iptables -t broute -A INPUT", "unsupported table"),
    ("iptables -A INPUT x", "Bad argument `x'"),
    ("iptables -A INPUT -I INPUT", "Cannot use -I with -A"),
])
def test_errors(script: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_ruleset_text(script)


def test_error_positions() -> None:
    script = "modprobe x\niptables -A INPUT -p tcp --dport 99999 -j ACCEPT\n"
    with pytest.raises(RuleError) as info:
        parse_ruleset_text(script, source="r.sh")
    error = info.value
    assert (error.line, error.column, error.option) == (2, 26, "--dport")
    assert str(error).startswith("r.sh:2:26: ")


def test_recent_errors_are_the_cores_with_the_column() -> None:
    with pytest.raises(RecentOptionError) as info:
        parse_ruleset_text("iptables -A INPUT -m recent --set --rcheck")
    assert info.value.column == 29  # the core names --set first; we point at it
    with pytest.raises(RecentOptionError) as kernel:
        parse_ruleset_text("iptables -A INPUT -m recent --set --seconds 5")
    assert kernel.value.origin == "kernel"
    assert kernel.value.message.startswith("iptables: Invalid argument.")


SAVE_FILE = """\
# Generated by iptables-save v1.8.9 on Mon Nov 23 04:40:26 2026
*filter
:INPUT DROP [10:600]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:SSH - [0:0]
[3:180] -A INPUT -p tcp -m tcp --dport 22 -j SSH
-A SSH -m comment --comment "it\\'s" -j ACCEPT
COMMIT
# Completed on Mon Nov 23 04:40:26 2026
# Generated by ip6tables-save v1.8.9 on Mon Nov 23 04:40:26 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -s fd77::/64 -j DROP
COMMIT
# Completed on Mon Nov 23 04:40:26 2026
"""


def test_save_file_round_trips_with_counters() -> None:
    ruleset = parse_ruleset_text(SAVE_FILE).ruleset
    assert ruleset.families() == (4, 6)
    v4 = render_save(ruleset, 4, counters=True, stamp=lambda: "Mon Nov 23 04:40:26 2026")
    v6 = render_save(ruleset, 6, counters=False, stamp=lambda: "Mon Nov 23 04:40:26 2026")
    expected = SAVE_FILE.replace("-A SSH", "[0:0] -A SSH")
    assert v4 + v6 == expected


def test_load_ruleset_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.v4"
    path.write_text(SAVE_FILE)
    assert load_ruleset(path).table(6, "filter") is not None


@pytest.mark.parametrize(("text", "message"), [
    ("*filter\n-A INPUT -j DROP\n", "COMMIT expected"),
    ("*filter\n-t filter -A INPUT -j DROP\nCOMMIT\n", "-t option cannot be used"),
    ("*filter\n:INPUT FOO [0:0]\nCOMMIT\n", "Bad built-in chain policy"),
    ("*filter\n:X ACCEPT [0:0]\nCOMMIT\n", "Can't set policy"),
    ("*filter\n:INPUT ACCEPT [x:0]\nCOMMIT\n", "invalid counters"),
    ("*bogus\nCOMMIT\n", "unsupported table"),
])
def test_restore_errors(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_ruleset_text(text)


def test_mixed_families_from_commands() -> None:
    ruleset = parse_ruleset_text("iptables -A INPUT -j DROP\nip6tables -A INPUT -j ACCEPT\n"
                                 ).ruleset
    assert "-A INPUT -j DROP" in save("iptables -A INPUT -j DROP")
    assert ruleset.families() == (4, 6)


def test_two_commands_on_one_line_are_split_with_a_warning() -> None:
    result = parse_ruleset_text("iptables -N A iptables -A A -j DROP")
    assert [n.column for n in result.notices if n.warning] == [15]
    assert "two commands" in result.notices[0].message


def test_prose_mentioning_iptables_is_skipped() -> None:
    result = parse_ruleset_text("iptables recent module\n")
    assert result.notices[0].message.startswith("skipped")


def test_continuation_lines_and_trailing_comments() -> None:
    result = parse_ruleset_text("iptables -A INPUT \\\n  -p tcp --dport 22 \\\n  -j DROP  # ssh\n"
                                "iptables -A INPUT -j ACCEPT\n")
    table = result.ruleset.table(4, "filter")
    assert table is not None
    assert render_rules(table).splitlines()[3:] == ["-A INPUT -p tcp -m tcp --dport 22 -j DROP",
                                                    "-A INPUT -j ACCEPT"]
    chain = table.chain("INPUT")
    assert chain is not None
    assert [r.line for r in chain.rules] == [1, 4]


@pytest.mark.parametrize("line", ["iptables -nvL", "iptables -L INPUT -n", "iptables -S",
                                  "ip6tables --list", "iptables-save > /etc/iptables/rules.v4"])
def test_listing_and_save_lines_are_skipped(line: str) -> None:
    result = parse_ruleset_text(line)
    assert result.notices[0].message.startswith("skipped")
    assert not result.ruleset.tables
