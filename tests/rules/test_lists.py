"""Scripts as found: `;`, `&&`, `||` and redirections read as the shell runs them."""

from __future__ import annotations

from recentd.rules import parse_ruleset_text
from recentd.rules.lists import split_list
from recentd.rules.render import render_save


def _rules(script: str) -> list[str]:
    ruleset = parse_ruleset_text(script, source="s.sh").ruleset
    return render_save(ruleset, 4, stamp=lambda: "").splitlines()


def test_check_or_append_appends_once() -> None:
    line = ("iptables -C INPUT -p tcp --dport 22 -j ACCEPT || "
            "iptables -A INPUT -p tcp --dport 22 -j ACCEPT\n")
    assert [r for r in _rules(line * 3) if r.startswith("-A")] == [
        "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"]


def test_new_chain_twice_with_errors_silenced() -> None:
    script = "iptables -N SSH 2>/dev/null || true\niptables -N SSH 2>/dev/null\n" \
             "iptables -A SSH -j DROP >/dev/null 2>&1\n"
    assert "-A SSH -j DROP" in _rules(script)


def test_semicolons_and_and_run_in_order() -> None:
    script = "iptables -A INPUT -i lo -j ACCEPT; iptables -A INPUT -p icmp -j ACCEPT\n" \
             "false && iptables -A INPUT -j DROP\ntrue && iptables -A INPUT -j LOG\n"
    assert [r for r in _rules(script) if r.startswith("-A")] == [
        "-A INPUT -i lo -j ACCEPT", "-A INPUT -p icmp -j ACCEPT", "-A INPUT -j LOG"]


def test_an_invalid_command_in_a_list_is_still_an_error() -> None:
    script = "iptables -A INPUT -m bogus -j DROP || true\n"
    try:
        parse_ruleset_text(script, source="s.sh")
    except ValueError as exc:
        assert getattr(exc, "column", 0) == 19  # at its -m
    else:
        raise AssertionError("a rule recentd cannot read was skipped")


def test_parts_keep_their_columns_and_quotes() -> None:
    parts = split_list('iptables -A INPUT -m comment --comment "a; b || c" -j ACCEPT; true')
    assert parts is not None and [p.operator for p in parts] == ["", ";"]
    assert parts[0].text.rstrip().endswith('"a; b || c" -j ACCEPT')
    assert parts[1].text.strip() == "true" and parts[1].text.index("true") == 62
