"""Sweeps on Dask: a scheduler and two workers in their own processes on loopback, the same lines as local."""

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from capsim.cli import main
from capsim.on_dask import ClusterError, run_on_dask
from capsim.parallel import SeedJob, replay_template, run_sweep
from tests.common import sweep_jobs

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "lin-kv-partitions.toml"


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; yields the scheduler's address."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    where = tmp_path_factory.mktemp("dask")
    file = where / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # the daemons write to these until the fixture's teardown closes them
    logs = [open(where / f"{name}.log", "w") for name in ("scheduler", "worker1", "worker2")]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        for log in logs[1:]:
            procs.append(
                subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


@pytest.mark.slow
def test_a_sweep_through_a_dask_scheduler_gives_the_local_lines(scheduler, tmp_path, capsys):
    """capsim chaos --seeds 1-6 --cluster ADDRESS: the same verdict, counts and digest per seed as locally."""
    remote, local = tmp_path / "remote.jsonl", tmp_path / "local.jsonl"
    first = main(["chaos", str(SCENARIO), "--seeds", "1-6", "--cluster", scheduler, "--results", str(remote)])
    second = main(["chaos", str(SCENARIO), "--seeds", "1-6", "--workers", "2", "--results", str(local)])
    assert first == second

    def lines(path):
        return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda line: line["seed"])

    assert lines(remote) == lines(local) and len(lines(remote)) == 6
    assert all(line["digest"] for line in lines(remote))


@pytest.mark.slow
def test_a_seed_that_kills_its_dask_worker_is_reported_crashed(scheduler):
    """A seed that SIGKILLs whichever worker runs it ends as 'crashed' with its replay; the others run."""
    job = SeedJob(functools.partial(sweep_jobs.seed_line_killing, {3}), replay_template("replay --seed "))
    lines = {line["seed"]: line for line in run_on_dask(job, list(range(6)), scheduler)}
    assert sorted(lines) == list(range(6))
    assert lines[3]["status"] == "crashed" and lines[3]["replay"] == "replay --seed 3"
    assert [lines[s]["status"] for s in (0, 1, 2, 4, 5)] == ["pass", "fail", "pass", "pass", "fail"]


@pytest.mark.slow
def test_cluster_local_starts_its_own_dask_cluster():
    """--cluster local: a LocalCluster of the given workers, the same lines as this process."""
    job = SeedJob(sweep_jobs.seed_line, replay_template("replay --seed "))
    there = sorted(run_sweep(job, range(8), workers=2, cluster="local"), key=lambda line: line["seed"])
    assert there == sorted(run_sweep(job, range(8)), key=lambda line: line["seed"])


def test_an_unreachable_scheduler_is_a_clear_error():
    """A scheduler that does not answer: ClusterError saying how to start one (exit 2 from the CLI)."""
    job = SeedJob(sweep_jobs.seed_line, replay_template("replay --seed "))
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        list(run_on_dask(job, [1], "tcp://127.0.0.1:9", connect_timeout=1))
