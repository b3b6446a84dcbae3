"""A minimal chain walker over the parsed model, standing in for ``recentd.rules.Engine``
until it exists: IP part (proto, addresses), compiled matches, standard targets and jumps."""

from __future__ import annotations

import sys
from pathlib import Path

from recentd.daemon import Rules
from recentd.live.nfqnl import NF_ACCEPT, NF_DROP
from recentd.packets.packet import Packet
from recentd.recent import RecentTables
from recentd.rules.extensions.base import CompileEnv, PacketState
from recentd.rules.model import CtState, Ruleset
from recentd.rules.parser import load_ruleset


class MiniEngine:
    def __init__(self, ruleset: Ruleset, tables: RecentTables, hz: int = 250) -> None:
        self.tables, self.hz = tables, hz
        self.replace(ruleset)

    def replace(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.compiled = {}
        for table in ruleset.tables:
            env = CompileEnv(hz=self.hz, recent=self.tables, family=table.family)
            for chain in table.chains:
                self.compiled[(table.family, chain.name)] = [
                    (rule, [m.ext.compile(m.spec, env) for m in rule.matches])
                    for rule in chain.rules
                ]
        self.policies = {(t.family, c.name): c.policy for t in ruleset.tables for c in t.chains}

    def __call__(self, packet: Packet, hook: str, now: int, ctstate: CtState) -> int:
        state = PacketState()
        state.now, state.ctstate = now, int(ctstate)
        verdict = self._walk(packet, state, packet.family, hook)
        if verdict is None:
            verdict = self.policies.get((packet.family, hook)) or "ACCEPT"
        return NF_ACCEPT if verdict == "ACCEPT" else NF_DROP

    def _walk(self, packet: Packet, state: PacketState, family: int, chain: str) -> str | None:
        for rule, matches in self.compiled.get((family, chain), []):
            ip = rule.ip
            if ip.proto and (packet.proto == ip.proto) == ip.inv_proto:
                continue
            if ip.src and ip.src.contains(packet.src) == ip.inv_src:
                continue
            if not all(m(packet, state) for m in matches):
                continue
            target = rule.target.name
            if target in ("ACCEPT", "DROP", "REJECT"):
                return target
            if target == "RETURN":
                return None
            if (family, target) in self.compiled:
                result = self._walk(packet, state, family, target)
                if result is not None:
                    return result
        return None


def mini_loader(path: Path, hz: int = 250) -> Rules:
    ruleset = load_ruleset(path)
    tables = RecentTables(hz=hz)
    engine = MiniEngine(ruleset, tables, hz)
    return Rules(ruleset, engine, tables, lambda new: engine.replace(new.ruleset))


if __name__ == "__main__":  # run the daemon with this engine: python -m tests.live.mini_engine ARGS
    import argparse

    from recentd.cli import run

    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    sys.exit(run.run(parser.parse_args(), loader=mini_loader))
