"""PACELC, measured: else (no partition), latency or consistency?

With no fault at all, a replicated store still chooses: wait for more
replicas (slower, fresher) or fewer (faster, staler). This sweep measures
both sides of that choice for quorum stores over N, R and W, and for
primary-replica replication in sync, semi-sync and async mode.

Staleness is measured the way Bailis et al. define it in "Probabilistically
Bounded Staleness for Practical Partial Quorums" (VLDB 2012): one writer
writes a fresh value to a fresh key; once the write is acknowledged, wait
``t``; a reader then reads the key; the read is stale if it misses that
value. Two measurements per quorum:

- **PBS, exact**: the write goes to exactly W owners and the read to exactly
  R, chosen at random, with no repair: the closed form C(N-W, R) / C(N, R)
  gives the stale probability, and the measured one sits beside it.
- **Dynamo-style**: the write goes to all N owners and is acknowledged after
  W; the read asks all N and takes the first R answers. The write keeps
  propagating after its acknowledgement, so staleness falls with ``t``: the
  t-visibility curve. Latency percentiles come from these runs.

Primary-replica rows write to the primary and read from a random replica
(``read_from="replica"``). A replica applies an entry once it learns the
entry is committed, one replication round after the primary did, in every
mode: sync buys durability across a failover and slower writes, not fresher
replica reads. Reads from the primary are never stale (not shown).
"""

from __future__ import annotations

import asyncio
import math
import statistics
from dataclasses import dataclass, field

import emulator as em
from nodes.quorum import QuorumKV
from nodes.replication import PrimaryReplica

QUORUMS = ((3, 1, 1), (3, 1, 2), (3, 2, 1), (3, 2, 2), (3, 1, 3), (3, 3, 1), (5, 1, 1), (5, 1, 2), (5, 2, 2),
           (5, 3, 3))
REPLICATION = ("async", "semi-sync", "sync")


@dataclass
class Sweep:
    """What to sweep and how hard to measure."""

    seed: int = 1
    trials: int = 600
    parallel: int = 20
    latency_median: float = 0.002
    latency_sigma: float = 0.8
    waits_ms: tuple = (0, 1, 2, 5, 10, 20, 50)
    quorums: tuple = QUORUMS
    replication: tuple = REPLICATION
    extra: dict = field(default_factory=dict)

    def latency(self) -> em.Distribution:
        return em.LogNormal(self.latency_median, self.latency_sigma)


def closed_form(n: int, r: int, w: int) -> float:
    """PBS's probability that R random replicas miss all W that got the write."""
    return math.comb(n - w, r) / math.comb(n, r)


class _Trials:
    """Write-then-read trials on fresh keys, ``parallel`` at a time, in one simulation."""

    def __init__(self, sim: em.Simulation, writer_dest, reader_dest):
        self.sim = sim
        self.writer = sim.add_client("writer")
        self.reader = sim.add_client("reader")
        self.writer_dest, self.reader_dest = writer_dest, reader_dest
        self.rng = sim.rng("trials")
        self.write_ms: list[float] = []
        self.read_ms: list[float] = []

    async def _one(self, key: str, wait: float) -> bool | None:
        start = self.sim.now
        try:
            await self.writer.invoke("write", key=key, value=key, dest=self.writer_dest(key, self.rng), timeout=2.0)
        except em.EmulatorError:
            return None
        self.write_ms.append(1000 * (self.sim.now - start))
        if wait:
            await asyncio.sleep(wait)
        start = self.sim.now
        try:
            reply = await self.reader.invoke("read", key=key, dest=self.reader_dest(key, self.rng), timeout=2.0)
        except em.RPCError as exc:
            return True if exc.code == 20 else None  # "no such key": the read missed the write
        except em.Timeout:
            return None
        self.read_ms.append(1000 * (self.sim.now - start))
        return reply.get("value") != key

    async def run(self, count: int, wait: float, parallel: int, tag: str) -> float | None:
        """The stale fraction over ``count`` trials (None when none completed)."""
        outcomes: list[bool] = []
        keys = iter(range(count))

        async def worker():
            for i in keys:
                outcome = await self._one(f"{tag}-{i}", wait)
                if outcome is not None:
                    outcomes.append(outcome)

        await asyncio.gather(*(worker() for _ in range(parallel)))
        return sum(outcomes) / len(outcomes) if outcomes else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _quorum_sim(sweep: Sweep, n: int, r: int, w: int, fanout: str) -> tuple[em.Simulation, list[str]]:
    sim = em.Simulation(seed=sweep.seed, latency=sweep.latency())
    names = [f"n{i}" for i in range(n)]
    for name in names:
        sim.add_node(name, QuorumKV, n=n, r=r, w=w, write_fanout=fanout, read_fanout=fanout, read_repair=False,
                     rpc_timeout=1.0)
    return sim, names


