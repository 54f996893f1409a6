"""Tests of capsim/examples.py: the scenarios shipped in the package, run by name from anywhere."""

import fnmatch
from pathlib import Path

import pytest

from capsim.cli import main
from capsim.examples import scenario_names, scenario_path
from faults import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_every_shipped_scenario_is_listed_and_loads():
    """The names are the files in capsim/scenarios/, and each one loads as a scenario."""
    names = scenario_names()
    assert names == sorted(p.stem for p in (ROOT / "capsim" / "scenarios").glob("*.toml"))
    assert "lin-kv-partitions" in names and len(names) >= 6
    for name in names:
        assert load_scenario(scenario_path(name)).phases


def test_the_package_data_rule_ships_every_scenario_file():
    """pyproject.toml's package-data for capsim matches every scenario file, so a wheel carries them all."""
    import tomllib

    rules = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["capsim"]
    for path in (ROOT / "capsim" / "scenarios").glob("*.toml"):
        relative = path.relative_to(ROOT / "capsim").as_posix()
        assert any(fnmatch.fnmatch(relative, rule) for rule in rules), relative


def test_the_clone_keeps_scenarios_beside_the_readme():
    """scenarios/ at the top of a clone is the shipped directory, so paths in older notes keep working."""
    assert (ROOT / "scenarios").resolve() == (ROOT / "capsim" / "scenarios").resolve()


def test_a_shipped_scenario_runs_by_name_from_another_directory(tmp_path, monkeypatch, capsys):
    """capsim chaos lin-kv-partitions, run outside the tree: it passes and its replay command names it."""
    monkeypatch.chdir(tmp_path)
    assert main(["chaos", "lin-kv-partitions"]) == 0
    out = capsys.readouterr().out
    assert "PASSED  replay: capsim chaos lin-kv-partitions --seed 1" in out


def test_a_shipped_scenario_runs_by_name_over_a_seed_range(tmp_path, monkeypatch, capsys):
    """--seeds runs the named scenario in worker processes (they get its file)."""
    monkeypatch.chdir(tmp_path)
    assert main(["chaos", "lin-kv-crashes", "--seeds", "1-2", "--jobs", "1"]) == 0
    assert "2 of 2 seeds passed" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["lin-kv-partition", "nosuch"])
def test_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch, capsys, text):
    """A name that is no file and no shipped scenario: one line listing the shipped names, exit 2."""
    monkeypatch.chdir(tmp_path)
    assert main(["chaos", text]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no shipped scenario of that name" in err and "lin-kv-partitions" in err


def test_a_local_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    """A file of the same name in the working directory is the one given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lin-kv-partitions").write_text("")
    assert scenario_path("lin-kv-partitions") == Path("lin-kv-partitions")
    assert scenario_path("lin-kv-partitions.toml").parent.name == "scenarios"


def test_chaos_help_lists_every_shipped_scenario(capsys):
    """README: 'capsim chaos --help lists them' (the shipped scenarios), every one."""
    with pytest.raises(SystemExit) as stopped:
        main(["chaos", "--help"])
    assert stopped.value.code == 0
    printed = "".join(capsys.readouterr().out.split())  # --help wraps names at their hyphens
    assert [name for name in scenario_names() if name not in printed] == []
