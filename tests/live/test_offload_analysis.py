"""Offload by meaning: which drops the kernel may carry (rule text in, answers out), and
random rule sets that offload replayed with and without offload (same verdicts, lists,
/proc listings and ban end times)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recentd.backends.memory import MemoryBanBackend
from recentd.commands import Unban
from recentd.enforcer import Enforcer
from recentd.live.nfqnl import NF_DROP
from recentd.live.offload import analyse, kernel_drops
from recentd.live.policy import BanPlanner, OffloadCase, find_offload_case, offload_report
from recentd.live.verdict import engine_decider
from recentd.packets.packet import Packet
from recentd.recent import RecentTables
from recentd.recent.procfs import format_entry
from recentd.rules import Engine
from recentd.rules.model import CtState, Ruleset
from recentd.rules.parser import load_ruleset
from recentd.testing.clock import FakeClock
from tests.live.netns import python_in_namespace

HZ = 250


def _rules(tmp_path: Path, text: str) -> Ruleset:
    path = tmp_path / "rules.sh"
    path.write_text(text)
    return load_ruleset(path)


def _answers(tmp_path: Path, text: str) -> list[str]:
    """Each drop rule's answer, without the file name."""
    return [line.split(":", 1)[1] for line in offload_report(_rules(tmp_path, text))]


# ---- transcripts: rule text in, answers out ----------------------------------------------

BADGUY = """\
iptables -A FORWARD -m recent --name badguy --rcheck --seconds 60 -j DROP
iptables -A FORWARD -p tcp -i eth0 --dport 139 -m recent --name badguy --set -j DROP
"""


def test_badguy_list_offloads_in_forward(tmp_path):
    case = find_offload_case(_rules(tmp_path, BADGUY))
    assert case is not None
    assert (case.name, case.seconds, case.hitcount) == ("badguy", 60, 1)
    assert (case.ban_class.proto, case.ban_class.hooks, case.ban_class.exclude) == (
        0, ("forward",), ())
    assert _answers(tmp_path, BADGUY) == [
        "1 (IPv4 FORWARD → FORWARD, list 'badguy'): offloaded",
        "2 (IPv4 FORWARD → FORWARD, list 'badguy'): not offloaded: --set/--remove write "
        "the list; only --rcheck drops offload",
    ]


RCHECK_AFTER_OTHERS = """\
iptables -A INPUT -i lo -j ACCEPT
iptables -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
iptables -A INPUT -p udp --dport 53 -j ACCEPT
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set --name SSH
iptables -A INPUT -m recent --name SSH --rcheck --seconds 60 --hitcount 4 -m limit --limit 4/minute -j LOG
iptables -A INPUT -m recent --name SSH --rcheck --seconds 60 --hitcount 4 -j DROP
ip6tables -A INPUT -m recent --name SSH --rcheck --seconds 60 --hitcount 4 -j DROP
"""


def test_a_drop_after_other_rules_leaves_their_traffic_to_user_space(tmp_path):
    case = find_offload_case(_rules(tmp_path, RCHECK_AFTER_OTHERS))
    assert case is not None and case.families == (4, 6)
    kinds = {(t.iif, t.proto, t.dports, t.ctstates) for t in case.ban_class.exclude}
    assert kinds == {("lo", 0, (), 0), ("", 0, (), 6), ("", 17, (53,), 0), ("", 6, (22,), 8)}
    ssh_new = Packet(4, 1, 2, 64, 6, 60, 4000, 22, 2)
    assert not kernel_drops(case.ban_class, ssh_new, CtState.NEW, "input")  # --set sees it
    assert kernel_drops(case.ban_class, ssh_new._replace(dport=25), CtState.NEW, "input")
    assert not kernel_drops(case.ban_class, ssh_new._replace(iif="lo", dport=25), 8, "input")


