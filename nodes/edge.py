"""Edge caches (a CDN) in front of an origin: TTLs, request coalescing, serving stale while the origin is down.

Guarantees:

- Bounded age: a ``hit`` serves a copy whose fetch from the origin was
  sent at most ``ttl`` seconds ago (by the edge's clock); a ``stale`` answer
  is at most ``ttl + stale_if_error`` old and is given only when the origin
  just failed (RFC 5861's stale-if-error). Every answer says which it was
  and its age. The age counts from the fetch's request, not its reply, as
  RFC 9111's corrected age does, so it is never below the content's true
  age however slowly the origin's reply came back.
- Coalescing (``coalesce=True``): an edge has at most one fetch of a path
  in flight; requests that miss meanwhile wait for it (``coalesced``), so a
  burst of misses for a hot path costs the origin one request per edge,
  not one per client.
- A failed fetch with no copy young enough is error 11 (definite: a read
  that did not happen).

Gives up: freshness. Content may be up to ``ttl`` old on a hit, as old as
the fetch took on a miss (more than ``ttl`` when the origin answers slower
than that), and while the origin is down up to ``ttl + stale_if_error``; two edges may serve different
versions of a path at the same moment (each has its own copy, filled at its
own time). Coalesced requests share the fetch's fate: when it fails they
fail (or get the stale copy) together.

Protocol: ``{"type": "get", "path": p}`` -> ``{"type": "get_ok", "path",
"body", "version", "age", "cache": "hit" | "miss" | "coalesced" | "stale"}``
from an edge; the origin answers the same ``get`` with ``{"type": "get_ok",
"path", "body", "version"}``. ``{"type": "stats"}`` gives an edge's counts.
The origin's content changes over time: a path's version is
``int(now / update_interval)`` on its clock, so a test knows what is current.
"""

from __future__ import annotations

import asyncio
import collections

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import MALFORMED_REQUEST
from emulator.validate import is_number, positive_seconds
from nodes.balancer import Backend
from nodes.cache import LRU
from nodes.kv import unavailable

__all__ = ["Edge", "Origin", "version_at"]


def version_at(time: float, update_interval: float) -> int:
    """The origin's version of every path at ``time``."""
    return int(time // update_interval)


class Origin(Backend):
    """The origin: a ``Backend`` (workers, queue, service time) whose content changes every ``update_interval``.

    Args:
        update_interval: seconds between new versions of every path.
        **backend: ``Backend``'s settings (service_time, concurrency, queue_limit).
    """

    def __init__(self, update_interval: float = 1.0, **backend):
        super().__init__(**backend)
        positive_seconds("update_interval", update_interval)
        self.update_interval = update_interval

    @property
    def gets(self) -> int:
        """Gets served, over every incarnation (kept in storage)."""
        return self.storage.get("gets", 0)

    @property
    def peak_load(self) -> int:
        """The most gets in service or waiting at once, over every incarnation."""
        return self.storage.get("peak", 0)

    async def handle_get(self, msg):
        path = _path(msg.body)
        self.storage["peak"] = max(self.peak_load, self.busy + len(self.waiting) + 1)
        await self._take_worker()
        try:
            await asyncio.sleep(self.service_time.sample(self.rng))
        finally:
            self._free_worker()
        self.storage["gets"] = self.gets + 1
        version = version_at(self.now(), self.update_interval)
        return {"type": "get_ok", "path": path, "body": f"{path}@{version}", "version": version}


class Edge(Node):
    """An edge cache in front of ``origin`` (see the module docstring).

    Args:
        origin: the origin's node name.
        ttl: seconds a fetched copy is fresh.
        stale_if_error: seconds past ``ttl`` a copy may still be served when the origin fails (0: never).
        coalesce: share one origin fetch among concurrent misses of a path.
        capacity: copies kept (least recently used evicted first).
        timeout: seconds to wait for the origin.
    """

    def __init__(
        self,
        origin: str,
        ttl: float = 1.0,
        stale_if_error: float = 0.0,
        coalesce: bool = True,
        capacity: int = 10_000,
        timeout: float = 0.5,
    ):
        if not isinstance(origin, str) or not origin:
            raise ConfigError(f"origin must be a node name, got {origin!r}")
        positive_seconds("ttl", ttl)
        positive_seconds("timeout", timeout)
        if not is_number(stale_if_error, ge=0):
            raise ConfigError(f"stale_if_error must be seconds >= 0 (0: never serve stale), got {stale_if_error!r}")
        self.origin, self.ttl, self.stale_if_error = origin, ttl, stale_if_error
        self.coalesce, self.timeout = bool(coalesce), timeout
        self.copies = LRU(capacity, None, self.now)  # expiry is the edge's own call: stale copies are kept
        self._fetching: dict = {}  # path -> future of the fetch in flight
        #: hit, miss, coalesced, stale, error (answers), fetches (requests to the origin)
        self.stats: collections.Counter = collections.Counter()

    async def handle_stats(self, msg):
        return {"type": "stats_ok", **dict(sorted(self.stats.items()))}

    async def handle_get(self, msg):
        path = _path(msg.body)
        copy = self.copies.get(path, None)
        if copy is not None and self._age(copy) < self.ttl:
            return self._answer(copy, "hit")
        waiting = self._fetching.get(path)
        if waiting is not None:
            return await self._join(path, waiting, copy)
        future = asyncio.get_running_loop().create_future()
        if self.coalesce:
            self._fetching[path] = future
        outcome: object = unavailable(f"{self.name}'s fetch of {path!r} was cancelled")
        try:
            outcome = await self._fetch(path)
        except (Timeout, RPCError) as exc:
            outcome = exc
        finally:
            if self._fetching.get(path) is future:
                del self._fetching[path]
            _settle(future, outcome)
        if isinstance(outcome, BaseException):
            return self._fallback(path, copy, outcome)
        return self._answer(outcome, "miss")

    async def _join(self, path, waiting: asyncio.Future, copy) -> dict:
        outcome = await asyncio.shield(waiting)
        if isinstance(outcome, BaseException):
            return self._fallback(path, copy, outcome)
        return self._answer(outcome, "coalesced")

    async def _fetch(self, path) -> dict:
        self.stats["fetches"] += 1
        asked = self.now()  # the age counts from the request: the origin made the reply at this time or later
        reply = await self.rpc(self.origin, {"type": "get", "path": path}, timeout=self.timeout)
        copy = {"path": path, "body": reply["body"], "version": reply["version"], "fetched": asked}
        self.copies.put(path, copy)
        return copy

    def _fallback(self, path, copy, exc: BaseException) -> dict:
        if copy is not None and self._age(copy) < self.ttl + self.stale_if_error:
            return self._answer(copy, "stale")
        self.stats["error"] += 1
        raise unavailable(f"origin failed ({exc}) and {self.name} has no copy of {path!r} young enough to serve")

    def _age(self, copy: dict) -> float:
        return max(0.0, self.now() - copy["fetched"])

    def _answer(self, copy: dict, how: str) -> dict:
        self.stats[how] += 1
        return {
            "type": "get_ok",
            "path": copy["path"],
            "body": copy["body"],
            "version": copy["version"],
            "age": self._age(copy),
            "cache": how,
        }


def _settle(future: asyncio.Future, outcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _path(body: dict) -> str:
    path = body.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise RPCError(MALFORMED_REQUEST, f"a path is a string starting with '/', got {path!r}")
    return path
