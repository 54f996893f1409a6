"""Persistent worker processes that survive their own workers dying.

``WorkerPool(n)`` starts ``n`` processes once, and each takes items in
chunks. ``imap_unordered(function, items)`` yields an ``Outcome`` per item as
soon as it is done, in completion order; ``submit(function, items)`` hands
every worker its first chunk at once and ``outcomes()`` reads them later, so
the workers run while the caller does something else first (a sweep imports
rich and draws its progress bar). On Linux the first workers are
forked, so they start with everything the parent imported (a spawned worker
spends about half a second importing capsim again, which a 20-seed sweep
cannot win back); ``start()`` forks them before the caller starts any thread
(a progress bar's). A worker that replaces a dead one is spawned: by then
threads may run, and forking a process with threads is unsafe.

Why not ``multiprocessing.Pool``: when one of its workers is killed (by the
kernel's OOM killer, say) it waits forever for the lost task. Here every
worker's process sentinel is watched beside its pipe: when a worker dies, the
item it was running comes back as ``died`` with the exit status, the rest of
its chunk goes back in the queue, a fresh worker takes its place, and the
sweep goes on. Workers ignore Ctrl-C (the parent stops them) and stop by
themselves when the parent goes away (killed, even by SIGKILL: their pipe
closes), once the item they are running is done. Only pipes and
processes are used, no semaphores or shared memory, so an interrupted sweep
leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import ForkContext, SpawnContext
from typing import Any

__all__ = ["Outcome", "WorkerPool", "WorkerStartError", "describe_exit", "heap_frozen"]

_START_TIMEOUT = 120.0  # seconds a worker may take to import before it is called broken


class WorkerStartError(RuntimeError):
    """A worker process could not start (an import failed, or it died while starting)."""


@dataclass(frozen=True)
class Outcome:
    """What became of one item.

    Attributes:
        item: the item.
        status: ``"done"`` (``value`` holds the result), ``"raised"`` (``error``
            holds the exception and its traceback) or ``"died"`` (the worker
            process ended while running it; ``error`` says how).
    """

    item: object
    status: str
    value: object = None
    error: str = ""


def describe_exit(exitcode: int | None) -> str:
    """'killed by SIGKILL' or 'exit status 3', for a process's exit code."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    """Within: every object alive at the start is out of the cyclic collector's sight (``gc.freeze``).

    Around a fork, as the gc docs advise: a forked worker's collections do not
    walk the parent's objects (the modules, the scenario), so they neither
    spend the time nor copy the pages those objects sit on. Around a sweep in
    this process, the same saving for its full collections. Objects frozen
    before (by someone else) stay frozen; the rest go back at the end.
    """
    if gc.get_freeze_count():
        yield  # already frozen by the caller: theirs to undo
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _serve(conn, inherited: tuple = ()) -> None:
    """A worker's life: take (function, items), answer one message per item; stop on None, EOF or a closed pipe.

    ``inherited``: the parent's ends of pipes a forked worker got a copy of (its own, and those of the workers
    forked before it). They are closed first: while a worker held them, its pipe never closed when the
    parent died, and it ran on for ever.
    """
    for end in inherited:
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the command's handler a forked worker inherits
    try:
        _answer(conn)
    except (EOFError, OSError):  # BrokenPipeError included: the parent is gone, and there is no one to tell
        return


def _answer(conn) -> None:
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        except Exception:
            conn.send(("broken", traceback.format_exc()))
            return
        if message is None:
            return
        function, items = message
        for item in items:
            try:
                result = function(item)
            except Exception as exc:
                conn.send(("raised", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
                continue
            try:
                conn.send(("done", result))
            except (EOFError, OSError):
                raise  # the pipe closed: the parent is gone
            except Exception as exc:  # the result does not pickle
                conn.send(("raised", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


class _Worker:
    def __init__(self, context: SpawnContext | ForkContext, others: Sequence[_Worker] = ()) -> None:
        self.conn, child = context.Pipe(duplex=True)
        # A forked child gets copies of the parent's ends (its own, the other workers'): it closes them.
        # A spawned one gets only what it is passed.
        inherited = (self.conn, *(w.conn for w in others)) if isinstance(context, ForkContext) else ()
        self.process = context.Process(target=_serve, args=(child, inherited), daemon=True, name="capsim-worker")
        self.process.start()
        child.close()
        self.ready = False
        self.running: deque = deque()  # items sent, not yet answered, in the order it runs them

    def ask_to_stop(self) -> None:
        """Send the stop request (None): the worker ends after the chunk it is running."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass  # it is gone already


def _stop_all(workers: list[_Worker]) -> None:
    """Stop every worker at once, politely, then by signal; close their pipes.

    Each is asked first (so they all wind down together, and stopping N
    workers takes as long as the slowest, not the sum), then given 1 s in
    all; those still running get SIGTERM and 2 s more, then SIGKILL.
    """
    for worker in workers:
        worker.ask_to_stop()
    alive = _join(workers, 1.0)
    for worker in alive:
        worker.process.terminate()
    alive = _join(alive, 2.0)
    for worker in alive:
        worker.process.kill()
    _join(alive, None)
    for worker in workers:
        worker.conn.close()


