"""An API gateway: authentication, per-client rate limits, routing by path, and a deadline passed downstream.

A request ``{"type": "request", "path": "/users/7", "token": t, ...}`` is
checked in this order, each refusal a definite error (the request went
nowhere, so a history records it as ``fail``):

1. the token names a client in ``tokens`` (else error 14, "unauthorized");
2. the client's token bucket has a token (else error 11, "rate limited":
   ``rate`` requests per second, bursts of ``burst``);
3. the longest route prefix of the path names a service (else error 10);
4. the request's deadline (``deadline`` seconds, or the client's own
   ``"deadline"`` if shorter) has time left once an instance is chosen
   (else error 11).

It then forwards the request to an instance of the service (round robin
over a static list, or over a ``Resolver``'s lookups of the registry,
skipping instances whose ``breaker`` is open), with ``"client"`` set, the
token removed and ``"deadline"`` set to the seconds left, and waits at most
that long: a service that honours ``"deadline"`` (:mod:`nodes.service`) does
not wait on a request its caller has given up on, but for the time the
request spent on the wire (each hop counts the seconds left from its own
arrival, like gRPC's ``grpc-timeout``). A timeout is error 0 (indefinite: the service may
have done it); the service's own answers and errors pass through. With
``propagate_deadline=False`` no deadline goes downstream and the gateway
waits ``deadline`` seconds whatever the client asked for (the setting that
lets a cascade happen).

``max_in_flight`` bounds the requests forwarded at once (a connection or
thread pool): the rest wait in order, up to ``queue_limit``, beyond which a
request is refused with error 11. Every route shares the pool, so a route
whose service hangs can starve the others.

Rate limiting across gateway replicas (``limiter``):

- ``"local"``: each replica keeps its own buckets. Guarantee: a replica
  admits at most ``burst + rate * t`` of a client's requests in any ``t``
  seconds of its own clock (a skewed or drifting clock skews the rate), within
  one incarnation: a restart forgets the buckets and starts each full, so a
  stretch of time across a crash and restart may admit up to ``burst`` more
  per restart. Gives up: the cluster-wide limit. A client spreading its requests
  over R replicas gets up to R times the rate, partition or not.
- ``"shared"``: each replica counts what it admitted per client (a G-counter,
  :mod:`nodes.crdt`) and sends its counts to the other ``replicas`` every
  ``sync_interval``; what a replica learns the others admitted is taken out
  of its own bucket. Guarantee: while the replicas can talk, the cluster
  admits about ``rate`` per second per client (over by at most what the
  others admitted in the last ``sync_interval``). Gives up: under a partition
  each side only knows its own count, so k sides admit up to k times the rate.
  Counts merge by maximum: duplicated or reordered syncs change nothing.

Duplicates: a request is taken once per copy of it (same sender and
``msg_id``, :func:`nodes.dedup.request_key`): a network duplicate gets the
first copy's answer, or none while that one runs, so it is never forwarded
twice, and it is never refused "definitely" (rate limited, pool full) after
its first copy went downstream. A client's retry is a new request.

Buckets, counts and the table of requests taken are memory: a crash of a
replica forgets them (a copy arriving after the restart is a new request).
With ``"shared"``, a restarted replica counts its admissions under a new
name (``name#boot``, the boot count in ``storage``), so the others learn them
at once, and takes the first counts it hears from each other replica as its
baseline: it does not charge itself for what the cluster admitted before it
came back (it starts with a full bucket, as a local one does: up to
``burst`` more per restart).
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import ABORT, NOT_SUPPORTED, TIMEOUT
from emulator.validate import is_int, is_number
from nodes import crdt
from nodes.breaker import CLOSED, HALF_OPEN, CircuitBreaker
from nodes.dedup import request_key
from nodes.discovery import Resolver
from nodes.kv import answer, error_answer, unavailable

__all__ = ["LIMITERS", "Gateway", "TokenBucket"]

LIMITERS = ("local", "shared")


class TokenBucket:
    """``rate`` tokens per second up to ``burst``, on ``clock``; starts full.

    Args:
        rate: tokens added per second.
        burst: tokens held at most.
        clock: a zero-argument callable returning seconds.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self._last = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self) -> bool:
        """Take one token if there is one; True when taken."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def charge(self, n: float) -> None:
        """Take ``n`` tokens spent elsewhere, even below zero (the bucket then refills from debt)."""
        self._refill()
        self.tokens -= n


class Gateway(Node):
    """The API gateway (see the module docstring).

    Args:
        routes: path prefix -> service name.
        services: service -> instance node names (a static list), for services
            not found through ``registries``.
        registries: registry replicas to look services up (``nodes.discovery``); None: static only.
        tokens: token -> client name; None lets every request in as client ``"anonymous"``.
        rate: each client's limit, in requests per second.
        burst: the burst each client is allowed above the rate.
        limiter: ``"local"`` or ``"shared"``.
        replicas: every gateway replica's name (for ``"shared"``).
        sync_interval: seconds between count exchanges (``"shared"``).
        deadline: seconds a request may take, from its arrival here.
        cache_ttl: seconds a lookup of the registry is reused.
        propagate_deadline: pass the deadline downstream and honour a shorter one from the client.
        max_in_flight: requests forwarded at once (None: no bound); queue_limit: requests waiting for a slot.
        breaker: ``CircuitBreaker`` settings, one breaker per instance (None: none).
    """

    def __init__(
        self,
        routes: dict,
        services: dict | None = None,
        registries: list[str] | None = None,
        tokens: dict | None = None,
        rate: float = 100.0,
        burst: float = 20.0,
        limiter: str = "local",
        replicas: list[str] | None = None,
        sync_interval: float = 0.1,
        deadline: float = 1.0,
        cache_ttl: float = 1.0,
        propagate_deadline: bool = True,
        max_in_flight: int | None = None,
        queue_limit: int = 1000,
        breaker: dict | None = None,
    ):
        _check_routes(routes, services, registries)
        if limiter not in LIMITERS:
            raise ConfigError(
                f"limiter must be 'local' (each replica alone) or 'shared' (replicas sync counts), got {limiter!r}"
            )
        for label, value in (
            ("rate", rate),
            ("burst", burst),
            ("sync_interval", sync_interval),
            ("deadline", deadline),
            ("cache_ttl", cache_ttl),  # registries or not (the Resolver checks it too)
        ):
            if not is_number(value, gt=0, lt=math.inf):
                raise ConfigError(f"Gateway {label} must be a positive number, got {value!r}")
        if burst < 1:
            raise ConfigError(f"burst must be at least 1 (one request), got {burst!r}")
        self.routes = dict(sorted(routes.items(), key=lambda kv: -len(kv[0])))  # longest prefix first
        self.services = dict(services or {})
        self.resolver = Resolver(self, registries, cache_ttl) if registries else None
        self.tokens = tokens
        self.rate, self.burst, self.limiter = rate, burst, limiter
        self.replicas = [r for r in (replicas or []) if r != self.name] if limiter == "shared" else []
        self.sync_interval, self.deadline = sync_interval, deadline
        self.propagate_deadline = propagate_deadline
        if max_in_flight is not None and not is_int(max_in_flight, ge=1):
            raise ConfigError(f"max_in_flight must be an int >= 1, or None for no bound, got {max_in_flight!r}")
        self.max_in_flight, self.queue_limit = max_in_flight, queue_limit
        self.slots = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self.in_flight = self.queued = 0
        self.breaker_config = breaker
        self.breakers: dict[str, CircuitBreaker] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.counts: dict[str, dict] = {}  # client -> G-counter of admissions per replica
        self._turn: dict[str, int] = collections.defaultdict(int)
        #: unauthorized, limited, no_route, deadline, forwarded, timeouts, full (queue), peak_in_flight, peak_queued;
        #: admitted per client in ``admitted``
        self.stats: collections.Counter = collections.Counter()
        self.admitted: collections.Counter = collections.Counter()
        self.dedup_window = 100_000
        self._taken: dict = {}  # (sender, msg_id) -> None while its first copy runs, then its answer

    async def on_start(self):
        # Each incarnation counts its admissions under its own name, so the others see them at once (as its first
        # one's count, which they hold, is above a new count from zero); ``_heard``: replicas heard since this start.
        self.storage["boots"] = self.storage.get("boots", 0) + 1
        self.entry = self.name if self.storage["boots"] == 1 else f"{self.name}#{self.storage['boots']}"
        self._heard: set[str] = set()
        if self.replicas:
            self.spawn(self._sync_forever(), name="limiter-sync")

    # -- the checks ---------------------------------------------------------------------------

    async def handle_request(self, msg):
        """Serve a request once per copy of it: a network duplicate gets the first copy's answer (none while it runs).

        Without this, a duplicate refused (rate limited, pool full) could reach the client before the first copy's
        answer, and tell it "definitely not done" about a request that went downstream.
        """
        key = request_key(msg, by_id=False)
        if msg.body.get("msg_id") is None:
            return await self._serve(msg)
        if key in self._taken:
            return answer(self._taken[key])
        self._taken[key] = None
        while len(self._taken) > self.dedup_window:
            del self._taken[next(iter(self._taken))]
        try:
            reply = await self._serve(msg)
        except RPCError as exc:
            self._taken[key] = error_answer(exc)
            raise
        self._taken[key] = reply
        return reply

    async def _serve(self, msg):
        arrived = self.now()
        body = msg.body
        client = self._authenticate(body)
        if not self._admit(client):
            self.stats["limited"] += 1
            raise unavailable(f"rate limited: client {client!r} is over {self.rate:g}/s (burst {self.burst:g})")
        service = self._route(body.get("path"))
        budget = min(self.deadline, _client_deadline(body)) if self.propagate_deadline else self.deadline
        await self._enter()
        try:
            return await self._forward(body, client, service, budget, arrived)
        finally:
            self.in_flight -= 1
            if self.slots is not None:
                self.slots.release()

    async def _enter(self) -> None:
        """Take a slot of the pool, waiting in order; error 11 when the queue is full."""
        if self.slots is not None:
            if self.slots.locked() and self.queued >= self.queue_limit:
                self.stats["full"] += 1
                raise unavailable(f"gateway busy: {self.max_in_flight} requests in flight, {self.queued} waiting")
            self.queued += 1
            self.stats["peak_queued"] = max(self.stats["peak_queued"], self.queued)
            try:
                await self.slots.acquire()
            finally:
                self.queued -= 1
        self.in_flight += 1
        self.stats["peak_in_flight"] = max(self.stats["peak_in_flight"], self.in_flight)

    async def _forward(self, body: dict, client: str, service: str, budget: float, arrived: float) -> dict:
        instance = await self._choose(service)
        left = budget - (self.now() - arrived)
        if left <= 0:
            self.stats["deadline"] += 1
            raise unavailable(f"deadline of {budget:g}s spent before the request could be forwarded")
        out = {k: v for k, v in body.items() if k not in ("msg_id", "token", "deadline")}
        out["client"] = client
        if self.propagate_deadline:
            out["deadline"] = left
        self.stats["forwarded"] += 1
        request = self.rpc(instance, out, timeout=left)
        breaker = self._breaker(instance)
        try:
            reply = await (request if breaker is None else breaker.call(request))
        except Timeout:
            self.stats["timeouts"] += 1
            raise RPCError(TIMEOUT, f"{instance} did not answer within the {left:.3f}s left of the deadline") from None
        return {k: v for k, v in reply.items() if k != "in_reply_to"}

    def _breaker(self, instance: str) -> CircuitBreaker | None:
        if self.breaker_config is None:
            return None
        breaker = self.breakers.get(instance)
        if breaker is None:
            breaker = self.breakers[instance] = CircuitBreaker(self.now, **self.breaker_config)
        return breaker

    def _authenticate(self, body: dict) -> str:
        if self.tokens is None:
            return "anonymous"
        client = self.tokens.get(body.get("token")) if isinstance(body.get("token"), str) else None
        if client is None:
            self.stats["unauthorized"] += 1
            raise RPCError(ABORT, "unauthorized: the request carries no valid 'token'")
        return client

    def _admit(self, client: str) -> bool:
        bucket = self.buckets.get(client)
        if bucket is None:
            bucket = self.buckets[client] = TokenBucket(self.rate, self.burst, self.now)
        if not bucket.take():
            return False
        self.admitted[client] += 1
        if self.replicas:
            self.counts[client] = crdt.counter_add(self.counts.get(client, crdt.counter()), self.entry, 1)
        return True

    def _route(self, path) -> str:
        if isinstance(path, str):
            for prefix, service in self.routes.items():
                if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                    return service
        self.stats["no_route"] += 1
        raise RPCError(NOT_SUPPORTED, f"no route for path {path!r}; routes: {', '.join(sorted(self.routes))}")

    async def _choose(self, service: str) -> str:
        instances = self.services.get(service)
        if instances is None and self.resolver is not None:
            instances = await self.resolver.lookup(service)
        if not instances:
            raise unavailable(f"no instance of {service!r} is known")
        if self.breaker_config is not None:
            admitting = [i for i in instances if _admits(self._breaker(i))]
            instances = admitting or instances
        turn = self._turn[service]
        self._turn[service] += 1
        return instances[turn % len(instances)]

    # -- the shared limiter -------------------------------------------------------------------

    async def _sync_forever(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.sync_interval))
        while True:
            for replica in self.replicas:
                self.send(replica, {"type": "gw_usage", "counts": self.counts})
            await asyncio.sleep(self.sync_interval)

    async def handle_gw_usage(self, msg):
        # After a restart, the first counts from each replica are a baseline: admissions made before this incarnation
        # started (its bucket starts full, as a local one does) are not charged to it again.
        baseline = self.storage["boots"] > 1 and msg.src not in self._heard
        self._heard.add(msg.src)
        for client, theirs in msg.body["counts"].items():
            mine = self.counts.get(client, crdt.counter())
            merged = crdt.merge(mine, theirs)
            learned = crdt.counter_value(merged) - crdt.counter_value(mine)
            if learned:
                self.counts[client] = merged
                if baseline:
                    continue
                bucket = self.buckets.get(client)
                if bucket is None:
                    bucket = self.buckets[client] = TokenBucket(self.rate, self.burst, self.now)
                bucket.charge(learned)


def _admits(breaker: CircuitBreaker | None) -> bool:
    """Whether ``breaker`` would let a call through now (none, closed, or half-open with a probe slot free)."""
    if breaker is None:
        return True
    state = breaker.state
    return state == CLOSED or (state == HALF_OPEN and breaker.probes_in_flight < breaker.half_open_max)


def _client_deadline(body: dict) -> float:
    given = body.get("deadline")
    if not is_number(given, gt=0):
        return math.inf
    return given


def _check_routes(routes, services, registries) -> None:
    if (
        not isinstance(routes, dict)
        or not routes
        or not all(isinstance(p, str) and p.startswith("/") and isinstance(s, str) for p, s in routes.items())
    ):
        raise ConfigError(f"routes must map path prefixes ('/users') to service names, got {routes!r}")
    if services is not None and (
        not isinstance(services, dict)
        or not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in services.values())
    ):
        raise ConfigError(f"services must map service names to lists of instance names, got {services!r}")
    unknown = sorted(s for s in routes.values() if s not in (services or {}))
    if unknown and not registries:
        raise ConfigError(
            f"routes name {unknown}, which neither services lists nor a registry can find; "
            "add them to services or give registries"
        )
