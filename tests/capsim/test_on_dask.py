"""Sweeps on Dask: a scheduler and two workers in their own processes on loopback, the same lines as local."""

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("distributed")

from capsim.cli import main
from capsim.on_dask import ClusterError, run_on_dask
from capsim.parallel import SeedJob, replay_template, run_sweep
from emulator.transport.processes import running
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


def test_an_address_dask_cannot_parse_is_a_clear_error_too():
    """run_on_dask given an address without a port (a caller that skipped the command's check): ClusterError."""
    job = SeedJob(sweep_jobs.seed_line, replay_template("replay --seed "))
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at nope: missing port number"):
        list(run_on_dask(job, [1], "nope", connect_timeout=1))


class _Future:
    def __init__(self, outcome):
        self.outcome = outcome

    def result(self):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def cancel(self):
        pass


class _Client:
    """A Dask client stand-in: runs each chunk at once, except that the first ``doomed`` attempts of a
    seed end as Dask ends a task whose workers died (KilledWorker)."""

    def __init__(self, doomed):
        self.doomed, self.attempts = dict(doomed), []

    def scheduler_info(self):
        return {"workers": {"w1": {}, "w2": {}}}

    def submit(self, fn, job, chunk, pure):
        from distributed import KilledWorker

        self.attempts.append(list(chunk))
        if any(self.doomed.get(seed, 0) > 0 for seed in chunk):
            for seed in chunk:
                self.doomed[seed] = self.doomed.get(seed, 0) - 1
            return _Future(KilledWorker("task", SimpleNamespace(address="tcp://127.0.0.1:1"), 3))
        return _Future(fn(job, chunk))

    def close(self):
        pass


class _AsCompleted:
    def __init__(self, futures):
        self.futures = list(futures)

    def add(self, future):
        self.futures.append(future)

    def __iter__(self):
        while self.futures:
            yield self.futures.pop(0)


@pytest.mark.parametrize(
    ("doomed", "crashed"),
    [
        ({5: 1}, set()),  # only waiting on a worker another seed killed: its second run passes
        ({3: 99}, {3}),  # kills every worker that runs it
        ({3: 99, 5: 1}, {3}),
    ],
)
def test_only_a_seed_whose_every_run_kills_its_worker_is_reported_crashed(monkeypatch, doomed, crashed):
    """Dask gives up (KilledWorker) on a task that was only queued on workers another seed killed: such
    a seed is run again and reported by its own outcome; one whose second run dies too is 'crashed'."""
    import distributed

    import capsim.on_dask as on_dask

    client = _Client(doomed)
    monkeypatch.setattr(on_dask, "_connect", lambda address, workers, timeout: (client, None))
    monkeypatch.setattr(distributed, "as_completed", _AsCompleted)
    job = SeedJob(sweep_jobs.seed_line, replay_template("replay --seed "))
    lines = {line["seed"]: line for line in run_on_dask(job, list(range(6)), "tcp://fake:8786")}
    assert sorted(lines) == list(range(6))
    assert {seed for seed, line in lines.items() if line["status"] == "crashed"} == crashed
    for seed in set(range(6)) - crashed:
        assert lines[seed]["status"] == ("pass" if seed % 2 == 0 else "fail")
    for seed in crashed:
        assert lines[seed]["replay"] == f"replay --seed {seed}" and client.attempts.count([seed]) == 2


@pytest.mark.slow  # 10-45 s: out of the default run (pyproject's slow marker); CI runs it when time allows
def test_ctrl_c_during_a_local_dask_sweep_is_one_line_and_leaves_no_worker(tmp_path):
    """Ctrl-C at the terminal reaches the whole process group: each LocalCluster worker printed a traceback (34 to 79
    lines in all). Started with SIGINT ignored, they leave it to capsim, which stops them: one line, exit 130."""
    import signal

    argv = [sys.executable, "-m", "capsim", "chaos", str(SCENARIO), "--seeds", "1-400", "--cluster", "local"]
    proc = subprocess.Popen(
        [*argv, "--workers", "2", "--results", str(tmp_path / "r.jsonl")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        results = tmp_path / "r.jsonl"
        while time.monotonic() < deadline and not (results.exists() and results.read_text(errors="replace").strip()):
            time.sleep(0.1)  # the workers are up once a seed's line is in
        assert proc.poll() is None, proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal sends it: to every process of the group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "capsim: interrupted", err
    time.sleep(1.0)
    assert _group(proc.pid) == [], "processes of the sweep's group are left"


def _group(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid and running(int(entry.name)):
                    found.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return found
