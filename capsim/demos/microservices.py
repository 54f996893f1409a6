"""Microservices on a bad day: a cascading failure without breakers and deadlines, and its containment with them.

Clients call an API gateway in zone a; it finds services through a registry
(one replica per zone) and forwards /catalog to a catalog service (reads
through a cache) and /orders to an orders service (calls payments, then
writes through a cache); each service has an instance per zone, 8 workers
and a queue. The caches sit in front of a multi-primary store with a replica
per zone. Clients give up after 1 s. Then, one fault at a time: payments
dies, zone b is cut off, and the link from catalog to its cache slows down.

Without breakers and deadlines, each fault holds workers and gateway slots
for as long as the longest timeout: the pool that every route shares fills
up, requests that need nothing from the failed part wait behind the others,
and the whole system stops answering. With them, a deadline passed down from
the gateway caps every wait at what the client will still wait for, breakers
turn a dead dependency into an immediate error, and the failure stays where
it is.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, live, nearest_rank
from capsim.report import Column, Run, Window, write_plots
from capsim.report.tables import millis, percent
from nodes.cache import Cache
from nodes.discovery import Registry
from nodes.gateway import Gateway
from nodes.multiprimary import MultiPrimary
from nodes.service import Service

__all__ = ["CONFIGS", "PHASES", "ROUTES", "SLOTS", "Plan", "build", "columns", "main", "report", "run_config"]

#: route -> (share of requests, service)
ROUTES = {"catalog": (0.6, "catalog"), "orders": (0.4, "orders")}
BREAKER = {"failure_threshold": 5, "reset_timeout": 1.0}
#: requests the gateway forwards at once (its connection pool, shared by every route)
SLOTS = 32
#: configuration -> (gateway settings, service settings)
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "no breakers or deadlines": (
        {"propagate_deadline": False, "deadline": 10.0},
        {"deadlines": False, "call_timeout": 5.0},
    ),
    "breakers and deadlines": (
        {"propagate_deadline": True, "deadline": 1.0, "breaker": BREAKER},
        {"deadlines": True, "call_timeout": 0.3, "breaker": BREAKER},
    ),
}
PHASES = ("before", "payments down", "zone b cut off", "slow cache link", "after")
#: phase -> when, in a sentence
_DURING = {
    "before": "before the first fault",
    "payments down": "while payments was down",
    "zone b cut off": "while zone b was cut off",
    "slow cache link": "while the cache link was slow",
    "after": "after the last fault",
}


@dataclass(frozen=True)
class Plan:
    """The demo's parameters (virtual seconds, requests per second)."""

    seed: int = 1
    rate: float = 150.0
    fault: float = 3.0  # each fault lasts this long
    start: float = 2.0  # the first fault begins
    settle: float = 2.0  # after the last one
    client_timeout: float = 1.0
    slow_latency: float = 0.3

    @property
    def spans(self) -> dict[str, tuple[float, float]]:
        """Phase -> (start, end)."""
        edges = [0.0, *(self.start + i * self.fault for i in range(4))]
        edges.append(edges[-1] + self.settle)
        return dict(zip(PHASES, itertools.pairwise(edges)))

    @property
    def duration(self) -> float:
        return self.spans["after"][1]

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        return cls(seed=seed, rate=100.0, fault=2.0, start=1.0, settle=1.5)


def build(plan: Plan, name: str) -> em.Simulation:
    """The cluster of one configuration (two zones), not yet run."""
    gateway, service = CONFIGS[name]
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(0.0005, 0.0015))
    registries = ["reg-a", "reg-b"]
    for registry in registries:
        sim.add_node(registry, Registry, replicas=registries, mode="ap", sync_interval=0.25)
    for zone in ("a", "b"):
        sim.add_node(f"st-{zone}", MultiPrimary, replicas=["st-a", "st-b"], anti_entropy=0.5)
        other = "b" if zone == "a" else "a"
        sim.add_node(f"cache-{zone}", Cache, store=[f"st-{zone}", f"st-{other}"], ttl=2.0, timeout=0.5)
    home = {"a": ["reg-a", "reg-b"], "b": ["reg-b", "reg-a"]}
    endpoints = {
        "catalog": lambda z: {"/catalog": [{"node": f"cache-{z}", "op": "read"}]},
        "orders": lambda z: {
            "/orders": [{"service": "payments", "path": "/charge"}, {"node": f"cache-{z}", "op": "write"}]
        },
    }
    workers: dict[str, Any] = {
        "service_time": em.Exponential(0.005),
        "concurrency": 8,
        "queue_limit": 200,
        "interval": 0.25,
        "ttl": 1.0,
    }
    for kind, make in endpoints.items():
        for zone in ("a", "b"):
            sim.add_node(
                f"{kind}-{zone}",
                Service,
                service=kind,
                endpoints=make(zone),
                registries=home[zone],
                **workers,
                **service,
            )
    sim.add_node(
        "payments", Service, service="payments", endpoints={"/charge": []}, registries=home["a"], **workers, **service
    )
    sim.add_node(
        "gw",
        Gateway,
        routes={"/catalog": "catalog", "/orders": "orders"},
        registries=home["a"],
        rate=1000.0,
        burst=1000.0,
        max_in_flight=SLOTS,
        queue_limit=1000,
        cache_ttl=0.5,
        **gateway,
    )
    return sim


