"""A virtual-time asyncio event loop.

``VirtualLoop`` runs ordinary asyncio code (``sleep``, ``wait_for``,
``timeout``, queues, locks, ``gather``, ``TaskGroup``, cancellation) on a
clock that only moves when nothing is ready: it then jumps to the next timer,
so a simulated hour costs no wall time.

Time is kept as an integer count of nanoseconds, so repeated steps never drift
(10**6 sleeps of 1 ms end at exactly 1000.0). Timers live in one heap ordered
by ``(when, seq)``: callbacks due at the same instant run in the order they
were scheduled, whatever the platform, which stock asyncio does not promise.
A delay that recurs (the length of a sleep in a loop, a periodic interval)
gets a FIFO of its own with only its head in the heap: timers of one delay
fall due in the order they are set, so the order is the same, and a thousand
heartbeats due at one instant leave without a heap operation each.

Computation costs no virtual time, as in SimPy: the clock moves only when
nothing is ready. So a task that spins on ``await asyncio.sleep(0)`` until a
timer fires spins forever at the same instant (under stock asyncio real time
passes while it spins, and the timer fires): that is a livelock here, on
purpose, since letting a spin move the clock would make time depend on how
many steps code takes. Wait on the thing itself (an ``Event``, a future) or
sleep a positive delay. Otherwise the loop behaves as asyncio's own, down to
what CPython's test suite checks (``scripts/asyncio_conformance.py``):
``run_until_complete`` stops through a done-callback, async generators are
finalised, a closed loop refuses new callbacks, errors go to the ``asyncio``
logger, and debug mode (``PYTHONASYNCIODEBUG``) records where handles were made.

Threads, executors and real I/O are refused with ``NotAllowed``: they run
outside virtual time and would make a run impossible to replay.

Scheduled work is a pair ``(fn, arg)`` run as ``fn(arg)``. The kernel's own
events (message deliveries, node starts) go in as such pairs through
``push_at``, ``push_after`` and ``push_soon``; asyncio handles go through
their runners (:mod:`emulator.handles`). ``asyncio.sleep`` takes a fast path:
its timer is one small ``SleepTimer`` that sets the sleeper's future when it
falls due, instead of a ``TimerHandle`` that runs asyncio's
``_set_result_unless_cancelled`` through a copy of the context; it wakes in
exactly the order and at exactly the time it did, so traces do not change.
``call_every`` is a periodic timer with no task or future at all.

The clock, the timers and the run loop are :mod:`emulator.scheduler`'s
``Scheduler``, with a compiled twin of its hot methods in front when the C
extension is built (:mod:`emulator.speedups`; ``CAPSIM_PURE_PYTHON=1`` runs the
pure-Python reference instead, with the same traces).

A debugger can single-step a run with ``step()`` (one callback) and look at
``peek()`` (the next event's time), as in SimPy.

While it runs, the loop raises the garbage collector's young-generation
threshold to ``VirtualLoop.gc_young`` (restoring it after). A run allocates
short-lived objects (messages, timers, futures) at a high rate, and with
CPython's default of 700 the ones still in flight get promoted and trigger
full collections, each a scan of every object of a large cluster: that made
a 10,000-node run cost twice as much per message as a 1,000-node one.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import math
import sys
import threading
import weakref
from asyncio import constants, coroutines, events
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, TypeVar

from emulator.errors import Deadlock, Unfinished
from emulator.handles import NS, OWNER, TIMER_RUNNERS, owner_of, to_ns
from emulator.loopbase import LoopBase, describe_task
from emulator.netloop import NetLoop
from emulator.scheduler import Core, Entry, Scheduler

__all__ = ["NS", "OWNER", "VirtualLoop"]

_T = TypeVar("_T")


# The scheduler core first (compiled or not, emulator.scheduler), then NetLoop: its simulated sockets
# replace LoopBase's refusals.
class VirtualLoop(Core, NetLoop, LoopBase):
    """An asyncio event loop whose clock is virtual.

    Use it through ``emulator.Simulation``; on its own, drive it with
    ``run_until_complete`` like any loop, or a callback at a time with
    ``step()``.
    """

    #: The young-generation GC threshold while the loop runs (None: leave the collector alone).
    gc_young: int | None = 50_000

    def __init__(self) -> None:
        Scheduler.__init__(self)
        self._running = False
        self._thread_id: int | None = None
        self._exception_handler = None
        self._task_factory = None
        self._gc_saved: tuple[int, ...] | None = None
        self._saved_hooks: sys._asyncgen_hooks | None = None
        self._asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        # Bound once, without a Python frame: every sleep and rpc makes a future, and every
        # future asks its loop get_debug().
        self.create_future = functools.partial(asyncio.Future, loop=self)  # type: ignore[method-assign]
        self.get_debug = functools.partial(bool, False)  # type: ignore[method-assign]
        if coroutines._is_debug_mode():  # type: ignore[attr-defined]  # private, not in the stubs  # PYTHONASYNCIODEBUG=1 or python -X dev, as asyncio's loops
            self.set_debug(True)
        #: exceptions that reached the loop's exception handler, oldest first
        self.unhandled: list[dict[str, Any]] = []
        #: callables returning more lines for a deadlock report (the simulation's rpcs)
        self.waiter_reports: list[Callable[[], list[str]]] = []

    # -- pausing (stop-the-world, per owner) ---------------------------------------

    def pause_owner(self, owner: str) -> None:
        """Hold every callback of ``owner`` from now until ``resume_owner``."""
        self._paused.setdefault(owner, [])

    def hold_if_paused(self, owner: str, fn: Callable[[Any], Any], arg: Any) -> bool:
        """If ``owner`` is paused, hold ``fn(arg)`` with its callbacks until ``resume_owner``; whether it was held."""
        held = self._paused.get(owner)
        if held is None:
            return False
        held.append((fn, arg))
        return True

    def resume_owner(self, owner: str) -> None:
        """Release ``owner``'s held callbacks, in the order they fell due."""
        for item in self._paused.pop(owner, ()):
            self._ready.append(item)

    # -- running ---------------------------------------------------------------

    def _run_once(self) -> None:
        """One iteration, as asyncio's loops' private ``_run_once`` (asyncio's own tests call it).

        Moves the clock to the next timer if nothing is ready, makes every
        timer due then ready, and runs what is ready now.
        """
        previous = self._enter()
        try:
            if not self._ready:
                head = self._next_timer()
                if head is not None:
                    if head[0] != self._now:
                        self._now = head[0]
                        self._time = head[0] / NS
                    while self._timers and self._timers[0][0] == self._now:
                        entry = self._pop_timer()
                        self._ready.append((entry[2], entry[3]))
            for _ in range(len(self._ready)):
                self._step()
        finally:
            self._exit(previous)

    def _next_timer(self) -> Entry | None:
        """The first timer that is not cancelled (dropping cancelled ones on the way), or None."""
        timers = self._timers
        while timers:
            head = timers[0]
            if not (head[2] in TIMER_RUNNERS and head[3]._cancelled):
                return head
            self._pop_timer()
            if self._cancelled_timers:
                self._cancelled_timers -= 1
        return None

    def peek(self) -> float:
        """The virtual time of the next event in seconds: now if a callback is ready, inf if none is left.

        Callable from outside the loop, between ``step()`` calls (SimPy's ``Environment.peek``).
        """
        if self._ready:
            return self._time
        head = self._next_timer()
        return math.inf if head is None else head[0] / NS

    def step(self) -> bool:
        """Run the next callback, moving the clock to it first if need be; False when nothing is left.

        Runs callbacks in exactly the order ``run_until_complete`` would, one
        per call, so a debugger can single-step a simulation (SimPy's
        ``Environment.step``). Call it from outside the loop. A callback of a
        paused node is held, as in a run, and counts as a step.
        """
        previous = self._enter()
        try:
            return self._step()
        finally:
            self._exit(previous)

    def _step(self) -> bool:
        ready = self._ready
        if not ready:
            head = self._next_timer()
            if head is None:
                return False
            when = head[0]
            if when != self._now:
                self._now = when
                self._time = when / NS
            while self._timers and self._timers[0][0] == when:
                entry = self._pop_timer()
                ready.append((entry[2], entry[3]))
        fn, arg = ready.popleft()
        owner = owner_of(fn, arg) if self._paused else None
        if owner in self._paused:
            self._paused[owner].append((fn, arg))
        else:
            fn(arg)
        return True

    def _check_runnable(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._running:
            raise RuntimeError(
                "This event loop is already running: the simulation is already running; call sim.run() "
                "from outside it, and inside it await coroutines instead"
            )
        # Unlike asyncio's loops, it may run inside another running loop (a pytest-asyncio test, say):
        # it saves that loop as the running one and puts it back after.

    def _enter(self) -> asyncio.AbstractEventLoop | None:
        self._check_runnable()
        previous = events._get_running_loop()
        events._set_running_loop(self)
        self._running = True
        self._stopping = False
        self._thread_id = threading.get_ident()
        self._saved_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook)
        if self._debug:
            sys.set_coroutine_origin_tracking_depth(constants.DEBUG_STACK_DEPTH)
        saved = gc.get_threshold()
        if self.gc_young is not None and saved[0] < self.gc_young:
            self._gc_saved = saved
            gc.set_threshold(self.gc_young, *saved[1:])
        return previous

    def _exit(self, previous: asyncio.AbstractEventLoop | None) -> None:
        self._running = False
        self._stopping = False
        self._thread_id = None
        sys.set_asyncgen_hooks(*self._saved_hooks)  # type: ignore[misc]  # saved by _enter
        if self._debug:
            sys.set_coroutine_origin_tracking_depth(0)
        if self._gc_saved is not None:
            gc.set_threshold(*self._gc_saved)
            self._gc_saved = None
        events._set_running_loop(previous)

    def run_until_complete(self, future: Awaitable[_T] | Generator[Any, None, _T], until: float | None = None) -> _T:
        """Run until ``future`` is done and return its result.

        As asyncio's loops do, the loop stops through a done-callback of the
        future: callbacks that were ready when it finished (its other
        callbacks, the first step of a task created at the end) run first.

        Raises:
            Deadlock: nothing is scheduled, yet the future is not done.
            Unfinished: virtual time ``until`` came before the future was done.
        """
        self._check_runnable()
        new_task = not asyncio.isfuture(future)
        future = asyncio.ensure_future(future, loop=self)  # type: ignore[arg-type]  # it refuses a generator itself
        if new_task:
            future._log_destroy_pending = False  # type: ignore[attr-defined]  # a Task's, not in the stubs  # an error in the run is raised here; no second report
        until_ns = None if until is None else to_ns(until)  # None: no end (inf, or past RANGE_END)
        future.add_done_callback(_stop_loop)
        previous = self._enter()
        try:
            why = self._loop(None, until_ns)
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()  # the error propagates from here: do not also log it as never retrieved
            raise
        finally:
            future.remove_done_callback(_stop_loop)
            self._exit(previous)
        if future.done():
            return future.result()
        if why == "stopped":
            raise RuntimeError("Event loop stopped before Future completed.")
        if why == "until":
            raise Unfinished(f"virtual time reached t={until} before {describe_task(future)} finished")
        raise Deadlock(self.deadlock_report(future))

    def run_until(self, until: float | None) -> None:
        """Run until virtual time ``until`` (or, with None, until nothing is left)."""
        until_ns = None if until is None else to_ns(until)  # None: no end (inf, or past RANGE_END)
        if until_ns is not None and until_ns < self._now:
            return
        previous = self._enter()
        try:
            self._loop(None, until_ns)
        finally:
            self._exit(previous)

    def run_forever(self) -> None:
        """Run until ``stop()`` is called or nothing is left to do."""
        self.run_until(None)

    def stop(self) -> None:
        self._stopping = True

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._running:
            raise RuntimeError("cannot close a running simulation loop")
        self._closed = True
        self._ready.clear()
        self._timers.clear()
        self._timers_changed()
        self._fifos.clear()


def _stop_loop(future: asyncio.Future[Any]) -> None:
    # run_until_complete's done-callback, as asyncio's _run_until_complete_cb
    if not future.cancelled():
        exc = future.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            return  # the loop is already stopping with it
    future.get_loop().stop()