def test_refusals_name_the_rule_or_the_option(tmp_path):
    text = """\
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set --name SSH
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH -j DROP
iptables -A INPUT -s 10.0.0.0/8 -j ACCEPT
iptables -A INPUT -m recent --rcheck --seconds 60 --name A -j DROP
iptables -A INPUT -m recent --rcheck --seconds 60 --name B --mask 255.0.255.0 -j DROP
iptables -A INPUT -m recent --rcheck --name C -j DROP
iptables -A OUTPUT -m recent --rcheck --seconds 9 --name D -j DROP
"""
    answers = _answers(tmp_path, text)
    assert answers[0].endswith("needs the NFLOG stamping of issue 17 part 2)")
    assert answers[1].endswith(
        ":3 -j ACCEPT decides, on a condition the kernel set cannot test (an address condition)")
    assert answers[2].endswith("a mask that is not a prefix (leading ones) bans no network "
                               "a kernel set holds")
    assert answers[3].endswith("no --seconds: the match has no end time for a kernel timeout")
    assert answers[4].endswith("the walk from INPUT and FORWARD never reaches it with traffic "
                               "the kernel could drop")
    assert find_offload_case(_rules(tmp_path, text)) is None


def test_a_list_something_removes_from_is_not_offloaded(tmp_path):
    text = """\
iptables -A INPUT -p tcp --dport 22 -m recent --rcheck --seconds 60 --name A -j DROP
iptables -A INPUT -p tcp --dport 1234 -m recent --remove --name A
"""
    assert _answers(tmp_path, text)[0].endswith(
        ":2 removes from the list (a kernel ban could outlast the entry)")
    # after an unconditional drop on the same list only unbanned sources reach the remove
    shadowed = text.replace("-p tcp --dport 22 -m recent", "-m recent")
    assert _answers(tmp_path, shadowed)[0].endswith(": offloaded")


def test_through_a_chain_that_drops(tmp_path):
    text = """\
iptables -N LOGDROP
iptables -A LOGDROP -j LOG --log-prefix dropped
iptables -A LOGDROP -j DROP
iptables -N SSH_CHECK
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
iptables -A SSH_CHECK -m recent --rcheck --seconds 60 --hitcount 4 --name SSH -j LOGDROP
iptables -A SSH_CHECK -m recent --set --name SSH
"""
    case = find_offload_case(_rules(tmp_path, text))
    assert case is not None
    assert (case.ban_class.proto, case.ban_class.dports, case.ban_class.ct_new_only) == (
        6, (22,), True)


def test_a_masked_list_bans_the_network(tmp_path):
    text = ("iptables -A INPUT -m recent --rcheck --seconds 60 --name N --mask 255.255.255.0"
            " -j DROP\n")
    ruleset = _rules(tmp_path, text)
    case = find_offload_case(ruleset)
    assert case is not None and case.ban_class.networks
    tables = RecentTables(hz=HZ)
    Engine(ruleset, tables, hz=HZ)  # compiling the rules creates the table with its mask
    clock = FakeClock()
    tables["N"].add(4, 0x0A000105, clock.now_ticks())  # echo +10.0.1.5 > N
    ban = BanPlanner(case, tables, HZ).plan_address(4, 0x0A000107, clock.read(), "test")
    assert ban is not None
    assert (str(ban.address), ban.prefix, ban.timeout_s) == ("10.0.1.0", 24, 60)
    kernel = MemoryBanBackend()
    Enforcer(kernel, HZ).carry_out(ban, clock.now_ticks())
    assert [(str(b.addr), b.prefix) for b in kernel.snapshot()] == [("10.0.1.0", 24)]


def test_another_mask_on_the_same_list_is_refused(tmp_path):
    text = """\
iptables -A INPUT -m recent --rcheck --seconds 60 --name N --mask 255.255.255.0 -j DROP
iptables -A INPUT -p tcp --dport 22 -m recent --set --name N
"""
    assert _answers(tmp_path, text)[0].endswith(
        ":2 names the list with another mask (the table keeps its first rule's)")


