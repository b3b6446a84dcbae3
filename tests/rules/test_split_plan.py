"""The split's plan (rules/split.py rule 4–5): the sites, the kernel's rule text, the
refusals; and the site queue's answers (live/sites.py) as transcripts."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from recentd.cli.main import main
from recentd.errors import RuleError
from recentd.live.hooks import HOOKLESS, QUEUE, SPLIT, plan_hooks
from recentd.live.nfqnl import MARKED, NF_ACCEPT, NF_DROP, NF_REPEAT, QueuedPacket, with_mark
from recentd.live.sites import SitePipeline
from recentd.recent import RecentTables
from recentd.rules import load_rules, parse_ruleset_text
from recentd.rules.split import MARK_MASK, plan_split
from recentd.testing.clock import FakeClock

HOST = Path(__file__).resolve().parent.parent / "data" / "rules" / "host" / "split-host.rules"
SSH = ("-A SSH -m recent --set --name SSH\n"
       "-A SSH -m recent --update --seconds 60 --hitcount 4 --name SSH -j DROP\n")


def _plan(text: str):  # type: ignore[no-untyped-def]
    return plan_split(parse_ruleset_text(text, source="t").ruleset, queue_num=20, fail_open=True)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_the_jump_queues_and_a_return_resumes_after_it() -> None:
    plan = plan_split(load_rules(HOST).ruleset, queue_num=20, fail_open=True)
    (site,) = plan.sites
    assert (site.table, site.hook, site.chain, site.stack) == ("filter", "INPUT", "SSH",
                                                               (("INPUT", 3),))
    text = _lines(plan.kernel[4])
    first = next(line for line in text[text.index("*filter"):] if line.startswith("-A INPUT"))
    assert first == "-A INPUT -m mark --mark 0x81000000/0xff000000 -g RECENTD-R0"  # the resume
    assert "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j RECENTD-Q0" in text
    assert "-A RECENTD-Q0 -m conntrack --ctstate NEW -j NFQUEUE --queue-num 23 --queue-bypass" \
        in text
    assert [line for line in text if line.startswith("-A RECENTD-R0")] == [
        "-A RECENTD-R0 -j MARK --set-xmark 0x0/0xff000000", "-A RECENTD-R0 -g RECENTD-T0"]
    # the rest of INPUT after the jump, as written
    assert next(line for line in text if line.startswith("-A RECENTD-T0")) == (
        "-A RECENTD-T0 -p tcp -m tcp --dport 22 -j LOG --log-prefix \"ssh-ok: \"")
    assert not any(line.startswith("-A SSH") or line == ":SSH - [0:0]" for line in text)
    assert "-A PREROUTING -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80" in text


def test_a_return_through_a_kernel_chain_unwinds_innermost_first() -> None:
    plan = _plan("*filter\n:INPUT DROP [0:0]\n:K - [0:0]\n:SSH - [0:0]\n"
                 "-A INPUT -p tcp -j K\n-A INPUT -j ACCEPT\n"
                 "-A K -m set --match-set bl src -j DROP\n-A K -p tcp --dport 22 -j SSH\n"
                 "-A K -m limit --limit 1/s -j LOG\n" + SSH + "COMMIT\n")
    (site,) = plan.sites
    assert site.stack == (("INPUT", 0), ("K", 1))
    text = _lines(plan.kernel[4])
    assert [line for line in text if line.startswith("-A RECENTD-R0")] == [
        "-A RECENTD-R0 -j MARK --set-xmark 0x0/0xff000000",
        "-A RECENTD-R0 -j RECENTD-T0", "-A RECENTD-R0 -g RECENTD-T1"]
    assert [line for line in text if line.startswith("-A RECENTD-T")] == [
        "-A RECENTD-T0 -m limit --limit 1/sec -j LOG", "-A RECENTD-T1 -j ACCEPT"]
    assert plan.notes == ("t:9: -m limit after a jump into recentd's chain is copied into "
                          "RECENTD-T0 (a RETURN resumes there): its packets meet a limit state "
                          "of their own",)


@pytest.mark.parametrize(("rules", "where", "message"), [
    ("-A INPUT -m set --match-set bl src -j DROP\n-A INPUT -g SSH\n", "t:6:13",
     "-g SSH: a goto on the way to recentd's chain SSH cannot be resumed after it; use -j"),
    ("-A INPUT -m set --match-set bl src -j DROP\n-A INPUT -p tcp -j K\n-A INPUT -p udp -j K\n"
     "-A K -m set --match-set bl dst -j DROP\n-A K -j SSH\n", "t:7:20",
     "-j K: chain K leads to recentd's chains and is also jumped to at t:6"),
    ("-A INPUT -m set --match-set bl src -j MARK --set-mark 0x1000000\n-A INPUT -j SSH\n",
     "t:5:39", "MARK sets mark bits 0x1000000: the split uses bits 0xff000000"),
])
def test_what_the_split_cannot_honour_is_one_line(rules: str, where: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        _plan("*filter\n:INPUT ACCEPT [0:0]\n:K - [0:0]\n:SSH - [0:0]\n" + rules + SSH
              + "COMMIT\n")
    error = caught.value
    assert f"{error.source}:{error.line}:{error.column}" == where
    assert error.message.startswith(message), error.message


def test_which_hooks() -> None:
    recipe = "*filter\n:INPUT ACCEPT [0:0]\n:SSH - [0:0]\n-A INPUT -p tcp -j SSH\n" + SSH
    rcheck = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -m recent --name A "
              "--rcheck --seconds 600 --hitcount 5 -j DROP\n")
    kernel = "-A INPUT -m set --match-set bl src -j DROP\n"
    modes = {name: plan_hooks(parse_ruleset_text(text + "COMMIT\n", source="t").ruleset,
                              offload=True)
             for name, text in (("recipe", recipe), ("rcheck", rcheck),
                                ("rcheck+set", rcheck + kernel), ("host", recipe + kernel))}
    assert {name: plan.mode for name, plan in modes.items()} == {
        "recipe": QUEUE, "rcheck": HOOKLESS, "rcheck+set": HOOKLESS, "host": SPLIT}
    assert modes["rcheck"].kernel is None  # nothing but the ban set: the host's rules untouched
    assert modes["rcheck+set"].kernel is not None
    assert "--match-set bl src -j DROP" in modes["rcheck+set"].kernel[4]
    assert "recent" not in modes["rcheck+set"].kernel[4]


def _syn(packet_id: int, src: int, queue: int = 23) -> QueuedPacket:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 1, 0, 64, 6, 0, src, 0x0A000001)
    tcp = struct.pack("!HHIIBBHHH", 40000 + packet_id, 22, 1, 0, 0x50, 0x02, 64240, 0, 0)
    return QueuedPacket(packet_id, 1, ip + tcp, queue=queue)


def test_the_site_answers_as_the_chain_ended() -> None:
    plan = plan_split(load_rules(HOST).ruleset, queue_num=20, fail_open=True)
    clock = FakeClock()
    pipeline = SitePipeline.of(plan.sites, RecentTables(), 100, clock=clock, base_queue=20)
    resume = with_mark(NF_REPEAT, 0x81000000)
    attacker, other = 0x0A000002, 0x0A000003
    assert pipeline([_syn(i, attacker) for i in range(5)]) == [resume] * 3 + [NF_DROP] * 2
    assert pipeline([_syn(9, other)]) == [resume]
    assert resume & MARKED and resume >> 33 & MARK_MASK == 0x81000000
    assert pipeline([_syn(10, other, queue=99)]) == [NF_ACCEPT]  # no such site: fail-open


def test_a_reject_of_recentds_chain_is_the_kernels_reject() -> None:
    text = HOST.read_text().replace(
        "--rsource -j DROP", "--rsource -j REJECT --reject-with tcp-reset").replace(
        "-A SSH -m recent --update", "-A SSH -p tcp -m recent --update")
    plan = plan_split(parse_ruleset_text(text, source="t").ruleset, queue_num=20,
                      fail_open=True)
    (site,) = plan.sites
    assert site.rejects == (("tcp-reset", 0xFF000000),)
    lines = _lines(plan.kernel[4])
    assert "-A INPUT -m mark --mark 0xff000000/0xff000000 -g RECENTD-X127" in lines
    assert [line for line in lines if line.startswith("-A RECENTD-X127")] == [
        "-A RECENTD-X127 -j MARK --set-xmark 0x0/0xff000000",
        "-A RECENTD-X127 -p tcp -j REJECT --reject-with tcp-reset"]
    pipeline = SitePipeline.of(plan.sites, RecentTables(), 100, clock=FakeClock(),
                               base_queue=20)
    verdicts = pipeline([_syn(i, 0x0A000002) for i in range(4)])
    assert verdicts == [with_mark(NF_REPEAT, 0x81000000)] * 3 + [
        with_mark(NF_REPEAT, 0xFF000000)]


def test_a_list_the_kernel_reads_is_xt_recents_everywhere() -> None:
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:SSH - [0:0]\n"
            "-A INPUT -m set --match-set bl src -m recent --rcheck --name SSH -j DROP\n"
            "-A INPUT -j SSH\n-A FORWARD -m recent --rcheck --name SSH -j DROP\n" + SSH
            + "COMMIT\n")
    plan = _plan(text)
    assert plan.sites == ()
    why = {part.chain: part.why for part in plan.split.parts}
    assert why["SSH"] == ("t:8: list 'SSH' is xt_recent's (read at t:5, in a chain the "
                          "kernel keeps)")
    assert why["FORWARD"] == why["SSH"].replace("t:8", "t:7")
    assert "-A SSH -m recent --set --name SSH" in plan.kernel[4]  # the kernel's, as written


def test_rules_check_says_who_runs_what(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(HOST)]) == 0
    _, err = capsys.readouterr()
    said = err.splitlines()[-1]
    assert said.startswith("recentd evaluates 1 chain (")
    assert ", the kernel keeps " in said and said.endswith("--dry-run` shows which and why")
