"""An API gateway's rate limit across replicas: per replica, shared, and shared through a partition.

One client sends 600 requests a second, spread over three gateway replicas,
each configured to allow it 50 a second. With a limiter per replica, each
replica grants its 50 on its own, and the client gets three times its limit.
With a shared limiter, the replicas exchange what they granted every 50 ms
(over links that lose, duplicate and delay messages) and charge each other's
grants to their own buckets: the client gets about its limit. Then the
network cuts one replica off from the other two, and each side enforces the
limit alone: the client gets it twice, once per side.

The same gateways check a token first (a request without one gets error 14)
and pass each request's deadline downstream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, live
from capsim.report import Column, Run, Window
from faults.spec import HOSTILE, distribution
from nodes.gateway import Gateway

__all__ = ["GATEWAYS", "LIMITERS", "Plan", "main", "report", "run_config"]

GATEWAYS = ["g0", "g1", "g2"]
LIMITERS = ("local", "shared")
#: the deadline (seconds) of the one request that shows the gateway passing what is left of it downstream
DEADLINE = 0.5
LINK: dict[str, Any] = {**HOSTILE, "latency": distribution(HOSTILE["latency"])}  # set_link's keywords


class _Echo(em.Node):
    async def handle_request(self, msg):
        return {"type": "request_ok", "deadline": msg.body.get("deadline")}


@dataclass(frozen=True)
class Plan:
    """The demo's parameters: the per-client limit, the offered rate, and how long each phase lasts."""

    seed: int = 1
    limit: float = 50.0
    offered: float = 600.0
    phase: float = 4.0  # seconds connected, then seconds partitioned

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        return cls(seed=seed, phase=2.0)


def run_config(plan: Plan, limiter: str) -> Run:
    """One limiter: a connected phase, then a partitioned one."""
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(0.001, 0.002))
    sim.add_node("users", _Echo)
    for name in GATEWAYS:
        sim.add_node(
            name,
            Gateway,
            routes={"/users": "users"},
            services={"users": ["users"]},
            tokens={"t-bob": "bob"},
            rate=plan.limit,
            burst=5.0,
            limiter=limiter,
            replicas=GATEWAYS,
            sync_interval=0.05,
        )
    for i, a in enumerate(GATEWAYS):
        for b in GATEWAYS[i + 1 :]:
            sim.network.set_link(a, b, **LINK)
    clients = [sim.add_client(f"c{i}") for i in range(3)]
    refused = []

    async def spray(client, gateway):
        while sim.now < 2 * plan.phase:
            sim.loop.create_task(_quiet(client.rpc(gateway, {"type": "request", "path": "/users", "token": "t-bob"})))
            await asyncio.sleep(len(GATEWAYS) / plan.offered)

    async def day():
        for _ in range(5):  # a few without a token: refused before any limit is spent
            try:
                await clients[0].rpc("g0", {"type": "request", "path": "/users"})
            except em.RPCError as exc:
                refused.append(exc.code)
        tasks = [asyncio.ensure_future(spray(c, g)) for c, g in zip(clients, GATEWAYS)]
        await asyncio.sleep(plan.phase)
        connected = _admitted(sim)
        sim.network.partition(["g0", "c0"], ["g1", "g2", "c1", "c2"])  # the service, in neither, reaches both
        await asyncio.gather(*tasks)
        partitioned = _admitted(sim) - connected
        await asyncio.sleep(1.0)  # bob's bucket refills; then one request with a deadline of its own
        body = {"type": "request", "path": "/users", "token": "t-bob", "deadline": DEADLINE}
        reply = await clients[1].rpc("g1", body, timeout=1.0)
        return connected, partitioned, reply["deadline"]

    connected, partitioned, downstream = sim.run(day())
    row = {
        "limit": plan.limit,
        "connected": connected / plan.phase,
        "partitioned": partitioned / plan.phase,
        "connected_x": connected / plan.phase / plan.limit,
        "partitioned_x": partitioned / plan.phase / plan.limit,
        "no_token_refused": refused.count(14),
        "deadline_sent": DEADLINE,
        "deadline_downstream": downstream,  # the seconds left that the service was told
    }
    return Run(limiter, [], row, windows=[Window(plan.phase, 2 * plan.phase, "g0 cut off")])


def _admitted(sim: em.Simulation) -> int:
    return sum(live(sim, g, Gateway).admitted["bob"] for g in GATEWAYS)


async def _quiet(coro):
    try:
        await coro
    except (em.RPCError, em.Timeout):
        pass


def columns() -> list[Column]:
    return [
        Column("limit", "limit/s", lambda v: f"{v:g}", "the client's limit, per second"),
        Column("connected", "granted/s, connected", lambda v: f"{v:.1f}", "granted per second, replicas connected"),
        Column("connected_x", "x limit", lambda v: f"{v:.2f}", "  times the limit"),
        Column(
            "partitioned", "granted/s, partitioned", lambda v: f"{v:.1f}", "granted per second, g0 cut off from g1, g2"
        ),
        Column("partitioned_x", "x limit", lambda v: f"{v:.2f}", "  times the limit"),
        Column("no_token_refused", "no token", str, "requests without a token refused (of 5)"),
        Column(
            "deadline_downstream",
            "deadline left",
            lambda v: f"{v:.3f}",
            f"a {DEADLINE:g} s deadline: seconds left, told the service",
        ),
    ]


def _note(runs: list[Run], plan: Plan) -> str:
    local, shared = (run.row for run in runs)
    return (
        f"Limit {plan.limit:g}/s, offered {plan.offered:g}/s over {len(GATEWAYS)} replicas. Per replica, the "
        f"client got {local['connected']:.0f}/s ({local['connected_x']:.2f} times its limit) whether or not the "
        f"replicas could talk. Shared, it got {shared['connected']:.0f}/s while they could, and "
        f"{shared['partitioned']:.0f}/s ({shared['partitioned_x']:.2f} times) once the partition left each side "
        f"enforcing the limit alone: a shared limiter under a partition is a per-side limiter."
    )


def report(plan: Plan) -> Report:
    runs = [run_config(plan, limiter) for limiter in LIMITERS]
    title = f"One client, {plan.offered:g} requests/s over {len(GATEWAYS)} gateways, limit {plan.limit:g}/s"
    meta = {"seed": plan.seed, "limit": plan.limit, "offered": plan.offered, "phase": plan.phase}
    return Report(
        "gateway",
        "An API gateway: rate limits across replicas and partitions",
        intro(__doc__),
        [Table("gateway", title, columns(), runs, _note(runs, plan), transpose=True)],
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
