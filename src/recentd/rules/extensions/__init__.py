"""The registry of supported matches and targets: names → extension objects.

Adding an extension means adding a module and one entry here; the parser's
"supported: …" messages and the CLI help are generated from these tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recentd.rules.extensions.base import MatchExtension, TargetExtension
from recentd.rules.extensions.connmark import ConnmarkTarget
from recentd.rules.extensions.hashlimit import HashlimitMatch
from recentd.rules.extensions.icmp import Icmp6Match, IcmpMatch
from recentd.rules.extensions.iprange import IprangeMatch
from recentd.rules.extensions.ipset import SetMatch, SetTarget
from recentd.rules.extensions.kernel import (
    AddrtypeMatch,
    ChecksumTarget,
    ConnlimitMatch,
    CtTarget,
    HlTarget,
    NotrackTarget,
    PkttypeMatch,
    StatisticMatch,
    SynproxyTarget,
    TtlTarget,
)
from recentd.rules.extensions.limit import LimitMatch
from recentd.rules.extensions.multiport import MultiportMatch
from recentd.rules.extensions.nat import DnatTarget, MasqueradeTarget, RedirectTarget, SnatTarget
from recentd.rules.extensions.payload import RtMatch, StringMatch, TcpmssMatch, U32Match
from recentd.rules.extensions.recent import RecentMatchExt
from recentd.rules.extensions.simple import CommentMatch, HlMatch, LengthMatch, MarkMatch, TtlMatch
from recentd.rules.extensions.state import ConntrackMatch, StateMatch
from recentd.rules.extensions.targets import LogTarget, MarkTarget, NflogTarget, RejectTarget
from recentd.rules.extensions.tcpudp import TcpMatch, UdpMatch

_MATCHES: tuple[MatchExtension[Any], ...] = (
    TcpMatch(), UdpMatch(), IcmpMatch(), Icmp6Match(), StateMatch(), ConntrackMatch(),
    MultiportMatch(), IprangeMatch(), CommentMatch(), TtlMatch(), HlMatch(), LengthMatch(),
    MarkMatch(), RecentMatchExt(), LimitMatch(), HashlimitMatch(),
    AddrtypeMatch(), PkttypeMatch(), ConnlimitMatch(), StatisticMatch(), TcpmssMatch(),
    StringMatch(), U32Match(), RtMatch(), SetMatch(),
)
MATCHES: Mapping[str, MatchExtension[Any]] = {ext.name: ext for ext in _MATCHES}

_TARGETS: tuple[TargetExtension[Any], ...] = (
    RejectTarget(), LogTarget(), NflogTarget(), MarkTarget(), ConnmarkTarget(),
    MasqueradeTarget(), RedirectTarget(), SnatTarget(), DnatTarget(), NotrackTarget(),
    CtTarget(), ChecksumTarget(), TtlTarget(), HlTarget(), SynproxyTarget(), SetTarget(),
)
TARGETS: Mapping[str, TargetExtension[Any]] = {ext.name: ext for ext in _TARGETS}

#: Match loaded implicitly by ``-p PROTO`` when an option of it is used (per family).
PROTOCOL_MATCHES: Mapping[tuple[int, int], str] = {
    (4, 6): "tcp", (6, 6): "tcp", (4, 17): "udp", (6, 17): "udp", (4, 1): "icmp", (6, 58): "icmp6",
}

__all__ = ["MATCHES", "PROTOCOL_MATCHES", "TARGETS"]