def _join(workers: list[_Worker], timeout: float | None) -> list[_Worker]:
    """Wait up to ``timeout`` s in all (None: for ever) for the workers to end; those still running."""
    deadline = None if timeout is None else time.monotonic() + timeout  # wall-clock ok: a process's grace period
    for worker in workers:
        worker.process.join(None if deadline is None else max(0.0, deadline - time.monotonic()))  # wall-clock ok
    return [worker for worker in workers if worker.process.is_alive()]


class WorkerPool:
    """``workers`` persistent spawned processes; use as a context manager so they always stop.

    Args:
        workers: how many processes (>= 1).
        chunk: items sent to a worker at a time (None: a share of what is left,
            between 1 and 16, so the last items still spread over every worker).
    """

    def __init__(self, workers: int, chunk: int | None = None):
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {workers}")
        self.size = workers
        self.chunk = chunk
        self._spawn = multiprocessing.get_context("spawn")
        self._first = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else self._spawn
        self._workers: list[_Worker] = []
        self._function: Callable | None = None
        self._queue: deque = deque()  # items submitted, not sent to a worker yet
        self.deaths = 0

    def start(self) -> WorkerPool:
        """Start every worker now (forked on Linux): call it before starting any thread."""
        self._grow(self.size, self._first)
        return self

    def _grow(self, size: int, context: SpawnContext | ForkContext) -> None:
        with heap_frozen():  # forked workers start with the parent's objects frozen (see heap_frozen)
            while len(self._workers) < size:
                self._workers.append(_Worker(context, self._workers))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker, all at once (politely, then by signal), and close their pipes."""
        workers, self._workers = self._workers, []
        _stop_all(workers)

    def imap_unordered(self, function: Callable, items: Iterable) -> Iterator[Outcome]:
        """``function(item)`` for every item, in the workers; an ``Outcome`` per item as it finishes.

        ``function`` must pickle (a module-level function, or a ``functools.partial`` of one).

        Raises:
            WorkerStartError: a fresh worker could not start.
        """
        self.submit(function, items)
        yield from self.outcomes()

    def submit(self, function: Callable, items: Iterable) -> WorkerPool:
        """Queue ``function(item)`` for every item and send each worker its first chunk now; returns the pool.

        A worker still starting finds its chunk waiting in its pipe. Read the
        outcomes with ``outcomes()``; ``function`` must pickle (as for
        ``imap_unordered``).
        """
        self._function, self._queue = function, deque(items)
        self._grow(min(self.size, max(len(self._queue), 1)), self._first if not self.deaths else self._spawn)
        for worker in self._workers:
            if not worker.running and self._queue:
                self._send(worker, function, self._queue)
        return self

    def outcomes(self) -> Iterator[Outcome]:
        """An ``Outcome`` per item of the last ``submit``, as each finishes.

        Raises:
            WorkerStartError: a fresh worker could not start.
        """
        queue, function = self._queue, self._function
        if function is None:
            return  # nothing submitted
        while queue or any(w.running for w in self._workers):
            for worker in self._workers:
                if worker.ready and not worker.running and queue:
                    self._send(worker, function, queue)
            yield from self._collect(queue)

    def _send(self, worker: _Worker, function: Callable, queue: deque) -> None:
        size = self.chunk or max(1, min(16, len(queue) // (4 * len(self._workers))))
        chunk = [queue.popleft() for _ in range(min(size, len(queue)))]
        worker.running.extend(chunk)
        worker.conn.send((function, chunk))

    def _collect(self, queue: deque) -> Iterator[Outcome]:
        by_handle: dict[Any, _Worker] = {}  # connections and process sentinels (ints)
        for worker in self._workers:
            by_handle[worker.conn] = worker
            by_handle[worker.process.sentinel] = worker
        starting = [w for w in self._workers if not w.ready]
        ready = wait(list(by_handle), timeout=_START_TIMEOUT if starting else None)
        if not ready and starting:
            raise WorkerStartError(f"a worker process did not start within {_START_TIMEOUT:.0f} s")
        for worker in {id(by_handle[h]): by_handle[h] for h in ready}.values():
            yield from self._drain(worker)
            if not worker.process.is_alive() or worker.process.sentinel in ready:
                yield from self._bury(worker, queue)

    def _drain(self, worker: _Worker) -> Iterator[Outcome]:
        """Every answer waiting on the worker's pipe."""
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "ready":
                    worker.ready = True
                    continue
                if message[0] == "broken":
                    raise WorkerStartError(f"a worker could not load the job:\n{message[1]}")
                item = worker.running.popleft()
                if message[0] == "done":
                    yield Outcome(item, "done", value=message[1])
                else:
                    yield Outcome(item, "raised", error=message[1])
        except (EOFError, OSError):
            pass  # it died; _bury deals with what it held

    def _bury(self, worker: _Worker, queue: deque) -> Iterator[Outcome]:
        """A worker died: its current item died with it, the rest of its chunk goes back in the queue."""
        worker.process.join()
        how = describe_exit(worker.process.exitcode)
        if not worker.ready:
            worker.conn.close()
            self._workers.remove(worker)
            raise WorkerStartError(f"a worker process died while starting ({how})")
        self.deaths += 1
        lost = list(worker.running)
        worker.conn.close()
        self._workers.remove(worker)
        if lost:
            queue.extendleft(reversed(lost[1:]))
            yield Outcome(lost[0], "died", error=f"the worker process running it died ({how})")
        if queue:
            self._workers.append(_Worker(self._spawn, self._workers))
