"""Edge caches in front of an origin: hit rate, origin load, and what clients get while the origin is down.

Clients fetch 200 paths, a few of them far more popular than the rest, from
two edge caches (or, for comparison, from the origin itself). The origin's
content changes every second, it has eight workers, and it is down for a
stretch in the middle. Each edge keeps a copy for its TTL; with coalescing,
a burst of misses for a path waits for one fetch; with stale-if-error, a copy
past its TTL is still served while the origin fails.

The numbers: how many requests the edges answered themselves, how many
reached the origin, the most the origin had to handle at once, how many
requests succeeded while it was down, and how old (in seconds and in
versions) the content clients got was.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, live, nearest_rank
from capsim.report import Column, Run, Window, write_plots
from capsim.report.tables import percent, seconds
from nodes.edge import Edge, Origin, version_at

__all__ = ["CONFIGS", "Plan", "main", "report", "run_config"]

#: configuration -> Edge settings, or None: clients go to the origin
CONFIGS = {
    "origin only": None,
    "edges, ttl 1 s": {"ttl": 1.0, "coalesce": False},
    "+ coalescing": {"ttl": 1.0, "coalesce": True},
    "+ stale-if-error 10 s": {"ttl": 1.0, "coalesce": True, "stale_if_error": 10.0},
}
UPDATE = 1.0  # seconds between new versions of the origin's content


@dataclass(frozen=True)
class Plan:
    """The demo's parameters: load, the paths' Zipf skew, when the origin is down, and the run's length."""

    seed: int = 1
    rate: float = 300.0
    paths: int = 200
    zipf: float = 1.1
    down: tuple[float, float] = (3.0, 6.0)
    duration: float = 8.0

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        return cls(seed=seed, rate=250.0, down=(2.0, 4.0), duration=5.0)


def run_config(plan: Plan, name: str) -> Run:
    """One configuration through the origin's outage."""
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(0.001, 0.003))
    sim.add_node(
        "origin", Origin, update_interval=UPDATE, service_time=em.Exponential(0.05), concurrency=8, queue_limit=200
    )
    settings = CONFIGS[name]
    targets = ["origin"] if settings is None else ["e0", "e1"]
    if settings is not None:
        for edge in targets:
            sim.add_node(edge, Edge, origin="origin", timeout=0.5, **settings)
    served: list[tuple] = []  # (time, reply)

    async def outage():
        await asyncio.sleep(plan.down[0])
        sim.crash("origin")
        await asyncio.sleep(plan.down[1] - plan.down[0])
        sim.restart("origin")

    async def day():
        sim.loop.create_task(outage())
        await _load(sim, plan, targets, served)

    sim.run(day())
    return Run(
        name, list(sim.history), _row(plan, sim, targets, served, settings), windows=[Window(*plan.down, "origin down")]
    )


async def _load(sim: em.Simulation, plan: Plan, targets: list[str], served: list) -> None:
    rng = sim.rng("load")
    weights = list(itertools.accumulate(1 / (i + 1) ** plan.zipf for i in range(plan.paths)))
    idle: list[em.Client] = []
    tasks: list[asyncio.Future[None]] = []

    async def one(client: em.Client, path: str, target: str) -> None:
        try:
            reply = await client.invoke("get", key=path, dest=target, timeout=1.0, fields={"path": path})
            served.append((sim.now, reply))
        except (em.RPCError, em.Timeout):
            pass
        finally:
            idle.append(client)

    while True:
        gap = rng.expovariate(plan.rate)
        if sim.now + gap >= plan.duration:
            break
        await asyncio.sleep(gap)
        if not idle:
            idle.append(sim.add_client(f"c{len(tasks)}"))
        path = f"/p{rng.choices(range(plan.paths), cum_weights=weights)[0]}"
        tasks.append(asyncio.ensure_future(one(idle.pop(), path, rng.choice(targets))))
    await asyncio.gather(*tasks)


