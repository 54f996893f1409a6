"""A Dynamo-style quorum store speaking Maelstrom's lin-kv: N replicas, R reads, W writes.

Guarantees: with a strict quorum (R + W > N, not sloppy) and clocks in sync, no read misses a write acknowledged
before it began, whatever the partitions and crashes, and whatever the network duplicates, reorders, loses or
delays (client links included), with any number of writers per key; with anti-entropy or hinted handoff on,
replicas converge after a heal.
Gives up: linearizability (in-flight writes, ``cas``), fresh reads when R + W <= N or sloppy (PBS), and, under LWW,
writes stamped by a slow clock. CAP: strict is CP-leaning (11 where a side lacks R or W owners), sloppy is AP
on every side with at least max(R, W) nodes (a side with fewer, such as one node cut off alone when R or W is
above 1, refuses with 11 once its failure detector suspects the rest: Dynamo's availability, W nodes reachable,
not Gilbert and Lynch's, every node that has not failed answers, which only R = W = 1 gives), once the first
requests across a new cut have timed out and, after a heal, once a probe has cleared each suspicion (within
``probe_interval`` and a round trip: until then a node that suspected its peers still refuses).
PACELC: PC/EC strict: even with no partition a read waits for R replicas and a write for W (the fastest of N, never
all of them), latency paid for consistency; PA/EL sloppy: it answers on any such side, from whichever nodes it
reaches.

Why the conditions: a read takes the greatest stamp among R replicas, and
any write acknowledged before it began is on W of them, so on one it asks.
With clocks in sync a stamp is the coordinator's true time, inside the
write's own interval, so a write that began after another was acknowledged
has the greater stamp: the greatest stamp a read finds is never older than
an acknowledged write. A clock that jumps or lags stamps a new write below
an old one, and it loses (``tests/nodes/test_guarantees.py`` shows each
condition dropped, one at a time, breaking the claim).

Choices:

- Placement: a key's *owners* are ``HashRing.preference_list(key, n)`` over
  every server (N is capped by the cluster's size; keys are strings or
  ints). A node that is not an owner forwards the request to the
  first owner it does not suspect, which *coordinates*: it sends to the
  replicas, waits for R (or W) answers, and replies. The request body may
  carry ``"r"`` and ``"w"`` (ints in [1, n]) to override the store's for
  that request; anything else is error 12.
- Versions (:mod:`nodes.versions`): ``versioning="lww"`` stamps each write
  with the coordinator's ``now()``; ``"vector"`` gives it a dotted version
  vector: a dot (the coordinator, its counter) and the context it supersedes,
  the coordinator's own siblings (or the ``"context"`` a client passes back
  from ``read_ok``). A read with siblings returns the one with the greatest
  stamp and reports ``"siblings": n``, ``"values"`` (all of them) and
  ``"context"``; a later write from that context supersedes them, and only
  them: two writes from one context through one coordinator both stay. A
  coordinator sends its own siblings with each new version, so a replica
  that learns a dot learns the coordinator's earlier versions too, and a
  read context never covers a version its reader did not see (Riak sends
  the whole object for the same reason).
- ``cas`` is not linearizable: the coordinator reads at R, compares, then
  writes ``to`` at W with a version that supersedes what it read. Two
  coordinators racing on one key can both succeed.
- Errors: 11 (definite) when the coordinator knows before sending anything
  that fewer than R or W replicas are up (its failure detector: an rpc
  timeout makes a peer *suspected*, a ping every ``probe_interval`` clears
  it); a read that gets fewer than R answers is 11 too (a read has no
  effect). A write sent but acknowledged by fewer than W replicas answers
  error 0, indefinite: some replicas may keep it.
- ``sloppy=True``: the write and read sets are the first N *healthy* nodes
  on the ring; a fallback standing in for an owner gets the write with a
  hint naming it. ``hinted_handoff=True``: hints (the fallback's, or the
  coordinator's for an owner that did not acknowledge) are stored in
  ``storage`` and handed to the owner once it answers pings again; the
  fallback then drops its copy. The coordinator stores its hints for every
  other owner before the write leaves, and drops those of the owners that
  acknowledged once it settles: a coordinator that crashes mid-write still
  hands the write to the owners it missed when it is back. Without it a fallback keeps its copy, and
  the owners learn of that write only if a read hears from the fallback and
  repairs them.
- ``anti_entropy=<seconds>``: every interval a node reconciles the keys it
  shares with its next peer in turn (:mod:`nodes.antientropy`, ``"merkle"``
  or ``"digest"``). With it on, the simulation never runs out of timers:
  run with ``sim.run(coro)`` or ``until=``.
- ``write_fanout="exact"`` / ``read_fanout="exact"``: send a write to exactly
  W, a read to exactly R owners chosen at random (``self.rng``), the model of
  PBS; not combinable with sloppy quorums or hinted handoff.
- Replica data and hints live in ``self.storage``: they survive a crash.
  ``replica(key)`` (or a ``replica_read`` message) reads one replica's own
  copy, without a quorum: what a convergence check compares.

Why duplicates and reordering do no harm (the mechanisms):

- *A write or cas is coordinated at most once per request id*
  (:func:`nodes.kv.recall`): the node a client asks, and the coordinator it
  forwards to, each keep per key and client the latest request id taken and
  its answer, in storage. A copy gets the first answer (or none while the
  first is running, or when it is older than one taken since); it never
  makes a version of its own. Without this a late copy of ``write(v)``
  would be stamped *now* and bring ``v`` back over newer writes. (Copies
  must reach one node: a proxy that sent two copies of one request to two
  different nodes would have it coordinated twice.)
- *Acknowledgements count once per distinct replica* (``Fanout``).
- *A version never goes backwards*: a replica keeps what
  :func:`nodes.versions.reconcile` keeps of its versions and the incoming
  ones, so an old ``q_put``, read repair, hint or anti-entropy batch
  arriving late cannot replace a newer version.
"""

