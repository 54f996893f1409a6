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
import collections
import contextvars
import functools
import gc
import heapq
import itertools
import math
import sys
import threading
import weakref
from asyncio import constants, coroutines, events
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from contextvars import Context
from typing import Any, TypeVar, TypeVarTuple

from emulator.errors import ConfigError, Deadlock, Unfinished
from emulator.handles import (
    HANDLE_RUNNERS,
    NS,
    OWNER,
    SLEEP_CALLBACK,
    TIMER_RUNNERS,
    LeanHandle,
    LeanTimerHandle,
    Periodic,
    SleepTimer,
    owner_of,
    run_handle,
    run_timer,
    schedule_tick,
    to_ns,
    wake_sleep,
)
from emulator.loopbase import LoopBase, describe_task, trim_own_frames
from emulator.netloop import NetLoop
from emulator.validate import is_number

__all__ = ["NS", "OWNER", "VirtualLoop"]

_heappush = heapq.heappush
_heappop = heapq.heappop
_new = object.__new__
_owner = OWNER.get
_copy_context = contextvars.copy_context
_MAX_FIFOS = 64  # distinct recurring delays with a FIFO of their own; others go to the heap
_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

#: a kernel event or a callback's runner, called with its one argument
Fn = Callable[[Any], object]
#: a heap entry: ``(when_ns, seq, fn, arg)``, or ``(when_ns, seq, fn, arg, fifo)`` for the head of a FIFO
Entry = tuple[Any, ...]


