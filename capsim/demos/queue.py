"""A message queue under faults: what each producer acknowledgement mode loses or duplicates, and what a consumer sees.

A publisher sends messages with 32 keys to a topic of four partitions on
three brokers, over a link that loses, duplicates and delays messages; two
consumers in a group apply each message's effect at a sink and commit its
offset. Midway, a broker that leads a partition restarts, and one consumer
crashes just after an effect it applied, before its commit, and comes back.

Delivery is at least once: a consumer that crashes after the effect and
before the commit hands the message to whoever owns the partition next, so
effects repeat unless the sink is idempotent. With acks 0 the producer never
learns what was lost; with acks 1 it retries, and a retry whose first attempt
did land is a duplicate in the log, unless the producer is idempotent.
Exactly once, for effects, takes both: an idempotent producer, and effects
that are idempotent by message id (or stored atomically with the offset).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, live
from capsim.report import Column, Run, Window
from faults.spec import HOSTILE, distribution
from nodes.queue import Broker
from nodes.queue_client import Consumer, Publisher, Sink

__all__ = ["BROKERS", "CONFIGS", "TOPICS", "Outcome", "Plan", "build", "main", "measure", "report", "run_config"]

BROKERS = ["b0", "b1", "b2"]
#: keys the publisher's messages cycle through: 32 reach all four partitions (12, 6, 7, 7 of them), so every
#: broker leads a partition with messages, the one that restarts included (the first 8 keys all hash to partitions
#: 0 and 3, both on b0: the restart touched no message)
KEYS = 32
TOPICS = {"orders": 4}
#: configuration -> (acks, idempotent producer, idempotent sink)
CONFIGS = {
    "acks 0": (0, False, False),
    "acks 1": (1, False, False),
    "acks 1, idempotent producer": (1, True, False),
    "idempotent producer and sink": (1, True, True),
}
#: the producer's link to the brokers: the hostile network (faults.spec.HOSTILE)
LINK = {**HOSTILE, "latency": distribution(HOSTILE["latency"])}


@dataclass(frozen=True)
class Plan:
    """One run's settings: the seed, the messages to publish, and when a broker and a consumer are down.

    The consumer k0 crashes at the first effect it has applied from ``consumer_down[0]`` on (before it can commit
    that message; at most 2 s later), and is down for as long as ``consumer_down`` spans.
    """

    seed: int = 1
    count: int = 300
    every: float = 0.01
    broker_down: tuple[float, float] = (1.0, 1.3)
    consumer_down: tuple[float, float] = (1.5, 1.8)
    settle: float = 3.0

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        return cls(seed=seed, count=150, broker_down=(0.5, 0.8), consumer_down=(0.8, 1.1), settle=2.5)


@dataclass
class Outcome:
    """What happened to the messages, read from the publisher, the brokers' logs and the sink."""

    sent: int
    acked: list
    unsure: list
    in_log: collections.Counter
    applied: list
    times: collections.Counter = field(default_factory=collections.Counter)

    def __post_init__(self):
        self.times = collections.Counter(r["id"] for r in self.applied)

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
        bad, seen = 0, set()
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
                firsts.append(int(r["id"].rsplit("-", 1)[1]))
        return sum(1 for a, b in itertools.pairwise(firsts) if b < a)


def build(
    seed: int,
    acks: int = 1,
    idempotent: bool = False,
    sink_idempotent: bool = False,
    commit: str = "after",
    consumers: int = 2,
    count: int = 60,
    every: float = 0.01,
    network: dict | None = None,
    producer_link: dict | None = None,
) -> em.Simulation:
    """The brokers, a publisher ``p0``, consumers ``k0``.. in group ``g`` and a ``sink``; not yet run."""
    sim = em.Simulation(seed=seed, **(network or {"latency": em.Uniform(0.001, 0.003)}))
    for name in BROKERS:
        sim.add_node(name, Broker, brokers=BROKERS, topics=TOPICS, session_timeout=0.6)
    sim.add_node("sink", Sink, idempotent=sink_idempotent)
    sim.add_node(
        "p0",
        Publisher,
        topic="orders",
        keys=KEYS,
        count=count,
        every=every,
        brokers=BROKERS,
        topics=TOPICS,
        acks=acks,
        idempotent=idempotent,
        timeout=0.1,
        retries=5,
    )
    for i in range(consumers):
        sim.add_node(
            f"k{i}",
            Consumer,
            brokers=BROKERS,
            topics=TOPICS,
            group="g",
            topic="orders",
            sink="sink",
            commit=commit,
            heartbeat_interval=0.15,
        )
    if producer_link:
        for broker in BROKERS:
            sim.network.set_link("p0", broker, **producer_link)
    return sim


