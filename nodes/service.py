"""A microservice: workers and a queue, endpoints that call other services and stores, breakers and deadlines.

A ``Service`` is a ``Backend`` that heartbeats to the registry when given
one (``nodes.discovery.Announcer``), so it has ``concurrency`` workers and a
queue of ``queue_limit``, and a request holds its worker for everything it does,
downstream calls included (a thread per request). Each endpoint (a path
prefix) is a list of calls made one after another:

- ``{"service": "payments", "path": "/charge"}``: a request to an instance
  of that service (round robin over ``services`` or the registry's answer);
- ``{"node": "cache", "op": "read"}`` (or ``"write"``): a lin-kv request for
  the request's ``"key"`` to that node (a read of a missing key is fine).

Guarantees, with ``deadlines=True``: a request whose ``"deadline"`` (seconds
its caller will wait, set by the gateway) ran out while it queued is dropped
without work (error 11), and every call is capped at the time left, passed on
as the callee's ``"deadline"``: no worker waits on a call for an answer
nobody waits for. Two limits, as with gRPC's relative ``grpc-timeout``: the
budget counts from the request's arrival (its time on the wire is not
taken off, so a slow link lets a worker go on for up to that one-way
delay after its caller gave up), and a request's own work
(``service_time``) runs to its end once started. With ``breaker`` settings, calls to a target whose breaker is
open fail at once (error 11) instead of holding a worker for ``call_timeout``.
The registry lookup before a call to a service counts against the deadline
too. A request that fails after a call that may have taken effect (a
service's request, a write) fails indefinitely (13, crash): the caller is
never told "did not happen" (a definite 11) of an order whose payment went
through.
Gives up: with both off, a dead or slow dependency holds a worker per
request for ``call_timeout``; the queue fills, requests that need nothing
from that dependency wait behind them, and the failure spreads upstream
(the cascade ``capsim demo microservices`` shows).

``self.finished`` maps a request's ``"id"`` (when it has one) to when this
service finished it, so a demo can count work done after the caller gave up.
"""

from __future__ import annotations

import asyncio
import collections

from emulator import ConfigError, RPCError, Timeout
from emulator.errors import CRASH, KEY_DOES_NOT_EXIST, MALFORMED_REQUEST
from emulator.validate import positive_seconds
from nodes.balancer import Backend
from nodes.breaker import CircuitBreaker
from nodes.discovery import Announcer, Resolver
from nodes.kv import unavailable

__all__ = ["Service"]


