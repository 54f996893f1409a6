"""Multi-primary replication: every node accepts writes and replicates them to the others asynchronously.

Guarantees:

- Available on every side of any partition: a node answers each request
  from its own state and waits for no other node, so every request that
  reaches a live node is answered (Gilbert and Lynch's availability; a
  malformed request or a failed ``cas`` precondition is still an error).
- Convergent: every merge is commutative, associative and idempotent, so
  replication messages duplicated, reordered or delivered late change
  nothing, and replicas that received the same updates hold equal states.
  With ``anti_entropy`` on, each node reconciles with each peer in turn, so
  once the network heals every replica holds every update within about
  ``(N - 1) * anti_entropy`` of a network that delivers.
- At most once, per replica: a write, ``cas``, ``add`` or ``remove``
  delivered twice to one node (a network duplicate, or a client's retry to
  that node with the same ``"id"``) is answered from that node's table of
  recent requests (:mod:`nodes.dedup`) and applied once; a refused one (a
  ``cas`` answered 22) is never applied, and its copies get the same error.
  This holds as long as the copy arrives within ``dedup_window`` requests (an
  older one is applied again). Without it a late duplicate of ``write x=1``
  would be stamped anew and overwrite a later ``write x=2``. A retry sent to
  *another* replica is a new update there (the tables are per node, and in
  a partition the two could not compare notes anyway): an ``add`` retried
  elsewhere may count twice.

Gives up linearizability, and, by ``resolution`` (chosen per store):

- ``"lww"`` (last writer wins): of two writes to a key that neither node
  had seen, the one with the smaller stamp (the accepting node's clock,
  then its name) is dropped silently, and an acknowledged write is gone. A
  write that had seen a version is stamped above it, even on a slow clock
  (its own clock, or just past the version's stamp), so it supersedes it.
  Each version carries a vector clock for accounting only: a replica that
  drops a version its winner had not seen reports it (``stats["lww_lost"]``
  and an ``lww_lost`` event ``[key, stamp, value]``). A version dropped on
  one replica may survive elsewhere and be superseded later by a write that
  saw it, so the events bound the loss from above; ``lost_for_good`` counts
  exactly the versions that are not the winner and that no write ever saw.
- ``"siblings"``: a multi-value register with dotted version vectors
  (:mod:`nodes.crdt`). Nothing is dropped: writes that did not see each
  other all stay, and a read returns ``"values"`` (every sibling), ``"value"``
  (the newest by dot, a deterministic choice) and a ``"context"``; a write
  carrying that context supersedes exactly what the read returned, one
  without it everything its node had seen. The client must merge.
- ``"crdt"``: a key is a PN-counter (``add`` with ``"delta"``) or an
  add-wins set (``add`` / ``remove`` with ``"element"``), fixed by its first
  update. Nothing is lost and no client merges, but only operations that
  commute exist: no ``write``, no ``cas``. One exception: replicas that
  cannot talk may each create a key, one as a counter and one as a set;
  when they merge, the counter is kept and the set, with every update made
  to it, is dropped (a ``type_conflict`` event ``[key, "set", "counter"]``
  on each replica that meets the two). A deterministic choice, so replicas still
  converge; use one key per type to never meet it.

Protocol: lin-kv (:mod:`nodes.kv`) ``read``, ``write``, ``cas``, plus
``{"type": "add", "key", "delta" | "element"}`` -> ``add_ok`` and
``{"type": "remove", "key", "element"}`` -> ``remove_ok`` (Maelstrom's
pn-counter and g-set use ``add`` the same way). A read of a missing key is
error 20. Replication is ``mp_merge`` (a key's whole state, fire and forget,
to every peer after each update) and anti-entropy rounds
(:mod:`nodes.antientropy`). With anti-entropy on the simulation never runs
out of timers: run it with ``sim.run(coro)`` or ``until=``. Data and the
dedup table live in ``storage``: they survive a crash.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Sequence

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import MALFORMED_REQUEST, NOT_SUPPORTED
from emulator.validate import is_int, positive_seconds
from nodes import crdt
from nodes.antientropy import MODES as AE_MODES
from nodes.antientropy import AntiEntropy
from nodes.dedup import Dedup
from nodes.kv import answer, error_answer, not_found, precondition_failed
from nodes.versions import LWW, VECTOR, descends, digest, merge_clocks, new_version, pick, reconcile

__all__ = ["RESOLUTIONS", "MultiPrimary", "lost_for_good"]

RESOLUTIONS = ("lww", "siblings", "crdt")


class MultiPrimary(AntiEntropy, Node):
    """A replica that takes every write itself (see the module docstring).

    Args:
        resolution: ``"lww"``, ``"siblings"`` or ``"crdt"``.
        anti_entropy: seconds between anti-entropy rounds (each with the next peer), or False.
        anti_entropy_mode: ``"merkle"`` or ``"digest"``.
        rpc_timeout: seconds an anti-entropy request waits.
        dedup_window: requests remembered for at-most-once application.
        replicas: every replica's name, this one included (default: every server of the cluster), so
            the store can share a cluster with other kinds of node.
    """

    def __init__(
        self,
        resolution: str = "lww",
        anti_entropy: float | bool = 0.5,
        anti_entropy_mode: str = "digest",
        rpc_timeout: float = 0.2,
        dedup_window: int = 100_000,
        replicas: list[str] | None = None,
    ):
        if resolution not in RESOLUTIONS:
            raise ConfigError(f"MultiPrimary resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
        if anti_entropy_mode not in AE_MODES:
            raise ConfigError(f"anti_entropy_mode must be one of {', '.join(AE_MODES)}, got {anti_entropy_mode!r}")
        for label, value in (("rpc_timeout", rpc_timeout), ("anti_entropy", anti_entropy or 1.0)):
            positive_seconds(f"MultiPrimary {label}", value)
        if replicas is not None and (isinstance(replicas, str) or not all(isinstance(r, str) for r in replicas)):
            raise ConfigError(f"replicas must be a list of node names, got {replicas!r}")
        self.replicas = list(replicas) if replicas is not None else None
        self.resolution = resolution
        self.anti_entropy, self.anti_entropy_mode = anti_entropy or False, anti_entropy_mode
        self.rpc_timeout = rpc_timeout
        self.dedup = Dedup(self, window=dedup_window)
        #: accepted (local updates), merged (remote states that changed this replica), lww_lost, ae_rounds, ...
        self.stats: collections.Counter = collections.Counter()
        self._cursor = 0
        self._digests: dict = {}  # key -> digest of its state, dropped when the state changes

    async def on_start(self):
        self.storage.setdefault("data", {})
        self.storage.setdefault("seq", 0)
        if self.anti_entropy:
            self.spawn(self._anti_entropy_loop(), name="anti-entropy")

    @property
    def others(self) -> Sequence[str]:
        """The other replicas."""
        if self.replicas is None:
            return self.peers
        return [r for r in self.replicas if r != self.name]

    @property
    def data(self) -> dict:
        """Key -> state: ``[version]`` (lww), a register (siblings), a counter or a set (crdt)."""
        return self.storage["data"]

    # -- client requests ----------------------------------------------------------------------

    async def handle_read(self, msg):
        key = _key(msg.body)
        state = self.data.get(key)
        if state is None:
            raise not_found(key)
        return {"type": "read_ok", **_read(self.resolution, state)}

    async def handle_write(self, msg):
        return self._once(msg, self._write)

    async def handle_cas(self, msg):
        return self._once(msg, self._cas)

    async def handle_add(self, msg):
        return self._once(msg, self._add)

    async def handle_remove(self, msg):
        return self._once(msg, self._remove)

    def _once(self, msg, apply) -> dict | None:
        """Apply ``msg`` unless it was taken before; either way return its reply (or raise its error).

        A refusal is remembered too: a copy of a ``cas`` refused with 22 (or 20) must not apply later, when the
        key happens to hold what it expects, after its client was told it did not happen.
        """
        done = self.dedup.seen(msg)
        if done is not None:
            return answer(done)
        try:
            reply = apply(msg.body)
        except RPCError as exc:
            self.dedup.remember(msg, error_answer(exc))
            raise
        return self.dedup.remember(msg, reply)

    def _write(self, body: dict) -> dict:
        self._registers_only("write")
        key = _key(body)
        self._update(key, self._written(key, body.get("value"), body.get("context")))
        return {"type": "write_ok"}

    def _cas(self, body: dict) -> dict:
        self._registers_only("cas")
        key = _key(body)
        state = self.data.get(key)
        if state is None:
            raise not_found(key)
        current = _read(self.resolution, state)["value"]
        if current != body.get("from"):
            raise precondition_failed(key, body.get("from"), current)
        self._update(key, self._written(key, body.get("to"), None))
        return {"type": "cas_ok"}

    def _registers_only(self, op: str) -> None:
        if self.resolution == "crdt":
            raise RPCError(NOT_SUPPORTED, f"a crdt store has no {op}: use add (delta or element) and remove")

    def _written(self, key, value, context) -> object:
        """The key's state after a local write of ``value``."""
        state = self.data.get(key)
        if self.resolution == "siblings":
            return crdt.register_write(state or crdt.register(), self.name, value, _context(context))
        seq = self.storage["seq"] = self.storage["seq"] + 1
        seen = merge_clocks(state or [])
        # Stamped above what it supersedes, even from a slow clock: a write that saw a version must win over it.
        time = max([self.now(), *(math.nextafter(v["stamp"][0], math.inf) for v in state or [])])
        return [new_version(VECTOR, value, self.name, time, seq, seen)]

    def _add(self, body: dict) -> dict:
        if self.resolution != "crdt":
            raise RPCError(NOT_SUPPORTED, f"add is for resolution='crdt'; this store resolves by {self.resolution}")
        key = _key(body)
        if "delta" in body:
            delta = body["delta"]
            if not is_int(delta):
                raise RPCError(MALFORMED_REQUEST, f"delta must be an int, got {delta!r}")
            self._update(key, crdt.counter_add(self._typed(key, crdt.COUNTER), self.name, delta))
        elif "element" in body:
            self._update(key, crdt.orset_add(self._typed(key, crdt.SET), self.name, body["element"]))
        else:
            raise RPCError(MALFORMED_REQUEST, "add needs a 'delta' (a counter) or an 'element' (a set)")
        return {"type": "add_ok"}

    def _remove(self, body: dict) -> dict:
        if self.resolution != "crdt" or "element" not in body:
            raise RPCError(NOT_SUPPORTED, "remove takes an 'element' of a crdt set (resolution='crdt')")
        key = _key(body)
        self._update(key, crdt.orset_remove(self._typed(key, crdt.SET), body["element"]))
        return {"type": "remove_ok"}

    def _typed(self, key, kind: str) -> dict:
        state = self.data.get(key)
        if state is None:
            return crdt.counter() if kind == crdt.COUNTER else crdt.orset()
        if state["crdt"] != kind:
            use = "add with a delta" if state["crdt"] == crdt.COUNTER else "add or remove with an element"
            raise RPCError(MALFORMED_REQUEST, f"key {key!r} holds a {state['crdt']}: use {use}")
        return state

    # -- replication ----------------------------------------------------------------------------

    def _update(self, key, state) -> None:
        """Store a local update and push the key's state to every peer."""
        self.data[key] = state
        self._digests.pop(key, None)
        self.stats["accepted"] += 1
        for peer in self.others:
            self.send(peer, {"type": "mp_merge", "key": key, "state": state})

    async def handle_mp_merge(self, msg):
        self._merge(msg.body["key"], msg.body["state"])

    def _merge(self, key, incoming) -> None:
        current = self.data.get(key)
        if current is None:
            self.data[key] = incoming
            self._digests.pop(key, None)
            return
        merged: list[dict] | dict
        if self.resolution == "lww":
            merged = reconcile(LWW, current, incoming)
            self._account(key, merged[0], [*current, *incoming])
        elif current["crdt"] != incoming["crdt"]:  # two replicas created the key as different types
            kept, dropped = sorted([current, incoming], key=lambda s: s["crdt"])  # "counter" < "set": counter kept
            merged = kept
            self.event("type_conflict", [key, dropped["crdt"], kept["crdt"]])
        else:
            merged = crdt.merge(current, incoming)
        if merged != current:
            self.data[key] = merged
            self._digests.pop(key, None)
            self.stats["merged"] += 1

    def _account(self, key, winner: dict, versions: list[dict]) -> None:
        """Report each version LWW drops although its winner's writer had not seen it."""
        reported = set()
        for version in versions:
            stamp = tuple(version["stamp"])
            if stamp == tuple(winner["stamp"]) or stamp in reported:
                continue
            reported.add(stamp)
            if not descends(winner["clock"], version["clock"]):
                self.stats["lww_lost"] += 1
                self.event("lww_lost", [key, list(stamp), version["value"]])

    # -- anti-entropy host (nodes.antientropy.AntiEntropy) ----------------------------------------

    def _shared_digests(self, peer: str) -> dict:
        digests = self._digests
        for key, state in self.data.items():
            if key not in digests:
                digests[key] = digest([state])
        return dict(digests)

    def _items(self, keys: list) -> list[list]:
        return [[key, self.data[key]] for key in keys if key in self.data]

    def _absorb(self, items: list) -> None:
        for key, state in items:
            self._merge(key, state)

    async def _anti_entropy_loop(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.anti_entropy))  # spread the nodes' rounds apart
        while True:
            peers = self.others
            if peers:
                peer = peers[self._cursor % len(peers)]
                self._cursor += 1
                try:
                    await self.anti_entropy_round(peer, self.anti_entropy_mode)
                except (Timeout, RPCError):
                    self.stats["ae_failed"] += 1
            await asyncio.sleep(self.anti_entropy)


