from recentd.rules import load_rules
from tests.live.conftest import SEED, SEED_FILE, seed_text


def test_seed_is_the_pasted_recipe_verbatim():
    pasted = [line for line in SEED_FILE.read_text().splitlines() if line.startswith("iptables")]
    assert pasted == SEED.splitlines()
    assert "–dport" in SEED


def test_seed_parses_with_one_dash_warning_per_line(tmp_path):
    path = tmp_path / "seed.rules"
    path.write_text(seed_text(v6=True))
    result = load_rules(path)
    assert len(result.notices) == 8
    assert all("typographic dash" in str(n) for n in result.notices)
