"""A circuit breaker: caller latency and errors while a dependency is down, with and without.

Clients call a service (the caller) at a steady rate, open-loop; the caller
calls a store with a 0.5 s timeout. The store crashes a quarter of the way
through and comes back some seconds later. Without a breaker every call made
while it is down waits out the timeout and fails indefinitely (it may have
run), and the calls pile up in flight. With a breaker, five failures in a row
open it, and from then on calls fail at once with a definite error 11 (not
done: safe to retry elsewhere) and never reach the store; after
``reset_timeout`` one probe goes through, and its success closes the breaker.
The price: refused calls after the store is back, for up to a ``reset_timeout``
plus a probe's timeout (a probe sent just before the store returns still times
out, and the breaker waits another ``reset_timeout`` before the next).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, phase, poisson_load
from capsim.report import Column, Run, Window, write_plots
from capsim.report.tables import millis, percent, seconds
from nodes.breaker import Caller
from nodes.kv import SingleKV

__all__ = ["CONFIGS", "MeteredCaller", "Plan", "columns", "main", "report", "run_config"]

#: configuration name -> the Caller's breaker argument
CONFIGS: dict[str, dict[str, float] | None] = {
    "no breaker": None,
    "breaker, reset 0.5 s": {"failure_threshold": 5, "reset_timeout": 0.5},
    "breaker, reset 2 s": {"failure_threshold": 5, "reset_timeout": 2.0},
}
#: before the failure; its first two timeouts (the first failures are only coming back); the rest; after
PHASES = ("before", "onset", "during", "after")


@dataclass(frozen=True)
class Plan:
    """The demo's parameters (times in virtual seconds, rates per second)."""

    seed: int = 1
    rate: float = 400.0
    duration: float = 12.0
    fail_at: float = 3.0
    recover_at: float = 8.25
    failure: str = "crash"  # or "partition": the store is cut off from the caller instead
    timeout: float = 0.5  # the caller's rpc timeout towards the store
    keys: int = 100

    @property
    def onset(self) -> float:
        """The outage's first seconds, reported apart: no failure has come back to trip a breaker before a timeout."""
        return 2 * self.timeout

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        """Smaller sizes for tests: the same story in 60% of the virtual time."""
        return cls(seed=seed, rate=250.0, duration=7.0, fail_at=1.5, recover_at=4.2)


class MeteredCaller(Caller):
    """A ``Caller`` that notes in ``sent`` (a list owned by the demo) when each call left for the dependency.

    A call the breaker refuses never starts its rpc, so it is not noted.
    """

    def __init__(self, sent: list, **config):
        super().__init__(**config)
        self.sent = sent

    async def rpc(self, dest: str, body: dict, timeout: float | None = 1.0) -> dict:
        self.sent.append(self.now())
        return await super().rpc(dest, body, timeout=timeout)


def _fail(sim: em.Simulation, plan: Plan) -> None:
    if plan.failure == "crash":
        sim.crash("store")
    else:
        sim.network.partition(["store"], ["caller"])


def _recover(sim: em.Simulation, plan: Plan) -> None:
    if plan.failure == "crash":
        sim.restart("store")
    else:
        sim.network.heal()


