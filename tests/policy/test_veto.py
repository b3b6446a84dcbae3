"""An allowed address is never in a kernel set, whatever evidence arrives: packets, log
lines, control writes (forced), a remote ban — all through the one enforcer."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from recentd.control.protocol import Allow, AllowResult, ErrorReply, WriteResult, WriteTable
from recentd.observation import Evidence
from recentd.policy.allow import CONFIG, Allowed
from recentd.policy.settings import PolicyConfig

from .harness import HOST, PolicyHarness

ADDRS = [ipaddress.ip_address(a) for a in ("10.0.0.2", "10.0.0.3", "192.0.2.7", "10.0.0.1")]
CONFIGURED = ipaddress.ip_network("192.0.2.0/24")
POLICY = PolicyConfig(allow=(Allowed(CONFIG, CONFIGURED, "test"),))

EVENTS = st.lists(st.tuples(
    st.sampled_from(["packet", "failure", "success", "write", "remote", "allow", "open",
                     "close", "step", "timer"]),
    st.sampled_from(ADDRS)), max_size=40)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(EVENTS)
def test_an_allowed_address_is_never_in_a_kernel_set(tmp_path_factory, events):
    h = PolicyHarness(tmp_path_factory.mktemp("veto"), POLICY)
    for kind, address in events:
        if kind == "packet":
            h.packet(address)
        elif kind in ("failure", "success"):
            evidence = Evidence.AUTH_FAILURE if kind == "failure" else Evidence.AUTH_SUCCESS
            h.line(evidence, address)
        elif kind == "write":
            h.ask(WriteTable("SSH", f"+{address}".encode(), force=True))
        elif kind == "remote":
            h.remote_ban(address)
        elif kind == "allow":
            h.ask(Allow(str(address), 30))
        elif kind in ("open", "close"):
            h.login(address, kind)
        elif kind == "step":
            h.step(7)
        else:
            h.timer()
        now = h.clock.now_ticks()
        for banned in h.kernel():
            assert h.daemon.policy.allows(banned, now) is None, (kind, banned)
        enforcer = h.daemon.enforcer
        assert enforcer is not None
        assert set(h.kernel()) == {ban.address for ban in enforcer.active.values()
                                   if ban.expiry_tick > now}  # fmt: skip


def test_every_path_is_refused_and_logged_once(tmp_path, caplog):
    h = PolicyHarness(tmp_path, POLICY)
    allowed = ipaddress.ip_address("192.0.2.7")
    for _ in range(5):
        h.packet(allowed)  # the rules' own --update/--set, then R would drop
    h.remote_ban(allowed)
    h.remote_ban(HOST)  # the host's own address (read by the adapter)
    assert h.kernel() == []
    assert h.transcript == ["192.0.2.7 ACCEPT"] * 4 + ["192.0.2.7 DROP"]
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals == [
        "ban of 192.0.2.7 refused (4 hits in 60 s in list SSH; packet): allowed: "
        "192.0.2.0/24: config (test)",
        "ban of 10.0.0.1 refused (fleet ban; fleet peer h2): allowed: 10.0.0.1: host address",
    ]


def test_a_control_write_of_an_allowed_address_is_refused_unless_forced(tmp_path):
    h = PolicyHarness(tmp_path, POLICY)
    reply = h.ask(WriteTable("SSH", b"+192.0.2.7"))
    assert reply == ErrorReply(
        "ProcWriteError",
        "192.0.2.7 is allowed (192.0.2.0/24: config (test)): not added to SSH (recentd ctl "
        "write --force adds it; it is still never banned in the kernel)", "EPERM")
    assert h.ask(WriteTable("SSH", b"+192.0.2.7", force=True)) == WriteResult(10, 10)
    assert h.in_list("SSH", ipaddress.ip_address("192.0.2.7"))
    assert h.ask(WriteTable("SSH", b"+10.0.0.2")) == WriteResult(9, 9)  # not allowed: as ever


def test_allowing_an_address_withdraws_its_ban(tmp_path):
    h = PolicyHarness(tmp_path)
    a = ipaddress.ip_address("10.0.0.2")
    for _ in range(4):
        h.line(Evidence.AUTH_FAILURE, a)
    assert h.kernel() == [a]
    assert h.ask(Allow("10.0.0.0/24", 3600)) == AllowResult(
        "10.0.0.0/24", h.clock.wall_ns() + 3600 * 10**9, ["10.0.0.2"])
    assert h.kernel() == []
    assert h.transcript[-1] == "unban 10.0.0.2 (allowed: 10.0.0.0/24: allowed by ctl " \
        "(recentd ctl allow))"  # fmt: skip
    h.step(3601)
    h.timer()  # the grant lapsed: evidence counts again
    for _ in range(4):
        h.line(Evidence.AUTH_FAILURE, a)
    assert h.kernel() == [a]