def measure_quorum(sweep: Sweep, n: int, r: int, w: int) -> dict:
    """PBS exact (beside the closed form), then the Dynamo-style t-visibility curve and latencies."""
    sim, names = _quorum_sim(sweep, n, r, w, "exact")
    trials = _Trials(sim, lambda k, rng: rng.choice(names), lambda k, rng: rng.choice(names))
    exact = sim.run(trials.run(sweep.trials, 0.0, sweep.parallel, "exact"))
    sim, names = _quorum_sim(sweep, n, r, w, "all")
    trials = _Trials(sim, lambda k, rng: rng.choice(names), lambda k, rng: rng.choice(names))
    curve = {}
    for wait in sweep.waits_ms:
        curve[wait] = sim.run(trials.run(sweep.trials, wait / 1000, sweep.parallel, f"t{wait}"))
    return {
        "config": f"N={n} R={r} W={w}",
        "kind": "quorum", "n": n, "r": r, "w": w, "strict": r + w > n,
        "pbs_measured": exact, "pbs_closed_form": closed_form(n, r, w),
        "stale": curve[sweep.waits_ms[0]], "t_visibility": curve,
        **_latencies(trials),
    }


def measure_replication(sweep: Sweep, mode: str, nodes: int = 3) -> dict:
    """Writes to the primary, reads from a random replica right after the acknowledgement."""
    sim = em.Simulation(seed=sweep.seed, latency=sweep.latency())
    names = [f"n{i}" for i in range(nodes)]
    extra = {"acks": 1} if mode == "semi-sync" else {}
    for name in names:
        sim.add_node(name, PrimaryReplica, mode=mode, read_from="replica", heartbeat_interval=0.02,
                     election_timeout=2.0, lease=1.0, **extra)
    sim.run(until=0.5)  # the first primary is in place
    replicas = names[1:]
    trials = _Trials(sim, lambda k, rng: names[0], lambda k, rng: rng.choice(replicas))
    curve = {wait: sim.run(trials.run(sweep.trials, wait / 1000, sweep.parallel, f"t{wait}"))
             for wait in sweep.waits_ms}
    return {
        "config": f"p-r {mode}" + (" k=1" if mode == "semi-sync" else ""),
        "kind": "replication", "mode": mode, "n": nodes, "strict": None,
        "pbs_measured": None, "pbs_closed_form": None,
        "stale": curve[sweep.waits_ms[0]], "t_visibility": curve,
        **_latencies(trials),
    }


def _latencies(trials: _Trials) -> dict:
    return {
        "read_p50_ms": _percentile(trials.read_ms, 0.50), "read_p99_ms": _percentile(trials.read_ms, 0.99),
        "write_p50_ms": _percentile(trials.write_ms, 0.50), "write_p99_ms": _percentile(trials.write_ms, 0.99),
        "p99_ms": _percentile(trials.read_ms + trials.write_ms, 0.99),
        "mean_ms": statistics.fmean(trials.read_ms + trials.write_ms) if trials.write_ms else None,
    }


def jobs(sweep: Sweep) -> list[tuple]:
    """One job per configuration, for worker processes."""
    return [(sweep, "quorum", q) for q in sweep.quorums] + [(sweep, "replication", m) for m in sweep.replication]


def run_job(job: tuple) -> dict:
    sweep, kind, what = job
    return measure_quorum(sweep, *what) if kind == "quorum" else measure_replication(sweep, what)
