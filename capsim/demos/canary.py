"""Traffic splitting: a canary gets a share of the traffic and is rolled back automatically when it errs.

A load balancer sends 10% of requests to a canary and the rest to three
stable backends. A good canary keeps its share. A bad release (every
request fails, or a third of them) is rolled back once 20 of its requests
have finished and half of its last 20 failed (or, for the subtler bug, a
fifth): the failures it caused before the rollback are the price of
finding out, and they are counted. With ``sticky="client"`` the split is by
client (A/B testing): a client sees one version throughout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, live
from capsim.report import Column, Run
from capsim.report.tables import percent, seconds
from nodes.balancer import Backend, LoadBalancer

__all__ = ["CONFIGS", "Plan", "main", "report", "run_config"]

STABLE = ["b0", "b1", "b2"]
#: configuration -> (canary error rate, Canary settings)
CONFIGS: dict[str, tuple[float, dict[str, Any]]] = {
    "good": (0.0, {"weight": 0.1, "error_threshold": 0.5, "min_requests": 20, "window": 20}),
    "broken": (1.0, {"weight": 0.1, "error_threshold": 0.5, "min_requests": 20, "window": 20}),
    "a third failing": (0.33, {"weight": 0.1, "error_threshold": 0.2, "min_requests": 20, "window": 20}),
    "broken, A/B": (1.0, {"weight": 0.1, "sticky": "client", "error_threshold": 0.5, "min_requests": 20, "window": 20}),
}


@dataclass(frozen=True)
class Plan:
    """The demo's parameters: the seed, the offered rate (per second) and the run's length (virtual seconds)."""

    seed: int = 1
    rate: float = 300.0
    duration: float = 5.0

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        return cls(seed=seed, duration=3.0)


def run_config(plan: Plan, name: str) -> Run:
    error_rate, canary = CONFIGS[name]
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(0.001, 0.003))
    for backend in STABLE:
        sim.add_node(backend, Backend, service_time=em.Exponential(0.005), concurrency=8)
    sim.add_node("canary", Backend, service_time=em.Exponential(0.005), concurrency=8, error_rate=error_rate)
    sim.add_node(
        "lb", LoadBalancer, backends=STABLE, health_interval=None, timeout=0.5, canary={"backend": "canary", **canary}
    )
    rng = sim.rng("load")
    idle: list[em.Client] = []
    users: dict[int, str] = {}  # request number -> the user it was made for (what a sticky split follows)

    async def one(client, n, user):
        try:  # the user is who the split is sticky to; the client node is just a free connection
            await client.invoke("request", key=n, dest="lb", timeout=1.0, fields={"client": user})
        except (em.RPCError, em.Timeout):
            pass
        finally:
            idle.append(client)

    async def day():
        tasks, n = [], 0
        while sim.now < plan.duration:
            await asyncio.sleep(rng.expovariate(plan.rate))
            n += 1
            if not idle:
                idle.append(sim.add_client(f"c{n}"))
            users[n] = f"user{rng.randrange(100)}"
            tasks.append(asyncio.ensure_future(one(idle.pop(), n, users[n])))
        await asyncio.gather(*tasks)

    sim.run(day())
    judged = live(sim, "lb", LoadBalancer).canary
    assert judged is not None, "the balancer was given a canary"
    state = judged.to_dict()
    pairs = sim.history.completions()
    failed = sum(d is not None and d["type"] != "ok" for _, d in pairs)
    row = {
        "requests": len(pairs),
        "to_canary": state["sent"],
        "share": state["sent"] / len(pairs),
        "canary_failed": state["failed"],
        "rolled_back_at": state["rolled_back_at"],
        "in_flight_at_rollback": state["in_flight_at_rollback"],
        "client_errors": failed,
        "error_rate": failed / len(pairs),
    }
    return Run(name, list(sim.history), row, extra={"users": users})


def columns() -> list[Column]:
    return [
        Column("requests", "requests", help="requests"),
        Column("to_canary", "to canary", help="  sent to the canary"),
        Column("share", "share", percent, "  its share"),
        Column("canary_failed", "failed at canary", help="failed at the canary, before its rollback"),
        Column("in_flight_at_rollback", "in flight", help="  of which in flight at the verdict"),
        Column("rolled_back_at", "rolled back at", seconds, "rolled back at, s"),
        Column("client_errors", "client errors", help="errors clients saw, all told"),
        Column("error_rate", "error rate", percent, "  as a share of requests"),
    ]


def _rolled(row: dict) -> str:
    at = row["rolled_back_at"]
    return "was never rolled back" if at is None else f"was rolled back {at:.2f} s in"


def _others(row: dict) -> str:
    """Errors clients saw that were not the canary's failures (none when the rollback ended them)."""
    others = row["client_errors"] - row["canary_failed"]
    return "clients saw no other errors" if others == 0 else f"clients saw {others} other errors"


def _note(runs: list[Run]) -> str:
    r = {run.name: run.row for run in runs}
    good, broken, third, ab = (r[n] for n in CONFIGS)
    return (
        f"The good canary kept its {percent(good['share'])} share and {_rolled(good)}; {_others(good)}. The broken "
        f"one failed {broken['canary_failed']} requests ({broken['in_flight_at_rollback']} of them already in "
        f"flight at the verdict) and {_rolled(broken)}; {_others(broken)}. The subtler bug needed a lower "
        f"threshold: {third['canary_failed']} failures, and it {_rolled(third)}. Split by client, the broken "
        f"canary failed {ab['canary_failed']} requests, all from the clients assigned to it, and it {_rolled(ab)}."
    )


def report(plan: Plan) -> Report:
    runs = [run_config(plan, name) for name in CONFIGS]
    title = f"{plan.rate:.0f} requests/s for {plan.duration:g} s; a canary with 10% of the traffic"
    meta = {"seed": plan.seed, "rate": plan.rate, "duration": plan.duration}
    return Report(
        "canary",
        "Traffic splitting: a canary and its automatic rollback",
        intro(__doc__),
        [Table("canary", title, columns(), runs, _note(runs), transpose=True)],
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