def test_only_one_list_is_carried(tmp_path):
    text = """\
iptables -A INPUT -m recent --rcheck --seconds 60 --name A -j DROP
iptables -A INPUT -m recent --rcheck --seconds 60 --name B -j DROP
"""
    answers = _answers(tmp_path, text)
    assert answers[0].endswith(": offloaded")
    assert "offloadable, but the kernel carries one list and class" in answers[1]
    assert len(analyse(_rules(tmp_path, text)).candidates) == 2


# ---- equivalence: random rule sets that offload × random traffic --------------------------

BEFORE = [  # rules that may come before the drop, each with the traffic it decides or writes
    "-A INPUT -i lo -j ACCEPT",
    "-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT",
    "-A INPUT -p udp --dport 53 -j ACCEPT",
    "-A INPUT -p tcp --dport 80 -j ACCEPT",
    "-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set --name bad",
    "-A INPUT -p tcp --dport 139 -m recent --set --name bad -j DROP",
    "-A INPUT -p tcp --dport 443 -m recent --set --name other",
    "-A INPUT -m recent --rcheck --seconds 5 --name other -j LOG",
    "-A FORWARD -p tcp --dport 139 -m recent --set --name bad",
    "-A FORWARD -i lo -j ACCEPT",
]
AFTER = [
    "-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --set --name bad",
    "-A INPUT -p udp -m recent --set --name bad",
    "-A INPUT -m recent --update --seconds 3 --name other -j DROP",
    "-A FORWARD -m recent --set --name bad -j ACCEPT",
]


def _random_rules(rng: random.Random) -> str:
    seconds, hits = rng.choice([2, 5, 20]), rng.choice(["", " --hitcount 2", " --hitcount 3"])
    target = rng.choice(["DROP", "REJECT", "LOGDROP"])
    recent = f"-m recent --rcheck --seconds {seconds}{hits} --name bad -j {target}"
    lines = ["-N LOGDROP", "-A LOGDROP -j LOG", "-A LOGDROP -j DROP"]
    lines += rng.sample(BEFORE, rng.randint(0, len(BEFORE)))
    where = rng.choice(["inline", "chain", "chain+forward"])
    if where == "inline":
        lines.append(f"-A INPUT {recent}")
    else:
        lines += ["-N CHECK", "-A INPUT -p tcp --dport 22 -m state --state NEW -j CHECK",
                  f"-A CHECK {recent}", "-A CHECK -m recent --set --name bad"]
        if where == "chain+forward":
            lines.append("-A FORWARD -p tcp --dport 22 -m state --state NEW -j CHECK")
    lines += rng.sample(AFTER, rng.randint(0, len(AFTER)))
    if where == "inline" and rng.random() < 0.3:
        lines.append("-A INPUT -m recent --remove --name bad")
    masked = rng.random() < 0.3  # every rule naming the list with the one /24 mask
    commands = ["iptables"] + (["ip6tables"] if rng.random() < 0.5 else [])
    out = []
    for cmd in commands:
        mask = "255.255.255.0" if cmd == "iptables" else "ffff:ff00::"
        for line in lines:
            out.append(f"{cmd} {line.replace('--name bad', f'--name bad --mask {mask}')}\n"
                       if masked else f"{cmd} {line}\n")
    return "".join(out)


def _random_traffic(rng: random.Random, families: tuple[int, ...]) -> list[tuple[float, Packet,
                                                                             int, str]]:
    events, t = [], 0.0
    while len(events) < 300:
        t += rng.choice([0.0, 0.004, 0.01, 0.3, 1.0, 2.5, 7.0])
        family = rng.choice(families)
        hook = rng.choice(["INPUT", "INPUT", "FORWARD"])
        if rng.random() < 0.5:  # the attacker's flood: new connections to ssh
            packet = Packet(family, rng.choice([1, 1, 5]), 99, 64, 6, 60, 40000, 22, 2,
                            iif="eth0")
            events.append((t, packet, int(CtState.NEW), hook))
            continue
        proto = rng.choice([6, 6, 6, 17, 1])
        dport = rng.choice([22, 22, 80, 139, 443, 53, 25]) if proto != 1 else -1
        src = rng.choice([1, 2, 3, 0x0A000001, 0x0A000002 << (96 if family == 6 else 0)])
        packet = Packet(family, src, 99, 64, proto, 60, 40000, dport, 2,
                        iif=rng.choice(["eth0", "eth0", "eth0", "lo"]))  # fmt: skip
        state = rng.choice([CtState.NEW, CtState.NEW, CtState.NEW, CtState.ESTABLISHED])
        events.append((t, packet, int(state), hook))
    return events


