"""Tests of capsim/commands/cluster.py: what `down` leaves behind, and --purge."""

from pathlib import Path

import pytest

from capsim.cli import main
from tests.common.processes import processes_mentioning


@pytest.fixture
def state(tmp_path):
    """A state file path; whatever a test leaves up there is stopped afterwards, pass or fail."""
    path = tmp_path / "cluster.json"
    yield path
    if path.exists():
        main(["cluster", "down", "--state", str(path)])


def test_down_names_the_directory_it_keeps_and_purge_removes_it_later(tmp_path, state, capsys):
    """down keeps cluster.d/ (logs, storage) and says where and how to remove it; down --purge then does."""
    assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["cluster", "down", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    workdir = tmp_path / "cluster.d"
    assert f"node logs and storage are kept in {workdir}/" in out
    assert f"capsim cluster down --purge --state {state}" in out
    assert sorted(p.name for p in workdir.iterdir()) == ["data", "n0.log", "n1.log"]
    assert main(["cluster", "down", "--purge", "--state", str(state)]) == 0
    assert f"removed {workdir}/" in capsys.readouterr().out and not workdir.exists()


def test_down_purge_stops_the_nodes_and_removes_everything(tmp_path, state, capsys):
    """down --purge on a running cluster: nodes stopped, state file and directory gone, no process left."""
    assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
    assert main(["cluster", "down", "--purge", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "stopped n0, n1" in out and "removed" in out
    assert list(tmp_path.iterdir()) == [] and processes_mentioning(str(tmp_path)) == []


def test_purge_keeps_a_directory_holding_files_capsim_did_not_make(tmp_path, capsys):
    """A stranger's file in cluster.d/: nothing is removed, exit 2, saying which file."""
    workdir = tmp_path / "cluster.d"
    (workdir / "data").mkdir(parents=True)
    (workdir / "n0.log").write_text("log\n")
    (workdir / "thesis.tex").write_text("years of work\n")
    assert main(["cluster", "down", "--purge", "--state", str(tmp_path / "cluster.json")]) == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert (workdir / "thesis.tex").read_text() == "years of work\n" and (workdir / "n0.log").exists()


def test_down_without_a_cluster_or_its_directory_is_a_usage_error(tmp_path, capsys):
    """down --purge with nothing there: exit 2, saying how to start a cluster."""
    assert main(["cluster", "down", "--purge", "--state", str(tmp_path / "none.json")]) == 2
    assert "capsim cluster up" in capsys.readouterr().err
    assert not Path(tmp_path / "none.d").exists()
