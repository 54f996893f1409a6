"""Tests of capsim/parallel.py: lines per seed, wherever they run; results files that resume; crashes go on."""

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from capsim.cli import main
from capsim.parallel import (
    ResultsFile,
    ResultsMismatch,
    SeedJob,
    map_unordered,
    positive_int,
    positive_number,
    replay_template,
    run_sweep,
    seconds_value,
    seed_range,
    seed_value,
    with_progress,
    workers_for,
)
from tests.common import sweep_jobs
from tests.common.processes import processes_mentioning

JOB = SeedJob(sweep_jobs.seed_line, replay_template("replay --seed "))


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


@pytest.mark.parametrize("text", ["# my notes\n", "hello", '{"seed": 1}\n', "[1, 2]\n"])
def test_a_file_that_is_not_a_results_file_is_named_so_without_resume_and_left_as_it_was(tmp_path, text):
    """Without --resume a non-empty file that holds no sweep's lines is called not a results file (no --resume hint)."""
    path = tmp_path / "notes.txt"
    path.write_text(text)
    with pytest.raises(ResultsMismatch, match=r"notes.txt is not a capsim results file .*nothing was written") as info:
        ResultsFile(path, resume=False, job=JOB)
    assert "--resume" not in str(info.value)
    assert path.read_text() == text


def test_a_results_file_whose_only_line_was_cut_short_still_says_add_resume(tmp_path):
    """A sweep killed while writing its first line left a results file: without --resume, the hint is --resume."""
    path = tmp_path / "r.jsonl"
    path.write_text('{"seed": 3, "sta')
    with pytest.raises(ResultsMismatch, match="add --resume"):
        ResultsFile(path, resume=False, job=JOB)


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
    from capsim.parallel import ProgressLines

    monkeypatch.setattr(ProgressLines, "every", 0.0)
    assert main(["chaos", "lin-kv-partitions", "--seeds", "1-2", "--workers", "1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("capsim: seeds")]
    assert all("0 failed, 0 crashed" in line and "s so far" in line for line in lines)
    assert [line.split(",")[0] for line in lines] == ["capsim: seeds 1 of 2", "capsim: seeds 2 of 2"]


def test_a_seed_that_raises_is_an_error_line_with_its_traceback():
    """An exception in the seed's function becomes that seed's error line (type, message, traceback), not a crash."""
    job = SeedJob(functools.partial(sweep_jobs.raise_on, {4}), replay_template("replay --seed "))
    lines = {line["seed"]: line for line in run_sweep(job, [4])}
    assert lines[4]["status"] == "error"
    assert lines[4]["error"].startswith("ValueError: bad item 4\n") and "Traceback" in lines[4]["error"]
    assert lines[4]["replay"] == "replay --seed 4"


def test_a_garbled_line_before_the_last_is_refused_and_the_file_kept_whole(tmp_path):
    """A complete line that is not a sweep's line (not the half-written last one) refuses the file, untouched.

    Dropping it and every line after it, as resuming once did, deleted the seeds after it.
    """
    path = tmp_path / "results.jsonl"
    good = json.dumps({"seed": 1, "status": "pass", "replay": "replay --seed 1"}) + "\n"
    text = good + '{"seed": 2, "sta\n' + good.replace("1", "3")
    path.write_text(text)
    with pytest.raises(ResultsMismatch, match=r"line 2 is not a line of a sweep.*left as it is"):
        ResultsFile(path, resume=True, job=JOB)
    assert path.read_text() == text


@pytest.mark.parametrize(
    "text",
    [
        "# capsim\n\nA README, not results.\n",
        "a notes file with no newline at its end",
        "[1, 2]\n",
        "null\n",
        '{"seed": 1, "replay": "replay --seed 1"}\n',  # no status
        '{"seed": true, "status": "pass", "replay": "replay --seed True"}\n',
        '{"seed": 1, "status": "maybe", "replay": "replay --seed 1"}\n',
        '{"seed": 1, "status": "error", "replay": "replay --seed 1"}\n',  # an error line without its error
    ],
)
def test_resuming_from_a_file_that_is_not_a_sweeps_refuses_it_and_leaves_it_as_it_was(tmp_path, text):
    """--resume given a foreign or hand-edited file: ResultsMismatch naming the line; the file is not truncated."""
    path = tmp_path / "notes.jsonl"
    path.write_text(text)
    with pytest.raises(ResultsMismatch, match=r"notes.jsonl: line 1 is not a line of a sweep"):
        ResultsFile(path, resume=True, job=JOB)
    assert path.read_text() == text


_GOOD_LINES = st.builds(
    lambda seed, status: (
        json.dumps(
            {"seed": seed, "status": status, "replay": f"replay --seed {seed}"}
            | ({"error": "E"} if status in ("error", "crashed") else {}),
            sort_keys=True,
        )
        + "\n"
    ),
    st.integers(0, 50),
    st.sampled_from(["pass", "fail", "error", "crashed"]),
)
_ANY_LINES = _GOOD_LINES | st.text(max_size=30).map(lambda t: t + "\n") | st.sampled_from(["[1]\n", "null\n", "{}\n"])


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_ANY_LINES, max_size=6), tail=st.sampled_from(["", '{"seed": 9, "sta', "notes", "{"]))
def test_resuming_never_loses_a_line_of_a_file(tmp_path_factory, lines, tail):
    """Whatever a results file holds, --resume either refuses it and leaves every byte, or takes every line of it
    and drops at most a last line cut short ('{...' with no newline); nothing else of the file is ever removed."""
    path = tmp_path_factory.mktemp("r") / "results.jsonl"
    text = "".join(lines) + tail
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    before = path.read_bytes()
    try:
        with ResultsFile(path, resume=True, job=JOB) as results:
            done = results.done
    except ResultsMismatch:
        assert path.read_bytes() == before
        return
    after = path.read_bytes()
    assert after == before or (tail.startswith("{") and after == before[: len(before) - len(tail.encode())])
    assert sorted(done) == sorted({json.loads(line)["seed"] for line in lines})


