"""Token-bucket scenarios of spec §7/§9.19, with the kernel's numbers (HZ=250)."""

from __future__ import annotations

import pytest

from recentd.errors import RuleError
from recentd.rules import parse_ruleset_text
from recentd.rules.extensions.hashlimit import bucket_params
from recentd.rules.limit import (
    HASHLIMIT_SCALE,
    LIMIT_SCALE,
    format_rate,
    hashlimit_cpj,
    limit_bucket_params,
    limit_cpj,
    parse_rate,
)
from tests.rules.transcript import Script, syn

LIMIT_2S = """\
*filter
:INPUT DROP [0:0]
-A INPUT -m limit --limit 2/second --limit-burst 3 -j ACCEPT
COMMIT
"""


def accepted(script: Script, at: float, count: int, src: str = "10.77.0.2") -> int:
    return sum(script.verdict(at, syn(src)) == "ACCEPT" for _ in range(count))


@pytest.mark.parametrize(("hz", "cpj"), [(250, 128), (300, 128), (1000, 32), (100, 256)])
def test_credits_per_jiffy(hz: int, cpj: int) -> None:
    assert limit_cpj(hz) == cpj


def test_worked_example_numbers() -> None:
    avg, _ = parse_rate("2/second", LIMIT_SCALE, option="--limit")
    assert avg == 5000
    assert limit_bucket_params(avg, 3, 250) == (48000, 16000)


def test_limit_scenario_9_19() -> None:
    script = Script(LIMIT_2S)
    assert accepted(script, 0, 10) == 3
    assert accepted(script, 0.52, 3) == 1
    assert accepted(script, 0.52 + 2.2, 10) == 3


def test_one_per_day_with_default_burst_is_erange() -> None:
    with pytest.raises(RuleError, match="Numerical result out of range"):
        parse_ruleset_text("iptables -A INPUT -m limit --limit 1/day")
    parse_ruleset_text("iptables -A INPUT -m limit --limit 1/day --limit-burst 1")


def test_replace_resets_limit_buckets_but_keeps_recent_lists() -> None:
    rules = ("iptables -A INPUT -m limit --limit 1/min --limit-burst 1 -j ACCEPT\n"
             "iptables -A INPUT -m recent --set --name KEEP\niptables -P INPUT DROP\n")
    script = Script(rules)
    assert accepted(script, 0, 2) == 1
    script.engine.replace(parse_ruleset_text(rules + "iptables -A OUTPUT -j ACCEPT").ruleset)
    assert accepted(script, 1, 1) == 1  # a fresh, full bucket
    assert len(script.tables["KEEP"]) == 1  # the list survived the replacement
    script.engine.replace(parse_ruleset_text("iptables -A INPUT -j ACCEPT").ruleset)
    assert "KEEP" not in script.tables  # no rule names it any more


@pytest.mark.parametrize(("period", "text"), [(5000, "2/sec"), (200000, "3/min"),
                                             (12000000, "3/hour"), (864000000, "1/day"),
                                             (4000, "150/min")])
def test_format_rate(period: int, text: str) -> None:
    assert format_rate(period, LIMIT_SCALE) == text


@pytest.mark.parametrize(("text", "message"), [("0/s", "bad rate"), ("x", "bad rate"),
                                               ("3/fortnight", "bad rate"),
                                               ("10001/s", "Rate too fast")])
def test_rate_errors(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rate(text, LIMIT_SCALE, option="--limit")


def test_hashlimit_revision_3_arithmetic() -> None:
    assert hashlimit_cpj(250) == 2**39
    avg, _ = parse_rate("2/sec", HASHLIMIT_SCALE, option="--hashlimit-above")
    assert avg == 500000
    cap, cost = bucket_params(avg, 3, 250) or (0, 0)
    assert cost == 500000 * (250 * 2**39 // 1_000_000)
    assert cap == 3 * cost


def test_hashlimit_above_drops_three_of_six() -> None:
    script = Script("iptables -A INPUT -m hashlimit --hashlimit-above 2/sec --hashlimit-burst 3 "
                    "--hashlimit-mode srcip --hashlimit-name HL -j DROP")
    verdicts = [script.verdict(0, syn("10.77.0.2")) for _ in range(6)]
    assert verdicts == ["ACCEPT"] * 3 + ["DROP"] * 3
    # Per source: another address has its own full bucket.
    assert script.verdict(0, syn("10.77.0.3")) == "ACCEPT"
    # 0.5 s buys one token back.
    assert [script.verdict(0.5, syn("10.77.0.2")) for _ in range(2)] == ["ACCEPT", "DROP"]


def test_hashlimit_buckets_survive_replacement() -> None:
    rules = ("iptables -A INPUT -m hashlimit --hashlimit-above 1/min --hashlimit-burst 1 "
             "--hashlimit-mode srcip --hashlimit-name HL -j DROP")
    script = Script(rules)
    assert [script.verdict(0, syn("10.77.0.2")) for _ in range(2)] == ["ACCEPT", "DROP"]
    script.engine.replace(parse_ruleset_text(rules).ruleset)
    assert script.verdict(1, syn("10.77.0.2")) == "DROP"


@pytest.mark.parametrize(("burst", "refused"), [(1, False), (2, True), (3, False), (5, True),
                                               (200, False)])
def test_hashlimit_day_rate_u64_wrap(burst: int, refused: bool) -> None:
    """Revision 3 computes avg·burst·(HZ·CPJ/10⁶) in u64; whether it wraps below the
    cost decides ERANGE – the results checked against Linux 6.18."""
    text = ("iptables -A INPUT -m hashlimit --hashlimit-upto 1/day "
            f"--hashlimit-burst {burst} --hashlimit-name X")
    if refused:
        with pytest.raises(RuleError, match="out of range"):
            parse_ruleset_text(text)
    else:
        parse_ruleset_text(text)