def measure(sim: em.Simulation) -> Outcome:
    """The outcome, once the run is over (every node up)."""
    in_log: collections.Counter = collections.Counter()
    for name in BROKERS:
        for log in live(sim, name, Broker).storage["logs"].values():
            in_log.update(msg["id"] for _, msg in log)
    publisher = live(sim, "p0", Publisher)
    return Outcome(
        publisher.count,
        [a[0] for a in publisher.acked],
        list(publisher.unsure),
        in_log,
        list(live(sim, "sink", Sink).storage["applied"]),
    )


async def _applied_not_committed(sim: em.Simulation, consumer: str, wait: float) -> bool:
    """Wait until the sink applies an effect ``consumer`` sent (True), or ``wait`` seconds pass (False).

    A crash at a fixed instant found the consumer between messages at some seeds, with nothing done and not
    committed, and no effect was applied twice (seed 101 of the --quick sizes). Checked every half millisecond,
    under the network's least latency, so the sink's reply cannot have reached the consumer, and its commit is
    not yet sent.
    """
    sink, member = live(sim, "sink", Sink), live(sim, consumer, Consumer).member
    seen, deadline = len(sink.storage["applied"]), sim.now + wait
    while sim.now < deadline:
        await asyncio.sleep(0.0005)
        applied = sink.storage["applied"]
        if any(record["consumer"] == member for record in applied[seen:]):
            return True
        seen = len(applied)
    return False


def run_config(plan: Plan, name: str) -> Run:
    acks, idempotent, sink_idempotent = CONFIGS[name]
    sim = build(plan.seed, acks, idempotent, sink_idempotent, count=plan.count, every=plan.every, producer_link=LINK)
    down: dict = {}

    async def faults():
        await asyncio.sleep(plan.broker_down[0])
        sim.crash("b1")
        await asyncio.sleep(plan.broker_down[1] - plan.broker_down[0])
        sim.restart("b1")
        await asyncio.sleep(plan.consumer_down[0] - plan.broker_down[1])
        # the publisher waits for each acknowledgement over a slow link: k0 can go half a second without a message
        down["mid_message"] = await _applied_not_committed(sim, "k0", wait=2.0)
        down["at"] = sim.now
        sim.crash("k0")
        await asyncio.sleep(plan.consumer_down[1] - plan.consumer_down[0])
        sim.restart("k0")

    sim.loop.create_task(faults())
    publisher = live(sim, "p0", Publisher)
    while len(publisher.acked) + len(publisher.unsure) < plan.count and sim.now < 60.0:
        sim.run(until=sim.now + 0.25)
    sim.run(until=sim.now + plan.settle)
    out = measure(sim)
    rebalances = sum(1 for e in sim.events if e["what"] == "rebalance")
    row = {
        "sent": out.sent,
        "acked": len(out.acked),
        "unsure": len(out.unsure),
        "in_log": len(out.in_log),
        "log_duplicates": out.log_duplicates,
        "missing": out.sent - len(out.in_log),
        "acked_missing": sum(1 for i in out.acked if i not in out.in_log),
        "applied": len(out.applied),
        "effect_duplicates": out.effect_duplicates,
        "unapplied": sum(1 for i in out.in_log if i not in out.times),
        "inversions_within": out.inversions_within(),
        "inversions_across": out.inversions_across(),
        "rebalances": rebalances,
        "consumer_crashed_at": down["at"],
        "crashed_mid_message": down["mid_message"],
    }
    span = plan.consumer_down[1] - plan.consumer_down[0]
    windows = [Window(*plan.broker_down, "broker b1 down"), Window(down["at"], down["at"] + span, "consumer k0 down")]
    return Run(name, [], row, windows=windows)


