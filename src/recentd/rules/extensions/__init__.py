"""The registry of supported matches and targets: names → extension objects.

Adding an extension means adding a module and one entry here; the parser's
"supported: …" messages and the CLI help are generated from these tables.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from recentd.rules.extensions.base import MatchExtension, TargetExtension

E = TypeVar("E")


class _Registry(Mapping[str, E], Generic[E]):
    """Names → extensions, each imported on first use (``module:Class``): ``rules check``
    on a file that uses tcp, state and recent loads those three modules, not all twenty."""

    def __init__(self, lazy: Mapping[str, str]) -> None:
        self._loaded: dict[str, E] = {}
        self._lazy = dict(lazy)

    def __getitem__(self, name: str) -> E:
        if name not in self._loaded:
            module, _, cls = self._lazy[name].partition(":")
            made: E = getattr(importlib.import_module(f"recentd.rules.extensions.{module}"), cls)()
            self._loaded[name] = made
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lazy)

    def __len__(self) -> int:
        return len(self._lazy)

    def __contains__(self, name: object) -> bool:
        return name in self._lazy


#: Every match: name → ``module:Class`` under :mod:`recentd.rules.extensions`. The ones
#: recentd evaluates, then the ones it leaves to the kernel.
_MATCHES = {
    "tcp": "tcpudp:TcpMatch",
    "udp": "tcpudp:UdpMatch",
    "icmp": "icmp:IcmpMatch",
    "icmp6": "icmp:Icmp6Match",
    "state": "state:StateMatch",
    "conntrack": "state:ConntrackMatch",
    "multiport": "multiport:MultiportMatch",
    "iprange": "iprange:IprangeMatch",
    "comment": "simple:CommentMatch",
    "ttl": "simple:TtlMatch",
    "hl": "simple:HlMatch",
    "length": "simple:LengthMatch",
    "mark": "simple:MarkMatch",
    "recent": "recent:RecentMatchExt",
    "limit": "limit:LimitMatch",
    "hashlimit": "hashlimit:HashlimitMatch",
    "addrtype": "kernel:AddrtypeMatch",
    "pkttype": "kernel:PkttypeMatch",
    "connlimit": "kernel:ConnlimitMatch",
    "statistic": "kernel:StatisticMatch",
    "tcpmss": "payload:TcpmssMatch",
    "string": "payload:StringMatch",
    "u32": "payload:U32Match",
    "rt": "payload:RtMatch",
    "set": "ipset:SetMatch",
}
#: Every target with options (ACCEPT, DROP, RETURN and chains are the builder's).
_TARGETS = {
    "REJECT": "targets:RejectTarget",
    "LOG": "targets:LogTarget",
    "NFLOG": "targets:NflogTarget",
    "MARK": "targets:MarkTarget",
    "CONNMARK": "connmark:ConnmarkTarget",
    "MASQUERADE": "nat:MasqueradeTarget",
    "REDIRECT": "nat:RedirectTarget",
    "SNAT": "nat:SnatTarget",
    "DNAT": "nat:DnatTarget",
    "NOTRACK": "kernel:NotrackTarget",
    "CT": "kernel:CtTarget",
    "CHECKSUM": "kernel:ChecksumTarget",
    "TTL": "kernel:TtlTarget",
    "HL": "kernel:HlTarget",
    "SYNPROXY": "kernel:SynproxyTarget",
    "SET": "ipset:SetTarget",
}
MATCHES: Mapping[str, MatchExtension[Any]] = _Registry(_MATCHES)
TARGETS: Mapping[str, TargetExtension[Any]] = _Registry(_TARGETS)

#: Match loaded implicitly by ``-p PROTO`` when an option of it is used (per family).
PROTOCOL_MATCHES: Mapping[tuple[int, int], str] = {
    (4, 6): "tcp",
    (6, 6): "tcp",
    (4, 17): "udp",
    (6, 17): "udp",
    (4, 1): "icmp",
    (6, 58): "icmp6",
}

__all__ = ["MATCHES", "PROTOCOL_MATCHES", "TARGETS"]
