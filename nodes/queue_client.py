"""The queue's clients: a producer with acknowledgement modes, consumers in a group, and a sink for effects.

Producer acknowledgement modes (``acks``):

- ``0``: send and do not wait, and never send again. Whatever the network
  drops, or a broker that is down, is lost, and nobody knows. Kafka calls
  this at most once, over TCP, which never delivers a message twice;
  capsim's network can (its duplication fault), and the broker appends both
  copies of a plain send, as nothing tells them apart: on such a network
  acks 0 is neither at most nor at least once.
- ``1``: wait for the broker's append; on a timeout or error 11 send again,
  up to ``retries`` times (at least once). A lost acknowledgement makes the
  retry append the message a second time.
- ``1`` with ``idempotent=True``: the same, each send carrying the
  producer's id and a sequence number per message, so the broker appends a
  retried message once (the log holds each message once). The id is
  ``name#boot``: a restarted producer is a new producer (as Kafka's gets a
  new producer id), so its sequence, from 1 again, is not taken for its
  predecessor's duplicates.

Sends are one at a time, each waiting for its acknowledgement (with acks 0,
only for the send itself), so a producer's messages keep its order within
each partition except with acks 0 on a network that reorders; with acks 1
and no idempotence, the first copy of each acknowledged message keeps it,
but a late copy (of a retried send, or a network duplicate) can land after
later messages.

A ``Consumer`` joins its group at the coordinator, reads each partition it
owns from the committed offset, applies each message's effect at the
``sink`` and then commits the next offset (``commit="after"``: at least
once), or commits first (``commit="before"``: at most once per log entry: a
crash between the two loses the message; a message the log holds twice, a
plain producer's retry or network duplicate, is applied once per copy, so
at most once per message needs an idempotent producer too where the network
duplicates). It heartbeats every ``heartbeat_interval``, from
a task of its own, so a slow sink never holds a heartbeat back past the
session (as Kafka's consumer has since KIP-62); told of a rebalance (error
22, by a heartbeat or a commit), it stops and joins again. Each incarnation joins
as a new member (``name#boot``). With ``commit="after"``, within one
generation a member sends a partition's effects in offset order, each
retried until it is acknowledged before the next, so the sink first applies
them in offset order; a retry overtaken by a late copy of itself may apply
again afterwards (a duplicate). With ``commit="before"`` an effect is sent
once and never retried (that is what makes it at most once), so one that
times out may still land after the next offset's effect: at most once gives
up order within a partition at the sink, as it gives up the message itself.

A ``Sink`` applies effects and logs each one. Like any server it discards
network duplicates of a request (same sender and ``msg_id``), but a retry
is a new request: applied again. With ``idempotent=True`` it skips a message
id it has applied before, so the effect happens once however often the
message is delivered or retried. Messages carry their id in ``msg["id"]``.
"""

from __future__ import annotations

import asyncio
import collections
import math

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import PRECONDITION_FAILED, TEMPORARILY_UNAVAILABLE
from emulator.validate import is_number, positive_seconds, whole
from nodes.dedup import Dedup
from nodes.queue import coordinator_of, leader_of, partition_of

__all__ = ["ACKS", "Consumer", "Producer", "Publisher", "Sink"]

ACKS = (0, 1)


class Producer:
    """Sends messages to the brokers from ``node`` (see the module docstring).

    Args:
        node: the sending node (its rpc, send and name are used).
        brokers: the brokers' names, as the brokers have them.
        topics: the topics' layout, as the brokers have it.
        acks: ``0`` or ``1``.
        idempotent: with acks 1, number the sends so the broker appends each once.
        retries: sends after the first, with acks 1.
        timeout: seconds to wait for an acknowledgement.
    """

    def __init__(
        self,
        node: Node,
        brokers: list[str],
        topics: dict,
        acks: int = 1,
        idempotent: bool = False,
        retries: int = 3,
        timeout: float = 0.2,
    ):
        if acks not in ACKS:
            raise ConfigError(f"acks must be 0 (do not wait) or 1 (wait for the broker), got {acks!r}")
        if idempotent and acks == 0:
            raise ConfigError("idempotent=True needs acks=1: a producer that never learns the outcome never retries")
        whole("Producer retries", retries, 0)
        positive_seconds("Producer timeout", timeout)  # now, not at the first send's rpc
        self.node, self.brokers, self.topics = node, list(brokers), dict(topics)
        self.acks, self.idempotent, self.retries, self.timeout = acks, idempotent, retries, timeout
        self._seq = 0
        self._id: str | None = None  # the producer id of this incarnation, made at its first idempotent send
        #: sent (messages), attempts (sends, retries included), acked, failed
        self.stats: collections.Counter = collections.Counter()

    async def send(self, topic: str, key, msg: dict) -> dict | None:
        """Send one message; its ack ``{"partition", "offset"}``, or None with acks 0.

        Raises:
            RPCError or Timeout: acks 1 and no acknowledgement after every retry
                (indefinite: the message may be in the log).
        """
        self._seq += 1
        partition = partition_of(key, self.topics[topic])
        body = {"type": "send", "topic": topic, "key": key, "msg": msg}
        if self.idempotent:
            body.update(producer=self._producer_id(), seq=self._seq)
        leader = leader_of(self.brokers, topic, partition)
        self.stats["sent"] += 1
        if self.acks == 0:
            self.stats["attempts"] += 1
            self.node.send(leader, body)
            return None
        for attempt in range(self.retries + 1):
            self.stats["attempts"] += 1
            try:
                reply = await self.node.rpc(leader, body, timeout=self.timeout)
            except (Timeout, RPCError) as exc:
                if (isinstance(exc, RPCError) and exc.code != TEMPORARILY_UNAVAILABLE) or attempt == self.retries:
                    self.stats["failed"] += 1
                    raise
                continue
            self.stats["acked"] += 1
            return {"partition": reply["partition"], "offset": reply["offset"]}
        raise AssertionError("unreachable")

    def _producer_id(self) -> str:
        """``name#boot``: each incarnation is a new producer with its own sequence (Kafka's new producer id).

        So a restarted one, counting from 1 again, is not taken for its predecessor's duplicates.
        """
        if self._id is None:
            storage = self.node.storage
            storage["producer_boots"] = storage.get("producer_boots", 0) + 1
            self._id = f"{self.node.name}#{storage['producer_boots']}"
        return self._id


