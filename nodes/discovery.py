"""Service discovery: a registry that instances heartbeat with a TTL, and clients that look up and cache.

An instance sends ``heartbeat`` every ``interval`` seconds; the registry
node that takes it records ``expires = now + ttl`` and the instance's beat
count. A lookup lists the instances of a service whose record has not
expired. Records merge by beat, the greater winning, and for one beat by
expiry, the earlier winning (the lease runs from the beat's first arrival),
so merging is idempotent, commutative and associative and duplicates change
nothing. Registry
replicas are named by ``replicas`` (all of them, itself included).

Two choices, as in the systems they stand for:

- ``mode="ap"`` (like Eureka): a replica answers heartbeats and lookups
  from its own view and replicates to the others asynchronously (a push on
  every change, and its whole view to one replica every ``sync_interval``).
  Guarantee: it always answers. Gives up: a replica cut off from the others
  serves a stale view: it misses instances registered elsewhere, and
  instances that heartbeat to the other side expire on it though alive.
- ``mode="cp"`` (like etcd's choice, on a majority quorum rather than Raft):
  a heartbeat is acknowledged once a majority of replicas stored it, and a
  lookup merges the views of a majority. Guarantee: a lookup reflects every
  heartbeat acknowledged before it began. Gives up: a replica that cannot
  reach a majority refuses both (error 11), so instances on the minority
  side cannot renew and expire everywhere after ``ttl``, though alive.

Either way a dead instance stays listed until its record expires: at most
``ttl`` after a replica first took its last heartbeat. A late duplicate of a
beat extends nothing, and neither does the same beat taken again by another
replica once the two have merged (the earlier expiry wins); the
``Announcer`` numbers each attempt anew, so its retry at the next replica is
a new heartbeat, with its own lease. And a client caching lookups for
``cache_ttl`` may send it traffic for that long again (``Resolver``), as long
as it reaches a registry: a ``Resolver`` that reaches none keeps its last
answer (``stale_on_error``, the default) for as long as it is cut off, dead
instances included; with ``stale_on_error=False`` its lookups fail (11)
instead.
Expiry compares times from different replicas' clocks: the bounds hold when
the clocks agree, and are off by the skew when they do not.

Protocol: ``{"type": "heartbeat", "service", "instance", "ttl", "beat"}`` ->
``heartbeat_ok``; ``{"type": "lookup", "service"}`` -> ``{"type":
"lookup_ok", "instances": [...]}`` (sorted); replicas exchange ``reg_put``
and ``reg_get``. Records live in ``storage`` (they survive a crash).
"""

from __future__ import annotations

import asyncio
import collections
import math

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import MALFORMED_REQUEST, TIMEOUT
from emulator.validate import is_int, is_number, positive_seconds
from nodes.balancer import Backend
from nodes.kv import unavailable

__all__ = ["MODES", "Announcer", "Instance", "Registry", "Resolver", "merge_records"]

MODES = ("ap", "cp")


def merge_records(mine: dict, theirs: dict) -> dict:
    """Instance -> record, each instance's record with the greater beat, and for one beat the earlier expiry."""
    out = dict(mine)
    for instance, record in theirs.items():
        current = out.get(instance)
        if current is None or (record["beat"], -record["expires"]) > (current["beat"], -current["expires"]):
            out[instance] = record
    return dict(sorted(out.items()))


def live(records: dict, service: str, now: float) -> list[str]:
    """The instances of ``service`` whose records have not expired at ``now``, sorted."""
    return sorted(i for i, r in records.items() if r["service"] == service and r["expires"] > now)


