"""Primary-replica replication: the primary orders writes in a log that replicas apply.

Guarantees (CAP / PACELC), for N nodes and the safe defaults first:

- ``mode="sync"``: a write is acknowledged once every replica holds it, so
  no failover loses it and even a deposed primary's reads are current (no
  commit can happen without it). Linearizable under partitions, crashes,
  pauses, any clock fault and any network duplication, reordering, loss or
  delay, with or without fencing; gives up availability: one unreachable node
  stops every write. PC/EC: consistency first, a full round of replicas per write.
- ``mode="semi-sync", acks=k``: acknowledged after k replicas. With
  k + 1 >= a majority and ``fencing=True`` (the default) this is Raft:
  linearizable under the same faults, available while a majority is
  (PC/EC). Conditions, each shown needed by a test: with a smaller k a
  failover can lose acknowledged writes; without fencing a deposed primary
  answers reads from its stale copy; with ``lease_reads=True`` reads also
  need clocks that drift within ``max_drift`` and never jump.
- ``mode="async"``: acknowledged by the primary alone, replicated afterwards.
  Available on the primary's side of a partition, low latency (PA/EL); a
  failover loses the writes the primary had not yet shipped. With fencing
  the loss is bounded: a deposed primary stops acknowledging once its lease
  lapses, before any successor is elected (if clocks keep the assumption
  stated in ``nodes.failover``).

Reads (``read_from``): from the primary (default), linearizable when the
commit rule or a check proves it is still primary: in sync mode for free;
otherwise, with fencing, by a majority round (one round trip, no clock
assumption) or, with ``lease_reads=True``, by its lease (no round trip,
bounded clock drift assumed, see ``nodes.failover``). ``read_from="replica"``
reads the local copy: at most ``max_staleness`` seconds behind, by the
replica's own clock (refused with 11 beyond), across failovers too. A
replica counts its copy current as of the moment it sent a reply that the
primary had in hand before it sent a heartbeat a majority then acknowledged
(Raft's read index: no successor had been elected at that heartbeat), once
the primary's epoch has committed its first entry (so its commit index
holds every write acknowledged before); each append echoes the replica's
clock from the latest such reply. Never as of an append's arrival: an
append delayed by a slow or held link, or by a pause of the replica, proves
nothing about now, and a deposed primary still sending appends to the
replicas on its side, or a new one whose commit index lags, certifies
nothing. So the bound needs no clock sync, only clocks that run at about
true rate. Its price: on a healthy network a replica's copy is counted up
to about three heartbeat intervals and two round trips old (0.17 s with the
defaults), so a ``max_staleness`` below that refuses reads even then. With
``read_your_writes`` a
client sees its own writes on the node it talks to, across restarts of that
node too (the sessions are in ``storage``), but for the writes a failover
lost (``async`` only: an acknowledged write the old primary had not shipped). A write's reply carries
its ``version`` (log index); a read may carry ``min_version`` and is then
served only once the node has applied that version (else 11).

Any node takes any request: a replica forwards writes (and primary reads) to
the primary it believes in, or answers 11 when it knows none.

Duplicates and reordering (the mechanisms): a write or cas carries its
client's request id (``rid``, :mod:`nodes.kv`) into the log entry, and the
state machine applies each request id at most once (:mod:`nodes.replog`), on
every replica alike, so a request that reaches the log twice, through a
deposed primary and its successor say, takes effect once and a late copy of
an older one not at all; a node also drops a copy of a request it took
lately before it reaches the log. A request a node refuses with a definite
error (11: no primary known, or a lease it could not renew) never reaches
the log, so the state machine cannot stop its copy: the node keeps, per key
and client, the latest request it refused and its answer, in storage like
the log, and a copy of it gets that answer again however late it comes
(after any number of other requests, across restarts), and a late older
request of that client on that key is dropped. Replicas accept entries only after a
matching predecessor and truncate only at a real conflict, so an old append
delivered late cannot cut newer entries, and the commit index never goes
back. ``lag()`` (or a
``lag`` message) reports each replica's replication lag in entries and
seconds; protocol events go to ``Node.event`` (the trace), ``self.events``
and the optional ``on_event`` callback.
"""

