"""Persistent worker processes: every item answered, and a killed worker never hangs the pool."""

import functools
import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsim.workers import WorkerPool, WorkerStartError, describe_exit, heap_frozen
from tests.common import sweep_jobs

ROOT = str(Path(__file__).resolve().parents[2])


def test_every_item_comes_back_once_from_persistent_workers():
    """Forty items over two workers: each answered once, by processes started once."""
    with WorkerPool(2) as pool:
        outcomes = list(pool.imap_unordered(sweep_jobs.square, range(40)))
        pids = {w.process.pid for w in pool._workers}
        again = list(pool.imap_unordered(sweep_jobs.square, range(5)))
        assert {w.process.pid for w in pool._workers} == pids  # the same processes took the second batch
    assert sorted((o.item, o.value) for o in outcomes) == [(i, i * i) for i in range(40)]
    assert all(o.status == "done" for o in outcomes + again) and len(again) == 5


def test_a_killed_worker_loses_only_its_item_and_the_pool_goes_on():
    """SIGKILL in the middle of a chunk: that item 'died' (killed by SIGKILL), every other item is done."""
    job = functools.partial(sweep_jobs.kill_on, {3, 17})
    with WorkerPool(2, chunk=4) as pool:
        outcomes = {o.item: o for o in pool.imap_unordered(job, range(24))}
        assert pool.deaths == 2
    assert sorted(outcomes) == list(range(24))
    for item, outcome in outcomes.items():
        if item in (3, 17):
            assert outcome.status == "died" and "killed by SIGKILL" in outcome.error
        else:
            assert outcome.status == "done" and outcome.value == item * item
    assert multiprocessing.active_children() == []


def test_an_exception_is_an_outcome_with_its_traceback():
    """A job that raises reports the error and traceback; the worker takes the next item."""
    with WorkerPool(1) as pool:
        outcomes = {o.item: o for o in pool.imap_unordered(functools.partial(sweep_jobs.raise_on, {2}), range(4))}
    assert outcomes[2].status == "raised" and "ValueError: bad item 2" in outcomes[2].error
    assert "Traceback" in outcomes[2].error and outcomes[3].value == 9


def test_stopping_in_the_middle_leaves_no_process():
    """Leaving the pool mid-way (Ctrl-C in the consumer) stops every worker."""
    with pytest.raises(KeyboardInterrupt), WorkerPool(2) as pool:
        for _ in pool.imap_unordered(sweep_jobs.square, range(1000)):
            raise KeyboardInterrupt
    assert multiprocessing.active_children() == []


def test_a_job_a_worker_cannot_load_stops_the_pool_with_the_reason():
    """A job whose module does not import in the worker is a WorkerStartError naming it, not a hang."""
    job = functools.partial(sweep_jobs.raise_on, sweep_jobs.Unloadable())
    with pytest.raises(WorkerStartError, match="No module named 'gone'"), WorkerPool(1) as pool:
        list(pool.imap_unordered(job, [1, 2]))
    assert multiprocessing.active_children() == []


def test_exit_codes_are_described():
    """Negative exit codes name the signal."""
    assert describe_exit(-9) == "killed by SIGKILL" and describe_exit(3) == "exit status 3"


class _Stub:
    """A stand-in worker that logs what is done to it and ends at the ``ends_on`` step: ask, terminate or kill."""

    def __init__(self, name, ends_on, log):
        self.name, self.ends_on, self.log, self.alive = name, ends_on, log, True
        self.process, self.conn = self, self

    def _do(self, what):
        self.log.append((what, self.name))
        if what == self.ends_on:
            self.alive = False

    def ask_to_stop(self):
        self._do("ask")

    def terminate(self):
        self._do("terminate")

    def kill(self):
        self._do("kill")

    def join(self, timeout=None):
        self.log.append(("join", self.name))

    def is_alive(self):
        return self.alive

    def close(self):
        self.log.append(("close", self.name))


def _close_stubs(ends_on):
    log = []
    pool = WorkerPool(len(ends_on))
    pool._workers = [_Stub(i, end, log) for i, end in enumerate(ends_on)]
    pool.close()
    return log


def test_closing_asks_every_worker_before_waiting_for_any():
    """close() sends every stop request first, then waits: N workers stop together, not one after another."""
    log = _close_stubs(["ask", "ask", "ask"])
    assert log[:3] == [("ask", 0), ("ask", 1), ("ask", 2)]
    assert [what for what, _ in log[3:]] == ["join"] * 3 + ["close"] * 3


def test_closing_escalates_to_sigterm_then_sigkill_for_the_workers_that_stay():
    """A worker deaf to the request gets SIGTERM, one deaf to that SIGKILL; each signal goes to all at once."""
    log = _close_stubs(["ask", "terminate", "kill"])
    assert log == [
        *[("ask", 0), ("ask", 1), ("ask", 2)],
        *[("join", 0), ("join", 1), ("join", 2)],
        *[("terminate", 1), ("terminate", 2)],
        *[("join", 1), ("join", 2)],
        ("kill", 2),
        ("join", 2),
        *[("close", 0), ("close", 1), ("close", 2)],
    ]


def test_submitted_items_run_before_their_outcomes_are_read(tmp_path):
    """submit() hands each worker its first chunk at once: they work while the caller does something else."""
    with WorkerPool(2) as pool:
        pool.start().submit(functools.partial(sweep_jobs.note_item, str(tmp_path)), range(4))
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # no outcome read yet
        assert len(list(tmp_path.iterdir())) >= 2
        assert sorted(o.value for o in pool.outcomes()) == [0, 1, 2, 3]


def test_the_heap_is_frozen_within_and_thawed_after_unless_it_was_frozen_before():
    """heap_frozen() freezes what is alive and undoes only its own freeze; starting workers leaves none behind."""
    assert gc.get_freeze_count() == 0
    with heap_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with WorkerPool(1) as pool:
        pool.start()
        assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with heap_frozen():
            pass
        assert gc.get_freeze_count() == frozen  # the caller's freeze stands
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_stop_by_themselves_when_their_parent_dies(tmp_path, sig):
    """The parent of a running pool is killed (kill PID, kill -9): each worker ends once its item is done, quietly.

    A forked worker held the parent's end of its own pipe (and of the workers forked before it), so the pipe
    never closed and the workers ran on as orphans for ever.
    """
    script = (
        "import functools, sys\n"
        "from capsim.workers import WorkerPool\n"
        "from tests.common import sweep_jobs\n"
        f"job = functools.partial(sweep_jobs.slow_seed_noting_pid, {str(tmp_path)!r})\n"
        "pool = WorkerPool(3, chunk=2).start()\n"
        "for outcome in pool.imap_unordered(job, range(60)):\n"
        "    print(outcome.item, flush=True)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parent.stdout.readline()  # a first item is done: every worker is running
    pids = {int(p.stem) for p in tmp_path.glob("*.pid")}
    assert len(pids) == 3
    parent.send_signal(sig)
    parent.wait(10)
    deadline = time.monotonic() + 10  # wall-clock ok: an item takes 0.5 s
    try:
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids)
    finally:
        for pid in filter(_alive, pids):  # what this test started, if it failed
            os.kill(pid, signal.SIGKILL)
    assert b"Traceback" not in parent.stderr.read()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
