"""Seed sweeps: lines per seed, wherever they run; results files that resume; crashes that do not stop a sweep."""

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsim.cli import main
from capsim.parallel import ResultsFile, ResultsMismatch, SeedJob, replay_template, run_sweep
from tests.common import sweep_jobs
from tests.common.processes import processes_mentioning

JOB = SeedJob(sweep_jobs.seed_line, replay_template("replay --seed "))

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


def test_lines_are_the_same_in_this_process_and_in_workers():
    """Each seed's line (status, fields, replay command) is the same with one worker or three."""
    here = sorted(run_sweep(JOB, range(12), workers=1), key=lambda line: line["seed"])
    there = sorted(run_sweep(JOB, range(12), workers=3), key=lambda line: line["seed"])
    assert here == there
    assert here[3] == {"seed": 3, "status": "fail", "square": 9, "replay": "replay --seed 3"}


def test_a_seed_that_kills_its_worker_is_reported_crashed_and_the_sweep_goes_on():
    """SIGKILL while running seed 5: its line says crashed, killed by SIGKILL, with its replay; all others ran."""
    job = SeedJob(functools.partial(sweep_jobs.seed_line_killing, {5}), replay_template("replay --seed "))
    lines = {line["seed"]: line for line in run_sweep(job, range(10), workers=2)}
    assert sorted(lines) == list(range(10))
    assert lines[5]["status"] == "crashed" and "killed by SIGKILL" in lines[5]["error"]
    assert lines[5]["replay"] == "replay --seed 5"
    assert all(lines[s]["status"] in ("pass", "fail") for s in lines if s != 5)


def test_replay_templates_keep_braces_in_paths():
    """A path with braces in it stays as it is in the replay command."""
    assert (
        SeedJob(sweep_jobs.seed_line, replay_template("capsim chaos {x}.toml --seed ")).command(4)
        == "capsim chaos {x}.toml --seed 4"
    )


def test_a_results_file_resumes_and_drops_a_line_cut_short(tmp_path):
    """Resuming keeps complete lines, drops a half-written last one, and appends."""
    path = tmp_path / "r.jsonl"
    with ResultsFile(path, resume=False, job=JOB) as results:
        for line in run_sweep(JOB, [1, 2]):
            results.write(line)
    with path.open("a") as out:
        out.write('{"seed": 3, "sta')  # the sweep was killed mid-write
    with ResultsFile(path, resume=True, job=JOB) as results:
        assert sorted(results.done) == [1, 2]
        results.write(JOB.run_here(3))
    assert [json.loads(line)["seed"] for line in path.read_text().splitlines()] == [1, 2, 3]


def test_a_results_file_is_never_overwritten_or_mixed(tmp_path):
    """Without --resume a non-empty file is refused; lines of another sweep are refused too."""
    path = tmp_path / "r.jsonl"
    with ResultsFile(path, resume=False, job=JOB) as results:
        results.write(JOB.run_here(1))
    with pytest.raises(ResultsMismatch, match="add --resume"):
        ResultsFile(path, resume=False, job=JOB)
    other = SeedJob(sweep_jobs.seed_line, replay_template("other --seed "))
    with pytest.raises(ResultsMismatch, match="another sweep"):
        ResultsFile(path, resume=True, job=other)


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


def test_ctrl_c_stops_every_worker_leaks_nothing_and_the_sweep_resumes(tmp_path):
    """SIGINT mid-sweep: exit 130, no worker left, no leaked-semaphore warning; --resume finishes the rest."""
    pids = tmp_path / "pids"
    pids.mkdir()
    results = tmp_path / "results.jsonl"
    code = (
        "import functools, sys\n"
        "from capsim.parallel import SeedJob, ResultsFile, replay_template, sweep_with_progress\n"
        "from rich.console import Console\n"
        "from tests.common import sweep_jobs\n"
        f"job = SeedJob(functools.partial(sweep_jobs.slow_seed_noting_pid, {str(pids)!r}), "
        "replay_template('replay --seed '))\n"
        f"with ResultsFile({str(results)!r}, resume=len(sys.argv) > 1, job=job) as results:\n"
        "    sweep_with_progress(Console(), job, list(range(12)), 2, None, results)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    sweep = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while (not results.exists() or len(results.read_text().splitlines()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sweep.poll() is None, sweep.communicate()
    os.killpg(sweep.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
    _, err = sweep.communicate(timeout=30)
    assert sweep.returncode != 0 and "KeyboardInterrupt" in err and "leaked" not in err
    time.sleep(0.5)
    workers = [int(p.stem) for p in pids.iterdir()]
    assert workers and not any(Path(f"/proc/{pid}").exists() for pid in workers)
    done = len(results.read_text().splitlines())
    assert 2 <= done < 12
    resumed = subprocess.run(
        [sys.executable, "-c", code, "resume"], env=env, capture_output=True, text=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stderr
    seeds = sorted(json.loads(line)["seed"] for line in results.read_text().splitlines())
    assert seeds == list(range(12))
    assert processes_mentioning(str(pids)) == []


def test_the_readme_one_liner_lists_the_replay_commands_of_seeds_that_did_not_pass(tmp_path):
    """The README's command to collect failing seeds prints exactly their replay commands."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("python -c") and "l['replay']" in line)
    results = tmp_path / "every-fault.jsonl"
    with ResultsFile(results, resume=False, job=JOB) as out:
        for seed_line in run_sweep(JOB, range(6)):
            out.write(seed_line)
    printed = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert printed.splitlines() == ["replay --seed 1", "replay --seed 3", "replay --seed 5"]


def test_a_sweep_off_a_terminal_says_how_far_it_is_while_it_runs(monkeypatch, capsys):
    """capsim chaos --seeds into a log: a progress line on stderr as seeds finish, not only the table at the end."""
    from capsim.cli import main
    from capsim.parallel import ProgressLines

    monkeypatch.setattr(ProgressLines, "every", 0.0)
    assert main(["chaos", "lin-kv-partitions", "--seeds", "1-2", "--workers", "1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("capsim: seeds")]
    assert all("0 failed, 0 crashed" in line and "s so far" in line for line in lines)
    assert [line.split(",")[0] for line in lines] == ["capsim: seeds 1 of 2", "capsim: seeds 2 of 2"]