class Registry(Node):
    """One replica of the registry (see the module docstring).

    Args:
        replicas: every registry replica's name, this one included (default: just this one).
        mode: ``"ap"`` or ``"cp"``.
        sync_interval: ap: seconds between sending the whole view to the next replica.
        rpc_timeout: cp: seconds to wait for replicas.
    """

    def __init__(
        self, replicas: list[str] | None = None, mode: str = "ap", sync_interval: float = 0.5, rpc_timeout: float = 0.1
    ):
        if mode not in MODES:
            raise ConfigError(f"Registry mode must be 'ap' (like Eureka) or 'cp' (like etcd), got {mode!r}")
        if replicas is not None and (isinstance(replicas, str) or not all(isinstance(r, str) for r in replicas)):
            raise ConfigError(f"replicas must be a list of registry node names, got {replicas!r}")
        positive_seconds("sync_interval", sync_interval)
        positive_seconds("rpc_timeout", rpc_timeout)
        self.replicas_given = list(replicas) if replicas is not None else None
        self.mode, self.sync_interval, self.rpc_timeout = mode, sync_interval, rpc_timeout
        #: heartbeats, lookups, refused (cp, no majority), synced
        self.stats: collections.Counter = collections.Counter()
        self._cursor = 0

    @property
    def others(self) -> list[str]:
        """The other registry replicas."""
        return [r for r in (self.replicas_given or [self.name]) if r != self.name]

    @property
    def majority(self) -> int:
        return (len(self.others) + 1) // 2 + 1

    async def on_start(self):
        self.storage.setdefault("records", {})
        if self.mode == "ap" and self.others:
            self.spawn(self._sync_forever(), name="registry-sync")

    @property
    def records(self) -> dict:
        return self.storage["records"]

    def _absorb(self, records: dict) -> None:
        merged = merge_records(self.records, records)
        if merged != self.records:
            self.storage["records"] = merged

    # -- instances and clients ----------------------------------------------------------------

    async def handle_heartbeat(self, msg):
        body = msg.body
        record = _record(body, self.now())
        current = self.records.get(body["instance"])
        if current is not None and current["beat"] > record["beat"]:
            return {"type": "heartbeat_ok"}  # an old duplicate: a newer beat is already here
        if current is not None and current["beat"] == record["beat"]:
            record = current  # a duplicate or a retry extends nothing: the lease runs from its first arrival
        self.stats["heartbeats"] += 1
        self._absorb({body["instance"]: record})
        if self.mode == "ap":
            for peer in self.others:
                self.send(peer, {"type": "reg_put", "records": {body["instance"]: record}})
        else:
            puts = [self._put(p, {body["instance"]: record}) for p in self.others]
            acks = 1 + len(await _first(puts, self.majority - 1))
            if acks < self.majority:
                self.stats["refused"] += 1
                raise RPCError(
                    TIMEOUT,
                    f"heartbeat stored on {acks} of {len(self.others) + 1} registry replicas, "
                    f"a majority is {self.majority}; it may or may not take effect",
                )
        return {"type": "heartbeat_ok"}

    async def handle_lookup(self, msg):
        service = msg.body.get("service")
        if not isinstance(service, str):
            raise RPCError(MALFORMED_REQUEST, f"lookup needs a 'service' name, got {service!r}")
        self.stats["lookups"] += 1
        view = self.records
        if self.mode == "cp":
            views = await _first([self._get(p) for p in self.others], self.majority - 1)
            if len(views) + 1 < self.majority:
                self.stats["refused"] += 1
                raise unavailable(
                    f"{self.name} reaches {len(views) + 1} of {len(self.others) + 1} registry "
                    f"replicas; a lookup needs a majority ({self.majority})"
                )
            for other in views:
                view = merge_records(view, other)
        return {"type": "lookup_ok", "service": service, "instances": live(view, service, self.now())}

    # -- between replicas -----------------------------------------------------------------------

    async def handle_reg_put(self, msg):
        self._absorb(msg.body["records"])
        return {"type": "reg_put_ok"}

    async def handle_reg_get(self, msg):
        return {"type": "reg_get_ok", "records": self.records}

    async def _put(self, peer: str, records: dict) -> bool | None:
        try:
            await self.rpc(peer, {"type": "reg_put", "records": records}, timeout=self.rpc_timeout)
            return True
        except (Timeout, RPCError):
            return None

    async def _get(self, peer: str) -> dict | None:
        try:
            return (await self.rpc(peer, {"type": "reg_get"}, timeout=self.rpc_timeout))["records"]
        except (Timeout, RPCError):
            return None

    async def _sync_forever(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.sync_interval))
        while True:
            others = self.others
            peer = others[self._cursor % len(others)]
            self._cursor += 1
            self.send(peer, {"type": "reg_put", "records": self.records})
            self.stats["synced"] += 1
            await asyncio.sleep(self.sync_interval)


async def _first(calls: list, need: int) -> list:
    """The non-None results of ``calls``, returned as soon as ``need`` are in (or all have finished)."""
    if need <= 0:
        for call in calls:
            call.close()
        return []
    tasks = [asyncio.ensure_future(call) for call in calls]
    got: list = []
    try:
        for done in asyncio.as_completed(tasks):
            result = await done
            if result is not None:
                got.append(result)
                if len(got) >= need:
                    break
    finally:
        for task in tasks:
            task.cancel()  # stop waiting; a request already sent may still be applied
    return got


def _record(body: dict, now: float) -> dict:
    for field in ("service", "instance"):
        if not isinstance(body.get(field), str):
            raise RPCError(MALFORMED_REQUEST, f"heartbeat needs a {field!r} name, got {body.get(field)!r}")
    ttl, beat = body.get("ttl"), body.get("beat")
    if not is_number(ttl, gt=0, lt=math.inf):
        raise RPCError(MALFORMED_REQUEST, f"heartbeat ttl must be positive seconds, got {ttl!r}")
    if not is_int(beat):
        raise RPCError(MALFORMED_REQUEST, f"heartbeat beat must be the instance's int counter, got {beat!r}")
    return {"service": body["service"], "expires": now + ttl, "beat": beat}


