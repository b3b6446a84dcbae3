"""Addresses, masks, ports and protocol names as iptables parses and prints them.

Host names are never resolved (no DNS from a rule checker): iptables would look
them up, we report them instead. Services and protocols use fixed tables taken
from Debian's ``/etc/services`` and ``/etc/protocols``, because iptables-save
prints names from those files and our output must not depend on the host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from recentd.errors import RuleError
from recentd.rules.model import Net

WIDTH = {4: 32, 6: 128}

#: /etc/protocols (Debian netbase), number → name; what iptables-save prints.
PROTOCOL_NAMES: Mapping[int, str] = {
    1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 5: "st", 6: "tcp", 8: "egp", 9: "igp",
    12: "pup", 17: "udp", 20: "hmp", 22: "xns-idp", 27: "rdp", 29: "iso-tp4", 33: "dccp",
    36: "xtp", 37: "ddp", 38: "idpr-cmtp", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag",
    45: "idrp", 46: "rsvp", 47: "gre", 50: "esp", 51: "ah", 57: "skip", 58: "ipv6-icmp",
    59: "ipv6-nonxt", 60: "ipv6-opts", 73: "rspf", 81: "vmtp", 88: "eigrp", 89: "ospf",
    93: "ax.25", 94: "ipip", 97: "etherip", 98: "encap", 103: "pim", 108: "ipcomp",
    112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp", 133: "fc", 135: "mobility-header",
    136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip", 140: "shim6", 141: "wesp",
    142: "rohc", 143: "ethernet",
}
#: Names libxtables knows besides /etc/protocols (xtables_chain_protos).
_EXTRA_PROTOCOLS = {"all": 0, "icmpv6": 58, "ipv6-mh": 135, "mh": 135}
PROTOCOL_NUMBERS: Mapping[str, int] = {
    **{name: number for number, name in PROTOCOL_NAMES.items()},
    **_EXTRA_PROTOCOLS,
}

#: The /etc/services names scripts commonly use for ports.
SERVICES: Mapping[str, int] = {
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
    "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "kerberos": 88,
    "pop3": 110, "sunrpc": 111, "auth": 113, "ntp": 123, "netbios-ns": 137,
    "netbios-dgm": 138, "netbios-ssn": 139, "imap": 143, "imap2": 143, "snmp": 161,
    "ldap": 389, "https": 443, "microsoft-ds": 445, "submission": 587, "ldaps": 636,
    "imaps": 993, "pop3s": 995, "openvpn": 1194, "mysql": 3306, "postgresql": 5432,
}


def parse_protocol(text: str) -> int:
    """``-p`` value: a name (case-insensitive) or a number 0–255."""
    name = text.lower()
    if name in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[name]
    if name.isdigit() and int(name) <= 255:
        return int(name)
    raise RuleError(f'unknown protocol "{text}" specified', option="-p")


def protocol_name(number: int) -> str:
    """The name iptables-save prints for a protocol number."""
    return PROTOCOL_NAMES.get(number, str(number))


def parse_port(text: str, option: str, proto: str = "tcp") -> int:
    """One port: a number 0–65535 or a service name from :data:`SERVICES`."""
    if text.isdigit() and int(text) <= 65535:
        return int(text)
    if text in SERVICES:
        return SERVICES[text]
    raise RuleError(f'invalid port/service `{text}\' specified', option=option)


def parse_port_range(text: str, option: str) -> tuple[int, int]:
    """``N``, ``N:M``, ``:M`` or ``N:`` as iptables reads them for ``--sport``/``--dport``."""
    if ":" not in text:
        port = parse_port(text, option)
        return port, port
    low_text, high_text = text.split(":", 1)
    low = parse_port(low_text, option) if low_text else 0
    high = parse_port(high_text, option) if high_text else 65535
    if low > high:
        raise RuleError(f'invalid portrange "{text}" specified', option=option)
    return low, high


def _short_ipv4(text: str) -> int | None:
    """libxtables' dotted form: 1–4 decimal parts, missing ones zero (``10`` is 10.0.0.0)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        return None
    value = 0
    for part in [*parts, "0", "0", "0"][:4]:
        value = value << 8 | int(part)
    return value


def parse_address(text: str, family: int) -> int:
    """A numeric address; host names are refused rather than resolved."""
    if family == 4 and (short := _short_ipv4(text)) is not None:
        return short
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        raise RuleError(f"host/network `{text}' not found", text=text) from None
    if parsed.version != family:
        raise RuleError(f"host/network `{text}' not found", text=text)
    return int(parsed)


def parse_mask(text: str, family: int) -> int:
    """A prefix length or a mask written as an address."""
    width = WIDTH[family]
    if text.isdigit():
        bits = int(text)
        if bits > width:
            raise RuleError(f"invalid mask `{text}' specified", text=text)
        return ((1 << bits) - 1) << (width - bits) if bits else 0
    try:
        return parse_address(text, family)
    except RuleError:
        raise RuleError(f"invalid mask `{text}' specified", text=text) from None


def parse_nets(text: str, family: int) -> list[Net]:
    """``-s``/``-d`` value: comma-separated ``addr[/mask]`` (each becomes its own rule)."""
    nets: list[Net] = []
    for part in text.split(","):
        addr_text, _, mask_text = part.partition("/")
        mask = parse_mask(mask_text, family) if mask_text else (1 << WIDTH[family]) - 1
        nets.append(Net(parse_address(addr_text, family) & mask, mask))
    return nets


def prefix_length(mask: int, family: int) -> int | None:
    """The prefix length of a contiguous mask, else None."""
    width = WIDTH[family]
    inverted = ~mask & ((1 << width) - 1)
    if inverted & (inverted + 1):
        return None
    return width - inverted.bit_length()


def address_text(addr: int, family: int) -> str:
    """The address as glibc's ``inet_ntop`` writes it (what iptables prints)."""
    if family == 4:
        return str(ipaddress.IPv4Address(addr))
    words = [(addr >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    zeros = _longest_zero_run(words)
    if zeros[0] == 0 and (zeros[1] == 6 or (zeros[1] == 5 and words[5] == 0xFFFF)):
        # inet_ntop's embedded IPv4: ::1.2.3.4 (compatible) and ::ffff:1.2.3.4 (mapped)
        head = "::ffff:" if zeros[1] == 5 else "::"
        return head + str(ipaddress.IPv4Address(addr & 0xFFFFFFFF))
    return ipaddress.IPv6Address(addr).compressed


def _longest_zero_run(words: list[int]) -> tuple[int, int]:
    """(start, length) of the first longest run of zero words (length 0: none)."""
    best, start = (0, 0), -1
    for index, word in enumerate([*words, 1]):
        if word == 0 and start < 0:
            start = index
        elif word != 0 and start >= 0:
            if index - start > best[1]:
                best = (start, index - start)
            start = -1
    return best


def net_save(net: Net, family: int) -> str:
    """``10.0.0.0/8``, ``1.2.3.4/32``, ``1.0.3.0/255.0.255.0`` (iptables-save)."""
    length = prefix_length(net.mask, family)
    suffix = str(length) if length is not None else address_text(net.mask, family)
    return f"{address_text(net.addr, family)}/{suffix}"


def net_list(net: Net | None, family: int) -> str:
    """The ``-L -n`` source/destination column text (hosts without ``/32``)."""
    if net is None:
        return "0.0.0.0/0" if family == 4 else "::/0"
    length = prefix_length(net.mask, family)
    if length == WIDTH[family]:
        return address_text(net.addr, family)
    return net_save(net, family)
