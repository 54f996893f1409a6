"""The handles the virtual loop schedules, and the runners it calls them through.

The loop's timer heap and ready queue hold pairs ``(fn, arg)`` run as
``fn(arg)``. The kernel's own events (message deliveries) are plain
functions; asyncio callbacks go through a runner with their handle:
``run_handle`` (``call_soon``), ``run_timer`` (``call_later``/``call_at``),
``wake_sleep`` (the timer of an ``asyncio.sleep``: a ``SleepTimer`` that sets the
sleeper's future, with no ``TimerHandle`` and no context copy) and
``run_periodic`` (``call_every``). A pause holds the callbacks of one node:
``owner`` tells whose a pair is.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import math
from asyncio import InvalidStateError, events, futures
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from emulator.errors import ConfigError
from emulator.speedups import native

if TYPE_CHECKING:
    from emulator.scheduler import Scheduler

__all__ = [
    "HANDLE_RUNNERS",
    "NS",
    "OWNER",
    "RANGE_END",
    "SLEEP_CALLBACK",
    "TIMER_RUNNERS",
    "LeanHandle",
    "LeanTimerHandle",
    "Periodic",
    "SleepTimer",
    "owner_of",
    "report",
    "run_handle",
    "run_periodic",
    "run_timer",
    "schedule_tick",
    "to_ns",
    "wake_sleep",
]


#: Nanoseconds per second: the clock's resolution.
NS = 1_000_000_000

#: Where the clock's range ends: the least float of seconds whose ``seconds * NS`` overflows a float
#: (about 1.8e299 s). A delay or a time at or past it is taken as infinity: its timer never fires.
RANGE_END = float.fromhex("0x1.12e0be826d695p+994")

#: The node a piece of code belongs to; set in each node's context so the loop
#: can hold a paused node's callbacks without the node's code knowing.
OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar("capsim_owner", default=None)


class AsyncioHandle(Protocol):
    """The fields of an asyncio ``Handle`` the loop runs it by (private: its stubs leave them out)."""

    _cancelled: bool
    _context: contextvars.Context
    _callback: Callable[..., object]
    _args: Sequence[Any]
    _loop: Scheduler


class AsyncioTimer(AsyncioHandle, Protocol):
    """An asyncio ``TimerHandle``'s, with the flag of one still in the heap."""

    _scheduled: bool


