"""A queue for tests: three brokers, a topic of four partitions, a publisher, consumers in a group, a sink.

``measure`` reads the outcome from the brokers' logs and the sink's log:
what was acknowledged, what is in the logs (and how often), what was
applied (and how often), and the order it was applied in.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import emulator as em
from nodes.queue import Broker
from nodes.queue_client import Consumer, Publisher, Sink

BROKERS = ["b0", "b1", "b2"]
TOPICS = {"orders": 4}


def queue_cluster(seed: int, acks: int = 1, idempotent: bool = False, sink_idempotent: bool = False,
                  commit: str = "after", consumers: int = 2, count: int = 60, every: float = 0.01, network=None,
                  producer_link=None):
    """A Simulation with the brokers, a publisher ``p0``, consumers ``k0``.. and a ``sink``; not yet run."""
    sim = em.Simulation(seed=seed, **(network or {"latency": em.Uniform(0.001, 0.003)}))
    for name in BROKERS:
        sim.add_node(name, Broker, brokers=BROKERS, topics=TOPICS, session_timeout=0.6)
    sim.add_node("sink", Sink, idempotent=sink_idempotent)
    sim.add_node("p0", Publisher, topic="orders", count=count, every=every, brokers=BROKERS, topics=TOPICS,
                 acks=acks, idempotent=idempotent, timeout=0.1, retries=5)
    for i in range(consumers):
        sim.add_node(f"k{i}", Consumer, brokers=BROKERS, topics=TOPICS, group="g", topic="orders", sink="sink",
                     commit=commit, heartbeat_interval=0.15)
    if producer_link:
        for broker in BROKERS:
            sim.network.set_link("p0", broker, **producer_link)
    return sim


@dataclass
class Outcome:
    acked: list          # ids acknowledged to the publisher
    unsure: list         # ids whose fate the publisher does not know
    in_log: collections.Counter   # id -> copies in the logs
    applied: list        # the sink's records, in the order applied
    times: collections.Counter    # id -> times applied

    @property
    def log_duplicates(self) -> int:
        return sum(n - 1 for n in self.in_log.values() if n > 1)

    @property
    def effect_duplicates(self) -> int:
        return sum(n - 1 for n in self.times.values() if n > 1)

    @property
    def lost(self) -> list:
        """Acknowledged ids never applied."""
        return [i for i in self.acked if i not in self.times]

    def inversions_within(self) -> int:
        """First applications one member made, in one generation and partition, at an offset below the one before."""
        last: dict = {}
        bad = 0
        seen = set()
        for r in self.applied:
            if r["id"] in seen:
                continue
            seen.add(r["id"])
            key = (r["consumer"], r["generation"], r["partition"])
            if key in last and r["offset"] < last[key]:
                bad += 1
            last[key] = r["offset"]
        return bad

    def inversions_across(self) -> int:
        """Consecutive first applications whose messages the publisher sent in the other order."""
        firsts, seen = [], set()
        for r in self.applied:
            if r["id"] not in seen:
                seen.add(r["id"])
                firsts.append(int(r["id"].split("-")[1]))
        return sum(1 for a, b in zip(firsts, firsts[1:]) if b < a)


def measure(sim: em.Simulation) -> Outcome:
    in_log: collections.Counter = collections.Counter()
    for name in BROKERS:
        for log in sim.node(name).storage["logs"].values():
            in_log.update(msg["id"] for _, msg in log)
    applied = list(sim.node("sink").storage["applied"])
    publisher = sim.node("p0")
    return Outcome([a[0] for a in publisher.acked], list(publisher.unsure), in_log, applied,
                   collections.Counter(r["id"] for r in applied))
