"""Scripts as the shell runs them: variables resolved, nothing misunderstood is skipped.

Transcripts: script text in → the rules it makes (``-S`` form), or the
``FILE:LINE:COL`` error that says what recentd could not follow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recentd.errors import RuleError
from recentd.rules import load_rules, parse_ruleset_text, render_rules, render_save
from tests.shared import REAL_RULES

REAL = REAL_RULES / "files"
SEEDS = Path(__file__).resolve().parents[1] / "data" / "seeds"
#: The six real scripts that call iptables through a variable.
VARIABLE_SCRIPTS = ["006-linuxtools-port-knocking", "012-iptables-ratelimit-vars",
                    "016-tablewall-firewall6", "017-tablewall-firewall",
                    "033-iptables-boilerplate-all-new-limit", "035-devzat-iptables"]


def rules(text: str, family: int = 4) -> list[str]:
    table = parse_ruleset_text(text, source="s.sh").ruleset.table(family, "filter")
    assert table is not None
    return [line for line in render_rules(table).splitlines() if not line.startswith("-P ")]


def error(text: str) -> tuple[int, int, str]:
    with pytest.raises(RuleError) as info:
        parse_ruleset_text(text, source="s.sh")
    assert info.value.source == "s.sh"
    return info.value.line, info.value.column, info.value.message


@pytest.mark.parametrize("assignment", [
    "IPT=/sbin/iptables", 'IPT="/sbin/iptables"', "IPT='/sbin/iptables'",
    "export IPT=/sbin/iptables", "readonly IPT=/sbin/iptables", "declare -r IPT=iptables",
    "IPT=$(which iptables)", 'IPT="$(which iptables)"', "IPT=`which iptables`",
    "IPT=$(command -v iptables)", "BIN=/sbin\nIPT=$BIN/iptables", "BIN=/sbin IPT=$BIN/iptables",
])
@pytest.mark.parametrize("use", ["$IPT", "${IPT}", '"$IPT"', "sudo $IPT"])
def test_iptables_through_a_variable(assignment: str, use: str) -> None:
    assert rules(f"{assignment}\n{use} -A INPUT -p tcp --dport 22 -j DROP\n") == [
        "-A INPUT -p tcp -m tcp --dport 22 -j DROP"]


def test_variables_in_arguments_as_the_shell_splits_them() -> None:
    script = """\