def run_config(plan: Plan, name: str) -> Run:
    """One configuration of ``CONFIGS`` through the failure."""
    if plan.failure not in ("crash", "partition"):
        raise em.ConfigError(f"failure must be 'crash' or 'partition', got {plan.failure!r}")
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(0.0005, 0.0015))
    store = sim.add_node("store", SingleKV, leader="store")
    store.storage["data"] = dict.fromkeys(range(plan.keys), 0)
    sent: list[float] = []
    sim.add_node("caller", MeteredCaller, sent=sent, dependency="store", breaker=CONFIGS[name], timeout=plan.timeout)

    async def failure():
        await asyncio.sleep(plan.fail_at)
        _fail(sim, plan)
        await asyncio.sleep(plan.recover_at - plan.fail_at)
        _recover(sim, plan)

    def op(rng):
        key = rng.randrange(plan.keys)
        return ("read", key, None, "caller") if rng.random() < 0.5 else ("write", key, rng.randrange(1000), "caller")

    async def workload():
        sim.loop.create_task(failure())
        await poisson_load(sim, plan.rate, plan.duration, op, timeout=2 * plan.timeout)

    sim.run(workload())
    row = _row(plan, sim, sent)
    return Run(
        name,
        list(sim.history),
        row,
        windows=[Window(plan.fail_at, plan.recover_at, f"store {plan.failure}")],
        extra={"events": [e for e in sim.events if e["what"] == "breaker"], "sent": sent},
    )


def _row(plan: Plan, sim: em.Simulation, sent: list[float]) -> dict:
    pairs = sim.history.completions()
    known = plan.fail_at + plan.onset
    spans = dict(
        zip(
            PHASES,
            ((0.0, plan.fail_at), (plan.fail_at, known), (known, plan.recover_at), (plan.recover_at, plan.duration)),
        )
    )
    figures = {name: phase(pairs, *span) for name, span in spans.items()}
    row: dict = {}
    for name, f in figures.items():
        row.update({f"p50_{name}_ms": f["p50_ms"], f"p99_{name}_ms": f["p99_ms"], f"errors_{name}": f["error_rate"]})
    down = phase(pairs, plan.fail_at, plan.recover_at)
    errors = down["fail"] + down["info"]
    opened = [
        e["time"]
        for e in sim.events
        if e["what"] == "breaker" and e["value"][1] == "open" and e["time"] >= plan.fail_at
    ]
    row.update(
        {
            "errors_down": down["error_rate"],
            "definite": down["fail"] / errors if errors else None,
            "reached_dead": sum(plan.fail_at <= t < plan.recover_at for t in sent),
            "calls_down": down["ops"],
            "peak_in_flight": _peak(pairs, plan.fail_at + plan.onset, plan.recover_at),
            "opened_s": (min(opened) - plan.fail_at) if opened else None,
            "recovered_s": _recovered(pairs, plan.recover_at),
        }
    )
    return row


def _peak(pairs, start: float, end: float) -> int:
    """Most operations in flight at once, over those invoked in ``[start, end)``."""
    edges = sorted(
        [(i["time"], 1) for i, d in pairs if start <= i["time"] < end]
        + [(d["time"], -1) for i, d in pairs if d is not None and start <= i["time"] < end]
    )
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def _recovered(pairs, recover_at: float) -> float | None:
    """Seconds from ``recover_at`` to the first call of the unbroken run of successes that ends the history."""
    after = sorted(((i["time"], d is not None and d["type"] == "ok") for i, d in pairs if i["time"] >= recover_at))
    start = None
    for t, ok in after:
        if not ok:
            start = None
        elif start is None:
            start = t
    return None if start is None else max(0.0, start - recover_at)


def columns(plan: Plan) -> list[Column]:
    """The table's columns (its rows, transposed): latency by phase, errors, reach, recovery."""
    labels = ("before", f"first {plan.onset:g} s down", "rest of outage", "after")
    return [
        Column("p50_during_ms", "p50 during", millis, "p50 ms, rest of outage"),
        *(Column(f"p99_{p}_ms", f"p99 {p}", millis, f"p99 ms {label}") for p, label in zip(PHASES, labels)),
        Column("errors_down", "errors down", percent, "errors while down"),
        Column("definite", "definite", percent, "  of which definite"),
        Column("errors_after", "errors after", percent, "errors after"),
        Column("reached_dead", "reached dead", str, "calls that reached it"),
        Column("peak_in_flight", "peak in flight", str, "in flight at most, rest"),
        Column("opened_s", "opened after", seconds, "breaker open, s after"),
        Column("recovered_s", "recovered after", seconds, "all ok again, s after"),
    ]


