"""The nftables :class:`~recentd.backends.BanBackend`: sets in recentd's own table.

The class of dropped packets is fixed when the table is installed; the backend only
holds addresses, in sets with per-element timeouts. It speaks libnftables JSON
(``import nftables``): no shell, no command strings built from addresses.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

from recentd.backends import Address, BanClass, KernelBan, Traffic, check_address
from recentd.errors import BackendError

#: The nftables table recentd owns; nothing else in the ruleset is touched.
NFT_TABLE = "recentd"
NFT_CHAIN = "ban"
#: Before the iptables filter hooks (priority 0), so banned packets never get queued.
NFT_PRIORITY = -10


#: nft's names of the conntrack state bits (``CtState``).
_CT_NAMES = {1: "invalid", 2: "established", 4: "related", 8: "new", 64: "untracked"}


def chain_of_hook(hook: str) -> str:
    """recentd's chain on ``hook`` (``ban`` on input, ``ban_HOOK`` on the others)."""
    return NFT_CHAIN if hook == "input" else f"{NFT_CHAIN}_{hook}"


#: Seconds an element may outlive its computed expiry in the kernel (timer granularity).
_EXPIRY_SLACK_S = 2.0


class NftBanBackend:
    """Bans as elements of ``inet recentd`` sets ``ban4``/``ban6`` (``flags timeout``).

    :meth:`install` creates the table with one chain at priority -10 on the
    ``input`` hook dropping the :class:`BanClass` from set members; :meth:`uninstall`
    deletes the table. Elements are added in batches through libnftables JSON.
    """

    def __init__(self, ban_class: BanClass, *, hook: str = "") -> None:
        try:
            import nftables  # noqa: PLC0415 - optional dependency ([offload] extra)
        except ImportError as exc:
            raise BackendError("python module 'nftables' is missing", backend="nft") from exc
        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)
        self._nft.set_handle_output(False)
        self.ban_class = ban_class
        #: The hooks dropped at: ``hook`` if given (tests), else the class's.
        self.hooks = (hook,) if hook else ban_class.hooks
        # What this backend put in its own sets since install(), with when (monotonic
        # seconds) each element's timeout ends: nobody else writes recentd's table, so an
        # element not here is certainly absent and a plain "add" is enough for it.
        self._added: dict[tuple[int, int], float] = {}
        #: The prefix each network ban was added with (a network is removed by it).
        self._prefixes: dict[tuple[int, int], int] = {}

    # ---- setup ---------------------------------------------------------------------------

    def install(self) -> None:
        """Create (or recreate empty) recentd's own table."""
        self.uninstall()
        self._run([{"add": {"table": _table()}}, *self._chain_and_sets(), *self._rules()])
        self._added.clear()

    def uninstall(self) -> None:
        """Delete recentd's table if it exists (nothing else is touched)."""
        if self._table_exists():
            self._run([{"delete": {"table": _table()}}])

    def _table_exists(self) -> bool:
        rc, out, _err = self._nft.cmd("list tables inet")
        if rc != 0:
            return False
        tables = json.loads(out or "{}").get("nftables", [])
        return any(item.get("table", {}).get("name") == NFT_TABLE for item in tables)

    def _chain_and_sets(self) -> list[dict[str, Any]]:
        chains = [{
            **_in_table(), "name": chain_of_hook(hook), "type": "filter", "hook": hook,
            "prio": NFT_PRIORITY, "policy": "accept",
        } for hook in self.hooks]  # fmt: skip
        sets = [
            {**_in_table(), "name": name, "type": kind, "flags": self._set_flags()}
            for name, kind in (("ban4", "ipv4_addr"), ("ban6", "ipv6_addr"))
        ]
        return [*({"add": {"chain": c}} for c in chains), *({"add": {"set": s}} for s in sets)]

    def _set_flags(self) -> list[str]:
        return ["interval", "timeout"] if self.ban_class.networks else ["timeout"]

    def _rules(self) -> list[dict[str, Any]]:
        """Per hook: the excluded traffic returns first, then the class is dropped."""
        cls = self.ban_class
        ct_states = 8 if cls.ct_new_only else 0
        wanted = _traffic_match(Traffic(cls.proto, cls.dports, ct_states))
        rules = []
        for hook in self.hooks:
            chain = {**_in_table(), "chain": chain_of_hook(hook)}
            for traffic in cls.exclude:
                expr = [*_traffic_match(traffic), {"return": None}]
                rules.append({"add": {"rule": {**chain, "expr": expr}}})
            for proto, set_name in (("ip", "ban4"), ("ip6", "ban6")):
                log = [] if cls.log_group is None else [{"log": {"group": cls.log_group}}]
                expr = [*wanted, _saddr_in(proto, set_name), {"counter": None}, *log,
                        {"drop": None}]  # fmt: skip
                rules.append({"add": {"rule": {**chain, "expr": expr}}})
        return rules

    # ---- the BanBackend interface --------------------------------------------------------

    def add(self, family: int, addr: Address, timeout_s: int) -> None:
        self.add_many([KernelBan(family, addr, timeout_s)])

    def add_many(self, bans: Sequence[KernelBan]) -> None:
        """Add (or re-time) many bans in one libnftables transaction."""
        commands: list[dict[str, Any]] = []
        now = time.monotonic()
        added: dict[tuple[int, int], float] = {}
        for ban in bans:
            addr = check_address(ban.family, ban.addr)
            if ban.timeout_s <= 0:
                raise ValueError(f"timeout must be positive, got {ban.timeout_s}")
            element = _element(ban.family, addr, ban.timeout_s, ban.prefix)
            key = (ban.family, int(addr))
            if self._added.get(key, 0.0) + _EXPIRY_SLACK_S > now:
                # Maybe still in the set: re-adding keeps the old timeout, and libnftables
                # 1.0.6 has no "destroy", so add (no-op if present), delete, add again.
                commands += [{"add": element}, {"delete": element}, {"add": element}]
            else:
                commands.append({"add": element})
            added[key] = now + ban.timeout_s
            if ban.prefix is not None:
                self._prefixes[key] = ban.prefix
        if commands:
            self._run(commands)
            self._added.update(added)

    def remove(self, family: int, addr: Address) -> None:
        # add-then-delete makes removing an absent address succeed, like the fake.
        address = check_address(family, addr)
        key = (family, int(address))
        element = _element(family, address, 1, self._prefixes.get(key))
        self._run([{"add": element}, {"delete": element}])
        self._added.pop(key, None)
        self._prefixes.pop(key, None)

    def flush(self) -> None:
        self._run([{"flush": {"set": {**_in_table(), "name": n}}} for n in ("ban4", "ban6")])
        self._added.clear()

    def dropped(self) -> int:
        """Packets the kernel has dropped for bans so far (the drop rules' counters)."""
        total = 0
        for hook in self.hooks:
            rc, out, err = self._nft.cmd(f"list chain inet {NFT_TABLE} {chain_of_hook(hook)}")
            if rc != 0:
                raise BackendError("list chain", backend="nft", returncode=rc, stderr=err)
            for item in json.loads(out).get("nftables", []):
                for expr in item.get("rule", {}).get("expr", []):
                    if isinstance(expr, dict) and "counter" in expr:
                        total += int(expr["counter"].get("packets", 0))
        return total

    def snapshot(self) -> list[KernelBan]:
        bans: list[KernelBan] = []
        for family, name in ((4, "ban4"), (6, "ban6")):
            rc, out, err = self._nft.cmd(f"list set inet {NFT_TABLE} {name}")
            if rc != 0:
                raise BackendError(f"list set {name}", backend="nft", returncode=rc, stderr=err)
            bans.extend(_parse_elements(family, out))
        return sorted(bans, key=lambda ban: (ban.family, int(ban.addr)))

    def _run(self, commands: list[dict[str, Any]]) -> None:
        payload = {"nftables": commands}
        rc, _out, err = self._nft.json_cmd(payload)
        if rc != 0:
            raise BackendError(
                "libnftables refused the batch", backend="nft", returncode=rc, stderr=str(err)
            )