class Publisher(Node):
    """Publishes ``count`` messages to ``topic``, one every ``every`` seconds, through a ``Producer``.

    Message i has key ``i % keys`` and body ``{"id": "<name>-<i>", "n": i}``.
    ``self.acked`` lists ``(id, partition, offset)`` of each acknowledged one,
    ``self.unsure`` the ids whose fate is unknown (acks 0, or retries spent).

    Args:
        topic: the topic to publish to.
        count: how many messages to publish.
        every: seconds between two messages.
        keys: how many keys the messages cycle through (message i has key ``i % keys``).
        producer: keyword arguments of ``Producer`` (brokers, topics, acks, ...).
    """

    def __init__(self, topic: str, count: int = 100, every: float = 0.01, keys: int = 8, **producer):
        whole("Publisher count", count, 0)
        whole("Publisher keys", keys)
        if not is_number(every, ge=0, lt=math.inf):
            raise ConfigError(f"Publisher every must be a number of seconds >= 0 (0: back to back), got {every!r}")
        self.topic, self.count, self.period, self.keys = topic, count, every, keys  # not self.every: Node.every
        self.producer = Producer(self, **producer)
        self.acked: list[tuple] = []
        self.unsure: list[str] = []

    async def on_start(self):
        self.spawn(self._publish(), name="publish")

    async def _publish(self):
        for i in range(self.count):
            msg = {"id": f"{self.name}-{i}", "n": i}
            try:
                ack = await self.producer.send(self.topic, i % self.keys, msg)
            except (Timeout, RPCError):
                ack = None
            if ack is None:
                self.unsure.append(msg["id"])
            else:
                self.acked.append((msg["id"], ack["partition"], ack["offset"]))
            await asyncio.sleep(self.period)


class Sink(Node):
    """Applies effects ``{"type": "effect", "id", ...}`` and logs each applied one in ``storage["applied"]``.

    Args:
        idempotent: skip a message id applied before; otherwise only network duplicates are skipped.
    """

    def __init__(self, idempotent: bool = False):
        self.idempotent = idempotent
        self.dedup = Dedup(self, slot="effects", by_id=idempotent)

    async def on_start(self):
        self.storage.setdefault("applied", [])

    async def handle_effect(self, msg):
        done = self.dedup.seen(msg)
        if done is not None:
            return done
        record = {k: msg.body.get(k) for k in ("id", "partition", "offset", "consumer", "generation")}
        self.storage["applied"].append(record)
        return self.dedup.remember(msg, {"type": "effect_ok"})


