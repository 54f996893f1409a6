"""Service discovery: traffic to a dead instance until its lease runs out, and an AP and a CP registry cut in two.

Three instances of a service heartbeat every 0.25 s to a registry of three
replicas, with a 1 s lease. A caller looks the service up (keeping each
answer for 0.5 s) and sends requests to the instances in turn. One instance
dies: the registry lists it until its lease runs out, and the caller keeps
sending it traffic until its cached answer runs out too.

Then the registry is cut 1 | 2, each side with its own instances and a
client looking up. An AP registry (like Eureka) answers on both sides, and
the cut-off replica's answers go stale: it misses instances that registered
on the other side, and lets the other side's live instances expire. A CP
registry (like etcd, here a majority quorum) refuses on the minority side and
never misses an instance whose heartbeat it acknowledged; instances that can
only reach the minority cannot renew, and drop out though alive.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro
from capsim.report import Column, Run, Window
from capsim.report.tables import percent, seconds
from nodes.discovery import MODES, Instance, Registry, Resolver

__all__ = ["Caller", "LoggedInstance", "Looker", "Plan", "main", "missed", "report", "run_config"]

REGISTRIES = ["r0", "r1", "r2"]
TTL, INTERVAL, CACHE = 1.0, 0.25, 0.5


class LoggedInstance(Instance):
    """An Instance that appends ``(sent, acknowledged)`` of each acknowledged heartbeat to ``acks``."""

    def __init__(self, acks: list, **config):
        super().__init__(**config)
        self.acks = acks
        beat = self.announcer.beat

        async def logged_beat() -> bool:
            sent = self.now()
            ok = await beat()
            if ok:
                self.acks.append((sent, self.now()))
            return ok

        self.announcer.beat = logged_beat  # type: ignore[method-assign]  # wrapped, to log its acks


class Looker(em.Node):
    """Looks up ``service`` at ``registry`` every ``every`` seconds; keeps (asked, answered, instances or error)."""

    def __init__(self, service: str, registry: str, every: float = 0.05, seen: list | None = None):
        self.service, self.registry, self.period = service, registry, every  # not .every: Node.every is a method
        self.seen = seen if seen is not None else []

    async def on_start(self):
        self.spawn(self._loop())

    async def _loop(self):
        while True:
            asked = self.now()
            try:
                reply = await self.rpc(self.registry, {"type": "lookup", "service": self.service}, timeout=0.5)
                self.seen.append((asked, self.now(), reply["instances"]))
            except (em.RPCError, em.Timeout) as exc:
                self.seen.append((asked, self.now(), exc))
            await asyncio.sleep(self.period)


class Caller(em.Node):
    """Resolves ``service`` through a ``Resolver`` and sends a request to each instance in turn, every ``every``.

    ``sent`` gets ``(time, instance)`` for each request sent.
    """

    def __init__(self, service: str, registries: list[str], cache_ttl: float, sent: list, every: float = 0.01):
        self.service, self.period, self.sent = service, every, sent  # not .every: Node.every is a method
        self.resolver = Resolver(self, registries, cache_ttl=cache_ttl)

    async def on_start(self):
        self.spawn(self._loop())

    async def _loop(self):
        turn = 0
        while True:
            try:
                instances = await self.resolver.lookup(self.service)
            except em.RPCError:
                instances = []
            if instances:
                target = instances[turn % len(instances)]
                turn += 1
                self.sent.append((self.now(), target))
                self.send(target, {"type": "request", "key": turn})
            await asyncio.sleep(self.period)


def missed(answer: list[str], asked: float, answered: float, acks: dict[str, list], ttl: float) -> list[str]:
    """Instances ``answer`` left out although an acknowledged heartbeat kept them alive throughout the lookup."""
    return sorted(
        instance
        for instance, beats in acks.items()
        if instance not in answer and any(a <= asked and s + ttl > answered for s, a in beats)
    )


@dataclass(frozen=True)
class Plan:
    """One run's timeline: when an instance dies, when the registries are cut apart and a new instance joins."""

    seed: int = 1
    kill_at: float = 2.0
    cut: tuple[float, float] = (5.0, 8.0)
    join_at: float = 6.0
    duration: float = 9.0

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        return cls(seed=seed, kill_at=1.0, cut=(3.0, 5.5), join_at=3.5, duration=6.0)


def _instance(sim, name: str, home: int, acks: dict) -> None:
    acks[name] = []
    sim.add_node(
        name,
        LoggedInstance,
        acks=acks[name],
        service="users",
        registries=REGISTRIES[home:] + REGISTRIES[:home],
        interval=INTERVAL,
        ttl=TTL,
        service_time=em.Constant(0.001),
    )