def run_handle(handle: AsyncioHandle) -> None:
    # asyncio's Handle._run, one frame shorter: it runs once per task wake-up.
    if not handle._cancelled:
        try:
            handle._context.run(handle._callback, *handle._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            report(handle, exc)


def run_timer(handle: AsyncioTimer) -> None:
    handle._scheduled = False  # cancelling it now must not count as a cancelled timer
    if not handle._cancelled:
        try:
            handle._context.run(handle._callback, *handle._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            report(handle, exc)


def report(handle: AsyncioHandle | Periodic, exc: BaseException) -> None:
    context = {"message": f"Exception in callback {handle._callback!r}", "exception": exc, "handle": handle}
    handle._loop.call_exception_handler(context)


def to_ns(seconds: float) -> int | None:
    """Seconds as integer nanoseconds; None for +infinity and past ``RANGE_END`` (a timer that never fires).

    A huge finite deadline (``call_later(1e300, ...)``) is taken as stock
    asyncio takes it, a timer that fires after every other and within no
    run: like one at infinity, it goes in no heap, so it costs nothing and
    needs no order among its kind. A time as far before zero is exact
    (every float that large is a whole number): the callers clamp it to now.
    """
    if seconds != seconds:
        raise ConfigError(f"a delay or time cannot be NaN; got {seconds!r}")
    ns = seconds * NS
    if ns == math.inf:  # +infinity, or seconds at or past RANGE_END
        return None
    if ns == -math.inf:  # -infinity (an OverflowError, as before), or seconds at or below -RANGE_END
        return int(seconds) * NS
    return round(ns)


class LeanHandle(events.Handle):
    """asyncio's Handle, built and cancelled without the debug checks: one per call_soon."""

    __slots__ = ()
    _repr = None  # class-level: read by repr(), never written on the hot path
    _source_traceback = None

    def __init__(
        self,
        callback: Callable[..., object],
        args: Sequence[Any],
        loop: Scheduler,
        context: contextvars.Context | None,
    ) -> None:
        self._context = context if context is not None else contextvars.copy_context()
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            self._callback = self._args = None  # type: ignore[assignment]  # as asyncio's: drop the references


class LeanTimerHandle(events.TimerHandle):
    """asyncio's TimerHandle, built the same lean way, already marked scheduled."""

    __slots__ = ()
    _repr = None
    _source_traceback = None

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: Sequence[Any],
        loop: Scheduler,
        context: contextvars.Context | None,
    ) -> None:
        self._context = context if context is not None else contextvars.copy_context()
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._when = when
        self._scheduled = True

    def cancel(self) -> None:
        # asyncio.sleep cancels its timer after every wake-up: keep this short.
        if not self._cancelled:
            if self._scheduled:
                self._loop._timer_handle_cancelled(self)
            self._cancelled = True
            self._callback = self._args = None  # type: ignore[assignment]  # as asyncio's: drop the references


class SleepTimer:
    """The timer of one ``asyncio.sleep``: sets its future when due. Returned as its handle.

    ``asyncio.sleep`` only ever calls ``cancel()`` on it (after waking, or when
    the sleeping task is cancelled); ``when()`` and ``cancelled()`` are there
    for anyone else who looks.
    """

    __slots__ = ("_cancelled", "_future", "_loop", "_result", "_when_ns", "owner")

    def __init__(self, loop: Scheduler, when_ns: int, future: asyncio.Future[Any] | None, result: Any) -> None:
        self._loop = loop
        self._when_ns = when_ns
        self._future = future
        self._result = result
        self.owner = OWNER.get()  # the sleeping task's node: a pause holds its wake-up
        self._cancelled = False

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            if self._future is not None:  # still in the heap: count it for compaction
                self._future = None
                self._loop._timer_handle_cancelled(self)

    def cancelled(self) -> bool:
        return self._cancelled

    def when(self) -> float:
        return self._when_ns / NS

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "fired" if self._future is None else "pending"
        return f"<sleep timer when={self.when()} {state}>"

    @staticmethod
    def fire(sleep: SleepTimer) -> None:
        # What SLEEP_CALLBACK does for asyncio.sleep, without a Handle or a context copy.
        future = sleep._future
        if future is not None:  # None once cancelled (cancel clears it) or fired
            sleep._future = None  # fired: cancelling it now does not count as a cancelled timer
            try:
                future.set_result(sleep._result)
            except InvalidStateError:  # the future was cancelled (its task is being cancelled): leave it
                pass


class Periodic:
    """A timer from ``call_every`` that runs its callback every interval until cancelled."""

    __slots__ = (
        "__weakref__",
        "_args",
        "_callback",
        "_cancelled",
        "_context",
        "_fifo",
        "_interval_ns",
        "_loop",
        "_on_error",
        "owner",
    )

    def __init__(
        self,
        loop: Scheduler,
        interval_ns: int,
        fifo: collections.deque[Any],
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
        on_error: Callable[[BaseException], object] | None,
    ) -> None:
        self._loop = loop
        self._interval_ns = interval_ns
        self._fifo = fifo  # the loop's FIFO of timers of this interval
        self._callback = callback
        self._args = args
        self._context = context if context is not None else contextvars.copy_context()
        self.owner = self._context.get(OWNER)
        self._on_error = on_error
        self._cancelled = False

    def cancel(self) -> None:
        """Stop it: the next tick does not run (one already running finishes)."""
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def interval(self) -> float:
        return self._interval_ns / NS

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "running"
        return f"<periodic {getattr(self._callback, '__qualname__', self._callback)!r} every {self.interval}s {state}>"

    @staticmethod
    def tick(timer: Periodic) -> None:
        # One tick of call_every: run the callback, then schedule the next tick an interval from now.
        if timer._cancelled:
            return
        try:
            if timer._args:
                timer._context.run(timer._callback, *timer._args)
            else:  # the common case, called without unpacking: no bound method or argument tuple is made
                timer._context.run(timer._callback)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            timer._cancelled = True
            if timer._on_error is not None:
                timer._on_error(exc)
            else:
                report(timer, exc)
            return
        if not timer._cancelled:
            schedule_tick(timer)

    @staticmethod
    def schedule(timer: Periodic) -> None:
        """Set ``timer``'s next tick an interval from now, in its FIFO (the loop's ``push_recurring``, inlined)."""
        loop = timer._loop
        fifo = timer._fifo
        entry = (loop._now + timer._interval_ns, next(loop._seq), run_periodic, timer, fifo)
        if not fifo:
            loop._heap_push(entry)
        fifo.append(entry)


if not TYPE_CHECKING and native is not None:  # the compiled ones (emulator/speedups.py), the same behaviour
    run_handle = native.run_handle
    SleepTimer = native.SleepTimer

#: The timers' runners by their module-level names (the loop files them in timer entries).
wake_sleep = SleepTimer.fire
run_periodic = Periodic.tick
schedule_tick = Periodic.schedule

#: The runners of asyncio handles, sleeps and periodic timers, whose owner a pause looks up.
HANDLE_RUNNERS: frozenset[Callable[[Any], object]] = frozenset({run_handle, run_timer, wake_sleep, run_periodic})
#: The runners of timers that ``cancel()`` leaves in the heap, to skip when popped.
TIMER_RUNNERS: frozenset[Callable[[Any], object]] = frozenset({run_timer, wake_sleep, run_periodic})


def owner_of(fn: Callable[..., Any], arg: Any) -> str | None:
    """The node whose callback ``fn(arg)`` is, if it is an asyncio one (None: the kernel's own)."""
    if fn is wake_sleep or fn is run_periodic:
        owner: str | None = arg.owner
        return owner
    if fn in HANDLE_RUNNERS:
        return arg._context.get(OWNER)  # type: ignore[no-any-return]  # arg: an asyncio Handle
    return None


SLEEP_CALLBACK = futures._set_result_unless_cancelled  # type: ignore[attr-defined]  # private, not in the stubs