async def _faults(sim: em.Simulation, plan: Plan) -> None:
    spans = plan.spans
    zone_b = ["reg-b", "st-b", "cache-b", "catalog-b", "orders-b"]
    await asyncio.sleep(spans["payments down"][0])
    sim.crash("payments")
    await asyncio.sleep(plan.fault)
    sim.restart("payments")
    sim.network.partition(zone_b, [n for n in sim.servers if n not in zone_b])
    await asyncio.sleep(plan.fault)
    sim.network.heal()
    sim.network.set_link("catalog-a", "cache-a", latency=em.Constant(plan.slow_latency))
    await asyncio.sleep(plan.fault)
    sim.network.set_link("catalog-a", "cache-a", latency=em.Uniform(0.0005, 0.0015))


async def _load(sim: em.Simulation, plan: Plan) -> None:
    """Poisson arrivals; each request on an idle client of its route (a new one when all are busy)."""
    rng = sim.rng("load")
    idle: dict[str, list[em.Client]] = {route: [] for route in ROUTES}
    made = dict.fromkeys(ROUTES, 0)
    tasks = []

    async def one(route: str, client: em.Client, n: int) -> None:
        key = f"item{rng.randrange(50)}"
        try:
            await client.invoke(
                "request",
                key=key,
                value=n,
                dest="gw",
                timeout=plan.client_timeout,
                fields={"path": f"/{route}/{key}", "id": n, "deadline": plan.client_timeout},
            )
        except (em.RPCError, em.Timeout):
            pass
        finally:
            idle[route].append(client)

    n = 0
    while True:
        gap = rng.expovariate(plan.rate)
        if sim.now + gap >= plan.duration:
            break
        await asyncio.sleep(gap)
        route = "catalog" if rng.random() < ROUTES["catalog"][0] else "orders"
        if not idle[route]:
            idle[route].append(sim.add_client(f"{route}-c{made[route]}"))
            made[route] += 1
        n += 1
        tasks.append(asyncio.ensure_future(one(route, idle[route].pop(), n)))
    await asyncio.gather(*tasks)


async def _peaks(sim: em.Simulation, plan: Plan, marks: list[int]) -> None:
    """The gateway's peak queue at the end of each phase, so the report can tell in which phase it peaked."""
    for _, end in plan.spans.values():
        await asyncio.sleep(end - sim.now)
        marks.append(live(sim, "gw", Gateway).stats["peak_queued"])


def run_config(plan: Plan, name: str) -> Run:
    """One configuration through the whole bad day."""
    sim = build(plan, name)
    marks: list[int] = []

    async def day():
        sim.loop.create_task(_faults(sim, plan))
        sim.loop.create_task(_peaks(sim, plan, marks))
        await _load(sim, plan)

    sim.run(day(), until=plan.duration + 30.0)
    history = list(sim.history)
    pairs = sim.history.completions()
    sides = {route: sorted({i["client"] for i, _ in pairs if i["client"].startswith(route)}) for route in ROUTES}
    windows = [Window(*plan.spans[p], p) for p in PHASES[1:4]]
    return Run(name, history, _row(plan, sim, pairs, marks), sides=sides, windows=windows)


def _row(plan: Plan, sim: em.Simulation, pairs, marks: list[int]) -> dict:
    row: dict = {}
    for phase, (start, end) in plan.spans.items():
        for route in ROUTES:
            chosen = [(i, d) for i, d in pairs if start <= i["time"] < end and i["client"].startswith(route)]
            ok = [(i, d) for i, d in chosen if d is not None and d["type"] == "ok"]
            waits = [d["time"] - i["time"] for i, d in chosen if d is not None]
            row[f"ok_{route}_{phase}"] = len(ok) / len(chosen) if chosen else None
            p99 = nearest_rank(waits, 99)  # None when nothing completed
            row[f"p99_{route}_{phase}_ms"] = None if p99 is None else 1000 * p99
            row[f"worst_{route}_{phase}"] = _worst_second(ok, start, end)
    every = [d for _, d in pairs]
    row["ok_all"] = sum(d is not None and d["type"] == "ok" for d in every) / len(every) if every else None
    gateway = live(sim, "gw", Gateway)
    row["gateway_peak_in_flight"] = gateway.stats["peak_in_flight"]
    row["gateway_peak_queued"] = gateway.stats["peak_queued"]
    # the most queued at once up to each phase's end, and the phase the peak was reached in: the first whose end
    # saw it (or the last: a request invoked in its final milliseconds reaches the gateway after it)
    row["gateway_queued_by"] = dict(zip(PHASES, marks))
    peak = row["gateway_peak_queued"]
    row["gateway_peak_phase"] = next((p for p, mark in zip(PHASES, marks) if mark == peak), PHASES[-1])
    services = [n for n in sim.servers if n.startswith(("catalog-", "orders-", "payments"))]
    row["service_peak_queue"] = max(node.stats["peak"] for n in services if isinstance(node := sim.node(n), Service))
    row["wasted"] = _wasted(plan, sim, pairs, services)
    row["requests"] = len(pairs)
    return row