def run_config(plan: Plan, mode: str) -> Run:
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(0.001, 0.003))
    for name in REGISTRIES:
        sim.add_node(name, Registry, replicas=REGISTRIES, mode=mode, sync_interval=0.2, rpc_timeout=0.1)
    acks: dict = {}
    for i in range(3):
        _instance(sim, f"i{i}", i, acks)
    sent: list[tuple[float, str]] = []
    minority: list[tuple] = []
    majority: list[tuple] = []
    sim.add_node("caller", Caller, service="users", registries=["r1", "r2"], cache_ttl=CACHE, sent=sent)
    sim.add_node("l0", Looker, service="users", registry="r0", seen=minority)
    sim.add_node("l1", Looker, service="users", registry="r1", seen=majority)
    left, right = ["r0", "i0", "l0"], ["r1", "r2", "i1", "i2", "l1", "caller"]

    async def day():
        await asyncio.sleep(plan.kill_at)
        sim.crash("i2")
        await asyncio.sleep(plan.cut[0] - plan.kill_at)
        cut = sim.network.partition(left, right)
        await asyncio.sleep(plan.join_at - plan.cut[0])
        _instance(sim, "i3", 1, acks)  # joins on the majority side
        sim.network.heal(cut)
        sim.network.partition(left, right + ["i3"])
        await asyncio.sleep(plan.cut[1] - plan.join_at)
        sim.network.heal()
        await asyncio.sleep(plan.duration - plan.cut[1])

    sim.run(day())
    late = [t - plan.kill_at for t, target in sent if target == "i2" and t >= plan.kill_at]
    row = {
        "to_dead": len(late),
        "last_to_dead_s": max(late, default=None),
        "bound_s": TTL + CACHE,
        **_side(minority, plan, acks, "minority"),
        **_side(majority, plan, acks, "majority"),
    }
    seen = {"minority": minority, "majority": majority}  # each side's lookups: (asked, answered, instances or error)
    return Run(mode, [], row, windows=[Window(*plan.cut, "registry cut 1 | 2")], extra={"seen": seen})


def _side(seen: list, plan: Plan, acks: dict, side: str) -> dict:
    during = [(a, b, found) for a, b, found in seen if plan.cut[0] <= a and b < plan.cut[1]]
    answered = [(a, b, found) for a, b, found in during if isinstance(found, list)]
    stale = [x for x in answered if missed(x[2], x[0], x[1], acks, TTL)]
    return {
        f"answered_{side}": len(answered) / len(during) if during else None,
        f"stale_{side}": len(stale) / len(answered) if answered else None,
    }


def columns() -> list[Column]:
    return [
        Column("to_dead", "sent to dead", help="requests sent to the dead instance"),
        Column("last_to_dead_s", "last, s after", seconds, "  the last, s after it died"),
        Column("bound_s", "lease + cache", seconds, "  lease + client cache, s"),
        Column("answered_minority", "minority answered", percent, "cut: lookups answered, minority side"),
        Column("stale_minority", "minority stale", percent, "  of which missed a live instance (minority)"),
        Column("answered_majority", "majority answered", percent, "cut: lookups answered, majority side"),
        Column("stale_majority", "majority stale", percent, "  of which missed a live instance (majority)"),
    ]


def _note(runs: list[Run]) -> str:
    ap, cp = (run.row for run in runs)
    within = all(row["last_to_dead_s"] <= row["bound_s"] + 0.01 for row in (ap, cp))
    bound = f"at most {ap['bound_s']:g} s" if within else f"past their {ap['bound_s']:g} s bound"
    every = "every" if ap["answered_minority"] == ap["answered_majority"] == 1.0 else "not every"
    return (
        f"The dead instance got {ap['to_dead']} requests (AP) and {cp['to_dead']} (CP), the last "
        f"{ap['last_to_dead_s']:.2f} s and {cp['last_to_dead_s']:.2f} s after it died: its lease, then the "
        f"caller's cache ({bound}). Cut in two, the AP registry answered {every} lookup on "
        f"both sides ({percent(ap['answered_minority'])}, {percent(ap['answered_majority'])}), and "
        f"{percent(ap['stale_minority'])} and {percent(ap['stale_majority'])} of the answers missed a live "
        f"instance whose heartbeats went to the other side. The CP registry answered "
        f"{percent(cp['answered_minority'])} of lookups on the minority side and "
        f"{percent(cp['answered_majority'])} on the majority side, {percent(cp['stale_majority'])} of them "
        f"stale; i0, alive but able to reach only the minority, dropped out of its answers."
    )


def report(plan: Plan) -> Report:
    runs = [run_config(plan, mode) for mode in MODES]
    title = (
        f"3 instances, lease {TTL:g} s, heartbeat {INTERVAL:g} s, caller cache {CACHE:g} s; one dies at "
        f"{plan.kill_at:g} s; registry cut {plan.cut[0]:g}-{plan.cut[1]:g} s"
    )
    meta = {"seed": plan.seed, "kill_at": plan.kill_at, "cut": list(plan.cut), "ttl": TTL, "cache_ttl": CACHE}
    return Report(
        "discovery",
        "Service discovery: leases, caches, and AP against CP",
        intro(__doc__),
        [Table("discovery", title, columns(), runs, _note(runs), transpose=True)],
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
