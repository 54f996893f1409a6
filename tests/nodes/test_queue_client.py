"""Producers, consumers and sinks: what each acknowledgement mode loses or duplicates, and delivery under faults."""

import asyncio
import collections

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

import emulator as em
from nodes.queue import Broker
from nodes.queue_client import Consumer, Producer, Publisher, Sink
from tests.common.hostile import HOSTILE
from tests.common.lb_harness import SimMachine
from tests.common.queue_cluster import BROKERS, TOPICS, measure, queue_cluster


def run_for(sim, seconds):
    sim.run(until=sim.now + seconds)


@pytest.mark.parametrize("acks, idempotent", [(0, False), (1, False), (1, True)])
def test_what_each_acknowledgement_mode_does_on_a_hostile_link(acks, idempotent):
    """acks 0 loses and duplicates unseen; acks 1 loses nothing acknowledged but duplicates; idempotent neither."""
    sim = queue_cluster(seed=4, acks=acks, idempotent=idempotent, count=150, producer_link=HOSTILE)
    run_for(sim, 5.0)
    out = measure(sim)
    sent = {f"p0-{i}" for i in range(150)}
    assert set(out.in_log) <= sent
    if acks == 0:
        assert not out.acked and len(out.unsure) == 150
        assert len(out.in_log) < 150 and out.log_duplicates > 0  # dropped ones are gone, duplicated ones twice
    else:
        assert set(out.acked) <= set(out.in_log)  # nothing acknowledged is missing from the log
        assert (out.log_duplicates > 0) == (not idempotent)
        assert not idempotent or all(n == 1 for n in out.in_log.values())


def test_order_is_kept_within_a_partition_and_not_across():
    """Fault-free: every partition's messages are applied in offset order, at every seed.

    The publisher's order across partitions is not, at some.
    """
    across = 0
    for seed in range(1, 6):
        sim = queue_cluster(seed=seed, idempotent=True, count=80)
        run_for(sim, 3.0)
        out = measure(sim)
        assert len(out.times) == 80 and out.effect_duplicates == 0
        by_partition = collections.defaultdict(list)
        for record in out.applied:
            by_partition[record["partition"]].append(record["offset"])
        assert all(offsets == sorted(offsets) for offsets in by_partition.values())
        across += out.inversions_across()
    assert across > 0


def test_a_consumer_that_dies_before_committing_gets_its_messages_redelivered():
    """A crash between the effect and the commit: the message is applied again, by whoever owns the partition next."""
    sim = queue_cluster(seed=2, idempotent=True, count=200, every=0.005, consumers=2)
    run_for(sim, 0.6)
    consumer = sim.node("k0")
    original = consumer._rpc

    async def die_before_commit(dest, body):
        reply = await original(dest, body)
        if body["type"] == "effect":
            sim.crash("k0")  # the effect is done; the commit never leaves
        return reply

    consumer._rpc = die_before_commit
    run_for(sim, 1.0)
    sim.restart("k0")
    run_for(sim, 3.0)
    out = measure(sim)
    assert out.effect_duplicates >= 1 and not out.lost and out.inversions_within() == 0


class _SlowSink(Sink):
    """A Sink that takes 50 ms per effect."""

    async def handle_effect(self, msg):
        await asyncio.sleep(0.05)
        return await super().handle_effect(msg)


def test_a_consumer_heartbeats_on_time_while_it_works_through_a_slow_sink():
    """No faults, a sink taking 50 ms per effect (a poll's 20 messages take a second, past the 0.6 s session): the
    consumers still heartbeat every interval, so the group never rebalances after its two joins and nothing is
    applied twice (Kafka's consumer heartbeats from a thread of its own for the same reason)."""
    sim = em.Simulation(seed=1, latency=em.Uniform(0.001, 0.003))
    for name in BROKERS:
        sim.add_node(name, Broker, brokers=BROKERS, topics=TOPICS, session_timeout=0.6)
    sim.add_node("sink", _SlowSink)
    sim.add_node("p0", Publisher, topic="orders", count=100, every=0.001, brokers=BROKERS, topics=TOPICS)
    for name in ("k0", "k1"):
        sim.add_node(
            name,
            Consumer,
            brokers=BROKERS,
            topics=TOPICS,
            group="g",
            topic="orders",
            sink="sink",
            heartbeat_interval=0.15,
        )
    run_for(sim, 10.0)
    out = measure(sim)
    assert len(out.times) == 100 and out.effect_duplicates == 0
    assert [e["value"][1] for e in sim.events if e["what"] == "rebalance"] == [1, 2]


