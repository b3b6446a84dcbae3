from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.netns import Testbed

#: The seed recipe exactly as pasted (typographic dashes included: the parser reads
#: them as ``--`` with a warning). Source: tests/data/seeds/ipt_recent_howto.txt.
SEED = """\
iptables -N SSH_CHECK
iptables -I INPUT -p tcp –dport 22 -m state –state NEW -j SSH_CHECK
iptables -I SSH_CHECK -m state –state NEW -m recent –set –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –update –seconds 60 –hitcount 4 –name SSH
iptables -I SSH_CHECK -m state –state NEW -m recent –rcheck –seconds 60 –hitcount 4 –name SSH -j DROP
"""
SEED_FILE = Path(__file__).resolve().parents[1] / "data" / "seeds" / "ipt_recent_howto.txt"


def seed_text(seconds: int = 60, v6: bool = False) -> str:
    """The recipe; another window replaces only the ``60``; ``v6`` adds the ip6tables lines."""
    text = SEED.replace("–seconds 60", f"–seconds {seconds}")
    return text + text.replace("iptables ", "ip6tables ") if v6 else text


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed.rules"
    path.write_text(seed_text())
    return path


def _root_netns() -> str:
    if os.geteuid() != 0:
        return "needs root"
    if not shutil.which("iptables-legacy") or not shutil.which("ip"):
        return "needs iptables-legacy and iproute2"
    return ""


@pytest.fixture
def testbed() -> Iterator[Testbed]:
    reason = _root_netns()
    if reason:
        pytest.skip(reason)
    bed = Testbed()
    try:
        yield bed.up()
    finally:
        bed.down()
