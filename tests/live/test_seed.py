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


def test_dry_run_prints_the_hooks_and_the_offload_plan_in_words(seed_file, tmp_path, capsys):
    """``recentd run --dry-run`` installs nothing: it prints the iptables commands it
    would run and, in words, what the kernel would drop once a source is banned."""
    from recentd.cli.main import main  # noqa: PLC0415

    assert main(["run", "--rules", str(seed_file), "--state-dir", str(tmp_path / "state"),
                 "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any("-j NFQUEUE" in line and "--dport 22:22" in line for line in out)
    assert out[-2] == ("# offload: a source with 4 hits in 60 s in list 'SSH' goes into an "
                       "nftables set; the kernel then drops its tcp to port 22, new "
                       "connections (IPv4, input) until the rule would stop matching")
    assert out[-1].endswith("seed.rules:5 (IPv4 INPUT → SSH_CHECK, list 'SSH'): offloaded")
    assert not (tmp_path / "state").exists()
