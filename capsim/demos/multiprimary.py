"""Multi-primary replication: every node takes writes through a partition; what each way of resolving conflicts loses.

Five nodes, one client on each, all writing. The clients fill shopping
carts (each adds its own items) and count visits, the way an application
would: with last-writer-wins and siblings by reading the value, changing it
and writing it back (with siblings, the read returns every concurrent
version and the client merges them: the union of the carts, the largest
count); with CRDTs by sending the change itself (add an item to a set, add
one to a counter). Partway through, the network splits the nodes 2 | 3;
later it heals, and anti-entropy brings the replicas together.

Every choice answers every request on both sides. What differs is what
survives: last-writer-wins keeps one version of each concurrent pair and
silently drops the other's items and increments; siblings keep every cart
item (the union is a correct merge for a cart) but cannot merge a counter
from its values; the CRDTs keep everything, because their operations
commute.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, live
from capsim.report import Column, Run, Window, write_plots
from capsim.report.tables import percent, seconds
from nodes.multiprimary import RESOLUTIONS, MultiPrimary

__all__ = ["Plan", "columns", "main", "report", "run_config"]


@dataclass(frozen=True)
class Plan:
    """The demo's timeline (virtual seconds) and load."""

    seed: int = 1
    nodes: int = 5
    partition_at: float = 1.0
    heal_at: float = 4.0
    stop_at: float = 5.0
    settle: float = 3.0
    every: float = 0.02  # each client's pause between updates
    carts: int = 3

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        return cls(seed=seed, partition_at=0.5, heal_at=2.0, stop_at=2.5, settle=2.0)

    @property
    def minority(self) -> list[str]:
        return [f"n{i}" for i in range((self.nodes - 1) // 2)]


class _Client:
    """One client's updates, in the style its store needs; keeps what was acknowledged."""

    def __init__(self, client: em.Client, node: str, resolution: str, acked: dict):
        self.client, self.node, self.resolution, self.acked = client, node, resolution, acked
        self.n = 0

    async def call(self, f: str, key, value=None, fields=None) -> dict:
        return await self.client.invoke(f, key=key, value=value, dest=self.node, timeout=0.5, fields=fields)

    async def add_item(self, cart: str) -> None:
        self.n += 1
        item = f"{self.client.name}-{self.n}"
        if self.resolution == "crdt":
            await self.client.invoke("add", key=cart, dest=self.node, timeout=0.5, fields={"element": item})
        else:
            current, context = await self.read(cart, [])
            merged = sorted(set().union(*current) | {item}) if current else [item]
            await self.call("write", cart, merged, self._context(context))
        self.acked["items"].append((cart, item))

    async def count_visit(self) -> None:
        if self.resolution == "crdt":
            await self.client.invoke("add", key="visits", dest=self.node, timeout=0.5, fields={"delta": 1})
        else:
            current, context = await self.read("visits", [0])
            await self.call("write", "visits", max(current) + 1, self._context(context))
        self.acked["visits"] += 1

    def _context(self, context) -> dict | None:
        """Siblings: the read's context, so the write supersedes exactly what was read ({} for nothing)."""
        return {"context": context} if self.resolution == "siblings" else None

    async def read(self, key, empty):
        try:
            reply = await self.call("read", key)
        except em.RPCError as exc:
            if exc.code != 20:
                raise
            return empty, {}
        self.acked["siblings"] = max(self.acked["siblings"], reply.get("siblings", 1))
        return reply.get("values", [reply["value"]]), reply.get("context")


def run_config(plan: Plan, resolution: str) -> Run:
    """One resolution through the partition; returns its Run."""
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(0.001, 0.005))
    servers = [f"n{i}" for i in range(plan.nodes)]
    for name in servers:
        sim.add_node(name, MultiPrimary, resolution=resolution, anti_entropy=0.25)
    acked = {"items": [], "visits": 0, "siblings": 1}
    clients = [_Client(sim.add_client(f"c{i}"), name, resolution, acked) for i, name in enumerate(servers)]
    side = set(plan.minority)
    minority = plan.minority + [f"c{n[1:]}" for n in plan.minority]
    majority = [n for n in servers if n not in side] + [f"c{n[1:]}" for n in servers if n not in side]
    converged: list[float] = []

    async def client_loop(c: _Client):
        rng = sim.rng(f"client:{c.client.name}")
        while sim.now < plan.stop_at:
            try:
                if rng.random() < 0.5:
                    await c.add_item(f"cart{rng.randrange(plan.carts)}")
                else:
                    await c.count_visit()
            except (em.RPCError, em.Timeout):
                pass
            await asyncio.sleep(plan.every)

    async def timeline():
        await asyncio.sleep(plan.partition_at)
        sim.network.partition(minority, majority)
        await asyncio.sleep(plan.heal_at - plan.partition_at)
        sim.network.heal()
        while sim.now < plan.stop_at + plan.settle:
            await asyncio.sleep(0.05)
            if _agree(sim, servers) and not converged and sim.now > plan.stop_at:
                converged.append(sim.now - plan.stop_at)

    async def day():
        sim.loop.create_task(timeline())
        await asyncio.gather(*(client_loop(c) for c in clients))
        await asyncio.sleep(plan.settle)
        return await _final(clients[0], plan)

    carts, visits = sim.run(day(), until=plan.stop_at + plan.settle + 5.0)
    row = _row(plan, sim, resolution, acked, carts, visits, converged)
    sides = {
        "minority": [n for n in minority if n.startswith("c")],
        "majority": [n for n in majority if n.startswith("c")],
    }
    return Run(
        resolution, list(sim.history), row, sides=sides, windows=[Window(plan.partition_at, plan.heal_at, "partition")]
    )


def _agree(sim: em.Simulation, servers: list[str]) -> bool:
    states = [live(sim, n, MultiPrimary).storage["data"] for n in servers]
    return all(s == states[0] for s in states)


async def _final(client: _Client, plan: Plan):
    carts = {}
    for i in range(plan.carts):
        current, _ = await client.read(f"cart{i}", [])
        carts[f"cart{i}"] = set().union(*current) if current and isinstance(current[0], list) else set(current)
    visits, _ = await client.read("visits", [0])
    return carts, max(visits)


def _row(plan, sim, resolution, acked, carts, visits, converged) -> dict:
    pairs = sim.history.completions()
    during = [(i, d) for i, d in pairs if plan.partition_at <= i["time"] < plan.heal_at]
    ok = {}
    for side, nodes in (("minority", set(plan.minority)), ("majority", None)):
        chosen = [d for i, d in during if (i["node"] in nodes if nodes else i["node"] not in set(plan.minority))]
        ok[side] = sum(d is not None and d["type"] == "ok" for d in chosen) / len(chosen) if chosen else None
    lost_items = [(cart, item) for cart, item in acked["items"] if item not in carts.get(cart, set())]
    lww_events = {tuple(e["value"][1]) for e in sim.events if e["what"] == "lww_lost"}
    return {
        "ok_minority": ok["minority"],
        "ok_majority": ok["majority"],
        "items": len(acked["items"]),
        "items_lost": len(lost_items),
        "visits": acked["visits"],
        "visits_lost": acked["visits"] - visits,
        "siblings": acked["siblings"],
        "converged_s": converged[0] if converged else None,
        "lww_reported": len(lww_events) if resolution == "lww" else None,
    }


def columns() -> list[Column]:
    return [
        Column("ok_minority", "ok, minority", percent, "ok during the partition, minority side"),
        Column("ok_majority", "ok, majority", percent, "ok during the partition, majority side"),
        Column("items", "items added", help="cart items acknowledged"),
        Column("items_lost", "items lost", help="  missing from the converged carts"),
        Column("visits", "increments", help="counter increments acknowledged"),
        Column("visits_lost", "increments lost", help="  missing from the converged counter"),
        Column("siblings", "most siblings", help="most versions one read returned"),
        Column("lww_reported", "lww_lost events", help="versions LWW reported dropping unseen"),
        Column("converged_s", "converged after", seconds, "replicas equal, s after the last write"),
    ]


def _note(runs: list[Run]) -> str:
    rows = {run.name: run.row for run in runs}
    lww, sib, crdt = rows["lww"], rows["siblings"], rows["crdt"]
    sides = [row[side] for row in rows.values() for side in ("ok_minority", "ok_majority")]
    answered = (
        "A side made no requests during the partition."
        if None in sides
        else f"All three answered at least {percent(min(sides))} of the requests on each side of the partition."
    )
    return (
        f"{answered} Last-writer-wins lost {lww['items_lost']} of {lww['items']} cart items "
        f"and {lww['visits_lost']} of {lww['visits']} increments without an error to anyone. Siblings lost "
        f"{sib['items_lost']} items (reads returned up to {sib['siblings']} versions, merged by the client) but "
        f"{sib['visits_lost']} of {sib['visits']} increments: a count cannot be merged from its values. The CRDTs "
        f"lost {crdt['items_lost']} items and {crdt['visits_lost']} increments."
    )


def report(plan: Plan) -> Report:
    runs = [run_config(plan, resolution) for resolution in RESOLUTIONS]
    title = (
        f"{plan.nodes} nodes, all taking writes; partition {plan.partition_at:g}-{plan.heal_at:g} s, writes "
        f"until {plan.stop_at:g} s"
    )
    meta = {
        "seed": plan.seed,
        "nodes": plan.nodes,
        "partition_at": plan.partition_at,
        "heal_at": plan.heal_at,
        "stop_at": plan.stop_at,
    }
    return Report(
        "multi-primary",
        "Multi-primary replication: what each conflict resolution keeps",
        intro(__doc__),
        [Table("multi-primary", title, columns(), runs, _note(runs), transpose=True)],
        meta,
        {run.name: run.row for run in runs},
        plots=lambda out: write_plots(out, runs, names=("throughput", "latency")),
    )


def main(
    seed: int = 1, console: Console | None = None, out: Path | None = None, as_json: bool = False, quick: bool = False
) -> int:
    """Run the demo, print the table (or JSON), write the report to ``out``; returns 0."""
    plan = Plan.quick(seed) if quick else replace(Plan(), seed=seed)
    return emit(report(plan), console, as_json, out)
