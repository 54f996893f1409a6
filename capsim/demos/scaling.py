"""Horizontal scaling: throughput and p99 against backends, and what one backend's crash does.

Part one: an open-loop load (Poisson arrivals) at a fixed rate, three times
what one backend can serve, against 1, 2, 4 and 8 identical backends behind a
round-robin balancer. Each backend has two workers (20 ms a request on
average: 100 requests/s) and a queue of ten; beyond it, it refuses with error
11. Throughput rises with the backends until it meets the offered load, and
p99 falls as the queues drain.

Part two: four backends of unequal size (two of 100/s, two of 200/s, weighted
1, 1, 2, 2), half loaded, and the largest crashes a third of the way through
and comes back at two thirds; once per balancing algorithm. Active health
checks take it out of rotation within ``unhealthy * interval + timeout``
seconds; until then the requests sent to it time out. The table says how many
went there, how soon each algorithm stopped, where the traffic went instead
and what it did to p99.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, live, phase, poisson_load, share
from capsim.report import Column, Run, Window, pyplot, save, write_plots, xy_plot
from capsim.report.tables import percent, seconds
from nodes.balancer import ALGORITHMS, Backend, LoadBalancer

__all__ = ["Plan", "crash_run", "main", "report", "sweep_run"]

SMALL, LARGE = 2, 4  # workers of a small and a large backend


@dataclass(frozen=True)
class Plan:
    """The demo's parameters (times in virtual seconds, rates per second)."""

    seed: int = 1
    rate: float = 300.0  # part one: offered load
    duration: float = 10.0
    counts: tuple[int, ...] = (1, 2, 4, 8)
    service: tuple[float, float] = (0.015, 0.025)  # uniform service time of one request
    queue_limit: int = 10
    crash_rate: float = 300.0  # part two: half the four backends' 600/s
    crash_duration: float = 9.0
    crash_at: float = 3.0
    restart_at: float = 6.0
    victim: str = "b3"
    health_interval: float = 0.5
    health_timeout: float = 0.25
    unhealthy: int = 2
    healthy: int = 2
    lb_timeout: float = 0.5
    keys: int = 1000

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        """Smaller sizes for tests: the same stories, a third of the operations."""
        return cls(seed=seed, duration=3.0, crash_duration=5.0, crash_at=1.5, restart_at=3.5)

    def capacity(self, workers: int) -> float:
        """Requests per second a backend of ``workers`` workers serves at most."""
        return workers / (sum(self.service) / 2)

    @property
    def bound(self) -> float:
        """Seconds within which the health checks take a dead backend out of rotation."""
        return self.unhealthy * self.health_interval + self.health_timeout


def _build(plan: Plan, workers: list[int], algorithm: str) -> em.Simulation:
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(0.0005, 0.0015))
    names = [f"b{i}" for i in range(len(workers))]
    for name, count in zip(names, workers):
        sim.add_node(
            name, Backend, service_time=em.Uniform(*plan.service), concurrency=count, queue_limit=plan.queue_limit
        )
    sim.add_node(
        "lb",
        LoadBalancer,
        backends=names,
        algorithm=algorithm,
        timeout=plan.lb_timeout,
        weights={n: c / SMALL for n, c in zip(names, workers)},
        health_interval=plan.health_interval,
        health_timeout=plan.health_timeout,
        unhealthy_threshold=plan.unhealthy,
        healthy_threshold=plan.healthy,
        keep_log=True,
    )
    return sim


def _request(plan: Plan):
    return lambda rng: ("request", rng.randrange(plan.keys), None, "lb")


def sweep_run(plan: Plan, backends: int) -> Run:
    """Part one: ``backends`` identical backends, round robin, the offered load for ``plan.duration``."""
    sim = _build(plan, [SMALL] * backends, "round-robin")
    sim.run(poisson_load(sim, plan.rate, plan.duration, _request(plan)))
    figures = phase(sim.history.completions(), 0.0, plan.duration)
    overload = sum(1 for _, d in sim.history.completions() if d and d.get("error", [None])[0] == 11)
    capacity = backends * plan.capacity(SMALL)
    row = {
        "backends": backends,
        "capacity": capacity,
        "offered": plan.rate,
        "arrived": figures["ops"] / plan.duration,  # the Poisson arrivals' own rate: plan.rate on average only
        "throughput": figures["ok_per_s"],
        "p50_ms": figures["ok_p50_ms"],
        "p99_ms": figures["ok_p99_ms"],
        "error_rate": figures["error_rate"],
        "overloaded": overload / max(figures["ops"], 1),
        "ops": figures["ops"],
    }
    return Run(f"{backends} backend{'s' if backends > 1 else ''}", [], row)


