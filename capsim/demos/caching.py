"""Caching: hit rate and latency against capacity and TTL; what write-behind loses in a crash.

A cache sits next to its clients (half a millisecond away) in front of a
store ten milliseconds away (a database query). Reads pick keys with a Zipf
law, as real traffic does: a few keys are hot, most are cold. Meanwhile
another service writes the store directly, so a cached entry can go stale.
Part one sweeps the cache's capacity, part two its TTL: a bigger cache and a
longer TTL hit more often and answer faster, and serve old data for longer.
Part three writes through the cache under each write policy and crashes the
cache mid-traffic, at a moment the write-behind cache holds acknowledged
writes it has not flushed (a crash just after a flush would find next to
nothing to lose): write-behind acknowledges at once and loses what it had
not yet flushed; write-through and cache-aside wait for the store and lose
nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

import emulator as em
from capsim.demos.common import Report, Table, emit, intro, live, phase, poisson_load
from capsim.report import Column, Run, Window, write_plots
from capsim.report.plots import xy_plot
from capsim.report.tables import millis, percent, seconds
from emulator.check import lost_writes, stale_reads
from nodes.cache import POLICIES, Cache
from nodes.kv import SingleKV

__all__ = ["Plan", "Zipf", "main", "policy_run", "report", "sweep_run"]


@dataclass(frozen=True)
class Plan:
    """The demo's parameters (times in virtual seconds, rates per second)."""

    seed: int = 1
    keys: int = 2000
    skew: float = 1.0  # Zipf exponent: key i is read with weight 1 / (i + 1) ** skew
    read_rate: float = 800.0
    write_rate: float = 20.0  # the other service's writes, straight to the store
    duration: float = 6.0
    warmup: float = 2.0  # figures count reads invoked after this
    capacities: tuple[int, ...] = (10, 50, 100, 500, 1000)
    ttls: tuple[float | None, ...] = (None, 3.0, 1.0, 0.3, 0.1)
    ttl_capacity: int = 1000
    near: tuple[float, float] = (0.0002, 0.0003)  # one-way latency client <-> cache
    far: tuple[float, float] = (0.004, 0.006)  # one-way latency cache <-> store
    policy_keys: int = 1000
    policy_rate: float = 300.0  # part three: half reads, half writes, through the cache
    write_share: float = 0.5
    policy_duration: float = 4.0
    #: part three's crash: the first moment from crash_at on when the write-behind cache holds ``unflushed``
    #: acknowledged writes (more than a flush batch, 16: some are not yet on their way to the store); every
    #: policy's cache crashes at that moment and restarts ``down_for`` seconds later
    crash_at: float = 2.0
    unflushed: int = 32
    down_for: float = 0.5
    flush_interval: float = 0.5

    @classmethod
    def quick(cls, seed: int = 1) -> Plan:
        """Smaller sizes for tests: the same stories, about a quarter of the operations."""
        return cls(
            seed=seed,
            read_rate=500.0,
            duration=3.0,
            warmup=1.0,
            capacities=(10, 100, 1000),
            ttls=(None, 1.0, 0.1),
            policy_duration=2.0,
            crash_at=1.0,
            down_for=0.3,
        )


class Zipf:
    """Keys ``0..n-1`` drawn with probability proportional to ``1 / (k + 1) ** s`` from a given rng."""

    def __init__(self, n: int, s: float):
        if n < 1 or s < 0:
            raise em.ConfigError(f"Zipf needs n >= 1 keys and an exponent s >= 0, got n={n!r}, s={s!r}")
        self.cumulative = list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))

    def __call__(self, rng) -> int:
        return bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])


def _build(plan: Plan, keys: int, **cache) -> em.Simulation:
    sim = em.Simulation(seed=plan.seed, latency=em.Uniform(*plan.near))
    store = sim.add_node("store", SingleKV, leader="store")
    store.storage["data"] = dict.fromkeys(range(keys), 0)  # every key exists: a miss fills, never errs
    sim.add_node("cache", Cache, store="store", **cache)
    for a, b in (("cache", "store"), ("store", "cache")):
        sim.network.set_link(a, b, latency=em.Uniform(*plan.far))
    return sim


