"""Module parameters of xt_recent, per table and settable at run time.

The kernel reads these once, at module load, and a built-in module's are read-only
(spec §1.1) — one of the limits users hit. recentd keeps the kernel's defaults and
limits but lets each table carry its own values, changeable while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from recentd.errors import ConfigError

#: Largest ring the kernel allows (XT_RECENT_MAX_NSTAMPS since Linux 6.11).
MAX_NSTAMPS = 65536
#: Longest table name, without the terminating NUL (XT_RECENT_NAME_LEN - 1).
MAX_NAME_LEN = 199
_UID_MAX = 2**32 - 2  # (uid_t)-1 is "no user" and the kernel refuses it


@dataclass(frozen=True, slots=True)
class ModuleParams:
    """The xt_recent module parameters with the kernel's defaults (spec §1.1).

    Attributes:
        ip_list_tot: most entries a table holds; the least recently refreshed is
            evicted to make room. At least 1.
        ip_pkt_list_tot: backward-compatible ring floor; 0 (default) lets each
            rule's hitcount size the ring. Below 65536.
        ip_list_perms: mode of the table's /proc-like file.
        ip_list_uid, ip_list_gid: owner and group of that file.
    """

    ip_list_tot: int = 100
    ip_pkt_list_tot: int = 0
    ip_list_perms: int = 0o644
    ip_list_uid: int = 0
    ip_list_gid: int = 0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError("must be an integer", key=field.name, value=value)
        _check_range("ip_list_tot", self.ip_list_tot, 1, 2**32 - 1)
        _check_range("ip_pkt_list_tot", self.ip_pkt_list_tot, 0, MAX_NSTAMPS - 1)
        _check_range("ip_list_perms", self.ip_list_perms, 0, 0o7777)
        _check_range("ip_list_uid", self.ip_list_uid, 0, _UID_MAX)
        _check_range("ip_list_gid", self.ip_list_gid, 0, _UID_MAX)

    @property
    def ip_list_hash_size(self) -> int:
        """What the kernel computes (and forces) for the hash size: ``1 << fls(ip_list_tot)``.

        recentd uses a dict, so this is informational, shown for compatibility.
        """
        return 1 << self.ip_list_tot.bit_length()

    def with_changes(self, **changes: int) -> ModuleParams:
        """A copy with some values changed, validated like the original."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(
                f"unknown parameter (known: {', '.join(f.name for f in fields(self))})",
                key=name,
                value=changes[name],
            )
        return replace(self, **changes)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"must be between {low} and {high}", key=name, value=value)


@dataclass(frozen=True, slots=True)
class Quirks:
    """Kernel bugs recentd can reproduce on request; by default it does the right thing.

    See ``docs/deviations.md``. ``Quirks.kernel()`` reproduces Linux 6.18 exactly
    where these differ, for differential testing against the real module.

    Attributes:
        seconds_u32_wrap: compute ``seconds * HZ`` in 32 bits, as the kernel does, so
            that ``--seconds 17179870`` means 0.816 s at HZ=250 (spec §2.4).
        unmasked_proc_writes: store ``+addr`` written through /proc literally instead
            of under the table's mask, so packets never match it (spec §5.2).
    """

    seconds_u32_wrap: bool = False
    unmasked_proc_writes: bool = False

    @classmethod
    def kernel(cls) -> Quirks:
        return cls(seconds_u32_wrap=True, unmasked_proc_writes=True)