# NetLoop first: its simulated sockets replace LoopBase's refusals.
class VirtualLoop(NetLoop, LoopBase):
    """An asyncio event loop whose clock is virtual.

    Use it through ``emulator.Simulation``; on its own, drive it with
    ``run_until_complete`` like any loop, or a callback at a time with
    ``step()``.
    """

    #: The young-generation GC threshold while the loop runs (None: leave the collector alone).
    gc_young: int | None = 50_000

    def __init__(self) -> None:
        self._now = 0  # nanoseconds
        self._time = 0.0  # the same, as float seconds, cached for time()
        self._ready: collections.deque[tuple[Fn, Any]] = collections.deque()
        self._timers: list[Entry] = []  # heap of (when_ns, seq, fn, arg), and the head of each FIFO below
        # Timers of a delay that recurs (sleeps of one length, periodic ticks) fall due in the order
        # they are set: each delay keeps a FIFO of (when_ns, seq, fn, arg, fifo), only its head in the heap.
        self._fifos: dict[int, collections.deque[Entry]] = {}
        self._delays_seen: dict[int, None] = {}  # delays seen once: a second sighting gets a FIFO
        self._seq = itertools.count()
        self._cancelled_timers = 0
        self._paused: dict[str, list[tuple[Fn, Any]]] = {}  # owner -> held (fn, arg) in order
        self._running = False
        self._stopping = False
        self._closed = False
        self._debug = False
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

    # -- clock and scheduling --------------------------------------------------

    def time(self) -> float:
        """Virtual seconds since the loop was made."""
        return self._time

    def time_ns(self) -> int:
        """Virtual nanoseconds since the loop was made (exact)."""
        return self._now

    def push_at(self, when_ns: int, fn: Fn, arg: Any) -> None:
        """Run ``fn(arg)`` at virtual time ``when_ns`` (>= ``time_ns()``): the kernel's own events.

        Same-instant events run in the order pushed, after the asyncio
        callbacks already due. No handle: such an event cannot be cancelled,
        so ``fn`` checks for itself whether it still applies. Bind it once
        (``push = loop.push_at``) where it runs per message.
        """
        _heappush(self._timers, (when_ns, next(self._seq), fn, arg))

    def push_after(self, delay_ns: int, fn: Fn, arg: Any, not_before: int = 0) -> int:
        """Run ``fn(arg)`` after ``delay_ns`` (>= 0) virtual ns, but not before ``not_before``; return when.

        ``push_at`` relative to now, with a floor: a FIFO link passes the
        time of its previous message so a message never overtakes it.
        """
        when = self._now + delay_ns
        if when < not_before:
            when = not_before
        _heappush(self._timers, (when, next(self._seq), fn, arg))
        return when

    def push_recurring(self, delay_ns: int, fn: Fn, arg: Any) -> None:
        """Run ``fn(arg)`` after ``delay_ns`` (>= 0) virtual ns: ``push_after`` for a delay that recurs.

        The same order as ``push_after``. Timers of one delay fall due in the
        order they are set, so such a delay gets a FIFO with only its head in
        the heap: a thousand heartbeats due at once are taken from it without
        a heap operation each.
        """
        when = self._now + delay_ns
        fifo = self._fifos.get(delay_ns)
        if fifo is None:
            fifo = self._fifo_for(delay_ns)
            if fifo is None:
                _heappush(self._timers, (when, next(self._seq), fn, arg))
                return
        entry = (when, next(self._seq), fn, arg, fifo)
        if not fifo:
            _heappush(self._timers, entry)
        fifo.append(entry)

    def _fifo_for(self, delay_ns: int, recurs: bool = False) -> collections.deque[Entry] | None:
        """A FIFO for a delay seen before or known to recur (else None), if there are not too many."""
        seen = self._delays_seen
        if delay_ns not in seen and not recurs:
            if len(seen) >= 1024:
                seen.clear()
            seen[delay_ns] = None
            return None
        fifos = self._fifos
        if len(fifos) >= _MAX_FIFOS:
            for delay in [d for d, fifo in fifos.items() if not fifo]:
                del fifos[delay]
            if len(fifos) >= _MAX_FIFOS:
                # Any deque its timers go into in order is a valid FIFO: a periodic timer keeps its own.
                return collections.deque() if recurs else None
        fifo = fifos[delay_ns] = collections.deque()
        return fifo

    def push_soon(self, fn: Fn, arg: Any) -> None:
        """Run ``fn(arg)`` after what is already ready, at the current time."""
        self._ready.append((fn, arg))

    def call_soon(
        self, callback: Callable[[*_Ts], object], *args: *_Ts, context: Context | None = None
    ) -> asyncio.Handle:
        if self._closed or self._debug:
            return self._call_soon_checked(callback, args, context)
        handle = _new(LeanHandle)  # LeanHandle(callback, args, self, context), without an __init__ frame
        handle._context = context if context is not None else _copy_context()
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        self._ready.append((run_handle, handle))
        return handle

    def _call_soon_checked(
        self, callback: Callable[..., object], args: tuple[Any, ...], context: Context | None
    ) -> asyncio.Handle:
        # call_soon on a closed loop, or in debug mode: refuse, or use asyncio's own Handle (it
        # records where it was made, for the error reports of debug mode).
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = trim_own_frames(events.Handle(callback, args, self, context))
        self._ready.append((run_handle, handle))
        return handle

    def call_later(  # type: ignore[override]  # for asyncio.sleep's callback it returns a SleepTimer
        self, delay: float, callback: Callable[[*_Ts], object], *args: *_Ts, context: Context | None = None
    ) -> asyncio.TimerHandle | SleepTimer:
        if self._closed or self._debug:
            return self._call_later_checked(delay, callback, args, context)
        if type(delay) is float and 0.0 <= delay < math.inf:  # the common case, inlined (asyncio.sleep)
            delay_ns = round(delay * NS)
            when_ns = self._now + delay_ns
            if callback is SLEEP_CALLBACK and context is None:
                sleep = _new(SleepTimer)  # SleepTimer(self, when_ns, *args), without an __init__ frame
                sleep._loop = self
                sleep._when_ns = when_ns
                sleep._future, sleep._result = args  # type: ignore[misc]  # SLEEP_CALLBACK's (future, result)
                sleep.owner = _owner()
                sleep._cancelled = False
                fifo = self._fifos.get(delay_ns)
                if fifo is None:
                    fifo = self._fifo_for(delay_ns)
                    if fifo is None:
                        _heappush(self._timers, (when_ns, next(self._seq), wake_sleep, sleep))
                        return sleep
                entry = (when_ns, next(self._seq), wake_sleep, sleep, fifo)
                if not fifo:
                    _heappush(self._timers, entry)
                fifo.append(entry)
                return sleep
            handle = LeanTimerHandle(when_ns / NS, callback, args, self, context)
            _heappush(self._timers, (when_ns, next(self._seq), run_timer, handle))
            return handle
        later = to_ns(delay)
        return self._call_at_ns(None if later is None else self._now + later, callback, args, context)

    def call_at(  # type: ignore[override]  # as call_later
        self, when: float, callback: Callable[[*_Ts], object], *args: *_Ts, context: Context | None = None
    ) -> asyncio.TimerHandle | SleepTimer:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        when_ns = to_ns(when)
        if when_ns is not None and when_ns <= self._now and when > self._time:
            # A time still ahead of time() that rounds to now: run it 1 ns later, or code that re-arms a
            # timer which ran "early" (aiohttp's keep-alive check) would re-arm it at this instant forever.
            when_ns = self._now + 1
        return self._call_at_ns(when_ns, callback, args, context)

    def _call_later_checked(
        self, delay: float, callback: Callable[..., object], args: tuple[Any, ...], context: Context | None
    ) -> asyncio.TimerHandle | SleepTimer:
        # call_later on a closed loop or in debug mode: refuse, or record where the handle was made.
        if self._closed:
            raise RuntimeError("Event loop is closed")
        delay_ns = to_ns(delay)
        return self._call_at_ns(None if delay_ns is None else self._now + max(0, delay_ns), callback, args, context)

    def call_every(
        self,
        interval: float,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> Periodic:
        """Run ``callback(*args)`` every ``interval`` virtual seconds, the first time one interval from now.

        The loop's fast path for periodic work (a heartbeat): one timer, no
        task, future or handle per tick. The next tick is due an interval
        after a tick runs, so a tick held by a pause runs at the resume and
        the ones after it an interval apart, as a loop of ``asyncio.sleep``
        would. If the callback raises, the timer stops and the exception
        goes to ``on_error(exc)`` (default: the loop's exception handler).

        Raises:
            ConfigError: ``interval`` is not a finite number of seconds > 0.
        """
        if not is_number(interval, gt=0, lt=math.inf):
            raise ConfigError(f"call_every needs an interval of seconds > 0, got {interval!r}")
        interval_ns = max(1, round(interval * NS))
        fifo = self._fifos.get(interval_ns)
        if fifo is None:
            fifo = self._fifo_for(interval_ns, recurs=True)
        assert fifo is not None  # recurs=True always gives one
        timer = Periodic(self, interval_ns, fifo, callback, args, context, on_error)
        schedule_tick(timer)
        return timer
        return timer

    def _call_at_ns(
        self, when_ns: int | None, callback: Callable[..., object], args: tuple[Any, ...], context: Context | None
    ) -> asyncio.TimerHandle | SleepTimer:
        if when_ns is None:  # at infinity: a handle that can be cancelled, and never fires
            never = LeanTimerHandle(math.inf, callback, args, self, context)
            never._scheduled = False
            return never
        when_ns = max(when_ns, self._now)  # a time in the past means now: the clock never goes back
        if callback is SLEEP_CALLBACK and context is None:
            sleep = SleepTimer(self, when_ns, *args)
            _heappush(self._timers, (when_ns, next(self._seq), wake_sleep, sleep))
            return sleep
        handle: asyncio.TimerHandle | LeanTimerHandle
        if self._debug:  # asyncio's own TimerHandle, which records where it was made
            handle = trim_own_frames(events.TimerHandle(when_ns / NS, callback, args, self, context))
            handle._scheduled = True  # type: ignore[attr-defined]  # private, not in the stubs
        else:
            handle = LeanTimerHandle(when_ns / NS, callback, args, self, context)
        _heappush(self._timers, (when_ns, next(self._seq), run_timer, handle))
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle | SleepTimer) -> None:
        # Cancelled timers stay in the heap and are skipped when popped; compact
        # the heap when they dominate, as asyncio's own loop does.
        self._cancelled_timers += 1
        cancelled = self._cancelled_timers
        if cancelled > 64 and cancelled * 2 > len(self._timers) and cancelled * 2 > self.pending_timers():
            self._compact()

    def _compact(self) -> None:
        def live(t: Entry) -> bool:
            return not (t[2] in TIMER_RUNNERS and t[3]._cancelled)

        timers = self._timers
        fifos = [t[4] for t in timers if len(t) == 5]  # each FIFO once: its head is in the heap
        for fifo in fifos:
            kept = [t for t in fifo if live(t)]
            fifo.clear()
            fifo.extend(kept)
        # In place: the scheduler holds a reference to this list.
        timers[:] = [t for t in timers if len(t) == 4 and live(t)] + [fifo[0] for fifo in fifos if fifo]
        heapq.heapify(timers)
        self._cancelled_timers = 0

    # -- pausing (stop-the-world, per owner) ---------------------------------------

    def pause_owner(self, owner: str) -> None:
        """Hold every callback of ``owner`` from now until ``resume_owner``."""
        self._paused.setdefault(owner, [])

    def resume_owner(self, owner: str) -> None:
        """Release ``owner``'s held callbacks, in the order they fell due."""
        for item in self._paused.pop(owner, ()):
            self._ready.append(item)

    # -- running ---------------------------------------------------------------

    def _loop(self, done: Callable[[], bool], until_ns: int | None) -> str:
        """Run callbacks and advance time; say why it ended: done, stopped, until or idle.

        The scheduler step: one function with local names, because it runs
        once per message. Callbacks ready now run as one batch (what they
        schedule runs in the next); then the clock jumps to the next timer and
        every timer due at that instant becomes ready, in scheduling order.
        """
        ready = self._ready
        pop = ready.popleft
        timers = self._timers
        paused = self._paused
        while True:
            if ready:
                for _ in range(len(ready)):
                    fn, arg = pop()
                    if paused and fn in HANDLE_RUNNERS:
                        owner = owner_of(fn, arg)
                        if owner in paused:
                            paused[owner].append((fn, arg))
                            continue
                    fn(arg)
            if done():
                return "done"
            if self._stopping:
                return "stopped"
            if ready:
                continue
            while timers:  # skip cancelled asyncio timers
                head = timers[0]
                if head[2] in TIMER_RUNNERS and head[3]._cancelled:
                    self._pop_timer()
                    if self._cancelled_timers:
                        self._cancelled_timers -= 1
                    continue
                break
            else:
                return self._idle(until_ns)
            when = head[0]
            if until_ns is not None and when > until_ns:
                return self._idle(until_ns)
            if when != self._now:
                self._now = when
                self._time = when / NS
            _heappop(timers)
            if len(head) == 5:  # the head of a FIFO: its next timer takes its place in the heap
                fifo = head[4]
                fifo.popleft()
                if fifo:
                    _heappush(timers, fifo[0])
            if not timers or timers[0][0] != when:
                # The common case: one event at this instant; run it without queueing.
                fn, arg = head[2], head[3]
                if paused and fn in HANDLE_RUNNERS:
                    owner = owner_of(fn, arg)
                    if owner in paused:
                        paused[owner].append((fn, arg))
                        continue
                fn(arg)
                continue
            ready.append((head[2], head[3]))
            while timers and timers[0][0] == when:
                entry = _heappop(timers)
                ready.append((entry[2], entry[3]))
                if len(entry) == 5:
                    # Take the rest of its FIFO due now while it stays ahead of the heap: no heap operations.
                    fifo = entry[4]
                    fifo.popleft()
                    while fifo:
                        entry = fifo[0]
                        if entry[0] != when or (timers and timers[0] < entry):
                            _heappush(timers, entry)
                            break
                        fifo.popleft()
                        ready.append((entry[2], entry[3]))

    def _pop_timer(self) -> Entry:
        """Pop the heap's first timer; if it heads a FIFO, the FIFO's next timer takes its place."""
        entry = _heappop(self._timers)
        if len(entry) == 5:
            fifo = entry[4]
            fifo.popleft()
            if fifo:
                _heappush(self._timers, fifo[0])
        return entry

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

    def pending_timers(self) -> int:
        """How many timers are set, cancelled ones not yet dropped included (a diagnostic)."""
        # A FIFO's head is in the heap as well as in its FIFO.
        return len(self._timers) + sum(len(t[4]) - 1 for t in self._timers if len(t) == 5)

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

    def _idle(self, until_ns: int | None) -> str:
        if until_ns is None:
            return "idle"
        if until_ns > self._now:
            self._now = until_ns
            self._time = until_ns / NS
        return "until"

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
        until_ns = None if until is None or until == math.inf else to_ns(until)
        future.add_done_callback(_stop_loop)
        previous = self._enter()
        try:
            why = self._loop(_never, until_ns)
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
        until_ns = None if until is None or until == math.inf else to_ns(until)
        if until_ns is not None and until_ns < self._now:
            return
        previous = self._enter()
        try:
            self._loop(_never, until_ns)
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
        self._fifos.clear()


def _stop_loop(future: asyncio.Future[Any]) -> None:
    # run_until_complete's done-callback, as asyncio's _run_until_complete_cb
    if not future.cancelled():
        exc = future.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            return  # the loop is already stopping with it
    future.get_loop().stop()


def _never() -> bool:
    return False
