"""Every command that writes checks where it writes before it starts (capsim/output.py)."""

import os

import pytest

from capsim.cli import UsageError, main
from capsim.output import writable_dir, writable_file

SCENARIO = "scenarios/lin-kv-partitions.toml"

#: every command that takes --out DIR, with arguments that would otherwise run it (quickly or not)
WRITERS = {
    "cap": ["cap"],
    "pacelc": ["pacelc"],
    "demo": ["demo", "caching", "--quick"],
    "demo partition": ["demo"],
    "chaos": ["chaos", SCENARIO],
    "chaos --seeds": ["chaos", SCENARIO, "--seeds", "1-2"],
    "chaos --real": ["chaos", "--real", SCENARIO],
}


@pytest.mark.parametrize("argv", WRITERS.values(), ids=WRITERS.keys())
def test_an_out_that_is_a_file_is_refused_before_anything_runs(tmp_path, capsys, argv):
    """--out naming an existing file: one line, exit 2, nothing run, the file untouched."""
    taken = tmp_path / "notes.txt"
    taken.write_text("the user's notes\n")
    assert main([*argv, "--out", str(taken)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "a file is there; give a directory" in captured.err
    assert taken.read_text() == "the user's notes\n"


def test_an_out_that_cannot_be_made_is_refused(tmp_path, capsys):
    """A directory under a file cannot be made: exit 2, saying so."""
    (tmp_path / "f").write_text("")
    assert main(["demo", "caching", "--quick", "--out", str(tmp_path / "f" / "report")]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_writable_dir_makes_a_missing_directory_and_leaves_nothing_in_it(tmp_path):
    """A missing directory is made (with its parents) and left empty: the probe file is gone."""
    out = writable_dir(tmp_path / "a" / "b")
    assert out.is_dir() and list(out.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_writable_dir_refuses_a_read_only_directory(tmp_path):
    """A directory without write permission is refused."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UsageError, match="cannot write there"):
            writable_dir(locked)
    finally:
        locked.chmod(0o700)


def test_writable_file_refuses_a_directory_and_a_missing_parent_and_keeps_an_existing_file(tmp_path):
    """A file --out: a directory or a missing parent is refused; an existing file is not touched by the check."""
    with pytest.raises(UsageError, match="a directory is there"):
        writable_file(tmp_path)
    with pytest.raises(UsageError, match="no directory"):
        writable_file(tmp_path / "missing" / "history.jsonl")
    kept = tmp_path / "history.jsonl"
    kept.write_text("old\n")
    assert writable_file(kept) == kept and kept.read_text() == "old\n"


def test_cluster_workload_checks_its_out_before_running(tmp_path, capsys):
    """capsim cluster workload --out DIR/ (a directory) is refused before a client starts."""
    from emulator.transport.processes import ClusterState, NodeProcess

    state = tmp_path / "state.json"
    ClusterState("lin-kv", "t", [NodeProcess("n0", "http://127.0.0.1:1", ["x"], "n0.log")]).save(state)
    assert main(["cluster", "workload", "--state", str(state), "--out", str(tmp_path)]) == 2
    assert "a directory is there; give a file name" in capsys.readouterr().err


def test_every_command_with_an_out_option_is_in_the_battery_above():
    """Each (sub)command that takes --out is one the tests above run with a bad --out: the claim covers them all."""
    import argparse

    from capsim.cli import build_parser

    def with_out(parser: argparse.ArgumentParser, prefix: str) -> set[str]:
        found = {prefix} if any("--out" in action.option_strings for action in parser._actions) else set()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found |= with_out(sub, f"{prefix} {name}".strip())
        return found

    covered = {argv[0] for argv in WRITERS.values()} | {"cluster workload"}
    assert with_out(build_parser(), "") == covered