class Service(Backend):
    """One instance of a microservice (see the module docstring).

    Args:
        service: this service's name.
        endpoints: path prefix -> list of calls.
        registries: registry replicas to heartbeat to and look services up in (None: static only).
        services: service -> instance names, for services not looked up.
        call_timeout: seconds a call may take (less when the deadline leaves less).
        breaker: ``CircuitBreaker`` settings, one breaker per call target; None: no breakers.
        deadlines: honour the caller's ``"deadline"`` (see the module docstring).
        interval: the heartbeat period, in seconds.
        ttl: the lease, in seconds.
        **backend: ``Backend``'s settings (service_time, concurrency, queue_limit).
    """

    def __init__(
        self,
        service: str,
        endpoints: dict,
        registries: list[str] | None = None,
        services: dict | None = None,
        call_timeout: float = 1.0,
        breaker: dict | None = None,
        deadlines: bool = True,
        interval: float = 0.5,
        ttl: float = 1.5,
        **backend,
    ):
        _check_endpoints(endpoints)
        # All of them, registries or not: a bad interval is a mistake even where no announcer uses it yet.
        for label, value in (("call_timeout", call_timeout), ("interval", interval), ("ttl", ttl)):
            positive_seconds(f"Service {label}", value)
        super().__init__(**backend)
        self.service = service
        self.announcer = Announcer(self, service, registries, interval, ttl) if registries else None
        self.endpoints = dict(sorted(endpoints.items(), key=lambda kv: -len(kv[0])))
        self.services = dict(services or {})
        self.resolver = Resolver(self, registries) if registries else None
        self.call_timeout, self.breaker_config, self.deadlines = call_timeout, breaker, deadlines
        self.breakers: dict[str, CircuitBreaker] = {}
        self.finished: dict = {}
        self._turn: dict[str, int] = collections.defaultdict(int)
        #: served, failed, expired (dropped: deadline spent in the queue), peak (workers busy + queued)
        self.stats: collections.Counter = collections.Counter()

    async def on_start(self):
        if self.announcer is not None:
            self.spawn(self.announcer.run(), name="heartbeat")

    async def handle_request(self, msg):
        arrived, body = self.now(), msg.body
        budget = body.get("deadline") if self.deadlines else None
        self.stats["peak"] = max(self.stats["peak"], self.busy + len(self.waiting) + 1)
        await self._take_worker()
        try:
            if budget is not None and self.now() - arrived >= budget:
                self.stats["expired"] += 1
                raise unavailable(f"{self.name}: the caller's deadline passed while the request queued")
            await asyncio.sleep(self.service_time.sample(self.rng))
            ends = None if budget is None else arrived + budget
            effects = 0  # calls made that may have changed something: a service's request, a write
            for call in self._calls_for(body.get("path")):
                try:
                    await self._call(call, body, ends)
                except (RPCError, Timeout) as exc:
                    if effects and not (isinstance(exc, RPCError) and not exc.definite):
                        raise _partly_done(self.name, effects, exc) from None
                    raise
                effects += "service" in call or call.get("op") == "write"
        except (RPCError, Timeout):
            self.stats["failed"] += 1
            raise
        finally:
            self._free_worker()
        self.stats["served"] += 1
        if body.get("id") is not None:
            self.finished[body["id"]] = self.now()
        return {"type": "request_ok", "backend": self.name, "path": body.get("path")}

    def _calls_for(self, path) -> list:
        if isinstance(path, str):
            for prefix, calls in self.endpoints.items():
                if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                    return calls
        raise RPCError(MALFORMED_REQUEST, f"{self.name} has no endpoint for {path!r}")

    async def _call(self, call: dict, body: dict, ends: float | None) -> None:
        """One call, capped at the caller's deadline (the instant ``ends``; None: no deadline), lookup included."""
        left = self._left(ends)
        if "service" in call:
            if left is None:
                target = await self._instance(call["service"])
            else:  # a lookup the registry is slow to answer waits on the caller's time too
                try:
                    target = await asyncio.wait_for(self._instance(call["service"]), left)
                except TimeoutError:
                    raise unavailable(f"{self.name}: no time left of the caller's deadline") from None
                left = self._left(ends)
            out = {"type": "request", "path": call["path"], "key": body.get("key"), "id": body.get("id")}
            if left is not None:
                out["deadline"] = left
        else:
            target = call["node"]
            out = {"type": call["op"], "key": body.get("key")}
            if call["op"] == "write":
                out["value"] = body.get("id")
        timeout = self.call_timeout if left is None else min(self.call_timeout, left)
        breaker = self._breaker(target)
        request = self.rpc(target, out, timeout=timeout)
        try:
            await (request if breaker is None else breaker.call(request))
        except RPCError as exc:
            if exc.code != KEY_DOES_NOT_EXIST:
                raise

    def _left(self, ends: float | None) -> float | None:
        """Seconds left of the caller's deadline (None: none); error 11 when none are."""
        if ends is None:
            return None
        left = ends - self.now()
        if left <= 0:
            raise unavailable(f"{self.name}: no time left of the caller's deadline")
        return left

    def _breaker(self, target: str) -> CircuitBreaker | None:
        if self.breaker_config is None:
            return None
        breaker = self.breakers.get(target)
        if breaker is None:
            breaker = self.breakers[target] = CircuitBreaker(self.now, **self.breaker_config)
        return breaker

    async def _instance(self, service: str) -> str:
        instances = self.services.get(service)
        if instances is None and self.resolver is not None:
            instances = await self.resolver.lookup(service)
        if not instances:
            raise unavailable(f"{self.name} knows no instance of {service!r}")
        turn = self._turn[service]
        self._turn[service] += 1
        return instances[turn % len(instances)]


def _partly_done(name: str, effects: int, exc: Exception) -> RPCError:
    """The error of a request that failed after calls that may have taken effect: indefinite (13, crash).

    A definite error (11, say) tells the caller nothing happened; after a charge at payments, it had.
    """
    reason = exc.text if isinstance(exc, RPCError) else str(exc) or type(exc).__name__
    calls = "call" if effects == 1 else "calls"
    return RPCError(CRASH, f"{name}: failed after {effects} {calls} that may have taken effect ({reason})")


def _check_endpoints(endpoints) -> None:
    if not isinstance(endpoints, dict) or not endpoints:
        raise ConfigError(f"endpoints must map path prefixes to lists of calls, got {endpoints!r}")
    for prefix, calls in endpoints.items():
        if not isinstance(prefix, str) or not prefix.startswith("/") or not isinstance(calls, list):
            raise ConfigError(f"endpoint {prefix!r}: a path prefix ('/orders') and a list of calls, got {calls!r}")
        for call in calls:
            service_call = (
                isinstance(call, dict) and isinstance(call.get("service"), str) and isinstance(call.get("path"), str)
            )
            node_call = (
                isinstance(call, dict) and isinstance(call.get("node"), str) and call.get("op") in ("read", "write")
            )
            if not (service_call or node_call):
                raise ConfigError(
                    f"endpoint {prefix!r}: a call is {{'service': name, 'path': p}} or "
                    f"{{'node': name, 'op': 'read' | 'write'}}, got {call!r}"
                )
