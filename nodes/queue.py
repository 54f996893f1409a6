"""A message queue: topics split into partitions by key, brokers, consumer groups, committed offsets.

Kafka's model, cut to what shows the trade-offs. A topic has a fixed number
of partitions; a message goes to partition ``key_hash(key) % partitions``
and is appended to that partition's log on its broker (``leader_of``), at
the next offset. A consumer group shares a topic's partitions among its
members; a member reads a partition from the group's committed offset and
commits (acknowledges) as it goes (``nodes.queue_client``).

Guarantees:

- A send acknowledged by the broker is in the partition's log at the offset
  given, and stays there: logs are append-only and live in ``storage``.
- Order within a partition: offsets are dense and in the order the broker
  appended; a producer that waits for each acknowledgement keeps its own
  order in each partition: with an idempotent producer, every copy in the
  log; without one, the first copy of each acknowledged message, as a late
  copy (a retry's first attempt, or a network duplicate, arriving after
  later messages) is appended after them: a duplicate out of order.
- Idempotent producers: a send carrying ``producer`` and ``seq`` that the
  broker already appended (a retry after a lost acknowledgement, or a
  network duplicate) is answered with the first append's offset and not
  appended again (Kafka's idempotent producer, per partition); one whose
  ``seq`` is below a later one already appended there (a late copy of a
  send its producer gave up on) is refused with 22, so the log keeps the
  producer's order. One difference from Kafka: Kafka numbers a producer's
  batches per partition and refuses a gap (``OutOfOrderSequence``); here a
  producer numbers its sends across all partitions, so a partition sees
  gaps as a matter of course and accepts them, refusing only a number below
  one it already appended. Kafka remembers a producer's last five batches;
  here the last ``dedup_window`` sequence numbers per producer and partition
  (an older retry is refused with 22 rather than answered with its offset).
- Groups: in a generation every partition has at most one owner, and a
  commit from a member of an older generation, or for a partition it does
  not own, is refused (error 22): a consumer that was presumed dead cannot
  move the group's offsets. Committed offsets only move forward, so a late
  duplicate of an older commit cannot rewind the group.

Gives up:

- Availability of a partition while its broker is down or cut off: there
  is no replication, so sends and polls to it fail (error 11 or a timeout).
- Exactly-once delivery: a consumer gets a message again if it dies (or
  loses its partition) between processing it and committing its offset;
  without an idempotent producer, a retried send duplicates the message in
  the log. What exactly once needs: an idempotent (or transactional)
  producer, and effects applied atomically with the offset, or made
  idempotent by a message id (``Sink(idempotent=True)``).
- Order across partitions, and between two owners of one partition across a
  rebalance (the old owner may still be working when the new one starts).
- Group membership is memory: if the coordinator crashes, members rejoin
  (generations are in storage, so none is ever issued twice).

Protocol (Maelstrom's kafka workload, with topics and partitions):
``send {topic, key, msg, [producer, seq]}`` -> ``send_ok {partition, offset}``;
``poll {topic, partition, offset, [max]}`` -> ``poll_ok {msgs: [[offset, key, msg], ...]}``;
``join {group, topic, member}`` -> ``join_ok {generation, partitions}``;
``heartbeat {group, member, generation}`` -> ``heartbeat_ok`` or error 22;
``commit_offsets {group, topic, member, generation, offsets: {partition: offset}}``
-> ``commit_offsets_ok``; ``list_committed_offsets {group, topic}`` -> ``{offsets}``.
An offset committed is the next one to read.
"""

from __future__ import annotations

import asyncio
import collections

from emulator import ConfigError, Node, RPCError
from emulator.errors import MALFORMED_REQUEST, PRECONDITION_FAILED
from emulator.validate import is_int, positive_seconds
from nodes.hashring import key_hash
from nodes.kv import unavailable

__all__ = ["Broker", "coordinator_of", "leader_of", "partition_of"]


def partition_of(key, partitions: int) -> int:
    """The partition a message with ``key`` goes to."""
    return key_hash(key) % partitions


def leader_of(brokers: list[str], topic: str, partition: int) -> str:
    """The broker holding ``topic``'s ``partition``: partitions are spread round the brokers from a hashed start."""
    return brokers[(key_hash(topic) + partition) % len(brokers)]


def coordinator_of(brokers: list[str], group: str) -> str:
    """The broker coordinating ``group``."""
    return brokers[key_hash("group:" + group) % len(brokers)]


