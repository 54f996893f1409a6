"""A circuit breaker on the simulation clock, and a node that calls through one.

Guarantees: while open, a call fails at once with the definite ``BreakerOpen``
(error 11) and never reaches the dependency; after ``reset_timeout`` at most
``half_open_max`` probes run at once, and it closes only when that many succeed.
Gives up: calls that would have succeeded while it is open (after the
dependency recovers, until the next probe: up to ``reset_timeout`` plus one
probe's wait); an admitted call still waits as long as the dependency makes it.

States and transitions (each one goes to ``on_change(old, new, reason)``)::

    closed --(failure_threshold failures in a row, or failure_rate
              over the last ``window`` seconds)--> open
    open --(reset_timeout elapsed, noticed at the next call)--> half-open
    half-open --(half_open_max probes succeeded)--> closed
    half-open --(a probe failed)--> open

What counts as a failure: ``em.Timeout``, an ``em.RPCError`` saying the
dependency could not serve (0 timeout, 1 node not found, 11 unavailable,
13 crash), or any other exception. An application answer such as 20
key-does-not-exist or 22 precondition-failed is a success: the dependency
answered. Pass ``is_failure`` to decide otherwise.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import math
from collections.abc import Awaitable, Callable
from typing import Any

from emulator import ConfigError, Node, RPCError
from emulator.errors import CRASH, NODE_NOT_FOUND, TEMPORARILY_UNAVAILABLE, TIMEOUT
from emulator.validate import is_int, is_number
from nodes.kv import forwarded, request_id, take_once

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "BreakerOpen", "Caller", "CircuitBreaker", "default_is_failure"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
_INFRA_CODES = frozenset({TIMEOUT, NODE_NOT_FOUND, TEMPORARILY_UNAVAILABLE, CRASH})


class BreakerOpen(RPCError):
    """The breaker refused the call without making it: error 11, definite."""

    def __init__(self, text: str = "circuit breaker is open"):
        super().__init__(TEMPORARILY_UNAVAILABLE, text, definite=True)


def default_is_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the dependency is unwell rather than answering."""
    if isinstance(exc, RPCError):
        return exc.code in _INFRA_CODES
    return isinstance(exc, Exception)


def _number(name: str, value, *, low: float = 0.0, strict: bool = False, none_ok: bool = False):
    if value is None and none_ok:
        return None
    if not is_number(value, ge=-math.inf):  # any number but NaN
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not (is_number(value, gt=low) if strict else is_number(value, ge=low)):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    return value


class _Permit:
    """One admitted call: remembers the state generation it was admitted in."""

    __slots__ = ("done", "generation", "probe")

    def __init__(self, generation: int, probe: bool):
        self.generation = generation
        self.probe = probe
        self.done = False