from __future__ import annotations

import asyncio
import collections
import math
from typing import Any

from emulator import ConfigError, RPCError, Timeout
from emulator.errors import TIMEOUT
from emulator.validate import is_int, is_number
from nodes.failover import PRIMARY, ElectedNode, positive
from nodes.kv import answer, error_answer, forwarded, recall, remember, request_id, unavailable
from nodes.replog import NOOP, ReplicatedLog, StateMachine

__all__ = ["MODES", "PrimaryReplica", "primary_of"]

MODES = ("sync", "semi-sync", "async")
_FIRST: Any = object()  # primary_of's default: the first server when no one leads
_BATCH = 64  # entries per append message
_REPLIES = 256  # replies a primary keeps per replica awaiting a majority heartbeat after them (see _certified_echo)
_RECENT = 4096  # client request ids remembered to drop network duplicates of requests taken (refusals: storage)


class PrimaryReplica(ElectedNode):
    """A lin-kv store replicated from one primary (see the module doc for its guarantees).

    Args:
        mode: ``"sync"``, ``"semi-sync"`` or ``"async"``.
        acks: replicas a semi-sync write waits for (default 1).
        read_from: ``"primary"`` or ``"replica"`` (any node answers from its copy).
        max_staleness: replica reads refuse (11) when the copy may be older than this.
        read_your_writes: hold a client's replica reads until its last write is applied.
        lease_reads: primary reads trust the lease instead of a majority round.
        write_timeout: seconds a write waits to be replicated before answering
            an indefinite error (it may still commit).
        **failover: ``heartbeat_interval``, ``election_timeout``, ``lease``,
            ``max_drift``, ``fencing``, ``on_event`` (see ``ElectedNode``).
    """

    def __init__(
        self,
        mode="sync",
        acks=None,
        read_from="primary",
        max_staleness=None,
        read_your_writes=False,
        lease_reads=False,
        write_timeout=0.5,
        **failover,
    ):
        super().__init__(**failover)
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "semi-sync" and acks is not None:
            raise ConfigError(f"acks applies to mode='semi-sync' only (mode is {mode!r}); drop acks=")
        if mode == "semi-sync":
            acks = 1 if acks is None else acks
            if not is_int(acks, ge=1):
                raise ConfigError(f"acks must be a number of replicas >= 1, got {acks!r}")
        if read_from not in ("primary", "replica"):
            raise ConfigError(f"read_from must be 'primary' or 'replica', got {read_from!r}")
        if max_staleness is not None and read_from != "replica":
            raise ConfigError("max_staleness bounds replica reads: set read_from='replica' or drop it")
        if max_staleness is not None and not is_number(max_staleness, ge=0):
            raise ConfigError(f"max_staleness must be seconds >= 0 or None, got {max_staleness!r}")
        if lease_reads and not self.fencing:
            raise ConfigError("lease_reads needs fencing=True: without leases there is nothing to trust")
        self.mode, self.acks = mode, acks
        self.read_from, self.max_staleness = read_from, max_staleness
        self.read_your_writes, self.lease_reads = bool(read_your_writes), bool(lease_reads)
        self.write_timeout = positive("write_timeout", write_timeout)

    async def on_start(self):
        if self.mode == "semi-sync" and self.acks > len(self.peers):
            raise ConfigError(
                f"semi-sync acks={self.acks} needs that many replicas but {self.name} has "
                f"{len(self.peers)} peers; lower acks or add nodes"
            )
        self.state = StateMachine()
        self.waiters: dict[int, asyncio.Future] = {}
        self._readers: list[tuple[int, asyncio.Future]] = []
        #: client -> the highest version it wrote or read here: in storage, so a restart keeps each session's floor
        self.sessions: dict[str, int] = self.storage.setdefault("sessions", {})
        self._recent: dict[tuple, None] = {}
        self.last_current: float | None = None
        self.next_index: dict[str, int] = {}
        self.match: dict[str, int] = {}
        self.replica_applied: dict[str, int] = {}
        self.caught_up: dict[str, float] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self.epoch_start = math.inf
        self.replog = ReplicatedLog(self.storage)
        self._apply_committed()
        await self._start_failover()

    # -- client requests ---------------------------------------------------------------------------

    async def handle_write(self, msg):
        return await self._update(msg, {"type": "write", "key": msg.body.get("key"), "value": msg.body.get("value")})

    async def handle_cas(self, msg):
        body = msg.body
        return await self._update(
            msg, {"type": "cas", "key": body.get("key"), "from": body.get("from"), "to": body.get("to")}
        )

    @staticmethod
    def leader_of(sim) -> str:
        """Who leads now in ``sim``: the live primary of the highest epoch (the first server during an election)."""
        return primary_of(sim)

    @staticmethod
    def leader_now(sim) -> str | None:
        """The live primary of the highest epoch, or None during an election (no one leads)."""
        return primary_of(sim, during_election=None)

    async def handle_read(self, msg):
        if self.read_from == "replica":
            return await self._local_read(msg)
        if self.role == PRIMARY:
            return await self._primary_read(msg)
        return await self._forward(msg)

    async def handle_lag(self, msg):
        return {"type": "lag_ok", **self.lag()}

    async def _update(self, msg, op: dict) -> dict | None:
        rid = request_id(msg)
        refusal = self._refused_answer(op["key"], rid)
        if refusal is not None:
            return answer(refusal[0])  # refused again (or, for an older request of its client, dropped)
        if self._duplicate(rid):
            return None  # the original delivery answers; running it twice would apply it twice
        if rid is not None:
            op["rid"] = rid
        try:
            reply = await (self._commit(op) if self.role == PRIMARY else self._forward(msg))
        except RPCError as exc:
            self._note_refusal(op["key"], rid, exc)
            raise
        if reply is not None:
            self._note_session(msg.src, reply.get("version"))
        return reply

    def _refused_answer(self, key, rid: list | None) -> list | None:
        """``[answer]`` if this node refused ``rid`` (or a later request of its client) on ``key``, else None."""
        if rid is None or not _recordable(key):
            return None
        return recall(self.storage.get("refused", {}), key, rid)

    def _note_refusal(self, key, rid: list | None, exc: RPCError) -> None:
        """Keep a definite error for good: a copy of the request, however late, must not reach the log.

        A refused request never reaches the log, so the state machine's record of
        request ids cannot stop its copy; this record, in storage like the log,
        can. One entry per key and client, the latest refused.
        """
        if rid is None or not exc.definite or not _recordable(key):
            return
        refused = self.storage.get("refused", {})
        last = refused.get(key, {}).get(rid[0])
        if last is None or last[0] < rid[1]:
            remember(refused, key, rid, error_answer(exc))
            self.storage["refused"] = refused  # a file storage saves on assignment

    async def _forward(self, msg) -> dict:
        target = self.primary
        if msg.body.get("forwarded") or target is None or target == self.name:
            raise unavailable(f"{self.name} is not the primary and knows of none to forward to")
        timeout = self.write_timeout + self.election_timeout / 2
        return await self.rpc(target, forwarded(msg, forwarded=True), timeout=timeout)

    async def _commit(self, op: dict) -> dict | None:
        """Append ``op``, wait until it commits per the mode, and answer its result."""
        if self.fencing and not self.lease_valid():
            await self._renew_lease()
        index = self.replog.append(self.replog.epoch, op)
        future = self.waiters[index] = asyncio.get_running_loop().create_future()
        self._wake_replicators()
        self._advance_commit()
        try:
            result = await asyncio.wait_for(future, self.write_timeout)
        except TimeoutError:
            self.waiters.pop(index, None)
            raise RPCError(
                TIMEOUT,
                f"entry {index} was not replicated ({self.mode}) within {self.write_timeout}s; it may still commit",
            ) from None
        if isinstance(result, RPCError):
            raise result
        if result is None:
            return None  # a late copy of a request older than one its client applied since: no effect, no answer
        if self.fencing and not self._durable_commit() and not self.lease_valid():
            self._event("fenced", op["key"])
            raise RPCError(TIMEOUT, f"{self.name}'s lease lapsed before the ack: the write may be lost")
        return {**result, "version": index}

    async def _renew_lease(self) -> None:
        """Win a lease with a majority round, or refuse (11): this primary may have been deposed."""
        try:
            await self.confirm(self.election_timeout / 2)
        except RPCError:
            self._event("fenced", "no majority acknowledges this primary")
            raise
        if not self.lease_valid():
            raise unavailable(f"{self.name} could not renew its lease")

    async def _primary_read(self, msg) -> dict:
        if self.state.applied < self.epoch_start:  # a new primary: its first entry commits all before it
            await self._await_applied(self.epoch_start, self.election_timeout / 2)
        if self.fencing and self.lease_reads and not self.lease_valid():
            await self._renew_lease()
        reply: dict = {}
        error: RPCError | None = None
        try:  # the value as of arrival: the read's linearization point
            reply = self._read_now(msg.body)
        except RPCError as exc:
            error = exc
        if self.fencing and not self.lease_reads and self._needed_acks() < len(self.peers):
            await self.confirm(self.election_timeout / 2)
        if error is not None:
            raise error
        return reply

    async def _local_read(self, msg) -> dict:
        floor = msg.body.get("min_version") or 0
        if self.read_your_writes:
            floor = max(floor, self.sessions.get(msg.src, 0))
        if floor > self.state.applied:
            await self._await_applied(floor, self.write_timeout)
        staleness = self.staleness()
        if self.max_staleness is not None and (staleness is None or staleness > self.max_staleness):
            raise unavailable(
                f"{self.name}'s copy may be {_seconds(staleness)} old, over max_staleness {self.max_staleness}s"
            )
        reply = self._read_now(msg.body)
        self._note_session(msg.src, reply["version"])
        return reply

    def _read_now(self, body: dict) -> dict:
        return {**self.state.read(body.get("key")), "version": self.state.applied}

    async def _await_applied(self, index: int, timeout: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._readers.append((index, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise unavailable(f"{self.name} has not applied version {index} yet") from None

    def _duplicate(self, rid: list | None) -> bool:
        """A copy of a request this node took lately (a cheap first filter; the log applies each request once)."""
        if rid is None:
            return False
        key = tuple(rid)
        if key in self._recent:
            return True
        self._recent[key] = None
        if len(self._recent) > _RECENT:
            del self._recent[next(iter(self._recent))]
        return False

    def _note_session(self, client: str, version) -> None:
        if self.read_your_writes and version and version > self.sessions.get(client, 0):
            self.sessions[client] = version
            self.storage["sessions"] = self.sessions  # a file storage saves on assignment

    # -- the primary's side of replication -------------------------------------------------------------

    def _needed_acks(self) -> int:
        """Replicas that must hold an entry before it commits."""
        return {"sync": len(self.peers), "semi-sync": self.acks, "async": 0}[self.mode]

    def _durable_commit(self) -> bool:
        """Does a commit put the entry on a majority (so no election can lose it)?"""
        return self._needed_acks() + 1 >= self._majority()

    def _on_elected(self) -> None:
        last = self.replog.last_index
        self.next_index = {peer: last + 1 for peer in self.peers}
        self.match = {peer: 0 for peer in self.peers}
        self.replica_applied, self.caught_up = {}, {}
        #: per peer: (local time received, the peer's clock in it) of its replies, oldest first, and the
        #: latest such clock among replies received before the lease's start (what an append may echo). While
        #: no majority answers (a primary cut off without fencing) the lease start stays put: the oldest
        #: replies are dropped uncertified past _REPLIES, which only leaves the copies counted older.
        self._replies: dict[str, collections.deque[tuple[float, float]]] = {
            p: collections.deque(maxlen=_REPLIES) for p in self.peers
        }
        self._echo: dict[str, float] = {}
        epoch = self.replog.epoch
        self.epoch_start = self.replog.append(epoch, NOOP)
        for peer in self.peers:
            self._wakeups[peer] = asyncio.Event()
            self.spawn(self._replicate(peer, epoch), f"replicate:{peer}")
        self._advance_commit()

    def _on_deposed(self, why: str) -> None:
        self.epoch_start = math.inf
        waiters, self.waiters = self.waiters, {}
        for future in waiters.values():
            if not future.done():
                future.set_exception(
                    RPCError(
                        TIMEOUT,
                        f"{self.name} was deposed before the write committed ({why}); it may or may not survive",
                    )
                )

    def _certified_echo(self, peer: str) -> float | None:
        """The latest clock ``peer`` sent in a reply received before this primary's lease start, or None.

        Raft's read index, for a replica: a majority acknowledged a heartbeat this primary sent at its
        ``lease_start``, so no successor had been elected then, and once this epoch's first entry committed
        the commit index holds every write acknowledged before it. A reply the peer sent before that moment
        is older still, so a copy at this commit index is current as of the clock in it, with no clock
        assumption. A deposed primary (its majority gone) or a new one that has not committed yet sends
        none: its commit index may not be the latest.
        """
        if self.replog.commit < self.epoch_start:
            return None
        start, replies = self.lease_start(), self._replies[peer]
        while replies and replies[0][0] <= start:
            clock = replies.popleft()[1]
            self._echo[peer] = max(self._echo.get(peer, clock), clock)
        return self._echo.get(peer)

    def _wake_replicators(self) -> None:
        for event in self._wakeups.values():
            event.set()

    def _leads(self, epoch: int) -> bool:
        return self.role == PRIMARY and self.replog.epoch == epoch

    async def _replicate(self, peer: str, epoch: int) -> None:
        """Ship entries (or an empty heartbeat) to ``peer`` for as long as this node leads ``epoch``."""
        wake = self._wakeups[peer]
        while self._leads(epoch):
            wake.clear()
            delivered = await self._send_append(peer, epoch)
            if delivered and self._leads(epoch) and self.next_index[peer] <= self.replog.last_index:
                continue
            try:
                await asyncio.wait_for(wake.wait(), self.heartbeat_interval)
            except TimeoutError:
                pass

    async def _send_append(self, peer: str, epoch: int) -> bool:
        start = self.next_index[peer]
        commit = self.replog.commit
        body = {
            "type": "append",
            "epoch": epoch,
            "prev_index": start - 1,
            "prev_epoch": self.replog.epoch_at(start - 1),
            "entries": self.replog.slice(start, _BATCH),
            "commit": commit,
            "echo": self._certified_echo(peer),  # the copy at this commit is current as of this peer clock
        }
        seq, sent = self.next_seq(), self.now()
        try:
            reply = await self.rpc(peer, body, timeout=self.election_timeout / 2)
        except (Timeout, RPCError):
            return False
        if not self._leads(epoch):
            return False
        if reply["epoch"] > epoch:
            self._step_down(reply["epoch"], f"{peer} is in epoch {reply['epoch']}")
            return False
        self._acked(peer, sent, seq)
        self._replies[peer].append((self.now(), reply["now"]))
        self.replica_applied[peer] = reply["applied"]
        if reply["applied"] >= commit:
            self.caught_up[peer] = sent
        if reply["match"] is None:  # the predecessor did not match: go back (to its end, if shorter)
            self.next_index[peer] = max(1, min(start - 1, reply["last"] + 1))
            return True
        self.match[peer] = max(self.match[peer], reply["match"])
        self.next_index[peer] = self.match[peer] + 1
        self._advance_commit()
        return True

    def _advance_commit(self) -> None:
        need = self._needed_acks()
        if need == 0:
            candidate = self.replog.last_index
        else:
            matches = sorted(self.match.values(), reverse=True)
            candidate = matches[need - 1] if len(matches) >= need else 0
        # Only an entry of this epoch commits by counting copies (Raft's rule); it commits its predecessors.
        if candidate > self.replog.commit and self.replog.epoch_at(candidate) == self.replog.epoch:
            self.replog.set_commit(candidate)
            self._apply_committed()
            if need:  # tell the replicas now, not at the next heartbeat, so their reads catch up sooner
                self._wake_replicators()

    # -- the replica's side ------------------------------------------------------------------------------

    async def handle_append(self, msg):
        """Entries (or a heartbeat) from a primary: accept them unless its epoch is stale."""
        body = msg.body
        if body["epoch"] < self.replog.epoch:
            self._event("fenced", {"from": msg.src, "epoch": body["epoch"]})
            return self._append_reply(None)
        self._follow(body["epoch"], msg.src)
        before = self.replog.last_index
        match, truncated = self.replog.accept(body["prev_index"], body["prev_epoch"], body["entries"])
        if truncated is not None:
            self._discard_from(truncated, before)
        if match is not None:
            commit = min(body["commit"], match)
            if commit > self.replog.commit:
                self.replog.set_commit(commit)
                self._apply_committed()
            echo = body.get("echo")
            if self.state.applied >= body["commit"] and echo is not None:
                # Current as of ``echo`` (our clock when we sent a reply the primary had before it read this
                # commit index), not as of now: an append that waited (a pause, a held or slow link) is old news.
                self.last_current = echo if self.last_current is None else max(self.last_current, echo)
        return self._append_reply(match)

    def _append_reply(self, match: int | None) -> dict:
        return {
            "type": "append_ok",
            "epoch": self.replog.epoch,
            "match": match,
            "last": self.replog.last_index,
            "applied": self.state.applied,
            "now": self.now(),
        }

    def _discard_from(self, index: int, last_before: int) -> None:
        """A conflict cut this log at ``index``: forget what was applied from there on."""
        self._event("truncate", {"from": index, "discarded": last_before - index + 1})
        if self.state.applied >= index:
            self.state.reset()
            self._apply_committed()

    def _apply_committed(self) -> None:
        commit = self.replog.commit
        while self.state.applied < commit:
            index = self.state.applied + 1
            result = self.state.apply(self.replog.op_at(index))
            future = self.waiters.pop(index, None)
            if future is not None and not future.done():
                future.set_result(result)
        if self._readers:
            waiting = []
            for index, future in self._readers:
                if index <= self.state.applied and not future.done():
                    future.set_result(None)
                elif not future.done():
                    waiting.append((index, future))
            self._readers = waiting

    # -- observing ---------------------------------------------------------------------------------------

    def staleness(self) -> float | None:
        """Seconds (own clock) since this node last knew its copy was current; None if never."""
        if self.role == PRIMARY:  # current as of the lease start once this epoch's first entry committed
            start = self.lease_start()
            if start == -math.inf or self.replog.commit < self.epoch_start:
                return None
            return max(self.now() - start, 0.0)
        return None if self.last_current is None else self.now() - self.last_current

    def lag(self) -> dict:
        """Replication state and lag: per replica on a primary, staleness on any node."""
        now, commit = self.now(), self.replog.commit
        report = {
            "node": self.name,
            "role": self.role,
            "epoch": self.replog.epoch,
            "primary": self.primary,
            "commit": commit,
            "applied": self.state.applied,
            "staleness": self.staleness(),
        }
        if self.role == PRIMARY:
            report["replicas"] = {
                peer: {
                    "match": self.match.get(peer, 0),
                    "applied": self.replica_applied.get(peer, 0),
                    "entries": max(commit - self.replica_applied.get(peer, 0), 0),
                    "seconds": now - self.caught_up[peer] if peer in self.caught_up else None,
                    "since_ack": now - self.ack_time[peer] if peer in self.ack_time else None,
                }
                for peer in self.peers
            }
        return report


def _seconds(value: float | None) -> str:
    return "forever" if value is None else f"{value:.3f}s"


def _recordable(key) -> bool:
    """Whether ``key`` can key a record in storage (a malformed key is refused by the state machine anyway)."""
    return isinstance(key, str) or is_int(key)


def primary_of(sim, during_election: Any = _FIRST) -> Any:
    """The live node that is primary in the highest epoch (for ``isolate-primary`` nemeses).

    When no node is primary right now (an election in progress): the first
    server, or ``during_election`` if given (``None``: no one leads).
    """
    best, best_epoch = None, -1
    for name in sim.servers:
        node = sim.node(name)
        if (
            isinstance(node, PrimaryReplica)
            and getattr(node, "role", None) == PRIMARY
            and node.replog.epoch > best_epoch
        ):
            best, best_epoch = name, node.replog.epoch
    if best is not None:
        return best
    return sim.servers[0] if during_election is _FIRST else during_election