def sweep_run(plan: Plan, capacity: int, ttl: float | None, name: str) -> Run:
    """Parts one and two: Zipf reads through a cache-aside cache, direct writes to the store."""
    sim = _build(plan, plan.keys, capacity=capacity, ttl=ttl, policy="cache-aside")
    zipf, counter = Zipf(plan.keys, plan.skew), itertools.count(1)
    warm: dict = {}

    async def snapshot():
        await asyncio.sleep(plan.warmup)
        warm.update(live(sim, "cache", Cache).stats())

    async def workload():
        sim.loop.create_task(snapshot())
        await asyncio.gather(
            poisson_load(
                sim,
                plan.read_rate,
                plan.duration,
                lambda rng: ("read", zipf(rng), None, "cache"),
                stream="reads",
                prefix="r",
            ),
            poisson_load(
                sim,
                plan.write_rate,
                plan.duration,
                lambda rng: ("write", zipf(rng), next(counter), "store"),
                stream="writes",
                prefix="w",
            ),
        )

    sim.run(workload())
    stats = live(sim, "cache", Cache).stats()
    hits, misses = stats["hits"] - warm["hits"], stats["misses"] - warm["misses"]
    reads = [(i, d) for i, d in sim.history.completions() if i["f"] == "read"]
    figures = phase(reads, plan.warmup, plan.duration)
    waits = [d["time"] - i["time"] for i, d in reads if d and d["type"] == "ok" and i["time"] >= plan.warmup]
    missed = [s for s in stale_reads(list(sim.history), initial=0).stale if s.read.call_time >= plan.warmup]
    stale = len(missed)
    row = {
        "capacity": capacity,
        "ttl": ttl,
        "hit_rate": hits / max(hits + misses, 1),
        "mean_ms": 1000 * sum(waits) / max(len(waits), 1),
        "p50_ms": figures["ok_p50_ms"],
        "p99_ms": figures["ok_p99_ms"],
        "stale": stale / max(len(waits), 1),
        # the longest a stale read came after the write it missed was acknowledged: how old an entry got
        "stale_lag_max_s": max((s.lag for s in missed), default=None),
        "evictions": stats["evictions"],
        "expirations": stats["expirations"],
        "reads": len(reads),
    }
    return Run(name, [], row)


def policy_run(plan: Plan, policy: str, crash_at: float | None = None) -> Run:
    """Part three: reads and writes through a cache of ``policy``, which crashes and restarts mid-traffic.

    The cache crashes at virtual ``crash_at``; by default, for write-behind, at the first moment from
    ``plan.crash_at`` on when it holds ``plan.unflushed`` writes (``report`` crashes the others then too),
    and for the others at ``plan.crash_at``. It restarts ``plan.down_for`` seconds later.
    """
    sim = _build(plan, plan.policy_keys, capacity=plan.policy_keys, policy=policy, flush_interval=plan.flush_interval)
    zipf, counter = Zipf(plan.policy_keys, plan.skew), itertools.count(1)
    queued: dict = {}

    def op(rng):
        if rng.random() < plan.write_share:
            return "write", zipf(rng), next(counter), "cache"
        return "read", zipf(rng), None, "cache"

    async def crash():
        await asyncio.sleep(plan.crash_at if crash_at is None else crash_at)
        cache = live(sim, "cache", Cache)
        # A fixed instant lands after a flush at some seeds, with next to nothing queued (0 lost at 21 of 200
        # seeds): wait for writes the cache has acknowledged and not flushed, looking every millisecond.
        while crash_at is None and policy == "write-behind" and len(cache.queue) < plan.unflushed:
            await asyncio.sleep(0.001)
        queued["writes"], queued["at"] = len(cache.queue), sim.now
        sim.crash("cache")
        await asyncio.sleep(plan.down_for)
        sim.restart("cache")

    async def workload():
        sim.loop.create_task(crash())
        await poisson_load(sim, plan.policy_rate, plan.policy_duration, op, timeout=0.5)
        await asyncio.sleep(2 * plan.flush_interval)  # what the cache will still flush, it has by now
        reader = sim.add_client("final")
        for key in sorted({op["key"] for op in sim.history.client_ops() if op["f"] == "write"}):
            await reader.invoke("read", key=key, dest="store", timeout=1.0)

    sim.run(workload())
    crashed = queued["at"]
    return Run(
        policy,
        list(sim.history),
        _policy_row(plan, sim, policy, queued["writes"], crashed),
        windows=[Window(crashed, crashed + plan.down_for, "cache down")],
    )


def _policy_row(plan: Plan, sim: em.Simulation, policy: str, queued: int, crashed: float) -> dict:
    pairs = [(i, d) for i, d in sim.history.completions() if i["client"] != "final"]
    writes = phase([(i, d) for i, d in pairs if i["f"] == "write"], 0.0, plan.policy_duration)
    reads = phase([(i, d) for i, d in pairs if i["f"] == "read"], 0.0, plan.policy_duration)
    down = phase(pairs, crashed, crashed + plan.down_for)
    lost = lost_writes(list(sim.history), initial=0)
    return {
        "policy": policy,
        "acknowledged": lost.acknowledged,
        "lost": len(lost.lost),
        "crashed_at": crashed,
        "queued_at_crash": queued,
        "write_p50_ms": writes["ok_p50_ms"],
        "write_p99_ms": writes["ok_p99_ms"],
        "read_p50_ms": reads["ok_p50_ms"],
        "errors_while_down": down["ops"] - down["ok"],
        "unchecked_keys": len(lost.unchecked),
    }