class CircuitBreaker:
    """Closed / open / half-open around any awaitable, on a given clock.

    Use it as ``await breaker.call(self.rpc(dest, body))`` or as
    ``async with breaker: ...``. Call it from one event loop (a node's).

    Args:
        clock: a zero-argument callable returning seconds (``node.now``, ``loop.time``).
        failure_threshold: trip after this many failures in a row (None: never on a run).
        failure_rate: trip when failures / calls over the last ``window``
            seconds reach this fraction in (0, 1] (None: never on a rate).
        window: the rolling window for ``failure_rate``, in seconds.
        min_calls: calls the window must hold before the rate can trip it.
        reset_timeout: seconds open before the next call is let through as a probe.
        half_open_max: probes allowed at once in half-open, and successes needed to close.
        on_change: called as ``on_change(old, new, reason)`` on every transition.
        is_failure: ``is_failure(exc) -> bool``; ``default_is_failure`` by default.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        failure_threshold: int | None = 5,
        failure_rate: float | None = None,
        window: float = 10.0,
        min_calls: int = 10,
        reset_timeout: float = 5.0,
        half_open_max: int = 1,
        on_change: Callable[[str, str, str], Any] | None = None,
        is_failure: Callable[[BaseException], bool] = default_is_failure,
    ):
        if not callable(clock):
            raise ConfigError(f"clock must be a zero-argument callable such as node.now, got {clock!r}")
        if failure_threshold is None and failure_rate is None:
            raise ConfigError("a breaker that can never trip is no breaker: give failure_threshold or failure_rate")
        self.clock = clock
        self.failure_threshold = _number("failure_threshold", failure_threshold, low=1, none_ok=True)
        self.failure_rate = _number("failure_rate", failure_rate, strict=True, none_ok=True)
        if self.failure_rate is not None and self.failure_rate > 1:
            raise ConfigError(f"failure_rate is a fraction in (0, 1], got {failure_rate!r}")
        self.window = _number("window", window, strict=True)
        self.min_calls = _number("min_calls", min_calls, low=1)
        self.reset_timeout = _number("reset_timeout", reset_timeout)
        self.half_open_max = _number("half_open_max", half_open_max, low=1)
        if not is_int(self.half_open_max):  # 1.5 let two probes run at once
            raise ConfigError(f"half_open_max is a number of probes, a whole number >= 1, got {half_open_max!r}")
        self.on_change = on_change
        self.is_failure = is_failure
        self._state = CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._consecutive = 0
        self._outcomes: collections.deque = collections.deque()  # (time, failed) in the window
        self._probes = 0  # probes in flight
        self._probe_successes = 0
        self._task_permits: dict = {}  # task -> permit, for ``async with``
        #: every transition: (time, old, new, reason)
        self.transitions: list[tuple[float, str, str, str]] = []
        #: counts: admitted, succeeded, failed, rejected
        self.stats = {"admitted": 0, "succeeded": 0, "failed": 0, "rejected": 0}

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"`` (an expired open turns half-open here)."""
        if self._state == OPEN and self.clock() - self._opened_at >= self.reset_timeout:
            self._move(HALF_OPEN, f"reset timeout {self.reset_timeout}s elapsed")
        return self._state

    @property
    def retry_at(self) -> float | None:
        """When an open breaker lets the next probe through (None unless open)."""
        return self._opened_at + self.reset_timeout if self.state == OPEN else None

    @property
    def probes_in_flight(self) -> int:
        """Half-open probes admitted and not yet finished."""
        return self._probes

    def _move(self, new: str, reason: str) -> None:
        old, self._state = self._state, new
        self._generation += 1
        self._consecutive = 0
        self._outcomes.clear()
        self._probes = self._probe_successes = 0
        if new == OPEN:
            self._opened_at = self.clock()
        self.transitions.append((self.clock(), old, new, reason))
        if self.on_change is not None:
            self.on_change(old, new, reason)

    # -- admission and outcome -------------------------------------------------------------

    def acquire(self) -> _Permit:
        """Admit one call or raise ``BreakerOpen``; pair with ``release``."""
        state = self.state
        if state == OPEN or (state == HALF_OPEN and self._probes >= self.half_open_max):
            self.stats["rejected"] += 1
            why = "open" if state == OPEN else f"half-open with {self._probes} probe(s) in flight"
            raise BreakerOpen(f"circuit breaker is {why}")
        self.stats["admitted"] += 1
        if state == HALF_OPEN:
            self._probes += 1
        return _Permit(self._generation, state == HALF_OPEN)

    def release(self, permit: _Permit, exc: BaseException | None) -> None:
        """Record how an admitted call ended: ``exc`` None for success.

        A cancelled call frees its slot without counting; a call admitted
        before the last transition counts for nothing (its state is gone).
        """
        if permit.done:
            return
        permit.done = True
        if permit.generation != self._generation:
            return
        if permit.probe:
            self._probes -= 1
        if isinstance(exc, asyncio.CancelledError):
            return
        failed = exc is not None and self.is_failure(exc)
        self.stats["failed" if failed else "succeeded"] += 1
        if self._state == HALF_OPEN:
            self._probe_outcome(failed)
        else:
            self._closed_outcome(failed)

    def _probe_outcome(self, failed: bool) -> None:
        if failed:
            self._move(OPEN, "a half-open probe failed")
            return
        self._probe_successes += 1
        if self._probe_successes >= self.half_open_max:
            self._move(CLOSED, f"{self._probe_successes} half-open probe(s) succeeded")

    def _closed_outcome(self, failed: bool) -> None:
        now = self.clock()
        self._consecutive = self._consecutive + 1 if failed else 0
        outcomes = self._outcomes
        outcomes.append((now, failed))
        while outcomes and outcomes[0][0] <= now - self.window:
            outcomes.popleft()
        if self.failure_threshold is not None and self._consecutive >= self.failure_threshold:
            self._move(OPEN, f"{self._consecutive} failures in a row")
        elif self.failure_rate is not None and len(outcomes) >= self.min_calls:
            rate = sum(f for _, f in outcomes) / len(outcomes)
            if rate >= self.failure_rate:
                self._move(OPEN, f"failure rate {rate:.2f} over {len(outcomes)} calls in {self.window}s")

    # -- use --------------------------------------------------------------------------------

    async def call(self, awaitable: Awaitable):
        """Await ``awaitable`` through the breaker and return its result.

        Raises:
            BreakerOpen: refused without awaiting (the coroutine is closed unrun).
            Exception: whatever ``awaitable`` raises, after counting it.
        """
        try:
            permit = self.acquire()
        except BreakerOpen:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise
        try:
            result = await awaitable
        except BaseException as exc:
            self.release(permit, exc)
            raise
        self.release(permit, None)
        return result

    async def __aenter__(self) -> CircuitBreaker:
        # One permit per task: a breaker used as a context manager by
        # concurrent tasks keeps each task's permit apart.
        self._task_permits[asyncio.current_task()] = self.acquire()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        permit = self._task_permits.pop(asyncio.current_task())
        self.release(permit, exc)
        return False

    def __repr__(self):
        return f"<CircuitBreaker {self._state} after {len(self.transitions)} transitions>"


