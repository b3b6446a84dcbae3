"""ipset: the ``set`` match and the ``SET`` target, left to the kernel.

Rules: the sets live in the kernel (``ipset``), so recentd cannot answer
membership nor add to them; a rule holding either stays in the kernel's rule set.
Parsed and printed as libxt_set revision 4/3 does; iptables itself also checks
that the set exists, which only the kernel can (``iptables-restore --test`` does
too: so does the golden test, with the sets it names created in its namespace).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from recentd.errors import RuleError
from recentd.rules.extensions.base import (
    GivenOption,
    KernelOnlyMatch,
    KernelOnlyTarget,
    OptionSpec,
    ParseContext,
    parse_uint,
)
from recentd.rules.extensions.kernel import Words, _save

MAX_SET_NAME = 31


def check_set(ext: str, name: str, flags: str, option: str) -> str:
    """``NAME src,dst`` as libxt_set takes it (the set's existence: the kernel's)."""
    words = flags.split(",")
    if not name or len(name) > MAX_SET_NAME or len(words) > 6 or any(
            w not in ("src", "dst") for w in words):
        raise RuleError(f"{ext}: bad {option} `{name} {flags}'", option=option)
    return f"{name} {flags}"


_COUNTERS = ("--packets-eq", "--packets-lt", "--packets-gt", "--bytes-eq", "--bytes-lt",
             "--bytes-gt")


class SetMatch(KernelOnlyMatch[Words]):
    name = "set"
    reason = "set asks the kernel's ipsets"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--match-set": OptionSpec(2, True, "NAME src|dst[,…]"),
        "--return-nomatch": OptionSpec(0, False, "invert the answer of nomatch elements"),
        "--update-counters": OptionSpec(0, True, "(! to not) update the set's counters"),
        "--update-subcounters": OptionSpec(0, True, "(! to not) update sub-counters"),
        **{name: OptionSpec(1, name.endswith("-eq"), "compare the element's counter")
           for name in _COUNTERS},
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        if not any(o.name == "--match-set" for o in given):
            raise self.error("You must specify `--match-set' with proper arguments")
        items = []
        for name in self.options:
            for option in (o for o in given if o.name == name):
                arg = ""
                if name == "--match-set":
                    arg = check_set(self.name, option.args[0], option.args[1], name)
                elif option.args:
                    arg = str(parse_uint(option.value, 0, (1 << 64) - 1, option=name,
                                         ext=self.name))
                items.append((option.inverted, name, arg))
        return Words(tuple(items))

    def save(self, spec: Words, family: int) -> str:
        return _save(spec)

    def print(self, spec: Words, family: int) -> str:
        return _save(spec).replace(" --", " ")


class SetTarget(KernelOnlyTarget[Words]):
    name = "SET"
    reason = "SET adds to the kernel's ipsets"
    options: ClassVar[Mapping[str, OptionSpec]] = {
        "--add-set": OptionSpec(2, False, "NAME src|dst[,…]"),
        "--del-set": OptionSpec(2, False, "NAME src|dst[,…]"),
        "--map-set": OptionSpec(2, False, "NAME src|dst[,…]"),
        "--exist": OptionSpec(0, False, "re-add an existing element"),
        "--timeout": OptionSpec(1, False, "the element's timeout in s"),
    }

    def parse(self, given: Sequence[GivenOption], ctx: ParseContext) -> Words:
        if not any(o.name in ("--add-set", "--del-set", "--map-set") for o in given):
            raise self.error("You must specify either `--add-set' or `--del-set'")
        items = []
        for name in self.options:
            for option in (o for o in given if o.name == name):
                arg = option.value
                if len(option.args) == 2:
                    arg = check_set(self.name, option.args[0], option.args[1], name)
                elif option.args:
                    arg = str(parse_uint(option.value, 0, 0xFFFFFFFF, option=name,
                                         ext=self.name))
                items.append((False, name, arg))
        return Words(tuple(items))

    def save(self, spec: Words, family: int) -> str:
        return _save(spec)

    def print(self, spec: Words, family: int) -> str:
        return _save(spec).replace(" --", " ")