class QueueUnderFaults(SimMachine):
    """Publishing and consuming while consumers, brokers and the sink crash, pause, are cut off and have their
    clocks jump, on a hostile network.

    After everything heals: each partition's log holds the idempotent
    producer's messages once each, in the order it sent them; commit-after
    applies every message in the log at least once (exactly once with an
    idempotent sink) and no member ever applied a partition's messages out
    of offset order in a generation; commit-before applies none twice;
    nothing acknowledged is missing from the log.
    """

    clients = 0
    latency = HOSTILE["latency"]

    @initialize(seed=st.integers(0, 2**16), commit=st.sampled_from(["after", "before"]), sink_idempotent=st.booleans())
    def setup(self, seed, commit, sink_idempotent):
        self.commit, self.sink_idempotent = commit, sink_idempotent
        self.sim = queue_cluster(
            seed=seed,
            idempotent=True,
            sink_idempotent=sink_idempotent,
            commit=commit,
            count=50,
            every=0.02,
            network=HOSTILE,
        )

    @rule(node=st.sampled_from(["k0", "k1", "sink", *BROKERS]))
    def crash_or_restart(self, node):
        if self.sim.alive(node):
            self.sim.crash(node)
        else:
            self.sim.restart(node)

    @rule(node=st.sampled_from(["k0", "k1", "sink", *BROKERS]), seconds=st.sampled_from([0.3, 1.0]))
    def pause(self, node, seconds):
        if self.sim.alive(node):
            self.sim.pause(node)
            run_for(self.sim, seconds)
            self.sim.resume(node)

    @rule(node=st.sampled_from(["k0", "k1", *BROKERS]), offset=st.sampled_from([-2.0, -0.5, 0.5, 2.0]))
    def skew(self, node, offset):
        """A clock jump: a coordinator's sessions expire early or late, a consumer beats off time."""
        self.sim.skew(node, offset)

    @rule(node=st.sampled_from(["k0", "k1", "sink", *BROKERS]))
    def isolate(self, node):
        self.sim.network.isolate(node)

    @rule()
    def heal(self):
        self.sim.network.heal()

    @rule(dt=st.sampled_from([0.05, 0.3, 1.0]))
    def wait(self, dt):
        run_for(self.sim, dt)

    def teardown(self):
        if not hasattr(self, "sim"):
            return
        self.sim.network.heal()
        for node in self.sim.servers:
            if not self.sim.alive(node):
                self.sim.restart(node)
        run_for(self.sim, 8.0)
        out = measure(self.sim)
        assert set(out.acked) <= set(out.in_log)
        for broker in BROKERS:  # the idempotent producer's order, every copy, in each partition's log
            for log in self.sim.node(broker).storage["logs"].values():
                sent = [msg["n"] for _, msg in log]
                assert sent == sorted(set(sent)), sent
        if self.commit == "after":
            assert out.inversions_within() == 0
            assert set(out.in_log) <= set(out.times), sorted(set(out.in_log) - set(out.times))
            assert not self.sink_idempotent or out.effect_duplicates == 0
        else:
            assert out.effect_duplicates == 0


TestQueueUnderFaults = QueueUnderFaults.TestCase
TestQueueUnderFaults.settings = settings(max_examples=20, stateful_step_count=12, deadline=None)


@pytest.mark.slow
class TestQueueUnderFaultsSoak(QueueUnderFaults.TestCase):
    """The same machine, longer: run with -m slow."""

    settings = settings(max_examples=200, stateful_step_count=25, deadline=None)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda n: Producer(n, BROKERS, TOPICS, acks=2), "acks must be 0"),
        (lambda n: Producer(n, BROKERS, TOPICS, acks=0, idempotent=True), "idempotent=True needs acks=1"),
    ],
)
def test_bad_producer_settings_say_what_to_do(make, match):
    """A misconfigured producer fails when made, naming the fix."""
    node = em.Simulation().add_node("p", em.Node)
    with pytest.raises(em.ConfigError, match=match):
        make(node)


def test_bad_consumer_settings_say_what_to_do():
    """An unknown commit mode or topic fails at construction."""
    sim = em.Simulation()
    base = {"brokers": BROKERS, "topics": TOPICS, "group": "g", "sink": "s"}
    with pytest.raises(em.ConfigError, match="commit must be 'after'"):
        sim.add_node("k", Consumer, topic="orders", commit="whenever", **base)
    with pytest.raises(em.ConfigError, match="topic 'x' is not in topics"):
        sim.add_node("k2", Consumer, topic="x", **base)


