"""The registry of supported matches and targets: names → extension objects.

Adding an extension means adding a module and one entry here; the parser's
"supported: …" messages and the CLI help are generated from these tables.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from recentd.rules.extensions.base import MatchExtension, TargetExtension
from recentd.rules.extensions.connmark import ConnmarkTarget
from recentd.rules.extensions.hashlimit import HashlimitMatch
from recentd.rules.extensions.icmp import Icmp6Match, IcmpMatch
from recentd.rules.extensions.iprange import IprangeMatch
from recentd.rules.extensions.limit import LimitMatch
from recentd.rules.extensions.multiport import MultiportMatch
from recentd.rules.extensions.recent import RecentMatchExt
from recentd.rules.extensions.simple import CommentMatch, HlMatch, LengthMatch, MarkMatch, TtlMatch
from recentd.rules.extensions.state import ConntrackMatch, StateMatch
from recentd.rules.extensions.targets import LogTarget, MarkTarget, NflogTarget, RejectTarget
from recentd.rules.extensions.tcpudp import TcpMatch, UdpMatch

_MATCHES: tuple[MatchExtension[Any], ...] = (
    TcpMatch(), UdpMatch(), IcmpMatch(), Icmp6Match(), StateMatch(), ConntrackMatch(),
    MultiportMatch(), IprangeMatch(), CommentMatch(), TtlMatch(), HlMatch(), LengthMatch(),
    MarkMatch(), RecentMatchExt(), LimitMatch(), HashlimitMatch(),
)
E = TypeVar("E")


class _Registry(Mapping[str, E], Generic[E]):
    """Names → extensions; the ones recentd leaves to the kernel are imported on first
    use (``module:Class``), so ``rules check`` on a file without them pays nothing."""

    def __init__(self, loaded: Mapping[str, E], lazy: Mapping[str, str]) -> None:
        self._loaded = dict(loaded)
        self._lazy = dict(lazy)

    def __getitem__(self, name: str) -> E:
        if name not in self._loaded:
            module, _, cls = self._lazy[name].partition(":")
            made: E = getattr(importlib.import_module(f"recentd.rules.extensions.{module}"), cls)()
            self._loaded[name] = made
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._lazy, **self._loaded})

    def __len__(self) -> int:
        return len({**self._lazy, **self._loaded})

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._lazy


_KERNEL_MATCHES = {
    "addrtype": "kernel:AddrtypeMatch", "pkttype": "kernel:PkttypeMatch",
    "connlimit": "kernel:ConnlimitMatch", "statistic": "kernel:StatisticMatch",
    "tcpmss": "payload:TcpmssMatch", "string": "payload:StringMatch", "u32": "payload:U32Match",
    "rt": "payload:RtMatch", "set": "ipset:SetMatch",
}
_KERNEL_TARGETS = {
    "MASQUERADE": "nat:MasqueradeTarget", "REDIRECT": "nat:RedirectTarget",
    "SNAT": "nat:SnatTarget", "DNAT": "nat:DnatTarget", "NOTRACK": "kernel:NotrackTarget",
    "CT": "kernel:CtTarget", "CHECKSUM": "kernel:ChecksumTarget", "TTL": "kernel:TtlTarget",
    "HL": "kernel:HlTarget", "SYNPROXY": "kernel:SynproxyTarget", "SET": "ipset:SetTarget",
}
MATCHES: Mapping[str, MatchExtension[Any]] = _Registry(
    {ext.name: ext for ext in _MATCHES}, _KERNEL_MATCHES)

_TARGETS: tuple[TargetExtension[Any], ...] = (
    RejectTarget(), LogTarget(), NflogTarget(), MarkTarget(), ConnmarkTarget(),
)
TARGETS: Mapping[str, TargetExtension[Any]] = _Registry(
    {ext.name: ext for ext in _TARGETS}, _KERNEL_TARGETS)

#: Match loaded implicitly by ``-p PROTO`` when an option of it is used (per family).
PROTOCOL_MATCHES: Mapping[tuple[int, int], str] = {
    (4, 6): "tcp", (6, 6): "tcp", (4, 17): "udp", (6, 17): "udp", (4, 1): "icmp", (6, 58): "icmp6",
}

__all__ = ["MATCHES", "PROTOCOL_MATCHES", "TARGETS"]