def crash_run(plan: Plan, algorithm: str) -> Run:
    """Part two: four backends (small, small, large, large); ``plan.victim`` crashes and comes back."""
    sim = _build(plan, [SMALL, SMALL, LARGE, LARGE], algorithm)

    async def crash():
        await asyncio.sleep(plan.crash_at)
        sim.crash(plan.victim)
        await asyncio.sleep(plan.restart_at - plan.crash_at)
        sim.restart(plan.victim)

    async def workload():
        sim.loop.create_task(crash())
        await poisson_load(sim, plan.crash_rate, plan.crash_duration, _request(plan))

    sim.run(workload())
    return Run(
        algorithm.replace("-", " "),
        list(sim.history),
        _crash_row(plan, sim),
        windows=[Window(plan.crash_at, plan.restart_at, f"{plan.victim} down")],
        extra={"journal": live(sim, "lb", LoadBalancer).journal},
    )


def _crash_row(plan: Plan, sim: em.Simulation) -> dict:
    pairs = sim.history.completions()
    before = phase(pairs, 0.0, plan.crash_at)
    during = phase(pairs, plan.crash_at, plan.restart_at)
    after = phase(pairs, plan.restart_at, plan.crash_duration)
    health = [(e["time"], e["value"][1]) for e in sim.events if e["what"] == "health" and e["value"][0] == plan.victim]
    down = next((t for t, state in health if state == "down" and t >= plan.crash_at), None)
    up = next((t for t, state in health if state == "up" and t >= plan.restart_at), None)
    return {
        "algorithm": live(sim, "lb", LoadBalancer).algorithm,
        "ok_per_s": during["ok_per_s"],
        **_routing(plan, live(sim, "lb", LoadBalancer), down, up),
        "ejected_s": None if down is None else down - plan.crash_at,
        "bound_s": plan.bound,
        "crash_errors": during["ops"] - during["ok"],
        "crash_overload": during["fail"],
        "p99_before_ms": before["ok_p99_ms"],
        "p99_during_ms": during["ok_p99_ms"],
        "p99_after_ms": after["ok_p99_ms"],
        "back_s": None if up is None else up - plan.restart_at,
        "error_rate": during["error_rate"],
    }


def _routing(plan: Plan, lb: LoadBalancer, down: float | None, up: float | None) -> dict:
    """Where the balancer sent requests: to the dead backend, to the survivors once it was out, to it once back."""
    assert lb.journal is not None, "the demo's balancer keeps its journal"
    forwards = [(t, value[0]) for t, what, value in lb.journal if what == "forward"]
    dead = [t for t, name in forwards if name == plan.victim and plan.crash_at <= t < plan.restart_at]
    survivors = {name: 0 for name in lb.names if name != plan.victim}
    for t, name in forwards:
        if down is not None and down <= t < plan.restart_at:
            survivors[name] += 1
    back = [name for t, name in forwards if up is not None and t >= up]
    return {
        "to_dead": len(dead),
        "last_to_dead_s": (max(dead) - plan.crash_at) if dead else None,
        **{f"share_{name}": value for name, value in share(survivors).items()},
        "share_back": back.count(plan.victim) / len(back) if back else None,
    }


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def _rate(value) -> str:
    return f"{value:.0f}"


SWEEP_COLUMNS = [
    Column("capacity", "capacity/s", _rate, "what the backends can serve"),
    Column("offered", "offered/s", _rate, "requests offered per second (Poisson arrivals at this rate)"),
    Column("arrived", "arrived/s", _rate, "requests that arrived per second in this run"),
    Column("throughput", "ok/s", _rate, "requests served per second"),
    Column("p50_ms", "p50 ms", _ms, "median latency of served requests"),
    Column("p99_ms", "p99 ms", _ms, "p99 latency of served requests"),
    Column("overloaded", "refused (11)", percent, "refused at once by a full backend queue"),
    Column("error_rate", "errors", percent, "every request not served"),
]