def _ttl(value) -> str:
    return "none" if value is None else f"{value:g} s"


SWEEP_COLUMNS = [
    Column("hit_rate", "hit rate", percent, "reads answered from the cache"),
    Column("mean_ms", "mean ms", millis, "mean read latency"),
    Column("p50_ms", "p50 ms", millis, "median read latency"),
    Column("p99_ms", "p99 ms", millis, "p99 read latency"),
    Column("stale", "stale reads", percent, "reads that missed an acknowledged write"),
    Column("stale_lag_max_s", "stalest s", seconds, "stale read, longest after the write it missed (s)"),
    Column("evictions", "evictions", str, "entries evicted to make room"),
    Column("expirations", "expired", str, "entries dropped by the TTL"),
]

POLICY_COLUMNS = [
    Column("acknowledged", "writes acked", str, "acknowledged writes checked"),
    Column("lost", "lost", str, "acknowledged writes lost (lost_writes checker)"),
    Column("queued_at_crash", "unflushed", str, "writes queued in the cache when it crashed"),
    Column("write_p50_ms", "write p50 ms", millis, "median write latency"),
    Column("write_p99_ms", "write p99 ms", millis, "p99 write latency"),
    Column("read_p50_ms", "read p50 ms", millis, "median read latency"),
    Column("errors_while_down", "errors while down", str, "operations that failed while the cache was down"),
]


def _capacity_note(runs: list[Run], plan: Plan) -> str:
    first, last = runs[0].row, runs[-1].row
    trend = "rise" if last["stale"] > first["stale"] else "go" if last["stale"] == first["stale"] else "fall"
    return (
        f"With {plan.keys} keys read by a Zipf law, {first['capacity']} entries already answer "
        f"{100 * first['hit_rate']:.0f}% of reads (the hot keys) and {last['capacity']} answer "
        f"{100 * last['hit_rate']:.0f}%: each step up in capacity buys fewer hits, as the keys it adds are "
        f"colder. A hit costs a round trip to the cache, a miss adds one to the store, so the mean read falls "
        f"from {first['mean_ms']:.1f} to {last['mean_ms']:.1f} ms; p99 stays a store round trip while any read "
        f"misses. The other service's writes go around the cache, so the bigger the cache, the more old "
        f"entries it keeps: stale reads {trend} from {percent(first['stale'])} to {percent(last['stale'])}."
    )


def _lag(row: dict) -> str:
    lag = row["stale_lag_max_s"]
    return "-" if lag is None else f"{lag:.2f} s"


def _ttl_note(runs: list[Run], plan: Plan) -> str:
    rows = [run.row for run in runs]
    return (
        f"With {plan.ttl_capacity} entries, a TTL trades hits for freshness: no TTL hits "
        f"{100 * rows[0]['hit_rate']:.0f}% and serves {percent(rows[0]['stale'])} stale reads; a TTL of "
        f"{_ttl(rows[-1]['ttl'])} hits {100 * rows[-1]['hit_rate']:.0f}% (mean read "
        f"{rows[-1]['mean_ms']:.1f} ms instead of {rows[0]['mean_ms']:.1f}) and serves "
        f"{percent(rows[-1]['stale'])} stale: an entry can be at most a TTL old (its stalest read came "
        f"{_lag(rows[-1])} after the write it missed; {_lag(rows[0])} with no TTL)."
    )


def _policy_note(runs: list[Run], plan: Plan) -> str:
    rows = {run.name: run.row for run in runs}
    behind = rows["write-behind"]
    safe = [name for name, row in rows.items() if name != "write-behind" and row["lost"] == 0]
    crashed = behind["crashed_at"]
    return (
        f"The cache crashes at {crashed:.3f} s, the first moment from {plan.crash_at:g} s on when the write-behind "
        f"cache held {plan.unflushed} acknowledged writes not yet flushed (a crash just after a flush would find "
        f"next to nothing to lose; every policy's cache crashes then), and restarts empty {plan.down_for:g} s "
        f"later; afterwards every written key is read from the store. Write-behind acknowledged writes in "
        f"{millis(behind['write_p50_ms'])} ms (no store round trip) and flushed them every "
        f"{plan.flush_interval:g} s: {behind['queued_at_crash']} were still queued at the crash, and the "
        f"lost-writes checker finds {behind['lost']} acknowledged writes missing from the store (the rest were "
        f"on their way to the store or overwritten later). "
        f"{' and '.join(safe).capitalize() or 'No other policy'} waited for the store "
        f"({millis(rows['write-through']['write_p50_ms'])} ms a write) and lost "
        f"{'nothing' if len(safe) == 2 else 'writes too'}."
    )


