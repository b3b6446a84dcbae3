"""KernelRules (live/hooks.py): the tables found at start are saved and put back at stop;
a crashed run's split found at start is replaced at stop by the rule file as it is."""

from __future__ import annotations

from collections.abc import Sequence

from recentd.live.hooks import KernelRules

SPLIT_TEXT = "*filter\n:INPUT ACCEPT [0:0]\n:RECENTD-Q0 - [0:0]\n-A INPUT -j RECENTD-Q0\nCOMMIT\n"
FILE_TEXT = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n"


class Kernel:
    """iptables-save/-restore over one family's text, recording each call."""

    def __init__(self, held: str) -> None:
        self.held, self.calls = held, list[str]()

    def __call__(self, argv: Sequence[str], text: str) -> tuple[int, str, str]:
        self.calls.append(" ".join(argv))
        if argv[0].endswith("-save"):
            return 0, self.held, ""
        self.held = text
        return 0, "", ""


def test_the_tables_found_are_put_back() -> None:
    kernel = Kernel("*filter\n:INPUT DROP [0:0]\nCOMMIT\n")
    rules = KernelRules({4: SPLIT_TEXT}, runner=kernel, original={4: FILE_TEXT})
    rules.install()
    assert (kernel.held, rules.found_stale) == (SPLIT_TEXT, False)
    assert kernel.calls == ["iptables-legacy-save -t filter", "iptables-legacy-restore -w"]
    rules.remove()
    assert kernel.held == "*filter\n:INPUT DROP [0:0]\nCOMMIT\n"


def test_a_crashed_runs_split_is_never_put_back() -> None:
    kernel = Kernel(SPLIT_TEXT)
    rules = KernelRules({4: SPLIT_TEXT}, runner=kernel, original={4: FILE_TEXT}, flavour="nft")
    rules.install()
    assert rules.found_stale
    assert kernel.calls == ["iptables-nft-save -t filter", "iptables-nft-restore -w"]
    rules.remove()
    assert kernel.held == FILE_TEXT