CRASH_COLUMNS = [
    Column("to_dead", "sent to dead", str, "sent to the dead backend"),
    Column("last_to_dead_s", "last sent s", seconds, "last sent, s after crash"),
    Column("ejected_s", "out after s", seconds, "out of rotation, s after"),
    Column("crash_errors", "errors", str, "errors while it was down"),
    Column("crash_overload", "refused", str, "  of which refused (11)"),
    Column("ok_per_s", "ok/s", _rate, "served/s while down"),
    Column("p99_before_ms", "p99 before", _ms, "p99 ms before the crash"),
    Column("p99_during_ms", "p99 down", _ms, "p99 ms while down"),
    Column("p99_after_ms", "p99 after", _ms, "p99 ms after restart"),
    *(Column(f"share_{name}", f"{name} %", percent, f"{name} share once out") for name in ("b0", "b1", "b2")),
    Column("back_s", "back after s", seconds, "back in rotation, s after"),
    Column("share_back", "share back", percent, "its share once back"),
]


def _sweep_note(runs: list[Run], plan: Plan) -> str:
    first, last = runs[0].row, runs[-1].row
    return (
        f"One backend serves {first['throughput']:.0f} of the {first['arrived']:.0f} requests arriving each second and "
        f"refuses {100 * first['overloaded']:.0f}% (its queue is full, p99 {first['p99_ms']:.0f} ms). Each backend "
        f"added serves about {plan.capacity(SMALL):.0f}/s more until capacity passes the offered load; from "
        f"then on throughput stays at the {last['arrived']:.0f}/s that arrived (Poisson arrivals at "
        f"{plan.rate:.0f}/s: adding backends cannot serve requests that do not arrive) while p99 keeps falling "
        f"as queues empty, to {last['p99_ms']:.0f} ms with "
        f"{last['backends']} backends: the service time itself."
    )


def _filled(row: dict) -> str:
    """What the even split did to the small backends: filled their queues and refused, or only queued."""
    refused = row["crash_overload"]
    return f"filled up and refused {refused} requests" if refused else "queued, refusing none"


def _crash_note(runs: list[Run], plan: Plan) -> str:
    rows = {run.row["algorithm"]: run.row for run in runs}
    worst = max(runs, key=lambda r: r.row["to_dead"])
    best = min(runs, key=lambda r: r.row["to_dead"])
    rr, wrr = rows["round-robin"], rows["weighted-round-robin"]
    slowest = max((r.row["ejected_s"] or 0.0) for r in runs)
    never = any(r.row["ejected_s"] is None for r in runs)
    within = "NOT within" if never or slowest > plan.bound else "within"
    return (
        f"{plan.victim}, a large backend, crashes at {plan.crash_at:g} s and returns at {plan.restart_at:g} s. "
        f"Health checks every {plan.health_interval:g} s ({plan.unhealthy} failed to go down) took it out "
        f"{slowest:.2f} s after the crash at the latest, {within} the {plan.bound:g} s bound; until then each "
        f"request sent to it waited out the balancer's {plan.lb_timeout:g} s timeout and failed indefinitely "
        f"(it may have run). {worst.name.capitalize()} sent it the most ({worst.row['to_dead']}), "
        f"{best.name} the fewest "
        f"({best.row['to_dead']}): requests hanging on a dead backend make it look busy or slow, so the "
        f"adaptive algorithms stop choosing it before any health check does. Once it was out, round robin "
        f"split the load evenly ({100 * rr['share_b0']:.0f}/{100 * rr['share_b1']:.0f}/"
        f"{100 * rr['share_b2']:.0f}%), so the small backends {_filled(rr)} (p99 {_ms(rr['p99_during_ms'])} ms); "
        f"weighted round robin gave the large survivor half "
        f"({100 * wrr['share_b2']:.0f}%, p99 {_ms(wrr['p99_during_ms'])} ms), and consistent hashing moved "
        f"only the dead backend's keys. Health checks put it back within "
        f"{max((r.row['back_s'] or 0.0) for r in runs):.2f} s of the restart."
    )


