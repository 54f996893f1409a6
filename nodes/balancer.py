"""A load balancer with health checks, in front of backends that can be overloaded.

Guarantees: no request goes to a backend held down (``unhealthy_threshold``
failed checks, until ``healthy_threshold`` pass) or ejected (``eject_after``
errors in a row, for ``eject_time``), across restarts of the balancer
too (who is held down or ejected is kept in ``storage``); a dead backend is
out within ``unhealthy_threshold * health_interval + health_timeout``; with
none left, requests fail at once with the definite error 11.
Gives up: requests already sent to a backend that dies time out (indefinite):
it does not retry, as it cannot know the work was not done.

Protocol::

    {"type": "request", "key": k, "client": c} -> {"type": "request_ok", "backend": b, "key": k, "client": c}
    {"type": "health"}                         -> {"type": "health_ok", ...}   (backends)
    {"type": "stats"}                          -> {"type": "stats_ok", "backends": {...}}   (balancer)

The balancer forwards lin-kv ``read``, ``write`` and ``cas`` the same way, so
it can front key-value stores; the backends' answers (and errors) pass through.
In front of a linearizable store that takes each request id at most once
(every store in ``nodes``), the history through it stays linearizable
whatever the network duplicates or reorders: each write or ``cas`` carries the
client's request id on, and is forwarded once per id (:func:`nodes.kv.take_once`:
a copy gets the first copy's answer, so a copy refused for want of a backend
cannot report "not done" for a write that took effect). The record is memory.

Algorithms, over the backends in rotation:

- ``round-robin``: each in turn, in the configured order.
- ``weighted-round-robin``: smooth weighted round robin (nginx): in every
  run of ``sum(weights)`` picks each backend gets exactly its weight, interleaved.
- ``least-connections``: fewest requests in flight divided by weight; ties in turn.
- ``least-response-time``: lowest ``ewma * (in_flight + 1)``, where ``ewma`` is
  an exponentially weighted moving average (``ewma_alpha``) of the backend's
  response times (a timeout counts as ``timeout`` seconds); a backend never
  measured scores 0, so each gets tried, and one that health checks bring
  back is measured afresh (its average held the timeouts of its outage).
  Ties in turn.
- ``consistent-hash``: the owner of the request's ``key`` (or, with
  ``hash_by="client"``, its ``client`` field or its sender) on a ``HashRing``
  of all backends; when the owner is out, the next backend clockwise, so only
  that owner's keys move.

Traffic splitting: ``canary={"backend": name, "weight": 0.1, ...}`` sends a
share of requests to a canary outside the rotation, and rolls it back when
its error rate passes a threshold (:mod:`nodes.canary` states the guarantee);
the rollback is an event ``canary`` ``[backend, "rolled-back", reason]``.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

from emulator import ConfigError, Distribution, Exponential, Node, RPCError, Timeout
from emulator.distributions import as_distribution
from emulator.errors import CRASH, NODE_NOT_FOUND, TEMPORARILY_UNAVAILABLE, TIMEOUT
from emulator.validate import is_int, is_number, whole
from nodes.canary import Canary
from nodes.hashring import HashRing
from nodes.kv import forwarded, request_id, take_once

__all__ = ["ALGORITHMS", "Backend", "BackendState", "LoadBalancer"]

ALGORITHMS = ("round-robin", "weighted-round-robin", "least-connections", "least-response-time", "consistent-hash")
_SERVICE_TIME = Exponential(0.01)  # a Backend's default: one shared instance, as a default argument was
_BACKEND_ERRORS = frozenset({TIMEOUT, NODE_NOT_FOUND, TEMPORARILY_UNAVAILABLE, CRASH})


def _positive(name: str, value, *, none_ok: bool = False, zero_ok: bool = False):
    if value is None and none_ok:
        return None
    if not (is_number(value, ge=0) if zero_ok else is_number(value, gt=0)):
        raise ConfigError(f"{name} must be a number {'>= 0' if zero_ok else '> 0'}, got {value!r}")
    return value


def _count(name: str, value, *, none_ok: bool = False):
    if value is None and none_ok:
        return None
    return whole(name, value)


class Backend(Node):
    """A server with a service-time distribution, ``concurrency`` workers and a FIFO queue.

    A request takes a worker for a service time drawn from ``service_time``;
    beyond ``concurrency`` it waits in the queue; beyond ``queue_limit`` waiting
    it is refused with error 11 (overloaded, definite). A crash loses the queue.

    Args:
        service_time: seconds per request (a Distribution or a number).
        concurrency: requests served at once.
        queue_limit: requests allowed to wait.
        error_rate: the share of requests answered, after their service time,
            with error 13 (a bad release: a canary to roll back), in [0, 1].
    """

    def __init__(
        self,
        service_time: Distribution | float = _SERVICE_TIME,
        concurrency: int = 4,
        queue_limit: int = 100,
        error_rate: float = 0.0,
    ):
        self.service_time = as_distribution(service_time, "service_time")
        _count("concurrency", concurrency)
        if not is_int(queue_limit, ge=0):
            raise ConfigError(f"queue_limit must be an int >= 0 (0: no queue), got {queue_limit!r}")
        if not is_number(error_rate, ge=0, le=1):
            raise ConfigError(f"error_rate is a share of requests in [0, 1], got {error_rate!r}")
        self.concurrency = concurrency
        self.queue_limit = queue_limit
        self.error_rate = error_rate
        self.busy = 0
        self.waiting: collections.deque = collections.deque()
        self.served = 0
        self.rejected = 0
        self.peak_queue = 0

    async def _take_worker(self) -> None:
        if self.busy < self.concurrency and not self.waiting:
            self.busy += 1
            return
        if len(self.waiting) >= self.queue_limit:
            self.rejected += 1
            raise RPCError(TEMPORARILY_UNAVAILABLE, f"{self.name} overloaded: {len(self.waiting)} requests queued")
        turn = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        self.peak_queue = max(self.peak_queue, len(self.waiting))
        try:
            await turn  # the worker is handed over by _free_worker: busy stays as it is
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._free_worker()
            else:
                self.waiting.remove(turn)
            raise

    def _free_worker(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.busy -= 1

    async def handle_request(self, msg):
        await self._take_worker()
        try:
            await asyncio.sleep(self.service_time.sample(self.rng))
        finally:
            self._free_worker()
        if self.error_rate and self.rng.random() < self.error_rate:
            raise RPCError(CRASH, f"{self.name} failed the request (error_rate {self.error_rate})")
        self.served += 1
        body = msg.body
        return {"type": "request_ok", "backend": self.name, "key": body.get("key"), "client": body.get("client")}

    async def handle_health(self, msg):
        return {"type": "health_ok", "backend": self.name, "busy": self.busy, "queued": len(self.waiting)}


@dataclass(eq=False)
class BackendState:
    """What the balancer knows of one backend (memory, but for ``up`` and ``ejected_until``: see ``_hold``)."""

    name: str
    weight: float = 1.0
    up: bool = True  # by the active health checks; a backend starts in rotation
    passes: int = 0  # active checks passed in a row
    fails: int = 0  # active checks failed in a row
    errors_in_a_row: int = 0  # passive: request errors in a row
    ejected_until: float = float("-inf")
    in_flight: int = 0
    sent: int = 0
    ok: int = 0
    errors: int = 0
    ewma: float | None = None
    latency_sum: float = 0.0
    current: float = 0.0  # smooth weighted round robin's running score

    def available(self, now: float) -> bool:
        return self.up and now >= self.ejected_until

    def to_dict(self, now: float) -> dict:
        return {
            "up": self.up,
            "ejected": now < self.ejected_until,
            "in_flight": self.in_flight,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "ewma": self.ewma,
            "mean_latency": self.latency_sum / self.ok if self.ok else None,
        }


def _canary(config: dict | None, backends: list[str]) -> Canary | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise ConfigError(
            f"canary must be a table of Canary settings such as {{backend = 'b9', weight = 0.1}}, got {config!r}"
        )
    try:
        canary = Canary(**config)
    except TypeError as exc:
        raise ConfigError(
            f"canary: {exc}; settings: backend, weight, sticky, error_threshold, min_requests, window"
        ) from None
    if canary.backend in backends:
        raise ConfigError(f"the canary {canary.backend!r} must not also be in backends {backends}")
    return canary


class LoadBalancer(Node):
    """Forwards ``request`` messages to one of ``backends`` (see the module docstring).

    Args:
        backends: backend node names, in rotation order.
        algorithm: one of ``ALGORITHMS``.
        weights: backend -> positive weight (weighted round robin, least
            connections and the hash ring use it); 1 by default.
        timeout: seconds to wait for a backend's answer.
        health_interval: seconds between active checks of each backend (None: no checks).
        health_timeout: seconds a check may take (default: half the interval); <= interval.
        unhealthy_threshold: checks failed in a row to mark a backend down.
        healthy_threshold: checks passed in a row to mark it up again.
        eject_after: request errors in a row that eject a backend (None: no passive ejection).
        eject_time: seconds an ejected backend stays out.
        ewma_alpha: weight of the newest sample in the response-time average, in (0, 1].
        hash_by: ``"key"`` or ``"client"``, for consistent hashing.
        vnodes: ring points per unit of weight, for consistent hashing.
        keep_log: keep ``self.journal``: ``(time, "forward", [backend, in-flight per
            backend before it])`` for each request forwarded, ``(time, "refused", None)``
            for each refused for want of a backend, and every event, in order.
        canary: keyword arguments of ``nodes.canary.Canary`` (backend, weight,
            sticky, error_threshold, min_requests, window), or None.
    """

    def __init__(
        self,
        backends: list[str],
        algorithm: str = "round-robin",
        weights: dict | None = None,
        timeout: float = 1.0,
        health_interval: float | None = 1.0,
        health_timeout: float | None = None,
        unhealthy_threshold: int = 3,
        healthy_threshold: int = 2,
        eject_after: int | None = None,
        eject_time: float = 5.0,
        ewma_alpha: float = 0.3,
        hash_by: str = "key",
        vnodes: int = 128,
        keep_log: bool = False,
        canary: dict | None = None,
    ):
        self._configure(backends, algorithm, weights, hash_by, ewma_alpha)
        self.canary = _canary(canary, backends)
        self.timeout = _positive("timeout", timeout)
        self.health_interval = _positive("health_interval", health_interval, none_ok=True)
        default_check = None if health_interval is None else health_interval / 2
        self.health_timeout = _positive(
            "health_timeout", default_check if health_timeout is None else health_timeout, none_ok=True
        )
        if self.health_interval is not None and self.health_timeout > self.health_interval:
            raise ConfigError(f"health_timeout ({health_timeout}) must not exceed health_interval ({health_interval})")
        self.unhealthy_threshold = _count("unhealthy_threshold", unhealthy_threshold)
        self.healthy_threshold = _count("healthy_threshold", healthy_threshold)
        self.eject_after = _count("eject_after", eject_after, none_ok=True)
        self.eject_time = _positive("eject_time", eject_time, zero_ok=True)
        self.ring = HashRing(self.names, vnodes=vnodes, weights=self.weights)
        self.states = {name: BackendState(name, self.weights[name]) for name in self.names}
        self._order = [self.states[name] for name in self.names]
        self._cursor = 0
        self._pick = getattr(self, "_pick_" + algorithm.replace("-", "_"))
        #: (time, what, value) of each health / ejection event of this incarnation
        self.events: list[tuple] = []
        self.journal: list[tuple] | None = [] if keep_log else None

    def _configure(self, backends, algorithm, weights, hash_by, ewma_alpha) -> None:
        if isinstance(backends, str) or not backends or not all(isinstance(b, str) for b in backends):
            raise ConfigError(f"backends must be a non-empty list of node names, got {backends!r}")
        if len(set(backends)) != len(backends):
            raise ConfigError(f"backends must be distinct, got {backends!r}")
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        if hash_by not in ("key", "client"):
            raise ConfigError(f"hash_by must be 'key' or 'client', got {hash_by!r}")
        unknown = sorted(set(weights or {}) - set(backends))
        if unknown:
            raise ConfigError(f"weights name {unknown}, which are not backends; backends: {backends}")
        self.names = list(backends)
        self.weights = {b: _positive(f"weight of {b}", (weights or {}).get(b, 1)) for b in backends}
        self.algorithm = algorithm
        self.hash_by = hash_by
        alpha = _positive("ewma_alpha", ewma_alpha)
        if alpha > 1:
            raise ConfigError(f"ewma_alpha is a weight in (0, 1], got {ewma_alpha!r}")
        self.ewma_alpha = alpha
        self._taken: dict = {"requests": {}}  # the client writes taken (nodes.kv.take_once), in memory

    async def on_start(self):
        rolled_back_at = self.storage.get("canary_rolled_back_at")
        if self.canary is not None and rolled_back_at is not None:
            self.canary.restore(rolled_back_at)
        # A restart keeps who is held down or ejected (storage): a dead backend stays out until checks pass.
        held = self.storage.get("held", {})
        for state in self._order:
            state.up = state.name not in held.get("down", [])
            state.ejected_until = held.get("ejected", {}).get(state.name, float("-inf"))
        if self.health_interval is not None:
            for state in self._order:
                self.spawn(self._check_forever(state), name=f"health:{state.name}")

    # -- events and metrics ---------------------------------------------------------------

    def _event(self, what: str, value) -> None:
        entry = (self.now(), what, value)
        self.events.append(entry)
        if self.journal is not None:
            self.journal.append(entry)
        self.event(what, value)

    def metrics(self) -> dict:
        """Backend -> counts, in-flight, up/ejected and latency figures."""
        now = self.now()
        return {state.name: state.to_dict(now) for state in self._order}

    async def handle_stats(self, msg):
        reply = {"type": "stats_ok", "algorithm": self.algorithm, "backends": self.metrics()}
        if self.canary is not None:
            reply["canary"] = self.canary.to_dict()
        return reply

    # -- active health checks ---------------------------------------------------------------

    async def _check_forever(self, state: BackendState) -> None:
        loop = asyncio.get_running_loop()
        # A random phase keeps the checks of many backends from going out together.
        next_at = loop.time() + self.health_interval * self.rng.random()
        while True:
            await asyncio.sleep(next_at - loop.time())
            next_at += self.health_interval
            try:
                await self.rpc(state.name, {"type": "health"}, timeout=self.health_timeout)
            except (Timeout, RPCError):
                self._check_result(state, False)
            else:
                self._check_result(state, True)

    def _check_result(self, state: BackendState, passed: bool) -> None:
        if passed:
            state.passes, state.fails = state.passes + 1, 0
            if not state.up and state.passes >= self.healthy_threshold:
                state.up = True
                self._hold()
                state.ewma = None  # its old latencies were timeouts: measure it afresh, or it is never picked
                self._event("health", [state.name, "up"])
        else:
            state.passes, state.fails = 0, state.fails + 1
            if state.up and state.fails >= self.unhealthy_threshold:
                state.up = False
                self._hold()
                self._event("health", [state.name, "down"])

    def _hold(self) -> None:
        """Keep who is down and who is ejected (until when) in storage, for a restart."""
        now = self.now()
        self.storage["held"] = {
            "down": [state.name for state in self._order if not state.up],
            "ejected": {state.name: state.ejected_until for state in self._order if state.ejected_until > now},
        }

    # -- forwarding ---------------------------------------------------------------------------

    async def handle_request(self, msg):
        now = self.now()
        if self.canary is not None and self.canary.takes(msg.body.get("client", msg.src), self.rng):
            return await self._to_canary(msg, self.canary)
        eligible = [state for state in self._order if state.available(now)]
        if not eligible:
            if self.journal is not None:
                self.journal.append((now, "refused", None))
            raise RPCError(TEMPORARILY_UNAVAILABLE, "no backend is in rotation")
        state = self._pick(msg, eligible)
        if self.journal is not None:
            self.journal.append((now, "forward", [state.name, [s.in_flight for s in self._order]]))
        body = forwarded(msg)  # the client's request id rides along: a store behind takes it once
        state.in_flight += 1
        state.sent += 1
        try:
            reply = await self.rpc(state.name, body, timeout=self.timeout)
        except Timeout:
            self._request_failed(state, self.timeout)
            raise
        except RPCError as exc:
            if exc.code in _BACKEND_ERRORS:
                self._request_failed(state, self.now() - now)
            raise
        finally:
            state.in_flight -= 1
        self._request_ok(state, self.now() - now)
        return {k: v for k, v in reply.items() if k != "in_reply_to"}

    async def _to_canary(self, msg, canary: Canary) -> dict:
        body = {k: v for k, v in msg.body.items() if k != "msg_id"}
        canary.sent()
        failed = True
        try:
            reply = await self.rpc(canary.backend, body, timeout=self.timeout)
            failed = False
        except RPCError as exc:
            failed = exc.code in _BACKEND_ERRORS
            raise
        finally:
            if canary.finished_request(failed, self.now()):
                self.storage["canary_rolled_back_at"] = canary.rolled_back_at  # final: a restart keeps it
                self._event("canary", [canary.backend, "rolled-back", canary.verdict()])
        return {k: v for k, v in reply.items() if k != "in_reply_to"}

    # The balancer proxies lin-kv too, so it can stand in front of key-value
    # stores (with consistent-hash, each key keeps to one store).
    handle_read = handle_request

    async def handle_write(self, msg):
        return await self._once(msg)

    async def handle_cas(self, msg):
        return await self._once(msg)

    async def _once(self, msg) -> dict | None:
        """Forward a write or cas once; a copy gets the first copy's answer (never "refused" after it took effect)."""
        return await take_once(
            self._taken, "requests", msg.body.get("key"), request_id(msg), lambda: self.handle_request(msg)
        )

    def _request_ok(self, state: BackendState, latency: float) -> None:
        state.ok += 1
        state.errors_in_a_row = 0
        state.latency_sum += latency
        self._sample(state, latency)

    def _request_failed(self, state: BackendState, latency: float) -> None:
        state.errors += 1
        state.errors_in_a_row += 1
        self._sample(state, latency)
        if self.eject_after is not None and state.errors_in_a_row >= self.eject_after:
            state.errors_in_a_row = 0
            state.ejected_until = self.now() + self.eject_time
            self._hold()
            self._event("ejected", [state.name, self.eject_time])

    def _sample(self, state: BackendState, latency: float) -> None:
        alpha = self.ewma_alpha
        state.ewma = latency if state.ewma is None else alpha * latency + (1 - alpha) * state.ewma

    # -- algorithms ------------------------------------------------------------------------------

    def _rotated(self, eligible: list[BackendState]) -> list[BackendState]:
        """``eligible`` starting at the cursor, which then moves one on: ties go in turn."""
        start = self._cursor % len(eligible)
        self._cursor += 1
        return eligible[start:] + eligible[:start]

    def _pick_round_robin(self, msg, eligible: list[BackendState]) -> BackendState:
        n = len(self._order)
        for step in range(n):
            state = self._order[(self._cursor + step) % n]
            if state in eligible:
                self._cursor = (self._cursor + step + 1) % n
                return state
        raise AssertionError("unreachable: eligible is not empty")

    def _pick_weighted_round_robin(self, msg, eligible: list[BackendState]) -> BackendState:
        total = 0.0
        best: BackendState | None = None
        for state in eligible:
            state.current += state.weight
            total += state.weight
            if best is None or state.current > best.current:
                best = state
        assert best is not None, "unreachable: eligible is not empty"
        best.current -= total
        return best

    def _pick_least_connections(self, msg, eligible: list[BackendState]) -> BackendState:
        return min(self._rotated(eligible), key=lambda s: s.in_flight / s.weight)

    def _pick_least_response_time(self, msg, eligible: list[BackendState]) -> BackendState:
        return min(self._rotated(eligible), key=lambda s: (s.ewma or 0.0) * (s.in_flight + 1))

    def _pick_consistent_hash(self, msg, eligible: list[BackendState]) -> BackendState:
        body = msg.body
        key = body.get("key") if self.hash_by == "key" else body.get("client", msg.src)
        owner = self.states[self.ring.lookup(key)]
        if owner in eligible:
            return owner
        for name in self.ring.preference_list(key, len(self.ring)):
            if self.states[name] in eligible:
                return self.states[name]
        raise AssertionError("unreachable: eligible is not empty")