def test_a_producer_that_waits_for_each_ack_keeps_its_order_in_every_partition():
    """acks 1 on a hostile link: each partition's log holds the publisher's messages in the order it sent them."""
    sim = queue_cluster(seed=6, acks=1, idempotent=True, count=80, producer_link=HOSTILE)
    run_for(sim, 4.0)
    for broker in BROKERS:
        for log in sim.node(broker).storage["logs"].values():
            sent = [msg["n"] for _, msg in log]
            assert sent == sorted(sent)
    assert sum(len(log) for b in BROKERS for log in sim.node(b).storage["logs"].values()) == 80


def test_at_most_once_gives_up_order_within_a_partition_too():
    """commit="before" sends each effect once: one that timed out can land after the next offset's (seed 96)."""
    sim = queue_cluster(
        seed=96, idempotent=True, sink_idempotent=False, commit="before", count=50, every=0.02, network=HOSTILE
    )
    run_for(sim, 8.0)
    out = measure(sim)
    assert out.effect_duplicates == 0 and out.inversions_within() > 0


def test_at_most_once_needs_an_idempotent_producer_on_a_network_that_duplicates():
    """commit="before" is at most once per log entry; a plain producer's send that the network duplicates is two
    entries, so its effect is applied twice (the README's and the docstring's condition). With an idempotent
    producer, on the same network, at the same seeds: never twice (under crashes too: QueueUnderFaults)."""
    duplicating = {"latency": em.Uniform(0.001, 0.003), "duplicate": 0.2}
    twice = {}
    for idempotent in (False, True):
        twice[idempotent] = 0
        for seed in range(1, 4):
            sim = queue_cluster(
                seed=seed, acks=1, idempotent=idempotent, commit="before", count=60, network=duplicating
            )
            run_for(sim, 5.0)
            out = measure(sim)
            assert len(out.times) == 60  # every message applied: no faults but the duplicates
            twice[idempotent] += out.effect_duplicates
    assert twice[False] > 0 and twice[True] == 0


def test_without_an_idempotent_producer_a_late_copy_lands_after_later_messages():
    """acks 1, not idempotent, hostile link: each acknowledged message's first copy keeps the publisher's order,
    but a late copy of a retried or duplicated send can land after later messages (the docstring's exception)."""
    late_copies = 0
    for seed in range(10):
        sim = queue_cluster(seed=seed, acks=1, idempotent=False, count=80, producer_link=HOSTILE)
        run_for(sim, 4.0)
        acked = {int(ident.rsplit("-", 1)[1]) for ident, _, _ in sim.node("p0").acked}  # "p0-<n>"
        assert len(acked) > 60
        for broker in BROKERS:
            for log in sim.node(broker).storage["logs"].values():
                sent = [msg["n"] for _, msg in log]
                first = [n for i, n in enumerate(sent) if n in acked and n not in sent[:i]]
                assert first == sorted(first)
                late_copies += sent != sorted(sent)
    assert late_copies > 0


def test_a_restarted_idempotent_producer_is_a_new_producer_not_its_predecessors_duplicate():
    """p0 publishes 10 messages, crashes and restarts, and publishes its 10 again (its tally is memory): the second
    ten are appended too, at new offsets, not answered with the first ten's offsets as duplicates."""
    sim = queue_cluster(seed=3, acks=1, idempotent=True, count=10, every=0.01)
    run_for(sim, 0.5)
    first = list(sim.node("p0").acked)
    sim.crash("p0")
    sim.restart("p0")
    run_for(sim, 0.5)
    second = sim.node("p0").acked
    assert len(first) == len(second) == 10
    assert sum(len(log) for b in BROKERS for log in sim.node(b).storage["logs"].values()) == 20
    held = collections.Counter(partition for _, partition, _ in first)  # each partition's first offsets
    assert all(offset >= held[partition] for _, partition, offset in second), (first, second)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"retries": -1}, r"Producer retries must be an int >= 0, got -1"),  # it sent nothing and returned None
        ({"retries": True}, r"Producer retries must be an int >= 0, got True"),
        ({"keys": 0}, r"Publisher keys must be an int >= 1, got 0"),  # i % 0 failed at the first message
        ({"count": 2.5}, r"Publisher count must be an int >= 0, got 2.5"),
        ({"every": -0.01}, r"Publisher every must be a number of seconds >= 0 \(0: back to back\), got -0.01"),
    ],
)
def test_a_publishers_counts_are_checked_as_it_is_built(config, message):
    """Retries, keys, count and the period are refused when the publisher is added, not at its first message."""
    sim = em.Simulation(seed=1)
    with pytest.raises(em.ConfigError, match=message):
        sim.add_node("p0", Publisher, topic="orders", brokers=BROKERS, topics=TOPICS, **config)
    sim.close()
