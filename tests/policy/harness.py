"""A daemon without a kernel, with its policy: packets, log lines, PAM logins, control
requests and remote bans in; the backend's contents, bans and unbans out."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

from recentd.backends.memory import MemoryBanBackend
from recentd.commands import Ban, Unban
from recentd.control.dispatch import Context, Service, dispatch
from recentd.control.protocol import Login, Reply, Request
from recentd.daemon import Daemon, DaemonConfig, SourceSpec
from recentd.live.nfqnl import NF_ACCEPT, QueuedPacket
from recentd.observation import Action, Address, Evidence, Observation, Origin, Route
from recentd.policy.control import ControlHooks
from recentd.policy.settings import PolicyConfig
from recentd.testing.clock import FakeClock
from recentd.testing.sources import ListSource

QUEUE = 20
NEW_QUEUE = QUEUE + 3  # the hooks send NEW packets to queue N+3
SERVER = 0x0A000001
HOST = ipaddress.ip_address("10.0.0.1")
ROUTES = (
    Route(Evidence.AUTH_FAILURE, "SSH", Action.ADD),
    Route(Evidence.AUTH_SUCCESS, "SSH", Action.REMOVE),
)

#: The classic recipe as a save file, plus a recidive rule: 3 bans in a day → dropped.
RULES = """\
*filter
:INPUT ACCEPT [0:0]
:SSH_CHECK - [0:0]
-A INPUT -p tcp --dport 22 -m state --state NEW -j SSH_CHECK
-A SSH_CHECK -m state --state NEW -m recent --rcheck --seconds 60 --hitcount 4 --name SSH -j DROP
-A SSH_CHECK -m recent --rcheck --seconds 86400 --hitcount 3 --name RECIDIVE -j DROP
-A SSH_CHECK -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH
-A SSH_CHECK -m state --state NEW -m recent --set --name SSH
COMMIT
"""


def syn(packet_id: int, src: Address) -> QueuedPacket:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 1, 0, 64, 6, 0, int(src), SERVER)
    tcp = struct.pack("!HHIIBBHHH", 40000 + packet_id % 20000, 22, 1, 0, 0x50, 0x02, 64240,
                      0, 0)  # fmt: skip
    return QueuedPacket(packet_id, 1, ip + tcp, queue=NEW_QUEUE)


class PolicyHarness:
    """One daemon (fake clock, memory backend, one list source, a control service) and
    the transcript of what it did."""

    def __init__(self, directory: Path, policy: PolicyConfig | None = None, *,
                 state_dir: Path | None = None, clock: FakeClock | None = None) -> None:  # fmt: skip
        rules = directory / "rules.v4"
        rules.write_text(RULES)
        self.clock = clock or FakeClock(start_ns=10**12)
        self.source = ListSource()
        self.backend = MemoryBanBackend(lambda: self.clock.now_ns() / 1e9)
        config = DaemonConfig(
            [rules], queue_num=QUEUE, state_dir=state_dir, policy=policy,
            sources=[SourceSpec("list:auth", lambda _checkpoint: self.source, ROUTES)],
        )  # fmt: skip
        self.daemon = Daemon(config, clock=self.clock, runner=lambda argv: (0, ""),
                             backend_factory=lambda case: self.backend)  # fmt: skip
        self.daemon.host_reader = lambda: [HOST]
        self.cut: list[Address] = []
        self.daemon.cutter = self._cut
        if state_dir is not None:
            self.daemon._open_store()
        self.daemon.open_policy()
        self.daemon._setup_offload()
        enforcer = self.daemon.enforcer
        assert enforcer is not None
        enforcer.listeners.append(self._command)
        self.daemon.pipeline.on_verdict = self._verdict
        self.daemon.open_sources()
        self.service = Service(self.daemon.tables, clock=self.clock.now_ticks,
                               wall=self.clock.wall_ns, policy=ControlHooks(self.daemon),
                               observe=self.daemon.observe_one)  # fmt: skip
        self.transcript: list[str] = []
        self.packets = 0
        self.lines = 0

    def _cut(self, address: Address) -> int:
        self.cut.append(address)
        return 1

    def _command(self, command: Ban | Unban) -> None:
        if isinstance(command, Ban):
            self.transcript.append(f"ban {command.address} {command.timeout_s} s ({command.origin})")
        else:
            self.transcript.append(f"unban {command.address} ({command.reason})")

    def _verdict(self, packet, verdict: int, _queued) -> None:
        name = "ACCEPT" if verdict == NF_ACCEPT else "DROP"
        self.transcript.append(f"{ipaddress.ip_address(packet.src)} {name}")

    # ---- evidence in ---------------------------------------------------------------------

    def packet(self, src: Address) -> None:
        self.packets += 1
        self.daemon.pipeline([syn(self.packets, src)])

    def line(self, evidence: Evidence, address: Address, user: str = "") -> None:
        self.lines += 1
        origin = Origin("file", "/var/log/auth.log", f"line {self.lines}")
        self.source.push(Observation(evidence, address, self.clock.wall_ns(), origin, user=user))
        self.daemon.read_source(self.daemon.sources[0])

    def login(self, address: Address, event: str = "open", user: str = "admin") -> Reply:
        return self.ask(Login(str(address), user, "sshd", event, "ssh"))

    def ask(self, request: Request) -> Reply:
        return dispatch(request, Context(self.service))

    def remote_ban(self, address: Address, seconds: int = 600) -> None:
        """A fleet peer's ban, through the same enforcer path as every other."""
        now = self.clock.read()
        enforcer = self.daemon.enforcer
        assert enforcer is not None
        enforcer.carry_out(Ban(address.version, address, now.tick + seconds * now.hz,
                               now.wall_ns + seconds * 10**9, seconds, "fleet ban",
                               "fleet peer h2"), now.tick)  # fmt: skip

    def step(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)

    def stop(self) -> None:
        """The daemon's stop steps past the hooks and queue (it never installed them)."""
        for step in (self.daemon._teardown_offload, self.daemon.close_sources,
                     self.daemon.save_policy, self.daemon._close_store):  # fmt: skip
            step()

    def timer(self) -> None:
        self.daemon.on_timer()

    # ---- what came out ---------------------------------------------------------------------

    def kernel(self) -> list[Address]:
        return [ban.addr for ban in self.backend.snapshot()]

    def in_list(self, name: str, address: Address) -> bool:
        table = self.daemon.tables.get(name)
        return table is not None and table.get(address.version, int(address)) is not None