def test_a_results_file_that_is_a_directory_says_to_give_a_file_in_it(tmp_path):
    """A directory given as the results file: ResultsMismatch saying to name a file in it, with or without --resume."""
    for resume in (False, True):
        with pytest.raises(ResultsMismatch, match=r"is a directory; give a file, such as .*results.jsonl"):
            ResultsFile(tmp_path, resume=resume, job=JOB)


@pytest.mark.parametrize("workers", [1, 2])
def test_map_unordered_yields_every_result_once_and_names_a_job_that_raised(workers):
    """In this process or in workers: each job's result once; a job that raises stops it with the job and reason."""
    assert sorted(map_unordered(sweep_jobs.square, [1, 2, 3, 4], workers)) == [1, 4, 9, 16]
    with pytest.raises((RuntimeError, ValueError), match="bad item 3"):
        list(map_unordered(functools.partial(sweep_jobs.raise_on, {3}), [1, 2, 3], workers))


def test_with_progress_returns_every_result_and_reports_each(capsys):
    """with_progress runs every job, calls on_result after each with the results so far, and returns them."""
    seen = []
    results = with_progress(
        Console(), "squares", sweep_jobs.square, [1, 2, 3], 1, lambda progress, task, so_far: seen.append(len(so_far))
    )
    assert sorted(results) == [1, 4, 9] and seen == [1, 2, 3]


@pytest.mark.parametrize(
    "parse, text, expected",
    [
        (seed_range, "3-5", range(3, 6)),
        (seed_range, "0-0", range(0, 1)),
        (seed_value, "0", 0),
        (positive_int, "2", 2),
        (seconds_value, "0", 0.0),
        (seconds_value, "2.5", 2.5),
        (positive_number, "1e-3", 0.001),
    ],
)
def test_argument_types_accept_what_they_say(parse, text, expected):
    """--seeds A-B is inclusive from 0; a seed is >= 0; a positive int is >= 1."""
    assert parse(text) == expected


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (seed_range, "5-3", "0 <= A <= B"),
        (seed_range, "7", "such as 1-20"),
        (seed_range, "-2-1", "such as 1-20"),
        (seed_range, "a-b", "such as 1-20"),
        (seed_value, "-1", "whole number >= 0"),
        (seed_value, "x", "whole number >= 0"),
        (positive_int, "0", "positive whole number"),
        (positive_int, "two", "positive whole number"),
        (seconds_value, "-1", "finite number of seconds >= 0"),
        (seconds_value, "nan", "finite number of seconds >= 0"),
        (seconds_value, "inf", "finite number of seconds >= 0"),
        (positive_number, "0", "finite number > 0"),
        (positive_number, "inf", "finite number > 0"),
        (positive_number, "nan", "finite number > 0"),
        (positive_number, "soon", "finite number > 0"),
    ],
)
def test_argument_types_refuse_with_an_example(parse, text, message):
    """A bad seed range, seed or count is an argparse error saying what is expected."""
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse(text)


def test_workers_for_is_as_asked_else_one_per_core_and_never_more_than_jobs(monkeypatch):
    """--workers wins; without it one per core; never more workers than jobs, never fewer than one."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert (workers_for(10, 2), workers_for(10, None), workers_for(3, None), workers_for(0, None)) == (2, 4, 3, 1)