class Broker(Node):
    """One broker: the logs of the partitions it leads, and the groups it coordinates.

    Args:
        brokers: every broker's name, in the same order on every node (placement depends on it).
        topics: topic -> partition count.
        session_timeout: seconds without a heartbeat before a group member is dropped.
        dedup_window: sequence numbers remembered per producer and partition.
    """

    def __init__(self, brokers: list[str], topics: dict, session_timeout: float = 1.0, dedup_window: int = 10_000):
        _check_layout(brokers, topics)
        positive_seconds("session_timeout", session_timeout)
        self.brokers, self.topics = list(brokers), dict(topics)
        self.session_timeout, self.dedup_window = session_timeout, dedup_window
        self.groups: dict[str, dict] = {}  # group -> {"topic", "generation", "members": {m: seen}, "owners": {p: m}}
        #: appended, duplicates (idempotent sends answered without appending), polls, commits, fenced
        self.stats: collections.Counter = collections.Counter()

    async def on_start(self):
        self.storage.setdefault("logs", {})
        self.storage.setdefault("seqs", {})
        self.storage.setdefault("newest", {})  # partition -> producer -> the highest seq appended
        self.storage.setdefault("committed", {})
        self.spawn(self._expire_forever(), name="group-sessions")

    # -- logs ----------------------------------------------------------------------------------

    def partition_log(self, topic: str, partition: int) -> list:
        """The partition's log: ``[key, msg]`` per offset (read-only use)."""
        return self.storage["logs"].get(f"{topic}/{partition}", [])

    def _partition(self, body: dict, field: str = "partition") -> tuple[str, int]:
        topic = body.get("topic")
        if not isinstance(topic, str) or topic not in self.topics:
            raise RPCError(MALFORMED_REQUEST, f"unknown topic {topic!r}; topics: {', '.join(sorted(self.topics))}")
        if field == "key":
            partition = partition_of(body.get("key"), self.topics[topic])
        else:
            given = body.get(field)
            if not is_int(given, ge=0, lt=self.topics[topic]):
                raise RPCError(
                    MALFORMED_REQUEST, f"{topic!r} has partitions 0..{self.topics[topic] - 1}, got {given!r}"
                )
            partition = given
        leader = leader_of(self.brokers, topic, partition)
        if leader != self.name:
            raise unavailable(f"{self.name} does not hold {topic}/{partition}; {leader} does")
        return topic, partition

    async def handle_send(self, msg):
        body = msg.body
        topic, partition = self._partition(body, "key")
        name = f"{topic}/{partition}"
        producer, seq = body.get("producer"), body.get("seq")
        seen = None
        if producer is not None:
            seen = self.storage["seqs"].setdefault(name, {}).setdefault(str(producer), {})
            if str(seq) in seen:
                self.stats["duplicates"] += 1
                return {"type": "send_ok", "partition": partition, "offset": seen[str(seq)]}
            newest = self.storage["newest"].setdefault(name, {}).get(str(producer))
            if is_int(seq) and newest is not None and seq < newest:
                # A late copy of a send its producer gave up on (it has appended later ones since): appending it
                # now would put it after them. Kafka's broker refuses such a sequence number too.
                self.stats["out_of_order"] += 1
                raise RPCError(PRECONDITION_FAILED, f"{producer}'s seq {seq} is older than {newest}, already in {name}")
        log = self.storage["logs"].setdefault(name, [])
        log.append([body.get("key"), body.get("msg")])
        offset = len(log) - 1
        if seen is not None:
            seen[str(seq)] = offset
            if is_int(seq):
                newest = self.storage["newest"][name]
                newest[str(producer)] = max(seq, newest.get(str(producer), seq))
            while len(seen) > self.dedup_window:
                del seen[next(iter(seen))]
        self.stats["appended"] += 1
        return {"type": "send_ok", "partition": partition, "offset": offset}

    async def handle_poll(self, msg):
        body = msg.body
        topic, partition = self._partition(body)
        start, most = body.get("offset", 0), body.get("max", 100)
        if not is_int(start, ge=0):
            raise RPCError(MALFORMED_REQUEST, f"offset must be an int >= 0, got {start!r}")
        if not is_int(most, ge=1):
            raise RPCError(MALFORMED_REQUEST, f"max must be an int >= 1 (messages to return at most), got {most!r}")
        log = self.partition_log(topic, partition)
        self.stats["polls"] += 1
        return {
            "type": "poll_ok",
            "partition": partition,
            "msgs": [[start + i, key, value] for i, (key, value) in enumerate(log[start : start + most])],
        }

    # -- groups ----------------------------------------------------------------------------------

    def _group(self, body: dict) -> dict:
        group, topic = body.get("group"), body.get("topic")
        if not isinstance(group, str):
            raise RPCError(MALFORMED_REQUEST, f"a group name is a string, got {group!r}")
        state = self.groups.get(group)
        if state is None:
            if not isinstance(topic, str) or topic not in self.topics:
                raise RPCError(MALFORMED_REQUEST, f"group {group!r} needs a known topic, got {topic!r}")
            # The generation survives a crash: a restarted coordinator must never reissue one a zombie holds.
            generation = self.storage.setdefault("generations", {}).get(group, 0)
            state = self.groups[group] = {"topic": topic, "generation": generation, "members": {}, "owners": {}}
        self._expire(group, state)
        return state

    def _rebalance(self, group: str, state: dict, why: str) -> None:
        members = sorted(state["members"])
        state["generation"] += 1
        self.storage.setdefault("generations", {})[group] = state["generation"]
        partitions = self.topics[state["topic"]]
        state["owners"] = {p: members[p % len(members)] for p in range(partitions)} if members else {}
        self.event("rebalance", [group, state["generation"], members, why])

    def _expire(self, group: str, state: dict) -> None:
        now = self.now()
        gone = sorted(m for m, seen in state["members"].items() if now - seen > self.session_timeout)
        for member in gone:
            del state["members"][member]
        if gone:
            self._rebalance(group, state, f"no heartbeat from {', '.join(gone)}")

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self.session_timeout / 2)
            for group in sorted(self.groups):
                self._expire(group, self.groups[group])

    async def handle_join(self, msg):
        state = self._group(msg.body)
        member = str(msg.body.get("member", msg.src))
        new = member not in state["members"]
        state["members"][member] = self.now()
        if new or not state["owners"]:  # a member rejoining an unchanged group just learns the current assignment
            self._rebalance(msg.body["group"], state, f"{member} joined")
        return self._assignment(state, member)

    def _assignment(self, state: dict, member: str) -> dict:
        mine = sorted(p for p, owner in state["owners"].items() if owner == member)
        return {"type": "join_ok", "generation": state["generation"], "partitions": mine}

    async def handle_heartbeat(self, msg):
        state = self._group(msg.body)
        member = str(msg.body.get("member", msg.src))
        if member not in state["members"] or msg.body.get("generation") != state["generation"]:
            raise RPCError(
                PRECONDITION_FAILED, f"rebalance: the group is at generation {state['generation']}; join again"
            )
        state["members"][member] = self.now()
        return {"type": "heartbeat_ok"}

    async def handle_commit_offsets(self, msg):
        body = msg.body
        state = self._group(body)
        member, offsets = str(body.get("member", msg.src)), _offsets(body.get("offsets"), self.topics[state["topic"]])
        stale = body.get("generation") != state["generation"]
        foreign = [p for p in offsets if state["owners"].get(int(p)) != member]
        if stale or foreign:
            self.stats["fenced"] += 1
            raise RPCError(
                PRECONDITION_FAILED,
                f"commit refused: generation {body.get('generation')} is not "
                f"{state['generation']} or {member} does not own {foreign}",
            )
        committed = self.storage["committed"].setdefault(f"{body['group']}/{state['topic']}", {})
        for partition, offset in offsets.items():
            # Forward only: a late duplicate of an older commit must not rewind the group.
            committed[str(partition)] = max(offset, committed.get(str(partition), 0))
        self.stats["commits"] += 1
        return {"type": "commit_offsets_ok"}

    async def handle_list_committed_offsets(self, msg):
        state = self._group(msg.body)
        committed = self.storage["committed"].get(f"{msg.body['group']}/{state['topic']}", {})
        return {"type": "list_committed_offsets_ok", "offsets": dict(committed)}


def _offsets(offsets, partitions: int) -> dict:
    """A commit's ``{partition: offset}``, checked: partitions as strings ("0".."n-1"), offsets ints >= 0."""
    if offsets is None:
        return {}
    if not isinstance(offsets, dict) or not all(
        isinstance(p, str) and p.isdigit() and int(p) < partitions and is_int(o, ge=0) for p, o in offsets.items()
    ):
        raise RPCError(
            MALFORMED_REQUEST,
            f"offsets must map partitions '0'..'{partitions - 1}' to the next offset to read (an int >= 0), "
            f"e.g. {{'0': 12}}, got {offsets!r}",
        )
    return offsets


def _check_layout(brokers, topics) -> None:
    if isinstance(brokers, str) or not brokers or not all(isinstance(b, str) and b for b in brokers):
        raise ConfigError(f"brokers must be a non-empty list of broker node names, got {brokers!r}")
    if (
        not isinstance(topics, dict)
        or not topics
        or not all(isinstance(t, str) and is_int(n, ge=1) for t, n in topics.items())
    ):
        raise ConfigError(f"topics must map topic names to partition counts >= 1, e.g. {{'orders': 4}}, got {topics!r}")
