"""Packets: decoding raw bytes and captures into :class:`Packet` values, and connection tracking."""

from recentd.packets.packet import ABSENT, Family, Packet, ip_of

__all__ = ["ABSENT", "Family", "Packet", "ip_of"]
