"""Tests of capsim/commands/sweeps.py: --results, --resume and --cluster through capsim chaos, and their checks."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsim.cli import main
from tests.common.imports import modules_at_fork, modules_of
from tests.common.processes import processes_mentioning

ROOT = str(Path(__file__).resolve().parents[3])

SCENARIO = """
name = "tiny"
checks = ["linearizable", "lost-writes"]
[cluster]
protocol = "lin-kv"
nodes = 3
[workload]
clients = 2
rate = 20
keys = 2
timeout = 0.5
[[phases]]
name = "faults"
duration = 2.0
[phases.faults]
kinds = { crash = 1, partition = 1 }
interval = 0.5
duration = [0.2, 0.5]
[[phases]]
name = "settle"
duration = 1.0
heal = true
"""


def scenario(tmp_path) -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO)
    return str(path)


def test_a_chaos_sweep_writes_a_line_per_seed_and_resumes(tmp_path, capsys):
    """--results writes one JSON line per seed; --resume runs only the seeds missing, with the same digests."""
    path, results = scenario(tmp_path), tmp_path / "results.jsonl"
    assert main(["chaos", path, "--seeds", "1-3", "--workers", "2", "--results", str(results)]) == 0
    first = {json.loads(line)["seed"]: json.loads(line) for line in results.read_text().splitlines()}
    assert sorted(first) == [1, 2, 3] and first[2]["replay"] == f"capsim chaos {path} --seed 2"
    assert main(["chaos", path, "--seeds", "1-5", "--workers", "1", "--results", str(results), "--resume"]) == 0
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(line["seed"] for line in lines) == [1, 2, 3, 4, 5]
    assert "5 of 5 seeds passed" in capsys.readouterr().out
    fresh = tmp_path / "fresh.jsonl"
    assert main(["chaos", path, "--seeds", "1-5", "--workers", "1", "--results", str(fresh)]) == 0
    assert sorted(lines, key=lambda line: line["seed"]) == sorted(
        (json.loads(line) for line in fresh.read_text().splitlines()), key=lambda line: line["seed"]
    )


def test_resume_refuses_lines_run_from_the_scenario_before_it_was_edited(tmp_path, capsys):
    """Each line carries a digest of the files its run read; --resume after an edit of the scenario is one line,
    exit 2, and the file is left as it was (it mixed the 3-node seeds with the 5-node one in one table)."""
    path, results = scenario(tmp_path), tmp_path / "results.jsonl"
    assert main(["chaos", path, "--seeds", "1-2", "--workers", "1", "--results", str(results)]) == 0
    before = results.read_text()
    assert all(len(json.loads(line)["inputs"]) == 16 for line in before.splitlines())
    Path(path).write_text(SCENARIO.replace("nodes = 3", "nodes = 5"))
    capsys.readouterr()
    assert main(["chaos", path, "--seeds", "1-3", "--workers", "1", "--results", str(results), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "line 1 (seed 1) was run from other contents of the files this sweep reads" in err
    assert "run the edited one into another results file" in err and results.read_text() == before
    Path(path).write_text(SCENARIO)  # edited back: the same digest, so it resumes
    assert main(["chaos", path, "--seeds", "1-3", "--workers", "1", "--results", str(results), "--resume"]) == 0


def test_resume_refuses_lines_of_a_cap_config_file_before_it_was_edited(tmp_path, capsys):
    """capsim cap --config FILE.toml: the same for the file of configurations."""
    config, results = tmp_path / "q.toml", tmp_path / "r.jsonl"
    config.write_text('[[config]]\nname = "q"\nprotocol = "quorum"\nsettings = { n = 3, r = 2, w = 2 }\n')
    argv = ["cap", "--config", str(config), "--duration", "1", "--partition-at", "0.2", "--heal-at", "0.7"]
    argv += ["--workers", "1", "--results", str(results)]
    assert main([*argv, "--seeds", "1-1"]) == 0
    config.write_text(
        '[[config]]\nname = "q"\nprotocol = "quorum"\nsettings = { n = 3, r = 1, w = 1, sloppy = true }\n'
    )
    capsys.readouterr()
    assert main([*argv, "--seeds", "1-2", "--resume"]) == 2
    assert "was run from other contents of the files this sweep reads" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--resume"], "--resume goes with --seeds"),
        (["--seeds", "1-2", "--resume"], "--resume needs the results file"),
        (["--cluster", "local"], "--cluster goes with --seeds"),
    ],
)
def test_sweep_flags_are_checked(tmp_path, capsys, argv, message):
    """Sweep flags without --seeds, or --resume without a file: exit 2 with the reason."""
    assert main(["chaos", scenario(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_resuming_into_a_file_that_is_not_the_sweeps_exits_2_and_leaves_it_whole(tmp_path, capsys):
    """--resume --results README.md (a mistake): exit 2 saying which line is not a sweep's; not a byte is lost."""
    notes = tmp_path / "README.md"
    notes.write_text("# notes\n\nnot results\n")
    argv = ["chaos", scenario(tmp_path), "--seeds", "1-2", "--workers", "1", "--results", str(notes), "--resume"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "line 1 is not a line of a sweep" in err and "Traceback" not in err
    assert notes.read_text() == "# notes\n\nnot results\n"


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_a_results_path_that_cannot_be_a_file_exits_2_saying_what_to_give(tmp_path, capsys, where):
    """--results naming a directory, or a path under a regular file: exit 2, one line that says what to give."""
    (tmp_path / "plain").write_text("x")
    path = tmp_path if where == "a directory" else tmp_path / "plain" / "results.jsonl"
    assert main(["chaos", scenario(tmp_path), "--seeds", "1-2", "--workers", "1", "--results", str(path)]) == 2
    err = capsys.readouterr().err
    assert ("is a directory; give a file" if where == "a directory" else "plain is a file, not a directory") in err
    assert "[Errno" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("address", ["nope", "", "tcp://host", "host:port", "tcp://host:99999"])
def test_a_cluster_address_that_is_not_one_is_refused_before_the_sweep_starts(tmp_path, capsys, address):
    """--cluster nope (no port): exit 2, one line with an example, no progress bar (it was a Dask traceback)."""
    argv = ["chaos", scenario(tmp_path), "--seeds", "1-2", "--cluster", address]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert f"--cluster {address!r}: expected a Dask scheduler's address such as tcp://HOST:8786" in out.err
    assert "Traceback" not in out.err and "0/2" not in out.out + out.err


def test_cluster_without_dask_is_refused_before_the_sweep_starts(tmp_path, capsys, monkeypatch):
    """--cluster with Dask missing: exit 2 naming the extra, and no progress bar drawn first."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    results = tmp_path / "results.jsonl"
    argv = ["chaos", scenario(tmp_path), "--seeds", "1-2", "--cluster", "local", "--results", str(results)]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert "pip install 'capsim[cluster]'" in out.err
    assert "seeds" not in out.out and "seeds" not in out.err.replace("--seeds", "")
    assert not results.exists()  # refused before the results file was opened


def test_a_chaos_sweep_forks_its_workers_holding_all_a_seed_imports_and_nothing_of_the_other_commands():
    """The parent imports, once and before it forks, every module a seed needs: no worker imports one again.

    And nothing of another command (capsim cap's experiments, the report, the version lookup) is imported on
    the way, since that is paid before any worker starts.
    """
    scenario = "capsim/scenarios/lin-kv-partitions.toml"
    [at_fork] = modules_at_fork("chaos", scenario, "--seeds", "1-2", "--workers", "2")
    needed = modules_of(f"from capsim.commands.chaos import run_seed\nrun_seed({scenario!r}, None, 1)")
    assert needed - at_fork == set()
    assert not {"capsim.cap", "capsim.report", "importlib.metadata", "aiohttp", "distributed"} & at_fork


def test_sigterm_stops_a_sweep_as_ctrl_c_does_and_it_resumes(tmp_path):
    """kill PID (SIGTERM: a CI runner's timeout, docker stop) in the middle of a sweep: exit 130, how to resume,
    no worker left, and --resume finishes it. It exited 143 with neither the note nor its workers stopped."""
    results = tmp_path / "results.jsonl"
    argv = [sys.executable, "-m", "capsim", "chaos", scenario(tmp_path), "--seeds", "1-400", "--workers", "2"]
    argv += ["--results", str(results)]
    sweep = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60  # wall-clock ok: until a first seed is written
    while time.monotonic() < deadline and not (results.exists() and results.read_text().count("\n") >= 2):
        time.sleep(0.1)
    sweep.send_signal(signal.SIGTERM)
    out, err = sweep.communicate(timeout=30)
    assert sweep.returncode == 130, (out, err)
    assert "run the same command with --resume" in err and "Traceback" not in err  # a note: stderr, not the table
    time.sleep(0.5)
    assert processes_mentioning(str(tmp_path)) == []
    done = [json.loads(line)["seed"] for line in results.read_text().splitlines()]
    assert 2 <= len(done) < 400
    resume = ["chaos", scenario(tmp_path), "--seeds", "1-400", "--workers", "2", "--results", str(results), "--resume"]
    assert main(resume) == 0
    assert sorted(json.loads(line)["seed"] for line in results.read_text().splitlines()) == list(range(1, 401))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_results_file_that_fills_up_is_named(tmp_path, capsys):
    """A full disk said '[Errno 28] No space left on device', naming no file (found by a review)."""
    assert main(["chaos", scenario(tmp_path), "--seeds", "1-2", "--workers", "1", "--results", "/dev/full"]) == 2
    assert "cannot write /dev/full (No space left on device)" in capsys.readouterr().err


def test_resume_takes_the_same_scenario_spelled_another_way(tmp_path, capsys, monkeypatch):
    """'tiny.toml' then './tiny.toml' (or its absolute path, after a cd): the same file, so the same sweep; it was
    refused as 'results of another sweep'. Another file is still refused."""
    scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "r.jsonl"
    assert main(["chaos", "tiny.toml", "--seeds", "1-2", "--workers", "1", "--results", str(results)]) == 0
    assert (
        main(["chaos", "./tiny.toml", "--seeds", "1-3", "--workers", "1", "--results", str(results), "--resume"]) == 0
    )
    assert "3 of 3 seeds passed" in capsys.readouterr().out
    (tmp_path / "other.toml").write_text(SCENARIO)  # the same text, another file
    assert main(["chaos", "other.toml", "--seeds", "1-4", "--workers", "1", "--results", str(results), "--resume"]) == 2
    assert "holds results of another sweep" in capsys.readouterr().err
