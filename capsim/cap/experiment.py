"""The CAP experiment: one workload, one fault schedule, several configurations.

Every configuration gets the same cluster size, the same seed, the same
clients and the same timeline:

    healthy  |  partition: minority | majority  |  healed: settle (reads)  | final reads
    0        partition_at                       heal_at                   duration

The settle phase only reads, so "converged" has a meaning: the time from the
heal until the reads of every key agree for good.

One client is bound to each server (Jepsen's process-to-node binding), so
clients sit on both sides of the partition. The minority holds ``n0``, the
first primary of the primary-replica configurations, so the partition
deposes a primary: the failover case. Clients read, write and cas a handful
of shared keys; a share of writes go to fresh keys that are never written
again, so a lost acknowledged write stays visible to the checker. After the
traffic stops, a client reads every key written (the final reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import emulator as em
from capsim.cap.configs import Config
from capsim.cap.metrics import CHECK_STEPS, measure
from capsim.report import Run, Window
from faults import Workload


@dataclass
class Plan:
    """The shared timeline and workload of a CAP experiment (all times virtual seconds)."""

    seed: int = 1
    nodes: int = 5
    duration: float = 12.0
    partition_at: float = 3.0
    heal_at: float = 8.0
    keys: int = 3
    rate: float = 100.0
    timeout: float = 0.5
    unique: float = 0.3
    latency: tuple[float, float] = (0.001, 0.005)
    check_steps: int = CHECK_STEPS
    mix: dict = field(default_factory=lambda: {"read": 0.5, "write": 0.35, "cas": 0.15})

    def __post_init__(self):
        if self.nodes < 3:
            raise em.ConfigError(f"--nodes must be at least 3 for a majority and a minority, got {self.nodes}")
        if not 0 <= self.partition_at < self.heal_at <= self.duration:
            raise em.ConfigError(
                f"need 0 <= --partition-at < --heal-at <= --duration, got {self.partition_at}, "
                f"{self.heal_at}, {self.duration}"
            )
        if self.heal_at - self.partition_at < self.timeout - 1e-9:  # 0.7 - 0.2 is 0.4999...: not shorter
            raise em.ConfigError(
                f"the partition must last at least the clients' {self.timeout} s timeout, got "
                f"{self.heal_at - self.partition_at:g} s (--partition-at {self.partition_at:g}, --heal-at "
                f"{self.heal_at:g}): an operation invoked during a shorter one can wait for the heal and still be "
                f"answered in time, so the per-side figures would not measure the partition; use --heal-at "
                f"{self.partition_at + self.timeout:g} or later"
            )

    @property
    def servers(self) -> list[str]:
        return [f"n{i}" for i in range(self.nodes)]

    @property
    def minority(self) -> list[str]:
        """The smaller side: ``n0`` (the first primary) and the next nodes, fewer than half."""
        return self.servers[: (self.nodes - 1) // 2]

    @property
    def majority(self) -> list[str]:
        return self.servers[len(self.minority) :]

    def client_side(self, side: list[str]) -> list[str]:
        """The clients bound to the servers of ``side`` (client ci talks to ni)."""
        return [f"c{name[1:]}" for name in side]

    def to_dict(self) -> dict:
        return asdict(self)


def run_config(config: Config, plan: Plan, progress: Callable[[float], None] | None = None) -> Run:
    """Run ``config`` through the plan's timeline; returns the report's ``Run`` with its figures.

    ``progress``, if given, is called with the virtual time every ``PROGRESS_STEP``
    virtual seconds: the run stops there and goes on, the same events in the same
    order (the trace digest is the one of a run without it).
    """
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(*plan.latency))
    node_class = config.node_class()
    for name in plan.servers:
        sim.add_node(name, node_class, **config.kwargs(plan.nodes))
    workload = Workload(
        clients=plan.nodes,
        rate=plan.rate,
        keys=plan.keys,
        mix=dict(plan.mix),
        timeout=plan.timeout,
        duration=plan.heal_at,
        routing="bound",
        unique=plan.unique,
    )
    settle = Workload(
        clients=plan.nodes,
        rate=plan.rate,
        keys=plan.keys,
        mix={"read": 1.0},
        timeout=plan.timeout,
        duration=plan.duration - plan.heal_at,
        routing="bound",
    )
    clients = workload.add_clients(sim)
    timeline = _timeline(sim, plan, workload, settle, clients)
    if progress is None:
        sim.run(timeline)
    else:
        run_in_steps(sim, timeline, PROGRESS_STEP, progress)
    sides = {
        "minority": plan.minority + plan.client_side(plan.minority),
        "majority": plan.majority + plan.client_side(plan.majority),
    }
    row, stale_times = measure(sim.history, plan, sides)
    return Run(
        config.name,
        list(sim.history),
        row,
        sides={k: plan.client_side(v) for k, v in (("minority", plan.minority), ("majority", plan.majority))},
        windows=[Window(plan.partition_at, plan.heal_at, "partition")],
        stale=stale_times,
        extra={
            "label": config.label,
            "claim": config.claim,
            "conditions": config.conditions,
            "digest": sim.trace_digest(),
            "errors": [str(e) for e in sim.errors],
            "events": len(sim.events),
        },
    )


#: virtual seconds between two progress reports of a run
PROGRESS_STEP = 0.5


def run_in_steps(sim: em.Simulation, coro, step: float, progress: Callable[[float], None]):
    """``sim.run(coro)``, stopping every ``step`` virtual seconds to call ``progress(time)``; returns its result."""
    task = asyncio.ensure_future(coro, loop=sim.loop)
    until = sim.now
    while True:
        until += step
        try:
            return sim.run(task, until=until)
        except em.Unfinished:
            progress(until)


async def _timeline(
    sim: em.Simulation, plan: Plan, workload: Workload, settle: Workload, clients: list[em.Client]
) -> None:
    traffic = asyncio.ensure_future(workload.run(sim, clients))
    await asyncio.sleep(plan.partition_at)
    sim.network.partition(
        plan.minority + plan.client_side(plan.minority), plan.majority + plan.client_side(plan.majority)
    )
    await asyncio.sleep(plan.heal_at - plan.partition_at)
    sim.network.heal()
    await traffic
    await settle.run(sim, clients)
    await workload.read_all(sim, clients[-1], servers=plan.majority[::-1])