def columns() -> list[Column]:
    return [
        Column("sent", "sent", help="messages published"),
        Column("acked", "acked", help="  acknowledged to the producer"),
        Column("in_log", "in the log", help="  in a partition's log (distinct)"),
        Column("acked_missing", "acked, not in log", help="  acknowledged but not in any log"),
        Column("missing", "lost", help="  never in any log"),
        Column("log_duplicates", "log duplicates", help="  extra copies in the logs"),
        Column("applied", "effects", help="effects applied at the sink"),
        Column("effect_duplicates", "duplicate effects", help="  applied more than once"),
        Column("unapplied", "unapplied", help="  messages in the log never applied"),
        Column("inversions_within", "out of order, within", help="out of offset order within a partition"),
        Column("inversions_across", "out of order, across", help="out of publishing order across partitions"),
        Column("rebalances", "rebalances", help="group rebalances"),
    ]


def _note(runs: list[Run]) -> str:
    r = {run.name: run.row for run in runs}
    zero, one, idem, exact = (r[n] for n in CONFIGS)
    exactly = ": exactly once, for effects" if exact["effect_duplicates"] == exact["unapplied"] == 0 else ""
    inverted = max(x["inversions_within"] for x in r.values())
    within = "nothing was applied out of order" if inverted == 0 else f"{inverted} messages were applied out of order"
    return (
        f"acks 0 lost {zero['missing']} of {zero['sent']} messages and logged {zero['log_duplicates']} "
        f"duplicates, and the producer knew of neither. acks 1 lost "
        f"{'none' if not one['acked_missing'] else one['acked_missing']} of the {one['acked']} it acknowledged, but "
        f"{one['log_duplicates']} extra copies reached the logs (network duplicates, and retries after lost "
        f"acknowledgements); the idempotent producer's logs held {idem['log_duplicates']}. Consumers still "
        f"applied {idem['effect_duplicates']} messages twice with the idempotent producer alone: the crash and "
        f"the rebalances redelivered what was done but not committed. With an idempotent sink as well, "
        f"{exact['effect_duplicates']} duplicate effects and {exact['unapplied']} messages unapplied"
        f"{exactly}. Within a partition {within}; across partitions "
        f"{one['inversions_across']} neighbouring messages were applied in the opposite order to publishing."
    )


def report(plan: Plan) -> Report:
    runs = [run_config(plan, name) for name in CONFIGS]
    title = (
        f"{plan.count} messages, 4 partitions on 3 brokers, a lossy and duplicating producer link; broker "
        f"down {plan.broker_down[0]:g}-{plan.broker_down[1]:g} s, a consumer for "
        f"{plan.consumer_down[1] - plan.consumer_down[0]:g} s from its first effect after {plan.consumer_down[0]:g} s"
    )
    meta = {
        "seed": plan.seed,
        "count": plan.count,
        "broker_down": list(plan.broker_down),
        "consumer_down": list(plan.consumer_down),
    }
    return Report(
        "queue",
        "A message queue: acknowledgements, duplicates, order",
        intro(__doc__),
        [Table("queue", title, columns(), runs, _note(runs), transpose=True)],
        meta,
        {run.name: run.row for run in runs},
        timeline=None,
    )


def main(
    seed: int = 1, console: Console | None = None, out: Path | None = None, as_json: bool = False, quick: bool = False
) -> int:
    """Run the demo, print the table (or JSON), write the report to ``out``; returns 0."""
    plan = Plan.quick(seed) if quick else replace(Plan(), seed=seed)
    return emit(report(plan), console, as_json, out)