def lost_for_good(state: list[dict], versions: list[dict]) -> list[dict]:
    """The lost updates among ``versions`` (every LWW version of one key) once the key converged to ``state``.

    A version is lost when it is not the winner and no other version's
    writer had seen it: a version overwritten by a write that had seen it
    was superseded, not lost.
    """
    winner = state[0]
    return [
        v
        for v in versions
        if v["stamp"] != winner["stamp"]
        and not any(o["stamp"] != v["stamp"] and descends(o["clock"], v["clock"]) for o in versions)
    ]


def _read(resolution: str, state) -> dict:
    """A read's reply fields for a key's state."""
    if resolution == "lww":
        return {"value": pick(state)["value"]}
    kind = state["crdt"]
    if kind == crdt.COUNTER:
        return {"value": crdt.counter_value(state)}
    if kind == crdt.SET:
        return {"value": crdt.orset_value(state)}
    values = crdt.register_values(state)
    return {"value": values[-1], "values": values, "siblings": len(values), "context": state["clock"]}


def _key(body: dict):
    key = body.get("key")
    if not (isinstance(key, str) or is_int(key)):
        raise RPCError(MALFORMED_REQUEST, f"a key must be a string or an int, got {key!r}")
    return key


def _context(context) -> dict | None:
    if context is None:
        return None
    if not isinstance(context, dict) or not all(is_int(v, ge=0) for v in context.values()):
        raise RPCError(MALFORMED_REQUEST, f"context must be a version vector {{node: counter}}, got {context!r}")
    return context