from __future__ import annotations

import asyncio
import collections
import math

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import MALFORMED_REQUEST, TIMEOUT
from emulator.validate import is_int, positive_seconds
from nodes.antientropy import MODES as AE_MODES
from nodes.antientropy import AntiEntropy
from nodes.hashring import HashRing
from nodes.kv import not_found, precondition_failed, request_id, take_once, unavailable
from nodes.quorum_fanout import FailureDetector, Fanout
from nodes.quorum_hints import HintedHandoff
from nodes.versions import LWW, MODES, VECTOR, digest, merge_clocks, new_version, pick, reconcile, stamp_of

__all__ = ["FANOUTS", "QuorumKV"]

FANOUTS = ("all", "exact")


class QuorumKV(HintedHandoff, AntiEntropy, FailureDetector, Node):
    """A Dynamo-style replica and coordinator (see the module docstring).

    Args:
        n: replicas per key.
        r: answers a read waits for.
        w: acknowledgements a write waits for.
        versioning: ``"lww"`` or ``"vector"``.
        sloppy: count fallback nodes toward R and W when owners are suspected.
        hinted_handoff: keep hints for owners that missed a write and deliver them later.
        read_repair: after a read, push the merged versions to owners that answered behind.
        anti_entropy: False, or the seconds between anti-entropy rounds.
        anti_entropy_mode: ``"merkle"`` or ``"digest"``.
        write_fanout: ``"all"`` owners, or ``"exact"``-ly W random ones.
        read_fanout: ``"all"`` owners, or ``"exact"``-ly R random ones.
        rpc_timeout: seconds a coordinator waits for one replica.
        forward_timeout: seconds a non-owner waits for the coordinator (default 5 * rpc_timeout:
            a cas is a read and a write, each up to two rounds of rpc_timeout).
        probe_interval: seconds between pings of suspected peers.
        handoff_interval: seconds between hint deliveries.
        vnodes: virtual nodes per server on the ring.
        replicas: the servers that hold copies (default: every server of the cluster, this one included).
            A node not among them holds none and coordinates every request it is sent itself, never
            forwarding it (a stateless coordinator: the coordinator of Bailis et al.'s WARS model). When N
            covers them all, every key is on every one, sent to in the order given; otherwise they are
            placed on the ring.
    """

    def __init__(
        self,
        n: int = 3,
        r: int = 2,
        w: int = 2,
        versioning: str = LWW,
        sloppy: bool = False,
        hinted_handoff: bool = False,
        read_repair: bool = True,
        anti_entropy: float | bool = False,
        anti_entropy_mode: str = "merkle",
        write_fanout: str = "all",
        read_fanout: str = "all",
        rpc_timeout: float = 0.1,
        forward_timeout: float | None = None,
        probe_interval: float = 0.25,
        handoff_interval: float = 0.25,
        vnodes: int = 64,
        replicas: list[str] | None = None,
    ):
        _check_int("n", n, 1, None)
        _check_int("r", r, 1, n)
        _check_int("w", w, 1, n)
        _check_choice("versioning", versioning, MODES)
        _check_choice("anti_entropy_mode", anti_entropy_mode, AE_MODES)
        _check_choice("write_fanout", write_fanout, FANOUTS)
        _check_choice("read_fanout", read_fanout, FANOUTS)
        for label, value in (
            ("rpc_timeout", rpc_timeout),
            ("probe_interval", probe_interval),
            ("handoff_interval", handoff_interval),
        ):
            _check_seconds(label, value)
        if anti_entropy not in (False, None):
            _check_seconds("anti_entropy", anti_entropy)
        if forward_timeout is not None:  # None: 5 * rpc_timeout
            _check_seconds("forward_timeout", forward_timeout)
        if "exact" in (write_fanout, read_fanout) and (sloppy or hinted_handoff):
            raise ConfigError(
                "write_fanout/read_fanout='exact' is PBS's partial-quorum model: it sends to exactly "
                "W or R owners, so it cannot be combined with sloppy=True or hinted_handoff=True"
            )
        if replicas is not None and (
            not isinstance(replicas, list) or not replicas or not all(isinstance(r, str) for r in replicas)
        ):
            raise ConfigError(
                f"replicas must be a non-empty list of server names, or None for every server, got {replicas!r}"
            )
        self.replicas = replicas
        self.n, self.r, self.w = n, r, w
        self.versioning, self.sloppy, self.hinted_handoff = versioning, sloppy, hinted_handoff
        self.read_repair = read_repair
        self.anti_entropy, self.anti_entropy_mode = anti_entropy or False, anti_entropy_mode
        self.write_fanout, self.read_fanout = write_fanout, read_fanout
        self.rpc_timeout = rpc_timeout
        self.forward_timeout = forward_timeout if forward_timeout is not None else 5 * rpc_timeout
        self.handoff_interval, self.vnodes = handoff_interval, vnodes
        self.stats: collections.Counter = collections.Counter()
        self._ring: HashRing | None = None
        self._members: tuple = ()
        self._owner_cache: dict = {}
        self._digests: dict = {}
        self._ae_cursor = 0
        FailureDetector.__init__(self, probe_interval)

    async def on_start(self):
        self._check_fits()
        self.storage.setdefault("data", {})
        self.storage.setdefault("hints", {})
        self.storage.setdefault("seq", 0)
        self.storage.setdefault("requests", {})
        if self.storage["hints"]:
            self._ensure_task("handoff", self._handoff_loop)
        if self.anti_entropy:
            self._ensure_task("anti-entropy", self._anti_entropy_loop)

    def _check_fits(self) -> None:
        """Refuse, as the node starts (it knows its peers then), an N, R or W the cluster cannot hold.

        N copies need N servers (a key would have fewer owners than N says); with
        ``replicas``, N may cover them all, but R and W must fit the copies there are.
        """
        servers = len(self.replicas) if self.replicas is not None else 1 + len(self.peers)
        if self.replicas is None and self.n > servers:
            raise ConfigError(
                f"QuorumKV n={self.n} copies of each key need {self.n} servers, but the cluster has {servers}; "
                f"lower n (and r and w) to at most {servers}, or add servers"
            )
        copies = min(self.n, servers)
        if max(self.r, self.w) > copies:
            raise ConfigError(
                f"QuorumKV r={self.r}, w={self.w} cannot be met: a key has {copies} copies "
                f"(n={self.n}, {servers} replicas); lower r and w to at most {copies}"
            )

    # -- placement ---------------------------------------------------------------------------

    def owners(self, key) -> list[str]:
        """The nodes that replicate ``key``: the first N of its preference list (all ``replicas`` if N covers them)."""
        if self.replicas is not None and self.n >= len(self.replicas):
            return list(self.replicas)
        members = tuple(sorted(self.replicas or [self.name, *self.peers]))
        if members != self._members:
            self._members, self._ring, self._owner_cache = members, HashRing(members, vnodes=self.vnodes), {}
        owners = self._owner_cache.get(key)
        if owners is None:
            assert self._ring is not None  # built with _members just above
            owners = self._owner_cache[key] = self._ring.preference_list(key, self.n)
        return owners

    def _holds_copies(self) -> bool:
        """False for a coordinator outside ``replicas``: it coordinates here rather than forwarding."""
        return self.replicas is None or self.name in self.replicas

    def _spares(self, key) -> list[str]:
        """Nodes after the owners in ring order: the sloppy quorum's fallbacks."""
        owners = self.owners(key)
        if self._ring is None:  # N covers every one of ``replicas``: no node is left to stand in
            return []
        return [n for n in self._ring.preference_list(key, len(self._members)) if n not in owners]

    # -- client requests -----------------------------------------------------------------------

    async def handle_read(self, msg):
        return await self._serve(msg.body)

    async def handle_write(self, msg):
        return await self._once(msg)

    async def handle_cas(self, msg):
        return await self._once(msg)

    async def _once(self, msg) -> dict | None:
        """A write or cas, taken at most once per request id (see the module docstring)."""
        rid = request_id(msg)
        body = msg.body if rid is None else {**msg.body, "rid": rid}
        return await take_once(self.storage, "requests", _key(msg.body), rid, lambda: self._serve(body))

    async def _serve(self, body: dict) -> dict:
        key = _key(body)
        r, w = self._quorum_sizes(body)
        owners = self.owners(key)
        if not body.get("forwarded") and self.name not in owners and self._holds_copies():
            reply = await self._forward(body, owners)
            if reply is not None:
                return reply
        self.stats["coordinated"] += 1
        if body["type"] == "read":
            return self._read_reply(await self._read_present(key, r))
        if body["type"] == "write":
            context = body.get("context") if self.versioning == VECTOR else None
            await self._write(key, self._new_version(key, body.get("value"), _clock(context)), w)
            return {"type": "write_ok"}
        return await self._cas(key, body.get("from"), body.get("to"), r, w)

    def _quorum_sizes(self, body: dict) -> tuple[int, int]:
        sizes = []
        for label in ("r", "w"):
            value = body.get(label, getattr(self, label))
            if not is_int(value, ge=1, le=self.n):
                raise RPCError(MALFORMED_REQUEST, f"{label} must be an int from 1 to n={self.n}, got {value!r}")
            sizes.append(value)
        return sizes[0], sizes[1]

    async def _forward(self, body: dict, owners: list[str]) -> dict | None:
        """Hand the request to an owner; None means coordinate here (sloppy, no owner reachable)."""
        out = {k: v for k, v in body.items() if k != "msg_id"}
        out["forwarded"] = True  # the coordinator; it takes a write or cas once per "rid" too
        for owner in [o for o in owners if not self.suspected(o)]:
            self.stats["forwarded"] += 1
            try:
                return await self.call(owner, out, self.forward_timeout)
            except Timeout:
                if body["type"] != "read":
                    raise  # the owner may have applied it: indefinite, never retried
        if self.sloppy:
            return None
        raise unavailable(f"{self.name} reaches none of {body.get('key')!r}'s owners {owners}")

    async def _read_present(self, key, r: int) -> list[dict]:
        siblings = await self._read(key, r)
        if not siblings:
            raise not_found(key)
        return siblings

    def _read_reply(self, siblings: list[dict]) -> dict:
        reply = {"type": "read_ok", "value": pick(siblings)["value"]}
        if self.versioning == VECTOR:
            reply["siblings"] = len(siblings)
            reply["context"] = merge_clocks(siblings)
            if len(siblings) > 1:
                reply["values"] = [s["value"] for s in siblings]
        return reply

    async def _cas(self, key, expected, new, r: int, w: int) -> dict:
        siblings = await self._read_present(key, r)
        current = pick(siblings)
        if current["value"] != expected:
            raise precondition_failed(key, expected, current["value"])
        await self._write(key, self._new_version(key, new, merge_clocks(siblings), after=current), w)
        return {"type": "cas_ok"}

    def _new_version(self, key, value, context: dict | None, after: dict | None = None) -> dict:
        """A fresh version stamped by this coordinator (seq survives crashes in storage)."""
        if self.versioning == VECTOR and context is None:
            context = merge_clocks(self._local(key))
        seq = max(self.storage["seq"], (context or {}).get(self.name, 0)) + 1
        self.storage["seq"] = seq
        time = self.now()
        if after is not None:  # a cas must supersede what it read, even from a slow clock
            time = max(time, math.nextafter(stamp_of(after)[0], math.inf))
        return new_version(self.versioning, value, self.name, time, seq, context)

    # -- quorum rounds -------------------------------------------------------------------------

    def _targets(self, key, owners: list[str], need: int, fanout: str, kind: str) -> list[tuple]:
        """(node, hint) pairs to send to; raises 11 when fewer than ``need`` can answer."""
        if fanout == "exact":
            return [(node, None) for node in self.rng.sample(owners, min(need, len(owners)))]
        healthy = [o for o in owners if not self.suspected(o)]
        chosen: list[tuple[str, str | None]]
        if not self.sloppy:
            chosen, reachable = [(o, None) for o in owners], len(healthy)
        else:
            spares = [s for s in self._spares(key) if not self.suspected(s)]
            down = [o for o in owners if o not in healthy]
            chosen = [(o, None) for o in healthy] + list(zip(spares, down))
            reachable = len(chosen)
        if reachable < need:
            self.stats["unavailable"] += 1
            raise unavailable(
                f"{kind} of {key!r} needs {need} replicas; {self.name} believes only "
                f"{reachable} reachable (owners {owners}, suspected {self.suspects})"
            )
        return chosen

    def _fanout(self, key, body: dict, need: int, fanout: str) -> Fanout:
        owners = self.owners(key)
        targets = self._targets(key, owners, need, fanout, "read" if body["type"] == "q_get" else "write")
        chosen = {node for node, _ in targets}
        spares = [s for s in self._spares(key) if s not in chosen] if self.sloppy else []
        fan = Fanout(self, body, need, spares, deadline=2 * self.rpc_timeout)
        fan.start(targets)
        return fan

    async def _read(self, key, r: int) -> list[dict]:
        """Siblings merged from R replicas; raises 11 when fewer answer."""
        fan = self._fanout(key, {"type": "q_get", "key": key}, r, self.read_fanout)
        if not await fan.reached:
            raise unavailable(f"read of {key!r}: {len(fan.replies)} of R={r} replicas answered")
        merged = reconcile(self.versioning, *[siblings for _, _, siblings in fan.replies])
        if self.read_repair:
            self.spawn(self._repair(key, fan), name="read-repair")
        return merged

    async def _write(self, key, version: dict, w: int) -> None:
        """Store ``version`` on W replicas; raises error 0 (indefinite) when fewer acknowledge.

        Under vector clocks the coordinator's own siblings go along: a replica that learns its dot also learns
        every earlier version it had (or what superseded them), so no read context covers a version unseen.
        """
        siblings = [version] if self.versioning == LWW else reconcile(VECTOR, self._local(key), [version])
        fan = self._fanout(key, {"type": "q_put", "key": key, "siblings": siblings}, w, self.write_fanout)
        if self.hinted_handoff:
            self._hint_owners(key, version)  # now, before any replica request leaves: a crash keeps the hints
            self.spawn(self._forget_acked_hints(key, version, fan), name="hint")
        if not await fan.reached:
            raise RPCError(
                TIMEOUT,
                f"write of {key!r} acknowledged by {len(fan.replies)} of W={w} replicas; it may or may not take effect",
            )

    def local_request(self, body: dict, hint: str | None):
        """Serve a replica request addressed to this node itself, without the network."""
        if body["type"] == "q_get":
            return self._local(body["key"])
        self._merge(body["key"], body["siblings"], hint)
        return None

    async def _repair(self, key, fan: Fanout) -> None:
        """Once every replica answered or timed out, push the merge to owners that were behind."""
        await fan.settled
        merged = reconcile(self.versioning, *[siblings for _, _, siblings in fan.replies])
        owners = self.owners(key)
        for node, hint, siblings in fan.replies:
            if hint is None and node in owners and siblings != merged:
                self.stats["read_repairs"] += 1
                if node == self.name:
                    self._merge(key, merged)
                else:
                    self.send(node, {"type": "q_put", "key": key, "siblings": merged})

    # -- the replica ---------------------------------------------------------------------------

    async def handle_q_get(self, msg):
        return {"type": "q_get_ok", "siblings": self._local(msg.body["key"])}

    async def handle_q_put(self, msg):
        self._merge(msg.body["key"], msg.body["siblings"], msg.body.get("hint"))
        return {"type": "q_put_ok"}

    async def handle_q_handoff(self, msg):
        self._absorb(msg.body["items"])
        return {"type": "q_handoff_ok"}

    def _local(self, key) -> list[dict]:
        return self.storage["data"].get(key, [])

    def replica(self, key) -> list:
        """The values this replica holds for ``key`` (its siblings, oldest stamp first; [] if none): no quorum."""
        return [version["value"] for version in self._local(key)]

    async def handle_replica_read(self, msg):
        """``{"type": "replica_read", "key": k}`` -> ``{"values": [...], "siblings": [...]}``: this replica's copy."""
        key = _key(msg.body)
        return {"type": "replica_read_ok", "values": self.replica(key), "siblings": self._local(key)}

    def _merge(self, key, incoming: list[dict], hint: str | None = None) -> None:
        data = self.storage["data"]
        current = data.get(key, [])
        merged = reconcile(self.versioning, current, incoming)
        if merged != current:
            data[key] = merged
            self.storage["data"] = data  # a file storage saves on assignment, before the q_put_ok leaves
            self._digests.pop(key, None)
        if hint is not None and self.hinted_handoff and self.name not in self.owners(key):
            self._add_hint(hint, key)

    # -- anti-entropy host (see nodes.antientropy.AntiEntropy) -----------------------------------

    def _shared_digests(self, peer: str) -> dict:
        out = {}
        for key in self.storage["data"]:
            owners = self.owners(key)
            if self.name in owners and peer in owners:
                found = self._digests.get(key)
                if found is None:
                    found = self._digests[key] = digest(self._local(key))
                out[key] = found
        return out

    def _items(self, keys: list) -> list[list]:
        return [[key, self._local(key)] for key in keys]

    def _absorb(self, items: list) -> None:
        for key, siblings in items:
            self._merge(key, siblings)

    async def _anti_entropy_loop(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.anti_entropy))  # spread the nodes' rounds apart
        while True:
            peers = self.peers
            if peers:
                peer = peers[self._ae_cursor % len(peers)]
                self._ae_cursor += 1
                if not self.suspected(peer):
                    try:
                        await self.anti_entropy_round(peer, self.anti_entropy_mode)
                    except (Timeout, RPCError):
                        self.stats["ae_failed"] += 1
            await asyncio.sleep(self.anti_entropy)


def _key(body: dict):
    """The request's key; error 12 unless it is a string or an int."""
    key = body.get("key")
    if not (isinstance(key, str) or is_int(key)):
        raise RPCError(MALFORMED_REQUEST, f"a key must be a string or an int, got {key!r}")
    return key


def _clock(context) -> dict | None:
    """A client's vector-clock context, or None; anything else is error 12."""
    if context is None:
        return None
    if not isinstance(context, dict) or not all(is_int(v, ge=0) for v in context.values()):
        raise RPCError(MALFORMED_REQUEST, f"context must be a vector clock {{node: counter}}, got {context!r}")
    return context


def _check_int(label: str, value, low: int, high: int | None) -> None:
    if not is_int(value, ge=low, le=high):
        span = f"from {low} to n={high}" if high is not None else f">= {low}"
        raise ConfigError(f"QuorumKV {label} must be an int {span}, got {value!r}")


def _check_choice(label: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"QuorumKV {label} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_seconds(label: str, value) -> None:
    positive_seconds(f"QuorumKV {label}", value)