def _table() -> dict[str, str]:
    """The table object itself ({family, name})."""
    return {"family": "inet", "name": NFT_TABLE}


def _in_table() -> dict[str, str]:
    """The reference to the table carried by its chains, sets and rules."""
    return {"family": "inet", "table": NFT_TABLE}


def _eq(left: dict[str, Any], right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": left, "right": right}}


def _traffic_match(traffic: Traffic) -> list[dict[str, Any]]:
    """nft expressions testing ``traffic`` (none for an empty condition)."""
    expr: list[dict[str, Any]] = []
    if traffic.iif:
        expr.append(_eq({"meta": {"key": "iifname"}}, traffic.iif))
    if traffic.proto:
        expr.append(_eq({"meta": {"key": "l4proto"}}, traffic.proto))
    if traffic.dports:
        ports = traffic.dports
        right: Any = ports[0] if len(ports) == 1 else {"set": list(ports)}
        expr.append(_eq({"payload": {"protocol": "th", "field": "dport"}}, right))
    if traffic.ctstates:
        names = [name for bit, name in _CT_NAMES.items() if traffic.ctstates & bit]
        states: Any = names[0] if len(names) == 1 else names
        expr.append({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": states}})
    return expr


def _saddr_in(proto: str, set_name: str) -> dict[str, Any]:
    left = {"payload": {"protocol": proto, "field": "saddr"}}
    return {"match": {"op": "==", "left": left, "right": f"@{set_name}"}}


def _element(family: int, addr: Address, timeout_s: int | None,
             prefix: int | None = None) -> dict[str, Any]:
    val: Any = str(addr) if prefix is None else {"prefix": {"addr": str(addr), "len": prefix}}
    value: Any = val if timeout_s is None else {"elem": {"val": val, "timeout": timeout_s}}
    name = "ban4" if family == 4 else "ban6"
    return {"element": {"family": "inet", "table": NFT_TABLE, "name": name, "elem": [value]}}


def _parse_elements(family: int, out: str) -> list[KernelBan]:
    bans = []
    for item in json.loads(out).get("nftables", []):
        for elem in item.get("set", {}).get("elem", []):
            inner = elem.get("elem", {}) if isinstance(elem, dict) else {"val": elem}
            expires_ms = inner.get("expires", inner.get("timeout", 0))
            timeout = math.ceil(expires_ms / 1000) if expires_ms > 1000 else int(expires_ms)
            val = inner["val"]
            if isinstance(val, dict) and "prefix" in val:
                net = val["prefix"]
                bans.append(KernelBan(family, check_address(family, net["addr"]), timeout,
                                      int(net["len"])))  # fmt: skip
                continue
            bans.append(KernelBan(family, check_address(family, val), timeout))
    return bans
