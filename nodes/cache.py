"""A caching node in front of any lin-kv store: LRU + TTL, three write policies.

Guarantees: cache-aside and write-through acknowledge a write only once the
store has it (a cache crash loses none), and through this one cache over a
linearizable store the history is linearizable; write-behind is linearizable
while the cache lives. Both hold whatever the network duplicates, reorders,
delays or drops, as long as the store follows the request-id rule of
:mod:`nodes.kv` (every store in ``nodes`` does): it takes each request id at
most once, answers every copy of a request it took with the first answer, and
drops a client's request older than one of that client's it took on the key.
The cache takes each client request once (a copy gets the first answer,
:func:`nodes.kv.take_once`; the table of requests taken is in ``storage``, so
a late copy arriving after a restart of the cache is not taken again) and
sends it on, and each queued write-behind write, with the client's request id
(or one of the cache's own, for a write sent without a ``msg_id``), so a copy
or a retry of it cannot land twice.

Fills, cache-aside and write-through. A write the store did not say it took
(a timeout, error 11) may still land at any later time, so a value cached after
it could go stale with no message saying so. The cache therefore keeps, in
``storage``, every write and cas it sent whose fate is unknown, and resends
each, with its request id, until the store answers it with ok, 20 or 22 (it
took it: no copy can land after) or answers a later request of its client on
that key (it will drop the older one); a restarted cache resumes the resends.
A key is not filled while it has such a write, nor by a read of the store
that overlapped a write of it starting or settling: then no write could land
while the read ran, so the value read is the store's value when it fills,
whatever order the replies came in. The price: a key is read from the store,
uncached, until its writes settle (for as long as the store is unreachable).
Gives up: write-behind loses the acknowledged writes still queued when the
cache crashes (all of them but those whose flush was already on its way to the
store: one of those may still land); readers of the store or of another cache may disagree with
this one (another cache serves its copy for up to ``ttl``; the store lags a
write-behind cache until the flush).

Policies:

- ``cache-aside``: read miss -> read the store, fill; write -> write the
  store, then drop the key (the next read fills it).
- ``write-through``: as cache-aside, but a write acknowledged by the store
  also fills the cache with the written value.
- ``write-behind``: a write updates the cache and joins a FIFO queue in
  memory, and is acknowledged at once; every ``flush_interval`` a background
  task writes the queue to the store, up to ``flush_batch`` distinct keys at a
  time, each key's writes in order, retrying a failed write at the next
  interval (a key's next write leaves only once the store acknowledged the
  one before, so none is overtaken). Writes to different keys may reach the
  store in another order.

The cache speaks lin-kv (``nodes.kv``) to its clients and to the store, and
answers ``{"type": "stats"}`` with its hit and miss counts. With several
``store`` nodes it uses the first, moving to the next when one times out or is
unavailable. Times (TTL) are on the node's clock.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import KEY_DOES_NOT_EXIST, MALFORMED_REQUEST, PRECONDITION_FAILED, TEMPORARILY_UNAVAILABLE
from emulator.validate import is_int, is_number, whole
from nodes.kv import not_found, precondition_failed, request_id, take_once, unavailable

__all__ = ["LRU", "POLICIES", "Cache", "Queued"]

POLICIES = ("cache-aside", "write-through", "write-behind")
_MISS = object()
#: store errors that say it took the request (nodes.kv remembers them per request id): its fate is settled
_TAKEN = (KEY_DOES_NOT_EXIST, PRECONDITION_FAILED)


class Queued(NamedTuple):
    """A write-behind write waiting for the store: its key, its value, its client's request id (or None)."""

    key: Any
    value: Any
    rid: list | None