class Caller(Node):
    """Forwards lin-kv requests (read, write, cas) to ``dependency``, through a breaker.

    The demo of what a breaker buys: with it, callers of a dead dependency
    get a definite error 11 within a round trip instead of waiting out
    ``timeout``; with ``breaker=None`` every call waits. In front of a
    linearizable store that takes each request id at most once, the history
    through the caller stays linearizable under duplication and reordering:
    a write or ``cas`` goes on with the client's request id, once per id
    (:func:`nodes.kv.take_once`), so a copy that the open breaker would
    refuse gets the first copy's answer instead of a definite "not done". Breaker transitions
    go to ``self.events`` and, as ``Node.event("breaker", [old, new,
    reason])``, to the trace.

    Args:
        dependency: the node to call.
        breaker: keyword arguments for ``CircuitBreaker`` (the clock is the
            node's), or None to call without one.
        timeout: the rpc timeout towards the dependency, in seconds.
    """

    def __init__(self, dependency: str, breaker: dict | None = None, timeout: float = 1.0):
        if not isinstance(dependency, str) or not dependency:
            raise ConfigError(f"dependency must be a node name, got {dependency!r}")
        self.dependency = dependency
        self.timeout = _number("timeout", timeout, strict=True)
        #: (time, old, new, reason) of each breaker transition of this incarnation
        self.events: list[tuple] = []
        self.breaker = None if breaker is None else CircuitBreaker(self.now, on_change=self._changed, **breaker)
        self._taken: dict = {"requests": {}}  # the client writes taken (nodes.kv.take_once), in memory

    def _changed(self, old: str, new: str, reason: str) -> None:
        self.events.append((self.now(), old, new, reason))
        self.event("breaker", [old, new, reason])

    async def _forward(self, msg) -> dict:
        body = forwarded(msg)  # the client's request id rides along: a store behind takes it once
        call = self.rpc(self.dependency, body, timeout=self.timeout)
        return await (call if self.breaker is None else self.breaker.call(call))

    async def handle_read(self, msg):
        return await self._forward(msg)

    async def handle_write(self, msg):
        return await self._once(msg)

    async def handle_cas(self, msg):
        return await self._once(msg)

    async def _once(self, msg) -> dict | None:
        """Forward a write or cas once; a copy gets the first copy's answer (never "refused" after it took effect)."""
        return await take_once(
            self._taken, "requests", msg.body.get("key"), request_id(msg), lambda: self._forward(msg)
        )