class _Replay:
    """The engine on fresh tables, with the kernel in front of it when ``case`` is given."""

    def __init__(self, ruleset: Ruleset, case: OffloadCase | None) -> None:
        self.tables = RecentTables(hz=HZ)
        self.decide = engine_decider(Engine(ruleset, self.tables, hz=HZ))
        self.clock = FakeClock()
        self.case = case
        self.kernel = MemoryBanBackend(lambda: self.clock.now_ns() / 1e9)
        self.enforcer = Enforcer(self.kernel, HZ)
        self.planner = None if case is None else BanPlanner(case, self.tables, HZ)
        self.kernel_drops = 0

    def run(self, events: list[tuple[float, Packet, int, str]]) -> list[int]:
        out, last = [], 0.0
        for t, packet, state, hook in events:
            if t > last:
                self.clock.advance(t - last)
                last = t
            out.append(self._one(packet, state, hook))
        return out

    def _one(self, packet: Packet, state: int, hook: str) -> int:
        now = self.clock.now_ticks()
        if self.case is not None and self._banned(packet) and kernel_drops(
                self.case.ban_class, packet, state, hook.lower()):
            self.kernel_drops += 1
            return NF_DROP
        if self.case is not None and self.enforcer.holding(packet.family, packet.src, now) and (
                self.case.covers(packet, state, hook)):  # the pipeline's drop of one in flight
            if self.planner is not None and self.case.recipe:
                self.planner.stamp(packet, now)  # with its writes, as the kernel's is logged
            return NF_DROP
        return self._user_space(packet, state, hook, now)

    def _user_space(self, packet: Packet, state: int, hook: str, now: int) -> int:
        """The rules decide; a drop the policy allows becomes a ban, stale bans go."""
        verdict = self.decide(packet, hook, now, CtState(state))
        if self.planner is not None:
            if verdict == NF_DROP:
                ban = self.planner.plan(packet, state, self.clock.read())
                if ban is not None:
                    self.enforcer.carry_out(ban, now)
            for stale in self.planner.stale(list(self.enforcer.active.values())):
                self.enforcer.carry_out(Unban(stale.family, stale.address, "changed", "t"), now)
        return verdict

    def _banned(self, packet: Packet) -> bool:
        bits = 32 if packet.family == 4 else 128
        return any(b.family == packet.family and int(b.addr) == packet.src & _netmask(bits, b.prefix)
                   for b in self.kernel.snapshot())

    def listings(self) -> dict[str, list[str]]:
        return {t.name: sorted(format_entry(e) for e in t) for t in self.tables}


def _netmask(bits: int, prefix: int | None) -> int:
    full = (1 << bits) - 1
    return full if prefix is None else full ^ ((1 << (bits - prefix)) - 1)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1))
def test_offload_replays_like_user_space(tmp_path_factory, seed):
    rng = random.Random(seed)
    text = _random_rules(rng)
    path = tmp_path_factory.mktemp("eq") / "rules.sh"
    path.write_text(text)
    ruleset = load_ruleset(path)
    case = find_offload_case(ruleset)
    assume(case is not None)  # most do: test_most_random_rule_sets_offload
    assert case is not None
    events = _random_traffic(rng, ruleset.families())
    plain, offloaded = _Replay(ruleset, None), _Replay(ruleset, case)
    assert offloaded.run(events) == plain.run(events), text
    assert offloaded.listings() == plain.listings()
    assert offloaded.planner is not None
    for ban in offloaded.enforcer.active.values():  # never beyond the rule's drops (one that
        entry = plain.tables[case.name].get(ban.family, int(ban.address))  # ends earlier is
        expiry = None if entry is None else offloaded.planner.expiry_tick(entry)  # a prefix)
        assert expiry is not None and ban.expiry_tick <= expiry