class Consumer(Node):
    """A member of ``group`` consuming ``topic`` (see the module docstring).

    Args:
        brokers: the brokers' names.
        topics: the topics' layout.
        group: the consumer group to join.
        topic: the topic to consume.
        sink: the node that applies each message's effect.
        commit: ``"after"`` the effect (at least once) or ``"before"`` (at most once).
        poll_interval: seconds between polls.
        heartbeat_interval: seconds between heartbeats to the group's coordinator.
        timeout: seconds to wait for a broker or the sink.
    """

    def __init__(
        self,
        brokers: list[str],
        topics: dict,
        group: str,
        topic: str,
        sink: str,
        commit: str = "after",
        poll_interval: float = 0.02,
        heartbeat_interval: float = 0.2,
        timeout: float = 0.2,
    ):
        if commit not in ("after", "before"):
            raise ConfigError(
                f"commit must be 'after' the effect (at least once) or 'before' (at most once), got {commit!r}"
            )
        if topic not in topics:
            raise ConfigError(f"topic {topic!r} is not in topics {sorted(topics)}")
        for label, value in (("poll_interval", poll_interval), ("heartbeat_interval", heartbeat_interval)):
            positive_seconds(f"Consumer {label}", value)
        positive_seconds("Consumer timeout", timeout)
        self.brokers, self.topics, self.group, self.topic, self.sink = list(brokers), dict(topics), group, topic, sink
        self.commit, self.poll_interval = commit, poll_interval
        self.heartbeat_interval, self.timeout = heartbeat_interval, timeout
        self.coordinator = coordinator_of(self.brokers, group)
        self.generation: int | None = None
        self.positions: dict[int, int] = {}
        #: delivered (messages handed to the sink), committed, rejoins
        self.stats: collections.Counter = collections.Counter()

    async def on_start(self):
        # Each incarnation is a new member (as a Kafka consumer instance is), so a restart is a rebalance.
        self.storage["boots"] = self.storage.get("boots", 0) + 1
        self.member = f"{self.name}#{self.storage['boots']}"
        self.spawn(self._consume(), name="consume")
        self.spawn(self._heartbeat(), name="heartbeat")

    def _group_body(self, kind: str, **extra) -> dict:
        return {"type": kind, "group": self.group, "topic": self.topic, "member": self.member, **extra}

    async def _consume(self) -> None:
        while True:
            busy = False
            try:
                if self.generation is None:
                    await self._join()
                    # Confirm the generation before working in it: a member that joined just before another often
                    # learns of the rebalance here, before it applies anything it would have to hand over.
                    await self._rpc(self.coordinator, self._group_body("heartbeat", generation=self.generation))
                for partition in sorted(self.positions):
                    if self.generation is None:
                        break  # told of a rebalance meanwhile: join again before anything else
                    busy = await self._drain(partition) or busy
            except RPCError as exc:
                if exc.code == PRECONDITION_FAILED:  # a rebalance, or fenced: join again from the committed offsets
                    self._rejoin(self.generation)
                busy = False
            except Timeout:
                busy = False
            if not busy:
                await asyncio.sleep(self.poll_interval)

    async def _heartbeat(self) -> None:
        """Heartbeat every interval from a task of its own, so a slow sink never stalls it (Kafka's KIP-62)."""
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            generation = self.generation
            if generation is None:
                continue
            try:
                await self._rpc(self.coordinator, self._group_body("heartbeat", generation=generation))
            except RPCError as exc:
                if exc.code == PRECONDITION_FAILED:
                    self._rejoin(generation)
            except Timeout:
                pass

    def _rejoin(self, generation: int | None) -> None:
        """Leave ``generation`` (unless it is already left): the consume loop joins again."""
        if generation is not None and self.generation == generation:
            self.generation = None
            self.stats["rejoins"] += 1

    async def _rpc(self, dest: str, body: dict) -> dict:
        return await self.rpc(dest, body, timeout=self.timeout)

    async def _join(self) -> None:
        reply = await self._rpc(self.coordinator, self._group_body("join"))
        committed = (await self._rpc(self.coordinator, self._group_body("list_committed_offsets")))["offsets"]
        self.generation = reply["generation"]
        self.positions = {p: committed.get(str(p), 0) for p in reply["partitions"]}

    async def _drain(self, partition: int) -> bool:
        """Poll one partition from its position and handle what came; True if anything did."""
        generation = self.generation
        if generation is None:
            return False
        leader = leader_of(self.brokers, self.topic, partition)
        reply = await self._rpc(
            leader,
            {
                "type": "poll",
                "topic": self.topic,
                "partition": partition,
                "offset": self.positions[partition],
                "max": 20,
            },
        )
        for offset, _key, msg in reply["msgs"]:
            if self.generation != generation:
                return True
            await self._handle(partition, offset, msg, generation)
        return bool(reply["msgs"])

    async def _handle(self, partition: int, offset: int, msg: dict, generation: int | None) -> None:
        commit = self._group_body("commit_offsets", generation=generation, offsets={str(partition): offset + 1})
        effect = {
            "type": "effect",
            "id": msg.get("id"),
            "partition": partition,
            "offset": offset,
            "consumer": self.member,
            "generation": generation,
        }
        if self.commit == "before":
            await self._rpc(self.coordinator, commit)
            self.positions[partition] = offset + 1
            await self._rpc(self.sink, effect)
        else:
            await self._rpc(self.sink, effect)
            await self._rpc(self.coordinator, commit)
            self.positions[partition] = offset + 1
        self.stats["delivered"] += 1
        self.stats["committed"] += 1