class LRU:
    """A least-recently-used map with a capacity and a time to live.

    An expired entry is dropped when next looked up (or evicted as the least
    recently used); ``capacity`` 0 caches nothing.

    Args:
        capacity: entries kept at most.
        ttl: seconds an entry lives after it was put (None: forever).
        clock: a zero-argument callable returning seconds.
    """

    def __init__(self, capacity: int, ttl: float | None, clock: Callable[[], float]):
        if not is_int(capacity, ge=0):
            raise ConfigError(f"capacity must be an int >= 0 (entries), got {capacity!r}")
        if ttl is not None and not is_number(ttl, gt=0):
            raise ConfigError(f"ttl must be a number of seconds > 0, or None for no expiry, got {ttl!r}")
        self.capacity = capacity
        self.ttl = ttl
        self.clock = clock
        self._data: collections.OrderedDict = collections.OrderedDict()  # key -> (value, expires at)
        self.evictions = 0
        self.expirations = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key, default=_MISS):
        """The live value of ``key`` (now the most recently used), or ``default``."""
        entry = self._data.get(key)
        if entry is None:
            return default
        if entry[1] <= self.clock():
            del self._data[key]
            self.expirations += 1
            return default
        self._data.move_to_end(key)
        return entry[0]

    def put(self, key, value) -> None:
        """Store ``value`` under ``key`` as most recently used, evicting the least if full."""
        if self.capacity == 0:
            return
        expires = math.inf if self.ttl is None else self.clock() + self.ttl
        self._data[key] = (value, expires)
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)
            self.evictions += 1

    def delete(self, key) -> None:
        self._data.pop(key, None)

    def keys(self) -> list:
        """Keys from least to most recently used (expired ones included until looked up)."""
        return list(self._data)