def test_most_random_rule_sets_offload(tmp_path):
    """The replay above is not vacuous: the generator's rule sets mostly offload."""
    offloaded = kernel_drops = 0
    for seed in range(100):
        rng = random.Random(seed)
        path = tmp_path / f"{seed}.sh"
        path.write_text(_random_rules(rng))
        ruleset = load_ruleset(path)
        case = find_offload_case(ruleset)
        if case is not None and seed % 4 == 0:
            replay = _Replay(ruleset, case)
            replay.run(_random_traffic(rng, ruleset.families()))
            kernel_drops += replay.kernel_drops
        offloaded += case is not None
    assert offloaded >= 60
    assert kernel_drops >= 200  # and the kernel carries a real share of the floods


@pytest.mark.netns
def test_nft_renders_the_class_with_its_exclusions_in_a_namespace(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    case = find_offload_case(_rules(tmp_path, RCHECK_AFTER_OTHERS + BADGUY.replace(
        "badguy", "SSH").replace("--seconds 60", "--seconds 60 --hitcount 4")))
    assert case is not None and case.ban_class.hooks == ("input", "forward")
    code = (
        "import subprocess, sys\n"
        "from recentd.backends import BanClass, Traffic\n"
        "from recentd.backends.nftables import NftBanBackend\n"
        f"NftBanBackend({case.ban_class!r}).install()\n"
        "print(subprocess.run(['nft', 'list', 'table', 'inet', 'recentd'],\n"
        "                     capture_output=True, text=True, check=True).stdout)\n"
    )
    done = python_in_namespace("rdt-off", code)
    lines = [line.strip() for line in done.stdout.splitlines()]
    for hook in ("input", "forward"):
        assert f"type filter hook {hook} priority filter - 10; policy accept;" in lines
    for kind in ('iifname "lo" return', "ct state established,related return",
                 "udp dport 53 return", "tcp dport 22 ct state new return",
                 "ip saddr @ban4 counter packets 0 bytes 0 drop"):
        assert lines.count(kind) == 2, done.stdout


@pytest.mark.netns
def test_nft_holds_network_bans_in_a_namespace():
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    code = (
        "import ipaddress as ip\n"
        "from recentd.backends import BanClass, KernelBan\n"
        "from recentd.backends.nftables import NftBanBackend\n"
        "b = NftBanBackend(BanClass(0, (), False, (), ('input',), True))\n"
        "b.install()\n"
        "b.add_many([KernelBan(4, ip.ip_address('10.0.1.0'), 30, 24),\n"
        "            KernelBan(6, ip.ip_address('2001:db8::'), 20, 32),\n"
        "            KernelBan(4, ip.ip_address('10.0.2.7'), 9)])\n"
        "b.add_many([KernelBan(4, ip.ip_address('10.0.1.0'), 50, 24)])  # re-timed\n"
        "print(sorted((str(k.addr), k.prefix, k.timeout_s > 40) for k in b.snapshot()))\n"
        "b.remove(4, ip.ip_address('10.0.1.0'))\n"
        "print(sorted((str(k.addr), k.prefix) for k in b.snapshot()))\n"
        "b.uninstall()\n"
    )
    done = python_in_namespace("rdt-offn", code)
    assert done.stdout.splitlines() == [
        "[('10.0.1.0', 24, True), ('10.0.2.7', None, False), ('2001:db8::', 32, False)]",
        "[('10.0.2.7', None), ('2001:db8::', 32)]",
    ]