class Announcer:
    """Heartbeats for one instance: every ``interval``, to the first registry replica that answers.

    Start it from the instance's ``on_start`` with ``node.spawn(announcer.run())``.
    The beat count lives in the node's storage, so it grows across restarts. Each
    attempt is a new beat: a retry at the next replica, after the first timed out
    (and may have been taken), is a heartbeat of its own, so the lease of the
    last one taken runs from when it was first taken, as the registry promises.
    """

    def __init__(
        self,
        node: Node,
        service: str,
        registries: list[str],
        interval: float = 0.5,
        ttl: float = 1.5,
        timeout: float = 0.2,
    ):
        if not registries:
            raise ConfigError("an instance needs at least one registry replica to heartbeat to")
        positive_seconds("interval", interval)
        positive_seconds("ttl", ttl)
        positive_seconds("timeout", timeout)
        self.node, self.service, self.registries = node, service, list(registries)
        self.interval, self.ttl, self.timeout = interval, ttl, timeout
        self.acknowledged = 0

    async def run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.interval)

    async def beat(self) -> bool:
        """Send one heartbeat, trying each replica in turn (a new beat each); True once one acknowledged it."""
        storage = self.node.storage
        for registry in self.registries:
            storage["beat"] = storage.get("beat", 0) + 1
            body = {
                "type": "heartbeat",
                "service": self.service,
                "instance": self.node.name,
                "ttl": self.ttl,
                "beat": storage["beat"],
            }
            try:
                await self.node.rpc(registry, body, timeout=self.timeout)
            except (Timeout, RPCError):
                continue
            self.acknowledged += 1
            return True
        return False


class Instance(Backend):
    """A ``Backend`` that registers itself as an instance of ``service`` and keeps heartbeating.

    Args:
        service: the service name.
        registries: registry replicas, tried in order (put the zone's own first).
        interval: the heartbeat period, in seconds.
        ttl: the record's time to live, in seconds.
        **backend: ``Backend``'s settings.
    """

    def __init__(self, service: str, registries: list[str], interval: float = 0.5, ttl: float = 1.5, **backend):
        super().__init__(**backend)
        self.announcer = Announcer(self, service, registries, interval, ttl)

    async def on_start(self):
        self.spawn(self.announcer.run(), name="heartbeat")


class Resolver:
    """A client's lookups, cached for ``cache_ttl`` seconds; on failure, the last answer (if any).

    Use from a node: ``instances = await resolver.lookup("users")``.

    Args:
        node: the node that looks up (its rpc and clock are used).
        registries: registry replicas, tried in order.
        cache_ttl: seconds an answer is reused without asking again.
        stale_on_error: when every replica fails, return the last answer however old (else raise).
        timeout: seconds to wait for one replica.
    """

    def __init__(
        self,
        node: Node,
        registries: list[str],
        cache_ttl: float = 1.0,
        stale_on_error: bool = True,
        timeout: float = 0.2,
    ):
        if not registries:
            raise ConfigError("a resolver needs at least one registry replica")
        positive_seconds("cache_ttl", cache_ttl)
        positive_seconds("timeout", timeout)
        self.node, self.registries = node, list(registries)
        self.cache_ttl, self.stale_on_error, self.timeout = cache_ttl, stale_on_error, timeout
        self._cache: dict[str, tuple[float, list[str]]] = {}
        #: cached (answered from the cache), asked (a registry answered), stale (the last answer after a failure)
        self.stats: collections.Counter = collections.Counter()

    async def lookup(self, service: str) -> list[str]:
        """The instances of ``service``.

        Raises:
            RPCError: 11, no registry answered and there is no earlier answer to fall back on.
        """
        cached = self._cache.get(service)
        if cached is not None and self.node.now() - cached[0] < self.cache_ttl:
            self.stats["cached"] += 1
            return cached[1]
        last_error: BaseException | None = None
        for registry in self.registries:
            try:
                reply = await self.node.rpc(registry, {"type": "lookup", "service": service}, timeout=self.timeout)
            except (Timeout, RPCError) as exc:
                last_error = exc
                continue
            self.stats["asked"] += 1
            self._cache[service] = (self.node.now(), reply["instances"])
            return reply["instances"]
        if cached is not None and self.stale_on_error:
            self.stats["stale"] += 1
            return cached[1]
        raise unavailable(f"no registry answered a lookup of {service!r} ({last_error})")