def report(plan: Plan) -> Report:
    """Run the three parts and return the report."""
    by_capacity = [sweep_run(plan, c, None, f"{c} entries") for c in plan.capacities]
    by_ttl = [sweep_run(plan, plan.ttl_capacity, ttl, f"ttl {_ttl(ttl)}") for ttl in plan.ttls]
    behind = policy_run(plan, "write-behind")
    crashed = behind.row["crashed_at"]
    policies = [behind if policy == "write-behind" else policy_run(plan, policy, crashed) for policy in POLICIES]
    tables = [
        Table(
            "capacity",
            f"Hit rate and read latency against capacity ({plan.keys} keys, Zipf {plan.skew:g}, no TTL)",
            SWEEP_COLUMNS,
            by_capacity,
            _capacity_note(by_capacity, plan),
        ),
        Table("ttl", f"Against TTL ({plan.ttl_capacity} entries)", SWEEP_COLUMNS, by_ttl, _ttl_note(by_ttl, plan)),
        Table(
            "policy",
            f"Write policies, the cache crashing at {crashed:.3f} s",
            POLICY_COLUMNS,
            policies,
            _policy_note(policies, plan),
        ),
    ]
    meta = {
        "seed": plan.seed,
        "keys": plan.keys,
        "skew": plan.skew,
        "read_rate": plan.read_rate,
        "write_rate": plan.write_rate,
        "duration": plan.duration,
        "warmup": plan.warmup,
        "crash_at": plan.crash_at,
        "unflushed": plan.unflushed,
        "down_for": plan.down_for,
        "flush_interval": plan.flush_interval,
    }
    figures = {
        "capacity": [r.row for r in by_capacity],
        "ttl": [r.row for r in by_ttl],
        "policy": {r.name: r.row for r in policies},
    }
    return Report(
        "caching",
        "Caching: capacity, TTL and write policies",
        intro(__doc__),
        tables,
        meta,
        figures,
        plots=lambda out: _plots(out, by_capacity, by_ttl, policies),
        timeline=2,
    )


def _plots(out: Path, by_capacity: list[Run], by_ttl: list[Run], policies: list[Run]) -> dict[str, list[Path]]:
    caps = [r.row["capacity"] for r in by_capacity]
    timed = [r for r in by_ttl if r.row["ttl"] is not None]
    ttls = [r.row["ttl"] for r in timed]
    never = by_ttl[0].row if by_ttl[0].row["ttl"] is None else None
    ttl_series = {
        "hit rate": (ttls, [r.row["hit_rate"] for r in timed]),
        "stale reads": (ttls, [r.row["stale"] or 0.0 for r in timed]),
    }
    if never and ttls:
        span = [min(ttls), max(ttls)]
        ttl_series.update(
            {
                "hit rate, no TTL": (span, [never["hit_rate"]] * 2),
                "stale reads, no TTL": (span, [never["stale"] or 0.0] * 2),
            }
        )
    plots = {
        "hit_rate": xy_plot(
            out / "hit_rate",
            {
                "hit rate": (caps, [r.row["hit_rate"] for r in by_capacity]),
                "stale reads": (caps, [r.row["stale"] or 0.0 for r in by_capacity]),
            },
            "hit rate and stale reads against capacity",
            "cache entries",
            "fraction of reads",
            logx=True,
        ),
        "read_latency": xy_plot(
            out / "read_latency",
            {k: (caps, [r.row[f"{k}_ms"] for r in by_capacity]) for k in ("mean", "p50", "p99")},
            "read latency against capacity",
            "cache entries",
            "milliseconds",
            logx=True,
        ),
        "expiry": xy_plot(
            out / "expiry", ttl_series, "hit rate and staleness against TTL", "TTL (s)", "fraction of reads", logx=True
        ),
    }
    plots.update(write_plots(out, policies, names=("latency", "throughput")))
    return plots


def main(
    seed: int = 1, console: Console | None = None, out: Path | None = None, as_json: bool = False, quick: bool = False
) -> int:
    """Run the demo, print the tables (or JSON), write the report to ``out``; returns 0."""
    plan = Plan.quick(seed) if quick else replace(Plan(), seed=seed)
    return emit(report(plan), console, as_json, out)
