"""`-m recent` as iptables 1.8.9 prints it: ``-L`` (print) and ``-S``/``iptables-save`` (save).

Both put a space before every token (spec §6). Quirks kept on purpose, because
the output must be byte-identical to iptables 1.8.9's:

- ``seconds`` and ``hit_count`` are printed with a signed ``%d``, so values of
  2**31 and more come out negative (fixed in iptables 1.8.11);
- the name is printed unquoted, so a name with a space does not round-trip;
- the mask is printed numerically: a dotted quad of the first 4 bytes for IPv4,
  the compressed text of all 16 bytes for IPv6.
"""

from __future__ import annotations

import ipaddress

from recentd.recent.match import Command, RecentMatch, Side

_PRINT_COMMAND = {
    Command.SET: "SET",
    Command.CHECK: "CHECK",
    Command.UPDATE: "UPDATE",
    Command.REMOVE: "REMOVE",
}


def _signed32(value: int) -> int:
    return value - 2**32 if value >= 2**31 else value


def render_mask(mask: int, family: int) -> str:
    """The mask as iptables prints it for the rule's family."""
    if family == 4:
        return str(ipaddress.IPv4Address(mask >> 96))
    return str(ipaddress.IPv6Address(mask))


def render_recent_print(match: RecentMatch, family: int) -> str:
    """The ``iptables -L`` text of the match, each token after a space."""
    parts = ["!"] if match.invert else []
    parts += ["recent:", _PRINT_COMMAND[match.command]]
    if match.seconds:
        parts.append(f"seconds: {_signed32(match.seconds)}")
    if match.reap:
        parts.append("reap")
    if match.hitcount:
        parts.append(f"hit_count: {_signed32(match.hitcount)}")
    if match.rttl:
        parts.append("TTL-Match")
    parts.append(f"name: {match.name}")
    parts.append("side: source" if match.side is Side.SOURCE else "side: dest")
    parts.append(f"mask: {render_mask(match.mask, family)}")
    return "".join(f" {part}" for part in parts)


def render_recent_save(match: RecentMatch, family: int) -> str:
    """The ``iptables -S``/``iptables-save`` text of the match, each token after a space."""
    parts = ["!"] if match.invert else []
    parts.append(match.command.option)
    if match.seconds:
        parts.append(f"--seconds {_signed32(match.seconds)}")
    if match.reap:
        parts.append("--reap")
    if match.hitcount:
        parts.append(f"--hitcount {_signed32(match.hitcount)}")
    if match.rttl:
        parts.append("--rttl")
    parts.append(f"--name {match.name}")
    parts.append(f"--mask {render_mask(match.mask, family)}")
    parts.append("--rsource" if match.side is Side.SOURCE else "--rdest")
    return "".join(f" {part}" for part in parts)
