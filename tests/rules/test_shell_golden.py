"""Variables expanded as bash expands them: the same script run by bash against a stub.

The stub ``iptables`` prints the words it was given (``printf %q``; ``sudo`` just runs
its command); recentd's rules
from the script must equal its rules from what bash actually ran. Needs bash only
(no root, no firewall: the stub changes nothing).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from recentd.rules import parse_ruleset_text, render_save

STUB = '#!/bin/bash\nprintf "%s" "$(basename "$0")"; printf " %q" "$@"; echo\n'
SCRIPTS = {
    "program in a variable": "IPT=iptables\n$IPT -A INPUT -p tcp --dport 22 -j DROP\n",
    "braces and defaults": ('IPT="iptables"\nP=22\n${IPT} -A INPUT -p tcp --dport ${P} '
                            "-m recent --update --seconds ${SECS:-60} --name SSH -j DROP\n"),
    "unquoted value split into words": (
        'IPT=iptables\nRECENT="-m recent --name SSH"\n$IPT -A INPUT $RECENT --set\n'),
    "quoted value kept whole": ('IPT=iptables\nNOTE="two  words"\n'
                                '$IPT -A INPUT -m comment --comment "$NOTE" -j ACCEPT\n'),
    "plain assignments left to right": "A=ip B=${A}tables\n$B -N X\n$B -A X -j RETURN\n",
    "export expands before it assigns": (
        "A=ip6\nexport A=ip B=${A}tables\nreadonly C=$B\n$C -N X\n$C -A X -j RETURN\n"),
    "which": "IPT=$(which iptables)\n$IPT -A INPUT -j ACCEPT\n",
    "empty expansion vanishes": 'E=\nIPT=iptables\n$IPT -A INPUT $E -j ACCEPT\n',
    "single quotes are literal": "IPT=iptables\n$IPT -A INPUT -m comment --comment '$IPT' -j DROP\n",
    "defaults on unset and empty": (
        'IPT=iptables\nE=\n$IPT -A INPUT -m comment --comment "${E-set}${E:-empty}${U-unset}"'
        " -j ACCEPT\n"),
    "concatenation and quotes": (
        "IPT=iptables\nN=SS\n$IPT -A INPUT -m recent --name \"$N\"H --set -m comment "
        "--comment \"it's\"' \"ok\"' -j ACCEPT\n"),
    "tabs and runs of blanks split like spaces": (
        'IPT=iptables\nOPTS="-p\ttcp   --dport 22"\n$IPT -A INPUT $OPTS -j DROP\n'),
    "continued lines and sudo": "IPT=iptables\nsudo $IPT -A INPUT \\\n  -j DROP\n",
    "both families": "V4=iptables\nV6=ip6tables\n$V4 -A INPUT -j DROP\n$V6 -A INPUT -j DROP\n",
}


@pytest.fixture(scope="module")
def stub_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("bash") is None:
        print("skipping shell golden tests: bash is not installed")
        pytest.skip("bash is not installed")
    folder = tmp_path_factory.mktemp("stub")
    for program, text in (("iptables", STUB), ("ip6tables", STUB),
                          ("sudo", '#!/bin/bash\nexec "$@"\n')):
        (folder / program).write_text(text)
        (folder / program).chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def _saved(text: str) -> list[str]:
    ruleset = parse_ruleset_text(text, source="s").ruleset
    return [render_save(ruleset, family, stamp=lambda: "T") for family in ruleset.families()]


@pytest.mark.parametrize("name", SCRIPTS)
def test_expansion_matches_bash(name: str, stub_path: str, tmp_path: Path) -> None:
    script = tmp_path / "fw.sh"
    script.write_text(SCRIPTS[name])
    ran = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True,
                         env={"PATH": stub_path}, timeout=30)
    assert ran.stdout, ran.stderr
    assert _saved(SCRIPTS[name]) == _saved(ran.stdout)
