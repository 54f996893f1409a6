"""The scheduler core of the virtual loop: the clock, the timer heap and its FIFOs, and the run loop.

``Scheduler`` is the pure-Python reference. ``VirtualLoop`` (:mod:`emulator.loop`)
is built on ``Core``: this class, with the compiled ``emulator._speedups.Core``
in front of it when that is built and in use (:mod:`emulator.speedups`), whose
methods of the same names (``_loop``, ``push_at``, ``push_after``,
``push_soon``, ``call_soon``, ``call_later``) replace these line for line and
whose fields (``_now``, ``_timers``, ...) are slots Python code reads as
before. Whatever runs, the order and times of every callback are these
methods', so traces are the same: the tests run in both modes.

Time is kept as an integer count of nanoseconds. Timers live in one heap
ordered by ``(when, seq)``: callbacks due at the same instant run in the order
they were scheduled. A delay that recurs (the length of a sleep in a loop, a
periodic interval) gets a FIFO of its own with only its head in the heap:
timers of one delay fall due in the order they are set, so the order is the
same, and a thousand heartbeats due at one instant leave without a heap
operation each.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import itertools
from asyncio import events
from collections.abc import Callable
from contextvars import Context
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVarTuple

from emulator.errors import ConfigError
from emulator.handles import (
    HANDLE_RUNNERS,
    NS,
    OWNER,
    RANGE_END,
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
from emulator.loopbase import trim_own_frames
from emulator.speedups import native
from emulator.validate import is_number

__all__ = ["Core", "Entry", "Fn", "Hooks", "Scheduler"]

_heappush = heapq.heappush
_heappop = heapq.heappop
_new = object.__new__
_owner = OWNER.get
_copy_context = contextvars.copy_context
_MAX_FIFOS = 64  # distinct recurring delays with a FIFO of their own; others go to the heap
_Ts = TypeVarTuple("_Ts")

#: a kernel event or a callback's runner, called with its one argument
Fn = Callable[[Any], object]
#: a heap entry: ``(when_ns, seq, fn, arg)``, or ``(when_ns, seq, fn, arg, fifo)`` for the head of a FIFO
Entry = tuple[Any, ...]

if TYPE_CHECKING:  # the rest of the loop's interface, for the types
    from emulator.loopbase import LoopBase as _Base
else:  # at run time VirtualLoop puts its network (NetLoop) and then LoopBase after this class
    _Base = object


class Hooks(NamedTuple):
    """The Python objects the compiled core needs by identity (it reads ``Scheduler._hooks`` once per loop)."""

    handle_runners: frozenset[Fn]
    timer_runners: frozenset[Fn]
    owner_of: Callable[[Fn, Any], str | None]
    lean_handle: type[LeanHandle]
    run_handle: Fn
    sleep_callback: object
    owner: contextvars.ContextVar[str | None]
    sleep_timer: type[SleepTimer]
    wake_sleep: Fn


class Scheduler(_Base):
    """The clock, the timers and the run loop of ``VirtualLoop`` (the pure-Python reference)."""

    _hooks = Hooks(
        HANDLE_RUNNERS, TIMER_RUNNERS, owner_of, LeanHandle, run_handle, SLEEP_CALLBACK, OWNER, SleepTimer, wake_sleep
    )
    _now: int
    _time: float
    _ready: collections.deque[tuple[Fn, Any]]
    _timers: list[Entry]
    _fifos: dict[int, collections.deque[Entry]]
    _seq: itertools.count[int]
    _cancelled_timers: int
    _paused: dict[str, list[tuple[Fn, Any]]]
    _stopping: bool
    _closed: bool
    _debug: bool

    def __init__(self) -> None:
        self._now = 0  # nanoseconds
        self._time = 0.0  # the same, as float seconds, cached for time()
        self._ready = collections.deque()
        self._timers = []  # heap of (when_ns, seq, fn, arg), and the head of each FIFO below
        # Timers of a delay that recurs (sleeps of one length, periodic ticks) fall due in the order
        # they are set: each delay keeps a FIFO of (when_ns, seq, fn, arg, fifo), only its head in the heap.
        self._fifos = {}
        self._delays_seen: dict[int, None] = {}  # delays seen once: a second sighting gets a FIFO
        self._seq = itertools.count()
        self._cancelled_timers = 0
        self._paused = {}  # owner -> held (fn, arg) in order
        self._stopping = False
        self._closed = False
        self._debug = False

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
                self._heap_push((when, next(self._seq), fn, arg))
                return
        entry = (when, next(self._seq), fn, arg, fifo)
        if not fifo:
            self._heap_push(entry)
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

    def _heap_push(self, entry: Entry) -> None:
        """Push a timer entry onto ``_timers`` (heapq's order).

        Outside the hot paths (``push_at``, ``push_after``, asyncio.sleep's
        ``call_later`` and ``_loop``, which the compiled core replaces),
        timers go on and off the heap only through this and ``_heap_pop``:
        the compiled core replaces both, and keeps each entry's ``(when,
        seq)`` beside the list, so its comparisons read an array and not
        the entries. Code that changes ``_timers`` any other way calls
        ``_timers_changed`` after.
        """
        _heappush(self._timers, entry)

    def _heap_pop(self) -> Entry:
        """Pop the first timer entry off ``_timers`` (see ``_heap_push``)."""
        return _heappop(self._timers)

    def _timers_changed(self) -> None:
        """``_timers`` was changed other than by ``_heap_push``/``_heap_pop`` (the compiled core re-reads it)."""

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
        if (
            callback is SLEEP_CALLBACK
            and context is None
            and type(delay) is float
            and 0.0 <= delay < RANGE_END
            and not (self._closed or self._debug)
        ):  # asyncio.sleep: the common case, inlined (a delay past RANGE_END goes on, to never fire)
            delay_ns = round(delay * NS)
            when_ns = self._now + delay_ns
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
        return self._call_later(delay, callback, args, context)

    def _call_later(
        self, delay: float, callback: Callable[..., object], args: tuple[Any, ...], context: Context | None
    ) -> asyncio.TimerHandle | SleepTimer:
        # call_later, for all but asyncio.sleep's fast path (the compiled core's call_later calls it too).
        if self._closed or self._debug:
            return self._call_later_checked(delay, callback, args, context)
        if type(delay) is float and 0.0 <= delay < RANGE_END:  # a timer handle's common case, inlined
            delay_ns = round(delay * NS)
            when_ns = self._now + delay_ns
            handle = LeanTimerHandle(when_ns / NS, callback, args, self, context)
            self._heap_push((when_ns, next(self._seq), run_timer, handle))
            return handle
        later = to_ns(delay)
        if later is None:
            return self._never(self._time + delay, callback, args, context)
        return self._call_at_ns(self._now + later, callback, args, context)

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
        if when_ns is None:
            return self._never(when, callback, args, context)
        return self._call_at_ns(when_ns, callback, args, context)

    def _call_later_checked(
        self, delay: float, callback: Callable[..., object], args: tuple[Any, ...], context: Context | None
    ) -> asyncio.TimerHandle | SleepTimer:
        # call_later on a closed loop or in debug mode: refuse, or record where the handle was made.
        if self._closed:
            raise RuntimeError("Event loop is closed")
        delay_ns = to_ns(delay)
        if delay_ns is None:
            return self._never(self._time + delay, callback, args, context)
        return self._call_at_ns(self._now + max(0, delay_ns), callback, args, context)

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
            ConfigError: ``interval`` is not a number of seconds > 0 and under ``RANGE_END`` (about 1.8e299).
        """
        if not is_number(interval, gt=0, lt=RANGE_END):
            never = (
                "; a tick 1.8e+299 s or more away (past the clock's range) never comes"
                if is_number(interval, ge=RANGE_END)
                else ""
            )
            raise ConfigError(f"call_every needs an interval of seconds > 0, got {interval!r}{never}")
        interval_ns = max(1, round(interval * NS))
        fifo = self._fifos.get(interval_ns)
        if fifo is None:
            fifo = self._fifo_for(interval_ns, recurs=True)
        assert fifo is not None  # recurs=True always gives one
        timer = Periodic(self, interval_ns, fifo, callback, args, context, on_error)
        schedule_tick(timer)
        return timer
        return timer

    def _never(
        self, when: float, callback: Callable[..., object], args: tuple[Any, ...], context: Context | None
    ) -> asyncio.TimerHandle:
        # A timer at infinity or past RANGE_END (to_ns gave None): a handle that can be cancelled and
        # never fires, in no heap. Its when() is the time asked for, as stock asyncio's would be.
        never = LeanTimerHandle(when, callback, args, self, context)
        never._scheduled = False
        return never

    def _call_at_ns(
        self, when_ns: int, callback: Callable[..., object], args: tuple[Any, ...], context: Context | None
    ) -> asyncio.TimerHandle | SleepTimer:
        when_ns = max(when_ns, self._now)  # a time in the past means now: the clock never goes back
        if callback is SLEEP_CALLBACK and context is None:
            sleep = SleepTimer(self, when_ns, *args)
            self._heap_push((when_ns, next(self._seq), wake_sleep, sleep))
            return sleep
        handle: asyncio.TimerHandle | LeanTimerHandle
        if self._debug:  # asyncio's own TimerHandle, which records where it was made
            handle = trim_own_frames(events.TimerHandle(when_ns / NS, callback, args, self, context))
            handle._scheduled = True  # type: ignore[attr-defined]  # private, not in the stubs
        else:
            handle = LeanTimerHandle(when_ns / NS, callback, args, self, context)
        self._heap_push((when_ns, next(self._seq), run_timer, handle))
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
        self._timers_changed()
        self._cancelled_timers = 0

    def pending_timers(self) -> int:
        """How many timers are set, cancelled ones not yet dropped included (a diagnostic)."""
        # A FIFO's head is in the heap as well as in its FIFO.
        return len(self._timers) + sum(len(t[4]) - 1 for t in self._timers if len(t) == 5)

    # -- running ---------------------------------------------------------------

    def _loop(self, done: Callable[[], bool] | None, until_ns: int | None) -> str:
        """Run callbacks and advance time; say why it ended: done (never, if None), stopped, until or idle.

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
            if done is not None and done():
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
        entry = self._heap_pop()
        if len(entry) == 5:
            fifo = entry[4]
            fifo.popleft()
            if fifo:
                self._heap_push(fifo[0])
        return entry

    def _idle(self, until_ns: int | None) -> str:
        if until_ns is None:
            return "idle"
        if until_ns > self._now:
            self._now = until_ns
            self._time = until_ns / NS
        return "until"


if TYPE_CHECKING or native is None:
    Core = Scheduler
else:

    class Core(native.Core, Scheduler):
        """``Scheduler`` with the compiled core's methods and slots in front."""