def _reset(name: str) -> float:
    """The reset timeout of a configuration with a breaker."""
    config = CONFIGS[name]
    assert config is not None, f"{name!r} has no breaker"
    return config["reset_timeout"]


def _bound(run: Run, plan: Plan) -> str:
    """'at most B' when the recovery took no longer than a reset and a probe's timeout, B; else that it took longer."""
    bound = _reset(run.name) + plan.timeout
    return f"at most {bound:g}" if run.row["recovered_s"] <= bound else f"longer than reset + timeout, {bound:g}"


def _note(runs: list[Run], plan: Plan) -> str:
    bare, guarded = runs[0].row, runs[1:]
    first = guarded[0].row
    reached = (
        f"all {bare['calls_down']} calls"
        if bare["reached_dead"] >= bare["calls_down"]
        else f"{bare['reached_dead']} of the {bare['calls_down']} calls"
    )
    indefinite = "-" if bare["definite"] is None else percent(1 - bare["definite"])
    recoveries = ", ".join(
        f"{r.row['recovered_s']:.2f} s with a {_reset(r.name):g} s reset ({_bound(r, plan)})" for r in guarded
    )
    return (
        f"The store is down from {plan.fail_at:g} to {plan.recover_at:g} s; latency counts every call, errors "
        f"included, because the client waits for those too. Without a breaker {reached} "
        f"made meanwhile reached the dead store, waiting up to the {plan.timeout:g} s timeout (p99 "
        f"{millis(bare['p99_during_ms'])} ms, {bare['peak_in_flight']} calls in flight at once), and "
        f"{indefinite} of the errors were indefinite (timeouts, Jepsen's info): for those a client cannot tell "
        f"whether its write happened. With a breaker, calls wait just the same until the first failures come "
        f"back (p99 over the "
        f"first {plan.onset:g} s: {millis(first['p99_onset_ms'])} ms); it opened {first['opened_s']:.2f} s after "
        f"the {plan.failure}, and from then on calls failed in a round trip (p99 {millis(first['p99_during_ms'])} ms "
        f"for the rest of the outage) with a definite error ({percent(first['definite'])} of all its errors). "
        f"Only {first['reached_dead']} calls reached the store: the first timeout's worth, then one probe per "
        f"reset. The price comes once the store is back: calls are refused until a probe succeeds, "
        f"{recoveries}; without a breaker, {bare['recovered_s']:.2f} s."
    )


def report(plan: Plan) -> Report:
    """Run every configuration and return the report."""
    runs = [run_config(plan, name) for name in CONFIGS]
    title = (
        f"Caller at {plan.rate:.0f} calls/s, store {plan.failure} {plan.fail_at:g}-{plan.recover_at:g} s "
        f"of {plan.duration:g} s, {plan.timeout:g} s timeout"
    )
    meta = {
        "seed": plan.seed,
        "rate": plan.rate,
        "duration": plan.duration,
        "fail_at": plan.fail_at,
        "recover_at": plan.recover_at,
        "failure": plan.failure,
        "timeout": plan.timeout,
    }
    figures = {run.name: {**run.row, "breaker": CONFIGS[run.name], "transitions": run.extra["events"]} for run in runs}
    return Report(
        "breaker",
        "A circuit breaker in front of a failing dependency",
        intro(__doc__),
        [Table("breaker", title, columns(plan), runs, _note(runs, plan), transpose=True)],
        meta,
        figures,
        plots=lambda out: write_plots(out, runs, names=("latency", "throughput")),
    )


def main(
    seed: int = 1, console: Console | None = None, out: Path | None = None, as_json: bool = False, quick: bool = False
) -> int:
    """Run the demo, print the table (or JSON), write the report to ``out``; returns 0."""
    plan = Plan.quick(seed) if quick else replace(Plan(), seed=seed)
    return emit(report(plan), console, as_json, out)