class Cache(Node):
    """A lin-kv cache in front of ``store`` (see the module docstring).

    Args:
        store: the store's node name, or a list of them (first one used first).
        capacity: LRU entries.
        ttl: seconds a cached entry lives (None: until evicted or invalidated).
        policy: one of ``POLICIES``.
        flush_interval: write-behind: seconds between flushes.
        flush_batch: write-behind: writes (to distinct keys) sent to the store at once.
        queue_limit: write-behind: queued writes allowed; beyond, writes get error 11.
        timeout: seconds to wait for the store.
    """

    def __init__(
        self,
        store: str | list[str],
        capacity: int = 1000,
        ttl: float | None = None,
        policy: str = "cache-aside",
        flush_interval: float = 0.1,
        flush_batch: int = 16,
        queue_limit: int = 10_000,
        timeout: float = 1.0,
    ):
        stores = [store] if isinstance(store, str) else store
        if not isinstance(stores, (list, tuple)) or not stores or not all(isinstance(s, str) and s for s in stores):
            raise ConfigError(f"store must be a node name or a non-empty list of them, got {store!r}")
        if policy not in POLICIES:
            raise ConfigError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}")
        for name, value in (("flush_interval", flush_interval), ("timeout", timeout)):
            if not is_number(value, gt=0):
                raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")
        for name, value in (("flush_batch", flush_batch), ("queue_limit", queue_limit)):
            whole(name, value)
        self.stores = list(stores)
        self.policy = policy
        self.flush_interval = flush_interval
        self.flush_batch = flush_batch
        self.queue_limit = queue_limit
        self.timeout = timeout
        self.lru = LRU(capacity, ttl, self.now)
        self.hits = self.misses = self.flushed = 0
        self._store_at = 0
        self._marks: dict = {}  # key -> bumped when a write starts and when its fate is known: fills check it
        #: write-behind: acknowledged writes not yet in the store, oldest first
        self.queue: collections.deque = collections.deque()
        self._dirty: dict = {}  # key -> [latest queued value, writes of it queued]
        self._flushing = False

    async def on_start(self):
        # The client requests taken (nodes.kv.take_once), in storage: a copy of a request taken before a crash must
        # not be taken again after it (write-behind would queue it anew, over what superseded it).
        self.storage.setdefault("requests", {})
        # The writes sent to the store whose fate is not known yet (key -> bodies), in storage: one sent before a
        # crash may still land after the restart, and the restarted cache must not fill its key until it knows.
        for key, bodies in self.storage.setdefault("unsettled", {}).items():
            for body in bodies:
                self.spawn(self._settle(key, body), name="settle")
        if self.policy == "write-behind":
            self.spawn(self._flush_forever(), name="flush")

    # -- stats ------------------------------------------------------------------------

    @property
    def hit_rate(self) -> float | None:
        """Read hits / reads (None before the first read)."""
        reads = self.hits + self.misses
        return self.hits / reads if reads else None

    def stats(self) -> dict:
        return {
            "policy": self.policy,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "evictions": self.lru.evictions,
            "expirations": self.lru.expirations,
            "size": len(self.lru),
            "queued": len(self.queue),
            "flushed": self.flushed,
        }

    async def handle_stats(self, msg):
        return {"type": "stats_ok", **self.stats()}

    # -- the store ----------------------------------------------------------------------

    async def _store(self, body: dict) -> dict:
        store = self.stores[self._store_at % len(self.stores)]
        try:
            return await self.rpc(store, body, timeout=self.timeout)
        except (Timeout, RPCError) as exc:
            if isinstance(exc, Timeout) or exc.code == TEMPORARILY_UNAVAILABLE:
                self._store_at += 1  # fail over for the next request; this one's fate is the caller's
            raise

    def _local(self, key):
        """The value this cache holds for ``key`` (queued writes first), or _MISS."""
        dirty = self._dirty.get(key)
        if dirty is not None:
            return dirty[0]
        return self.lru.get(key)

    async def _load(self, key):
        """Read ``key`` from the store; fill the cache only if no write of it could land meanwhile.

        A write of it started or settled during the read bumps its mark; one
        sent earlier whose fate is unknown keeps it unsettled. Neither: the
        store's value did not change from the read's start to its end, so
        it is still the value now, however the network ordered the replies.
        """
        mark = self._marks.get(key, 0)
        reply = await self._store({"type": "read", "key": key})
        if self._marks.get(key, 0) == mark and not self._unsettled(key):
            self.lru.put(key, reply.get("value"))
        return reply.get("value")

    # -- reads --------------------------------------------------------------------------

    async def handle_read(self, msg):
        key = _key(msg.body)
        value = self._local(key)
        if value is not _MISS:
            self.hits += 1
        else:
            self.misses += 1
            value = await self._load(key)
        return {"type": "read_ok", "value": value}

    # -- writes through to the store ---------------------------------------------------------

    def _bump(self, key) -> int:
        mark = self._marks[key] = self._marks.get(key, 0) + 1
        return mark

    # -- writes of unknown fate ----------------------------------------------------------------

    def _unsettled(self, key) -> list:
        """The writes of ``key`` sent to the store whose fate is not known yet (their bodies)."""
        return self.storage["unsettled"].get(key, [])

    def _track(self, key, body: dict) -> int:
        """Note ``body`` as sent and unsettled (in storage, before it leaves); returns the key's new mark."""
        table = self.storage["unsettled"]
        table.setdefault(key, []).append(body)
        self.storage["unsettled"] = table
        return self._bump(key)

    def _settled(self, key, rid: list) -> None:
        """The store took request ``rid`` on ``key``: it and its client's older requests there can no longer land.

        nodes.kv's rule: a store answers every copy of a request it took with
        the first answer, and drops unanswered a request older than one of
        its client's it took on that key.
        """
        table = self.storage["unsettled"]
        left = [b for b in table.get(key, []) if not (b["rid"][0] == rid[0] and b["rid"][1] <= rid[1])]
        if left:
            table[key] = left
        else:
            table.pop(key, None)
        self.storage["unsettled"] = table
        self._bump(key)

    def _mint(self) -> list:
        """A request id of this cache's own, for a write that came without one (ids grow across restarts)."""
        minted = self.storage["minted"] = self.storage.get("minted", 0) + 1
        return [self.name, minted]

    async def _settle(self, key, body: dict) -> None:
        """Send ``body`` (same request id) again until the store takes it or a later request of its client."""
        while any(b["rid"] == body["rid"] for b in self._unsettled(key)):
            try:
                await self._store(dict(body))
            except Timeout:
                continue  # the rpc waited self.timeout already
            except RPCError as exc:
                if exc.code not in _TAKEN:
                    await asyncio.sleep(self.timeout)
                    continue
            self._settled(key, body["rid"])

    # -- writes through to the store ---------------------------------------------------------

    async def _write_through(self, key, body: dict, new_value) -> dict:
        """Send a write or cas to the store, ``key`` uncached until the store's answer settles its fate.

        Without an answer that the store took it (a timeout, error 11), the
        write may still land at any later time: it stays unsettled, and
        resent with its request id in the background, until the store takes
        it (or a later write of its client to the key); the key is not filled
        until then.
        """
        self.lru.delete(key)
        mark = self._track(key, body)
        try:
            reply = await self._store(dict(body))
        except Timeout:
            self.spawn(self._settle(key, body), name="settle")
            raise
        except RPCError as exc:
            if exc.code in _TAKEN:
                self._settled(key, body["rid"])
            else:
                self.spawn(self._settle(key, body), name="settle")
            raise
        # Fill only if nothing else touched the key meanwhile: then the
        # store holds exactly what this write put there.
        sole = self.policy == "write-through" and self._marks.get(key) == mark and self._unsettled(key) == [body]
        self._settled(key, body["rid"])
        if sole:
            self.lru.put(key, new_value)
        return {"type": reply["type"]}

    async def handle_write(self, msg):
        rid = request_id(msg)
        return await take_once(self.storage, "requests", _key(msg.body), rid, lambda: self._write(msg.body, rid))

    async def handle_cas(self, msg):
        rid = request_id(msg)
        return await take_once(self.storage, "requests", _key(msg.body), rid, lambda: self._cas(msg.body, rid))

    async def _write(self, body: dict, rid: list | None) -> dict:
        key, value, rid = body.get("key"), body.get("value"), rid or self._mint()
        if self.policy == "write-behind":
            return self._enqueue(key, value, rid)
        return await self._write_through(key, _with_rid({"type": "write", "key": key, "value": value}, rid), value)

    async def _cas(self, body: dict, rid: list | None) -> dict:
        key, rid = body.get("key"), rid or self._mint()
        if self.policy == "write-behind":
            return await self._cas_behind(key, body.get("from"), body.get("to"), rid)
        return await self._write_through(
            key,
            _with_rid({"type": "cas", "key": key, "from": body.get("from"), "to": body.get("to")}, rid),
            body.get("to"),
        )

    # -- write-behind ------------------------------------------------------------------------

    def _enqueue(self, key, value, rid: list | None = None) -> dict:
        if len(self.queue) >= self.queue_limit:
            raise unavailable(f"write-behind queue full ({self.queue_limit} writes waiting for the store)")
        self._bump(key)
        self.queue.append(Queued(key, value, rid))
        entry = self._dirty.get(key)
        self._dirty[key] = [value, 1 if entry is None else entry[1] + 1]
        self.lru.put(key, value)
        return {"type": "write_ok"}

    async def _cas_behind(self, key, expected, new, rid: list | None = None) -> dict:
        current = self._local(key)
        if current is _MISS:
            try:
                current = await self._load(key)
            except RPCError as exc:
                if exc.code != KEY_DOES_NOT_EXIST:
                    raise
                current = _MISS
            local = self._local(key)  # a write may have landed while we read the store
            current = local if local is not _MISS else current
        if current is _MISS:
            raise not_found(key)
        if current != expected:
            raise precondition_failed(key, expected, current)
        self._enqueue(key, new, rid)
        return {"type": "cas_ok"}

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def flush(self) -> int:
        """Write the queue to the store; stop at the first failure. Returns writes flushed.

        Writes go in batches: the head of the queue up to the first repeated
        key (at most ``flush_batch``), sent at once; so each key's writes reach
        the store one after another, in order. One flush runs at a time (a
        second call while one runs returns 0).
        """
        if self._flushing:
            return 0
        self._flushing = True
        try:
            return await self._drain()
        finally:
            self._flushing = False

    async def _drain(self) -> int:
        done = 0
        while self.queue:
            batch = self._next_batch()
            results = await asyncio.gather(
                *(
                    self._store(_with_rid({"type": "write", "key": item.key, "value": item.value}, item.rid))
                    for item in batch
                ),
                return_exceptions=True,
            )
            failed = None
            for item, result in zip(batch, results):
                if isinstance(result, BaseException):
                    if not isinstance(result, (Timeout, RPCError)):
                        raise result
                    failed = result  # it stays at the head of its key's writes, for the next flush
                    continue
                self.queue.remove(item)  # the first entry equal to it is it: keys in a batch are distinct
                self._flushed(item.key)
                done += 1
            if failed is not None:
                self.log.info("flush stopped: %s; retrying in %ss", failed, self.flush_interval)
                break
        return done

    def _next_batch(self) -> list:
        """The longest head of the queue with distinct keys, up to flush_batch writes."""
        batch: list = []
        keys: set = set()
        for item in self.queue:
            if item.key in keys or len(batch) == self.flush_batch:
                break
            keys.add(item.key)
            batch.append(item)
        return batch

    def _flushed(self, key) -> None:
        entry = self._dirty[key]
        entry[1] -= 1
        if not entry[1]:
            del self._dirty[key]
        self.flushed += 1


def _key(body: dict):
    """The request's key; error 12 unless it is a string or an int (a list or a dict cannot key a cache)."""
    key = body.get("key")
    if not (isinstance(key, str) or is_int(key)):
        raise RPCError(MALFORMED_REQUEST, f"a key must be a string or an int, got {key!r}")
    return key


def _with_rid(body: dict, rid: list | None) -> dict:
    """``body`` carrying the client's request id, so the store takes it at most once."""
    if rid is not None:
        body["rid"] = rid
    return body