def report(plan: Plan) -> Report:
    """Run both parts and return the report."""
    sweep = [sweep_run(plan, n) for n in plan.counts]
    crashes = [crash_run(plan, algorithm) for algorithm in ALGORITHMS]
    small, large = plan.capacity(SMALL), plan.capacity(LARGE)
    tables = [
        Table(
            "scaling",
            f"Open-loop {plan.rate:.0f} req/s against {', '.join(map(str, plan.counts))} backends of "
            f"{plan.capacity(SMALL):.0f} req/s (round robin, {plan.duration:g} s)",
            SWEEP_COLUMNS,
            sweep,
            _sweep_note(sweep, plan),
        ),
        Table(
            "crash",
            f"Backends of {small:.0f}, {small:.0f}, {large:.0f}, {large:.0f} req/s at "
            f"{plan.crash_rate:.0f} req/s; {plan.victim} down {plan.crash_at:g}-{plan.restart_at:g} s",
            CRASH_COLUMNS,
            crashes,
            _crash_note(crashes, plan),
            transpose=True,
        ),
    ]
    meta = {
        "seed": plan.seed,
        "rate": plan.rate,
        "duration": plan.duration,
        "crash_rate": plan.crash_rate,
        "crash_at": plan.crash_at,
        "restart_at": plan.restart_at,
        "health_bound_s": plan.bound,
    }
    figures = {"scaling": [run.row for run in sweep], "crash": {run.name: run.row for run in crashes}}
    return Report(
        "scaling",
        "Horizontal scaling behind a load balancer",
        intro(__doc__),
        tables,
        meta,
        figures,
        plots=lambda out: _plots(out, sweep, crashes),
        timeline=None,
    )


def _plots(out: Path, sweep: list[Run], crashes: list[Run]) -> dict[str, list[Path]]:
    xs = [run.row["backends"] for run in sweep]
    plots = {
        "scaling_throughput": xy_plot(
            out / "scaling_throughput",
            {
                "served (ok/s)": (xs, [r.row["throughput"] for r in sweep]),
                "offered (/s)": (xs, [r.row["offered"] for r in sweep]),
                "capacity (/s)": (xs, [r.row["capacity"] for r in sweep]),
            },
            "throughput against backends",
            "backends",
            "requests per second",
        ),
        "scaling_p99": xy_plot(
            out / "scaling_p99",
            {"p99 (ms)": (xs, [r.row["p99_ms"] for r in sweep]), "p50 (ms)": (xs, [r.row["p50_ms"] for r in sweep])},
            "latency against backends",
            "backends",
            "milliseconds",
        ),
    }
    plots.update(write_plots(out, crashes, names=("throughput", "latency")))
    plots["traffic"] = save(_traffic_figure(crashes), out / "traffic")
    return plots


def _traffic_figure(runs: list[Run]):
    """Requests forwarded per second to each backend, one panel per algorithm, the crash shaded."""
    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 1.9 * len(runs) + 0.8), sharex=True, squeeze=False)
    fig.suptitle("requests sent to each backend per second (shaded: the victim is down)")
    width = 0.25
    for ax, run in zip(axes[:, 0], runs):
        counts: dict[str, dict[int, int]] = {}
        for t, what, value in run.extra["journal"]:
            if what == "forward":
                slot = counts.setdefault(value[0], {})
                slot[int(t // width)] = slot.get(int(t // width), 0) + 1
        last = int(run.duration() // width) + 1
        for window in run.windows:
            ax.axvspan(window.start, window.end, color="#9e9e9e", alpha=0.18, lw=0)
        for name in sorted(counts):
            ax.step(
                [i * width for i in range(last)],
                [counts[name].get(i, 0) / width for i in range(last)],
                where="post",
                label=name,
                lw=1.1,
            )
        ax.set_title(run.name, fontsize=9, loc="left")
        ax.set_ylabel("req/s", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7, loc="upper right", ncol=4)
    axes[-1, 0].set_xlabel("virtual time (s)")
    return fig


def main(
    seed: int = 1, console: Console | None = None, out: Path | None = None, as_json: bool = False, quick: bool = False
) -> int:
    """Run the demo, print the tables (or JSON), write the report to ``out``; returns 0."""
    plan = Plan.quick(seed) if quick else replace(Plan(), seed=seed)
    return emit(report(plan), console, as_json, out)