IPTABLES="/usr/sbin/iptables"   # the program
SSH_PORT=2222
RECENT="-m recent --name SSH"
NOTE="brute force"
$IPTABLES -A INPUT -p tcp --dport $SSH_PORT $RECENT --set -m comment --comment "$NOTE"
$IPTABLES -A INPUT -p tcp --dport ${SSH_PORT} -m recent --update --seconds ${SECS:-60} -j DROP
"""
    assert rules(script) == [
        '-A INPUT -p tcp -m tcp --dport 2222 -m recent --set --name SSH --mask 255.255.255.255 '
        '--rsource -m comment --comment "brute force"',
        "-A INPUT -p tcp -m tcp --dport 2222 -m recent --update --seconds 60 --name DEFAULT "
        "--mask 255.255.255.255 --rsource -j DROP"]


def test_a_variable_the_script_never_sets_is_an_error_at_its_dollar() -> None:
    assert error("$IPT -A INPUT -j DROP\n")[:2] == (1, 1)
    line, column, message = error("IPT=iptables\n\n$IPT -A INPUT -p tcp --dport $PORT -j DROP\n")
    assert (line, column) == (3, 30)
    assert "`$PORT'" in message and "does not set it" in message


def test_a_variable_set_later_is_not_set_yet() -> None:
    assert error("$IPT -F\nIPT=iptables\n")[:2] == (1, 1)


@pytest.mark.parametrize(("script", "column", "words"), [
    ("if [ -x /sbin/ip6tables ]; then\n  IPT=/sbin/ip6tables\nfi\n$IPT -F\n", 1, "inside an if"),
    ("[ -x /sbin/ip6tables ] && IPT=ip6tables\n$IPT -F\n", 1, "shell construct"),
    ("for ip in 192.0.2.1 192.0.2.2; do\n  iptables -A INPUT -s $ip -j DROP\ndone\n", 24,
     "`for' loop"),
    ("IPT=$(date)\n$IPT -F\n", 1, "command substitution"),
    ("iptables -A INPUT -s $1 -j DROP\n", 22, "`$1'"),
    ("iptables -A INPUT -s ${HOSTS[0]} -j DROP\n", 22, "${NAME}"),
])
def test_values_recentd_cannot_know(script: str, column: int, words: str) -> None:
    line, found_column, message = error(script)
    assert found_column == column
    assert words in message
    assert line == script.count("\n", 0, script.rindex("-")) + 1


@pytest.mark.parametrize(("line", "column", "words"), [
    ("[ -x /sbin/iptables ] && iptables -A INPUT -j DROP", 26, "shell construct"),
    # `iptables -C … || iptables -A …' is read as the shell runs it now: test_lists.py
    ("for i in 1 2; do iptables -A INPUT -j DROP; done", 18, "after `do'"),
    ("/usr/bin/firewall-cmd --direct --add-rule ipv4 filter INPUT 0 -p tcp -j DROP", 70,
     "firewall-cmd"),
    ("-A INPUT -p tcp --dport 22 -j ACCEPT", 1, "outside a `*TABLE'"),
    ("iptables-restore < /etc/iptables/rules.v4", 1, "another file"),
])
def test_commands_recentd_does_not_follow_are_errors(line: str, column: int, words: str) -> None:
    found_line, found_column, message = error(line + "\n")
    assert found_line == 1
    if column:
        assert found_column == column and words in message


def test_a_recipe_line_in_an_article_is_not_silently_left_out() -> None:
    """The wrap-around bug article quotes a restore line on its own: recentd cannot
    apply it (no table, no chain), so it says so instead of loading "0 rules"."""
    article = (SEEDS / "ipt_recent_bug_article.txt").read_text()
    with pytest.raises(RuleError) as info:
        parse_ruleset_text(article, source="article")
    assert (info.value.line, info.value.column) == (50, 1)
    assert "outside a `*TABLE'" in info.value.message


def test_printed_text_and_prose_are_not_commands() -> None:
    script = ('IPT=iptables\necho "add: $IPT -A INPUT -j DROP"\nYou can\'t use iptables && '
              'friends here\n$IPT -A INPUT -j ACCEPT\n')
    result = parse_ruleset_text(script, source="s.sh")
    assert [n.line for n in result.notices] == [2, 3]


def test_a_file_with_no_iptables_command_is_not_ok() -> None:
    line, column, message = error("#!/bin/sh\nmodprobe ipt_recent\nservice iptables save\n")
    assert (line, column) == (2, 1)
    assert message.startswith("no iptables rule in this file: 2 line(s) skipped")


def test_empty_and_comment_only_files_hold_no_rules() -> None:
    assert not parse_ruleset_text("# nothing yet\n\n").ruleset.tables


def test_byte_order_mark_in_a_script_is_refused_not_skipped() -> None:
    assert error("\ufeffiptables -A INPUT -j DROP\n")[:2] == (1, 1)


def test_crlf_script_is_refused_as_the_shell_would() -> None:
    line, _, message = error("iptables -A INPUT -j DROP\r\n")
    assert line == 1 and "carriage return" in message and "DROP\\r" in message


def _real(name: str) -> Path:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is absent: the shared real rule files are not on this machine")
    return REAL / name


@pytest.mark.parametrize("name", VARIABLE_SCRIPTS)
def test_real_scripts_through_variables_are_never_a_silent_zero(name: str) -> None:
    """Each loads the rules its commands make (as the script run against a printing
    stub made them, ``.extracted.rules``) or fails naming the line; never "0 rules"."""
    script, extracted = _real(f"{name}.sh"), _real(f"{name}.extracted.rules")
    try:
        loaded = load_rules(script).ruleset
    except RuleError as exc:
        assert exc.line and exc.column is not None
        return
    assert any(True for _ in loaded.rules())
    expected = load_rules(extracted).ruleset
    for family in expected.families():
        assert render_save(loaded, family, stamp=lambda: "T").replace(str(script), "") == \
            render_save(expected, family, stamp=lambda: "T").replace(str(extracted), "")


@pytest.mark.parametrize(("name", "line", "column"), [
    ("006-linuxtools-port-knocking.sh", 7, 1),  # $IPT is never set in this script
    ("016-tablewall-firewall6.sh", 180, 32),  # $i comes from a for loop
    ("034-cvc-ansible-firewalld-direct.sh", 3, 224),  # rules given to firewall-cmd
])
def test_real_scripts_recentd_cannot_follow_name_the_place(name: str, line: int,
                                                           column: int) -> None:
    with pytest.raises(RuleError) as info:
        load_rules(_real(name))
    assert (info.value.line, info.value.column) == (line, column)
