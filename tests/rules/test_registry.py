"""The registry of extensions: every name leads to the extension of that name, and a rule
file loads the modules of the extensions it uses, no others (``rules check`` starts fast)."""

from __future__ import annotations

import subprocess
import sys

from recentd.rules.extensions import MATCHES, TARGETS
from tests.live.netns import REPO


def test_every_name_leads_to_the_extension_of_that_name() -> None:
    assert [(name, MATCHES[name].name) for name in MATCHES] == [(n, n) for n in MATCHES]
    assert [(name, TARGETS[name].name) for name in TARGETS] == [(n, n) for n in TARGETS]


PROBE = """
import sys
from recentd.rules import parse_ruleset_text
parse_ruleset_text("iptables -A INPUT -p tcp --dport 22 -m state --state NEW -j ACCEPT\\n",
                   source="probe", family=4)
print(" ".join(sorted(m for m in sys.modules if m.startswith("recentd.rules.extensions."))))
"""


def test_a_rule_file_loads_only_the_extensions_it_uses() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=True, cwd=REPO, env={"PYTHONPATH": str(REPO / "src")})  # fmt: skip
    loaded = done.stdout.split()
    assert loaded == ["recentd.rules.extensions.base", "recentd.rules.extensions.ports",
                      "recentd.rules.extensions.state", "recentd.rules.extensions.tcpudp"]
    assert "recentd.recent.table" not in done.stdout
