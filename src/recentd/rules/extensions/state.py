"""``-m state --state`` and ``-m conntrack --ctstate``: the packet's conntrack state.

The state comes from the caller (``ctstate=`` of the evaluator); both matches
test one bit of it against the rule's set, ``!`` inverting the result. Names are
printed in libxt_conntrack's fixed order, whatever order they were written in.

``--ctstate`` also takes SNAT and DNAT (the connection's address was rewritten by
NAT). recentd does no NAT and cannot see the kernel's, so a rule naming them is
parsed and rendered but left to the kernel (:meth:`ConntrackMatch.kernel_only`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from recentd.errors import RuleError
from recentd.packets.conntrack_model import CtState
from recentd.rules.extensions.base import (
    CompileEnv,
    GivenOption,
    MatchExtension,
    MatchFn,
    OptionSpec,
    ParseContext,
)

#: Print order of libxt_conntrack.
STATE_NAMES: Mapping[str, CtState] = {
    "INVALID": CtState.INVALID,
    "NEW": CtState.NEW,
    "RELATED": CtState.RELATED,
    "ESTABLISHED": CtState.ESTABLISHED,
    "UNTRACKED": CtState.UNTRACKED,
}


@dataclass(frozen=True, slots=True)
class StateSpec:
    states: int
    invert: bool = False


#: ``--ctstate`` only, printed after the others; bits of the spec, never of a packet.
NAT_STATE_NAMES: Mapping[str, int] = {"SNAT": 0x100, "DNAT": 0x200}
NAT_STATES = 0x300


def state_names(states: int) -> str:
    names = {**STATE_NAMES, **NAT_STATE_NAMES}
    return ",".join(name for name, bit in names.items() if states & bit)


class _StateMatch(MatchExtension[StateSpec]):
    option: ClassVar[str]
    label: ClassVar[str]
    names: ClassVar[Mapping[str, int]] = STATE_NAMES

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> StateSpec:
        if not given:
            raise self.error(f"missing mandatory option `{self.option}'", self.option)
        option = given[0]
        states = 0
        for word in option.value.split(","):
            if word.upper() not in self.names:
                raise RuleError(
                    f'Bad {self.option[2:]} "{word}"; supported: {", ".join(self.names)}',
                    option=self.option,
                )
            states |= self.names[word.upper()]
        return StateSpec(states, option.inverted)

    def save(self, spec: StateSpec, family: int) -> str:
        return f"{' !' if spec.invert else ''} {self.option} {state_names(spec.states)}"

    def print(self, spec: StateSpec, family: int) -> str:
        return f"{' !' if spec.invert else ''} {self.label} {state_names(spec.states)}"

    def reads(self, spec: StateSpec) -> frozenset[str]:
        return frozenset()  # the conntrack state: always part of a remembered decision's key

    def ctstates(self, spec: StateSpec) -> int | None:
        return None if spec.invert or spec.states & NAT_STATES else int(spec.states)

    def kernel_only(self, spec: StateSpec) -> str | None:
        if spec.states & NAT_STATES:
            return "--ctstate SNAT/DNAT: recentd cannot see the kernel's NAT"
        return None

    def compile(self, spec: StateSpec, env: CompileEnv) -> MatchFn:
        states, invert = int(spec.states), spec.invert
        # Comparisons rather than not/bool(): the same truth, without a call per packet.
        if invert:
            return lambda packet, state: state.ctstate & states == 0
        return lambda packet, state: state.ctstate & states != 0


class StateMatch(_StateMatch):
    name = "state"
    option = "--state"
    label = "state"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--state": OptionSpec(1, True, "comma list of INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED"),
    }


class ConntrackMatch(_StateMatch):
    name = "conntrack"
    option = "--ctstate"
    label = "ctstate"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--ctstate": OptionSpec(1, True, "comma list of INVALID,NEW,RELATED,ESTABLISHED,"
                                            "UNTRACKED,SNAT,DNAT"),
    }
    names: ClassVar[Mapping[str, int]] = {**STATE_NAMES, **NAT_STATE_NAMES}


