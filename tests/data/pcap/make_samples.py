"""Regenerate the sample captures in this folder and their expectation JSON.

Run ``python3 tests/data/pcap/make_samples.py`` from the repository root. The
expectations are written from what each packet was *built* with (never from
decoding the result), so the test that reads them checks the decoder against
independent facts. Each JSON file holds:

* ``description``: what the sample exercises;
* ``packets``: one object per record: ``n``, ``ts_ns``, and either ``error`` (a
  substring of the expected per-packet error) or the decoded fields to compare
  (addresses as strings; ``inner`` for a quoted packet); fields left out are not
  checked;
* ``error``: ``null``, or the ``CaptureError`` expected after the packets
  (``position``, ``offset`` and a ``message`` substring).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recentd.packets.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    PacketFactory,
    frame_ip,
    tcp_flags,
    write_pcap,
    write_pcapng,
)

HERE = Path(__file__).parent
T0 = 1_700_000_000_123_456_789  # an arbitrary instant with all nine digits used
pf = PacketFactory()

ATTACKER, SERVER, CLIENT = "203.0.113.7", "192.0.2.1", "198.51.100.20"
ATTACKER6, SERVER6 = "2001:db8:bad::7", "2001:db8::1"


def tcp(
    src: str, dst: str, *, sport: int, dport: int, flags: str, ttl: int = 64, **kw: Any
) -> tuple[bytes, dict[str, Any]]:
    raw = pf.tcp(src, dst, sport=sport, dport=dport, flags=flags, ttl=ttl, **kw)
    return raw, {
        "src": src,
        "dst": dst,
        "proto": 6,
        "sport": sport,
        "dport": dport,
        "ttl": ttl,
        "tcp_flags": tcp_flags(flags),
        "length": len(raw),
    }


def arp_frame() -> bytes:
    return (
        b"\xff" * 6
        + b"\x02\0\0\0\0\x03"
        + b"\x08\x06"
        + bytes.fromhex("0001080006040001")
        + b"\0" * 20
    )


def ssh_ethernet() -> None:
    """Ethernet pcap (microseconds, little-endian): SSH brute force, VLANs, ARP."""
    records, expect = [], []
    ttls = [51, 51, 52, 51]
    for i, ttl in enumerate(ttls):
        raw, exp = tcp(ATTACKER, SERVER, sport=40000 + i, dport=22, flags="S", ttl=ttl)
        records.append(frame_ip(raw, LINKTYPE_ETHERNET))
        expect.append(exp)
    raw, exp = tcp(CLIENT, SERVER, sport=50000, dport=22, flags="S")
    records.append(frame_ip(raw, LINKTYPE_ETHERNET, vlans=[100]))
    expect.append(exp)
    raw, exp = tcp(SERVER, CLIENT, sport=22, dport=50000, flags="SA", ack=1001)
    records.append(frame_ip(raw, LINKTYPE_ETHERNET, vlans=[200, 100]))  # QinQ
    expect.append(exp)
    records.append(arp_frame())
    expect.append({"error": "not IP (ethertype 0x0806)"})
    # Ethernet padding: a 40-byte packet padded to the 46-byte minimum payload.
    raw, exp = tcp(CLIENT, SERVER, sport=50000, dport=22, flags="A", seq=1001, ack=5001)
    records.append(frame_ip(raw, LINKTYPE_ETHERNET) + b"\0" * 6)
    expect.append({**exp, "payload_len": 0})
    save(
        "ssh_bruteforce_ethernet.pcap",
        records,
        expect,
        "pcap",
        LINKTYPE_ETHERNET,
        "SSH SYNs from one attacker, a handshake over 802.1Q and QinQ, an ARP frame, "
        "Ethernet padding; classic pcap, microsecond, little-endian",
        step=1_000_000_000,
        nanosecond=False,
    )


def ipv6_raw() -> None:
    """Raw-IP pcap, nanoseconds, big-endian: IPv6 extension headers, fragments, ICMPv6."""
    records, expect = [], []
    raw, exp = tcp(ATTACKER6, SERVER6, sport=41000, dport=22, flags="S", ttl=57)
    records.append(raw)
    expect.append(exp)
    raw, exp = tcp(ATTACKER6, SERVER6, sport=41001, dport=22, flags="S", extensions=(0, 60))
    records.append(raw)
    expect.append(exp)
    udp = pf.udp(
        ATTACKER6, SERVER6, sport=5353, dport=53, payload=b"q" * 100, more_fragments=True, ident=7
    )
    records.append(udp)
    expect.append({"proto": 17, "sport": 5353, "dport": 53, "fragment": True, "frag_offset": 0})
    tail = pf.ip(ATTACKER6, SERVER6, 17, b"t" * 24, frag_offset=14, ident=7)
    records.append(tail)
    expect.append(
        {
            "proto": 17,
            "sport": -1,
            "dport": -1,
            "fragment": True,
            "frag_offset": 14,
            "length": len(tail),
        }
    )
    syn, inner = tcp(SERVER6, ATTACKER6, sport=22, dport=41000, flags="SA", ack=1001)
    err = pf.icmp_error("2001:db8::ffff", SERVER6, syn, icmp_type=1, code=3)
    records.append(err)
    expect.append(
        {
            "proto": 58,
            "icmp_type": 1,
            "icmp_code": 3,
            "src": "2001:db8::ffff",
            "inner": {k: inner[k] for k in ("src", "dst", "sport", "dport", "proto")},
        }
    )
    records.append(pf.icmp(ATTACKER6, SERVER6))
    expect.append({"proto": 58, "icmp_type": 128, "icmp_code": 0})
    records.append(pf.ip(ATTACKER6, SERVER6, 50, b"\0" * 16, extensions=(0,)))  # ESP
    expect.append({"proto": 50, "sport": -1})
    save(
        "ipv6_raw_nanosecond_bigendian.pcap",
        records,
        expect,
        "pcap",
        LINKTYPE_RAW,
        "IPv6: plain and with hop-by-hop + destination options, a fragmented UDP "
        "datagram, an ICMPv6 error quoting a SYN/ACK, echo, ESP; raw IP, nanosecond, "
        "big-endian",
        step=1,
        nanosecond=True,
        big_endian=True,
    )


def icmp_sll2_pcapng() -> None:
    """pcapng, Linux cooked v2, microsecond if_tsresol: ICMP echo and errors, options."""
    records, expect = [], []
    req = pf.icmp(CLIENT, SERVER, echo_id=9, echo_seq=1)
    records.append(frame_ip(req, LINKTYPE_LINUX_SLL2))
    expect.append({"proto": 1, "icmp_type": 8, "src": CLIENT, "length": len(req)})
    rep = pf.icmp(SERVER, CLIENT, icmp_type=0, echo_id=9, echo_seq=1)
    records.append(frame_ip(rep, LINKTYPE_LINUX_SLL2))
    expect.append({"proto": 1, "icmp_type": 0, "src": SERVER})
    udp = pf.udp(CLIENT, SERVER, sport=33434, dport=33435, ttl=1)
    err = pf.icmp_error("192.0.2.254", CLIENT, udp, icmp_type=11, quote_bytes=28)
    records.append(frame_ip(err, LINKTYPE_LINUX_SLL2))
    expect.append(
        {
            "proto": 1,
            "icmp_type": 11,
            "icmp_code": 0,
            "inner": {
                "src": CLIENT,
                "dst": SERVER,
                "proto": 17,
                "sport": 33434,
                "dport": 33435,
                "ttl": 1,
            },
        }
    )
    raw, exp = tcp(
        ATTACKER, SERVER, sport=40000, dport=22, flags="S", options=b"\x01\x01\x01\x00"
    )  # IPv4 options: NOPs + EOL
    records.append(frame_ip(raw, LINKTYPE_LINUX_SLL2))
    expect.append(exp)
    save(
        "icmp_sll2.pcapng",
        records,
        expect,
        "pcapng",
        LINKTYPE_LINUX_SLL2,
        "ICMP echo request/reply, a time-exceeded error quoting a UDP probe (28 bytes "
        "quoted), an IPv4 packet with options; pcapng, SLL2, microsecond resolution",
        step=1_500,
        tsresol=6,
    )


def two_sections_pcapng() -> None:
    """Two pcapng sections of opposite byte order; the second uses simple packet blocks."""
    first_records, expect = [], []
    for i in range(2):
        raw, exp = tcp(ATTACKER, SERVER, sport=42000 + i, dport=2222, flags="S")
        first_records.append(raw)
        expect.append(exp)
    a = write_pcapng(
        HERE / "_a.tmp",
        [(T0 + i, r) for i, r in enumerate(first_records)],
        linktype=LINKTYPE_LINUX_SLL,
        tsresol=9,
    )
    second = [pf.udp(CLIENT, SERVER, sport=1234, dport=161)]
    b = write_pcapng(
        HERE / "_b.tmp",
        [(0, r) for r in second],
        linktype=LINKTYPE_NULL,
        big_endian=True,
        simple=True,
    )
    data = a.read_bytes() + b.read_bytes()
    a.unlink()
    b.unlink()
    packets = [{"n": i + 1, "ts_ns": T0 + i, **e} for i, e in enumerate(expect)]
    # A simple packet block has no timestamp: it takes the previous packet's.
    packets.append({"n": 3, "ts_ns": T0 + 1, "proto": 17, "dport": 161, "src": CLIENT})
    dump(
        "two_sections.pcapng",
        data,
        packets,
        None,
        "two sections (little-endian SLL with nanosecond EPBs, then big-endian "
        "BSD-loopback with a simple packet block)",
    )


def loopback_pcaps() -> None:
    """BSD null (host order) and OpenBSD loop (network order) link types."""
    pairs = ((LINKTYPE_NULL, "null_loopback.pcap"), (LINKTYPE_LOOP, "openbsd_loop.pcap"))
    for linktype, name in pairs:
        records, expect = [], []
        raw, exp = tcp("127.0.0.1", "127.0.0.1", sport=43000, dport=22, flags="S")
        records.append(frame_ip(raw, linktype))
        expect.append(exp)
        raw, exp = tcp("::1", "::1", sport=43001, dport=22, flags="S")
        records.append(frame_ip(raw, linktype))
        expect.append(exp)
        save(
            name,
            records,
            expect,
            "pcap",
            linktype,
            f"IPv4 and IPv6 over link type {linktype}",
            step=1000,
            nanosecond=True,
        )


def truncated() -> None:
    """A capture cut in the middle of its third record."""
    records, expect = [], []
    for i in range(3):
        raw, exp = tcp(ATTACKER, SERVER, sport=44000 + i, dport=22, flags="S")
        records.append(raw)
        expect.append(exp)
    path = write_pcap(
        HERE / "truncated.pcap", [(T0 + i, r) for i, r in enumerate(records)], linktype=LINKTYPE_RAW
    )
    data = path.read_bytes()
    third = 24 + 2 * (16 + 40)
    data = data[: third + 16 + 10]
    packets = [{"n": i + 1, "ts_ns": T0 + i, **e} for i, e in enumerate(expect[:2])]
    dump(
        "truncated.pcap",
        data,
        packets,
        {"position": 3, "offset": third, "message": "truncated record"},
        "three SYNs, the file cut 10 bytes into the third packet",
    )


def save(
    name: str,
    frames: list[bytes],
    expect: list[dict[str, Any]],
    kind: str,
    linktype: int,
    description: str,
    *,
    step: int,
    **options: Any,
) -> None:
    records = [(T0 + i * step, frame) for i, frame in enumerate(frames)]
    writer = write_pcap if kind == "pcap" else write_pcapng
    path = writer(HERE / name, records, linktype=linktype, frame=False, **options)
    exact_us = not options.get("nanosecond", True) or options.get("tsresol") == 6
    packets = []
    for i, (ts, exp) in enumerate(zip((r[0] for r in records), expect, strict=True)):
        ts_ns = ts - ts % 1000 if exact_us else ts
        packets.append({"n": i + 1, "ts_ns": ts_ns, **exp})
    dump(name, path.read_bytes(), packets, None, description)


def dump(
    name: str,
    data: bytes,
    packets: list[dict[str, Any]],
    error: dict[str, Any] | None,
    description: str,
) -> None:
    (HERE / name).write_bytes(data)
    doc = {"description": description, "packets": packets, "error": error}
    (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    ssh_ethernet()
    ipv6_raw()
    icmp_sll2_pcapng()
    two_sections_pcapng()
    loopback_pcaps()
    truncated()