def _row(plan: Plan, sim: em.Simulation, targets: list[str], served: list, settings) -> dict:
    pairs = sim.history.completions()
    down = [(i, d) for i, d in pairs if plan.down[0] <= i["time"] < plan.down[1]]
    origin = live(sim, "origin", Origin)
    answered = {"hit": 0, "miss": 0, "coalesced": 0, "stale": 0}
    if settings is not None:
        for edge in targets:
            for kind in answered:
                answered[kind] += live(sim, edge, Edge).stats[kind]
    total = sum(answered.values())
    ages = [reply.get("age", 0.0) for _, reply in served]
    behind = [version_at(t, UPDATE) - reply["version"] for t, reply in served if not plan.down[0] <= t < plan.down[1]]
    return {
        "hit_rate": (answered["hit"] + answered["stale"]) / total if total else None,
        "origin_gets": origin.gets,
        "origin_peak": origin.peak_load,
        "ok_down": sum(d is not None and d["type"] == "ok" for _, d in down) / len(down) if down else None,
        "ok_all": sum(d is not None and d["type"] == "ok" for _, d in pairs) / len(pairs) if pairs else None,
        "coalesced": answered["coalesced"],
        "stale": answered["stale"],
        "age_p50": nearest_rank(ages, 50),
        "age_max": max(ages, default=None),
        "behind_max": max(behind, default=None),
        "behind_max_down": max((version_at(t, UPDATE) - reply["version"] for t, reply in served), default=None),
        "behind_share": sum(b > 0 for b in behind) / len(behind) if behind else None,
    }


def columns() -> list[Column]:
    return [
        Column("hit_rate", "hit rate", percent, "answered by an edge (hits and stale)"),
        Column("origin_gets", "origin gets", help="requests the origin served"),
        Column("origin_peak", "origin peak", help="most requests at the origin at once"),
        Column("coalesced", "coalesced", help="misses that waited for another's fetch"),
        Column("ok_down", "ok, origin down", percent, "ok while the origin was down"),
        Column("stale", "stale", help="stale copies served"),
        Column("ok_all", "ok, all", percent, "ok, whole run"),
        Column("age_p50", "age p50", seconds, "age of content served, p50 (s)"),
        Column("age_max", "age max", seconds, "age of content served, max (s)"),
        Column("behind_share", "behind", percent, "origin up: older version than the origin's"),
        Column("behind_max", "versions behind", help="  most versions behind"),
    ]


def change(before, after, what: str) -> str:
    """'cut WHAT from 9 to 5', 'left WHAT at 9' or 'raised WHAT from 5 to 9': the verb the figures bear out."""
    if after < before:
        return f"cut {what} from {before} to {after}"
    return f"left {what} at {before}" if after == before else f"raised {what} from {before} to {after}"


def _note(runs: list[Run], plan: Plan) -> str:
    r = {run.name: run.row for run in runs}
    direct, ttl, co, stale = (r[n] for n in CONFIGS)
    peak = "the origin's peak"
    ttl_s = (CONFIGS["edges, ttl 1 s"] or {})["ttl"]
    return (
        f"Straight to the origin, it served {direct['origin_gets']} requests with up to {direct['origin_peak']} "
        f"at once, and while it was down {percent(direct['ok_down'])} succeeded. Edges with a 1 s TTL answered "
        f"{percent(ttl['hit_rate'])} themselves, {change(direct['origin_gets'], ttl['origin_gets'], 'the origin')} "
        f"requests and {change(direct['origin_peak'], ttl['origin_peak'], 'the most at once')}; coalescing "
        f"{change(ttl['origin_peak'], co['origin_peak'], peak)} "
        f"({co['coalesced']} misses shared a fetch). During the outage they answered "
        f"{percent(ttl['ok_down'])} and {percent(co['ok_down'])}, only from copies still within their "
        f"{ttl_s:g} s TTL. Serving stale kept "
        f"{percent(stale['ok_down'])} of requests answered while the origin was "
        f"down, with content up to {stale['age_max']:.1f} s and {stale['behind_max_down']} versions old. Even with "
        f"the origin up, {percent(ttl['behind_share'])} of edge answers were an older version than the origin's."
    )


def report(plan: Plan) -> Report:
    runs = [run_config(plan, name) for name in CONFIGS]
    title = (
        f"{plan.rate:.0f} requests/s over {plan.paths} paths (Zipf {plan.zipf:g}), origin down "
        f"{plan.down[0]:g}-{plan.down[1]:g} s of {plan.duration:g} s"
    )
    meta = {"seed": plan.seed, "rate": plan.rate, "paths": plan.paths, "down": list(plan.down)}
    return Report(
        "edge",
        "Edge caches: hit rate, origin load, staleness",
        intro(__doc__),
        [Table("edge", title, columns(), runs, _note(runs, plan), transpose=True)],
        meta,
        {run.name: run.row for run in runs},
        plots=lambda out: write_plots(out, runs, names=("throughput",)),
        timeline=None,
    )


def main(
    seed: int = 1, console: Console | None = None, out: Path | None = None, as_json: bool = False, quick: bool = False
) -> int:
    """Run the demo, print the table (or JSON), write the report to ``out``; returns 0."""
    plan = Plan.quick(seed) if quick else replace(Plan(), seed=seed)
    return emit(report(plan), console, as_json, out)