def _worst_second(ok: list, start: float, end: float) -> int:
    """The fewest successful requests (by invoke time) in any whole second of ``[start, end)``."""
    seconds = max(1, int(end - start))
    counts = [0] * seconds
    for invoke, _ in ok:
        slot = int(invoke["time"] - start)
        if slot < seconds:
            counts[slot] += 1
    return min(counts)


def _wasted(plan: Plan, sim: em.Simulation, pairs, services: list[str]) -> int:
    """Requests a service finished after the client had given up on them."""
    gave_up = {i["value"]: i["time"] + plan.client_timeout for i, _ in pairs}
    late = 0
    for name in services:
        node = sim.node(name)
        if isinstance(node, Service):  # None while crashed
            late += sum(1 for rid, t in node.finished.items() if rid in gave_up and t > gave_up[rid])
    return late


def columns(plan: Plan) -> list[Column]:
    """The table's rows (transposed): success and p99 per route and phase, then the pile-up figures."""
    cols = []
    for phase in PHASES:
        for route in ROUTES:
            cols.append(Column(f"ok_{route}_{phase}", f"{route} ok, {phase}", percent, f"{route} ok, {phase}"))
    for phase in PHASES:
        cols.append(
            Column(
                f"worst_catalog_{phase}",
                f"catalog ok/s, worst second, {phase}",
                str,
                f"catalog ok/s, worst second, {phase}",
            )
        )
    for phase in PHASES:
        cols.append(Column(f"p99_catalog_{phase}_ms", f"catalog p99 ms, {phase}", millis, f"catalog p99 ms, {phase}"))
    return cols + [
        Column("ok_all", "ok, whole run", percent, "ok, whole run"),
        Column("gateway_peak_in_flight", "gateway in flight", help=f"gateway requests in flight, peak (of {SLOTS})"),
        Column("gateway_peak_queued", "gateway queued", help="gateway requests queued for a slot, peak"),
        Column("wasted", "wasted work", help="requests finished after the client gave up"),
    ]


def _note(runs: list[Run], plan: Plan) -> str:
    bare, guarded = runs[0].row, runs[1].row
    phase = "payments down"
    slots = "every" if bare["gateway_peak_in_flight"] >= SLOTS else "most"
    peaked = guarded["gateway_peak_phase"]
    why = " (requests to the lost zone hold their slots until the deadline)" if peaked == "zone b cut off" else ""
    return (
        f"Clients give up after {plan.client_timeout:g} s. While payments is down, without breakers or "
        f"deadlines only {percent(bare[f'ok_catalog_{phase}'])} of catalog requests succeed, though the catalog "
        f"never calls payments: orders hold {slots} gateway slot ({bare['gateway_peak_in_flight']} of {SLOTS}, with "
        f"up to {bare['gateway_queued_by'][phase]} requests waiting behind them), so everything waits. With them, "
        f"{percent(guarded[f'ok_catalog_{phase}'])} of catalog requests succeed and orders fail fast (p99 "
        f"{millis(guarded[f'p99_orders_{phase}_ms'])} ms, {percent(guarded[f'ok_orders_{phase}'])} ok). The zone "
        f"cut and the slow link go the same way: {percent(bare['ok_all'])} of all requests succeed without, "
        f"{percent(guarded['ok_all'])} with; services finished {bare['wasted']} requests after their client "
        f"had given up without deadlines, {guarded['wasted']} with them. With them the gateway's queue peaked at "
        f"{guarded['gateway_peak_queued']}, {_DURING[peaked]}{why}, against {bare['gateway_peak_queued']} without."
    )


def report(plan: Plan) -> Report:
    """Run both configurations and return the report."""
    runs = [run_config(plan, name) for name in CONFIGS]
    title = (
        f"Gateway -> discovery -> services -> caches -> multi-primary store, {plan.rate:.0f} requests/s, "
        f"faults of {plan.fault:g} s each"
    )
    meta = {
        "seed": plan.seed,
        "rate": plan.rate,
        "fault": plan.fault,
        "client_timeout": plan.client_timeout,
        "phases": {p: list(span) for p, span in plan.spans.items()},
    }
    figures = {run.name: {**run.row, "gateway": CONFIGS[run.name][0], "services": CONFIGS[run.name][1]} for run in runs}
    return Report(
        "microservices",
        "Microservices: a cascading failure, and its containment",
        intro(__doc__),
        [Table("microservices", title, columns(plan), runs, _note(runs, plan), transpose=True)],
        meta,
        figures,
        plots=lambda out: write_plots(out, runs, names=("throughput", "latency")),
    )


def main(
    seed: int = 1, console: Console | None = None, out: Path | None = None, as_json: bool = False, quick: bool = False
) -> int:
    """Run the demo, print the table (or JSON), write the report to ``out``; returns 0."""
    plan = Plan.quick(seed) if quick else replace(Plan(), seed=seed)
    return emit(report(plan), console, as_json, out)
