"""PACELC, measured: else (no partition), latency or consistency?

With no fault at all, a replicated store still chooses: wait for more
replicas (slower, fresher) or fewer (faster, staler). This sweep measures
that choice two ways, kept apart because they answer different questions.

**The model.** Bailis et al., "Probabilistically Bounded Staleness for
Practical Partial Quorums" (VLDB 2012), reason about Dynamo-style quorums
with two models, both shown per (N, R, W):

- *exact-W*: the write reaches exactly W replicas and never spreads; a read
  asks R random replicas. P(stale) = C(N-W, R) / C(N, R), the closed form
  (:func:`closed_form`); capsim measures it with ``write_fanout="exact"``
  as a check of the closed form and of uniform replica choice, nothing more.
- *WARS* (:mod:`capsim.cap.wars`): the write goes to all N and keeps
  spreading after its commit; P(stale) falls with the time t since the
  commit. Computed by Monte Carlo, and reproduced on capsim's store in the
  model's own setup (a coordinator that holds no copy, links without FIFO,
  t from the commit): the two agree within their standard errors.

**The store.** capsim's quorum store as a client meets it: every link FIFO,
the coordinator a replica (its own copy costs no latency), and t counted
from when the writing client gets its acknowledgement. One writer writes a
fresh value to a fresh key; ``t`` after the acknowledgement a reader reads
the key from a random node; the read is stale if it misses that value.
Trials run one at a time, so none queues behind another on a FIFO link.
Latency percentiles come from these runs, as the client sees them.
:func:`measure_store` can take away FIFO and the client's legs, to show
what each difference from WARS does (the tests hold it to that).

Primary-replica rows write to the primary and read from a random replica
(``read_from="replica"``). A replica applies an entry once it learns the
entry is committed, one replication round after the primary did, in every
mode: sync buys durability across a failover and slower writes; its replica
reads are still stale right after a write. Reads from the primary are never
stale (not shown).
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import emulator as em
from capsim.cap import wars
from capsim.cap.legs import Legs
from nodes.quorum import QuorumKV
from nodes.replication import PrimaryReplica

#: Told of each write-then-read trial as it ends, ``tick(1)``, and of the WARS model's trials in chunks,
#: ``tick(count, model=True)``: progress, in any process.
Tick = Callable[..., None] | None

QUORUMS = ((3, 1, 1), (3, 1, 2), (3, 2, 1), (3, 2, 2), (3, 1, 3), (3, 3, 1), (5, 1, 1), (5, 1, 2), (5, 2, 2), (5, 3, 3))
REPLICATION = ("async", "semi-sync", "sync")


#: The default latency of every link (and every WARS leg).
LATENCY = em.LogNormal(0.002, 0.8)


@dataclass
class Sweep:
    """What to sweep and how hard to measure.

    Attributes:
        trials: write-then-read trials per point, for the store and for capsim's WARS run.
        model_trials: Monte Carlo trials of the WARS model per (N, R, W).
        waits_ms: the times t (ms) at which staleness is measured.
    """

    seed: int = 1
    trials: int = 600
    model_trials: int = 50_000
    latency: em.Distribution = LATENCY
    waits_ms: tuple = (0, 1, 2, 5, 10, 20, 50)
    quorums: tuple = QUORUMS
    replication: tuple = REPLICATION
    extra: dict = field(default_factory=dict)
    #: WARS's four legs when they differ from ``latency`` (``--legs``); the store always uses ``latency``.
    legs: Legs | None = None

    def wars_legs(self) -> Legs:
        """The legs of the WARS model: ``legs``, else every leg ``latency``."""
        return self.legs or Legs.same(self.latency)

    def legs_text(self) -> str:
        """'every leg SPEC' when the four are one distribution, else 'legs w=...,a=...,r=...,s=...'."""
        legs = self.wars_legs()
        return f"every leg {legs}" if legs.uniform else f"legs {legs}"

    def meta(self) -> dict:
        """The sweep as plain data (the latency as its text form)."""
        return {
            "seed": self.seed,
            "trials": self.trials,
            "model_trials": self.model_trials,
            "latency": str(self.latency),
            "legs": str(self.wars_legs()),
            "t_ms": list(self.waits_ms),
            "quorums": ["/".join(map(str, q)) for q in self.quorums],
            "replication": list(self.replication),
        }


def closed_form(n: int, r: int, w: int) -> float:
    """PBS's probability that R random replicas miss all W that got the write."""
    return math.comb(n - w, r) / math.comb(n, r)


#: Seconds a trial's client waits for the write's or the read's answer.
TIMEOUT = 2.0


class _Trials:
    """Write-then-read trials on fresh keys, one at a time, in one simulation.

    One at a time: on FIFO links, concurrent trials would queue behind each
    other's slow legs, and the staleness would measure the load as much as t.
    """

    def __init__(self, sim: em.Simulation, writer_dest, reader_dest, record: bool = False, progress: Tick = None):
        self.sim = sim
        self.writer = sim.add_client("writer")
        self.reader = sim.add_client("reader")
        self.writer_dest, self.reader_dest = writer_dest, reader_dest
        self.record, self.progress = record, progress
        self.rng = sim.rng("trials")
        # Eight bytes a latency, not a float object and a list slot (32): the percentiles need every one.
        self.write_ms = array("d")
        self.read_ms = array("d")
        self.curve: dict = {}
        #: trials whose write or read got no answer (a timeout, or a refusal), over every point
        self.unanswered = 0

    async def _ask(self, client: em.Client, f: str, key: str, dest: str) -> dict:
        """``client.invoke`` when recording (``sim.history`` grows by two ops), else the same message by rpc."""
        value = key if f == "write" else None
        if self.record:
            return await client.invoke(f, key=key, value=value, dest=dest, timeout=TIMEOUT)
        body = {"type": f, "key": key} if value is None else {"type": f, "key": key, "value": value}
        return await client.rpc(dest, body, timeout=TIMEOUT)

    async def _one(self, key: str, wait: float) -> bool | None:
        start = self.sim.now
        try:
            await self._ask(self.writer, "write", key, self.writer_dest(key, self.rng))
        except em.EmulatorError:
            self.unanswered += 1
            return None
        self.write_ms.append(1000 * (self.sim.now - start))
        if wait:
            await asyncio.sleep(wait)
        start = self.sim.now
        try:
            reply = await self._ask(self.reader, "read", key, self.reader_dest(key, self.rng))
        except em.RPCError as exc:
            if exc.code != 20:
                self.unanswered += 1
                return None
            reply = {}  # "no such key" is an answer (the read missed the write), and its latency counts
        except em.Timeout:
            self.unanswered += 1
            return None
        self.read_ms.append(1000 * (self.sim.now - start))
        return reply.get("value") != key

    async def run(self, count: int, wait: float, tag: str) -> float | None:
        """The stale fraction over ``count`` trials (None when none completed)."""
        stale = answered = 0  # counts, not a list of outcomes: --trials 10**8 kept 10**8 of them
        for i in range(count):
            outcome = await self._one(f"{tag}-{i}", wait)
            if outcome is not None:
                stale += outcome
                answered += 1
            if self.progress is not None:
                self.progress(1)
        return stale / answered if answered else None


def _percentile(values: array, q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _quorum_sim(
    sweep: Sweep,
    n: int,
    r: int,
    w: int,
    fanout: str,
    fifo: bool = True,
    client_legs: bool = True,
    record: bool = False,
    progress: Tick = None,
) -> tuple[_Trials, list[str]]:
    """N quorum replicas, each a coordinator too, and the trials' two clients (at zero latency without client_legs)."""
    sim = em.Simulation(seed=sweep.seed, latency=sweep.latency, fifo=fifo)
    names = [f"n{i}" for i in range(n)]
    for name in names:
        sim.add_node(
            name, QuorumKV, n=n, r=r, w=w, write_fanout=fanout, read_fanout=fanout, read_repair=False, rpc_timeout=1.0
        )
    trials = _Trials(sim, lambda k, rng: rng.choice(names), lambda k, rng: rng.choice(names), record, progress)
    if not client_legs:
        for client in ("writer", "reader"):
            for name in names:
                sim.network.set_link(client, name, latency=em.Constant(0.0))
    return trials, names


def measure_store(
    sweep: Sweep,
    n: int,
    r: int,
    w: int,
    fifo: bool = True,
    client_legs: bool = True,
    record: bool = False,
    progress: Tick = None,
) -> _Trials:
    """The store's staleness at each t (``trials.curve``), and its latencies: FIFO links and client legs by default.

    ``fifo=False`` and ``client_legs=False`` take away two of the store's
    differences from WARS, to see what each does; the third, a coordinator
    that owns a copy, is the store itself. ``record`` keeps every write and
    read in ``trials.sim.history`` (four ops a trial, which a long run cannot
    hold); the figures are the same either way.
    """
    trials, _ = _quorum_sim(sweep, n, r, w, "all", fifo, client_legs, record, progress)
    trials.curve = {wait: trials.sim.run(trials.run(sweep.trials, wait / 1000, f"t{wait}")) for wait in sweep.waits_ms}
    return trials


def measure_quorum(sweep: Sweep, n: int, r: int, w: int, progress: Tick = None) -> dict:
    """The model (exact-W, WARS computed and run on capsim), then capsim's store: curve and latencies.

    Each simulation is let go before the next starts, so a run holds one store's keys at a time.
    """
    exact, _ = _quorum_sim(sweep, n, r, w, "exact", progress=progress)
    measured = exact.sim.run(exact.run(sweep.trials, 0.0, "exact"))
    del exact
    gc.collect()  # a simulation is cycles (nodes, tasks, the loop): without a collection it outlives the next
    store = measure_store(sweep, n, r, w, progress=progress)
    curve, latencies = store.curve, _latencies(store)
    del store
    gc.collect()
    return {
        "config": f"{n}/{r}/{w}",
        "kind": "quorum",
        "n": n,
        "r": r,
        "w": w,
        "strict": r + w > n,
        "closed_form": closed_form(n, r, w),
        "exact_w_measured": measured,
        **_model(sweep, n, r, w, progress),
        "stale": curve[sweep.waits_ms[0]],
        "t_visibility": curve,
        **latencies,
    }


def _model(sweep: Sweep, n: int, r: int, w: int, progress: Tick = None) -> dict:
    """WARS by Monte Carlo at each t (and on a fine grid for the plot); on capsim for partial quorums."""
    legs = sweep.wars_legs()
    computed = wars.model(n, r, w, legs, sweep.model_trials, sweep.seed, progress)
    times = [wait / 1000 for wait in sweep.waits_ms]
    run = r + w <= n and legs.runnable  # capsim cannot run W unlike R or A unlike S (wars.NOT_RUNNABLE)
    capsim = wars.measure(n, r, w, times, legs, sweep.trials, sweep.seed, progress) if run else []
    fine = sorted({0.0, *(10 ** (k / 20) / 10_000 for k in range(81))})  # 0.1 ms to 1 s, 20 per decade
    return {
        "wars": {wait: computed.point(wait / 1000).p_stale for wait in sweep.waits_ms},
        "wars_se": {wait: computed.point(wait / 1000).se for wait in sweep.waits_ms},
        "wars_capsim": {wait: p.p_stale for wait, p in zip(sweep.waits_ms, capsim)},
        "wars_capsim_se": {wait: p.se for wait, p in zip(sweep.waits_ms, capsim)},
        "wars_fine": [[1000 * t, computed.point(t).p_stale] for t in fine],
        **wars.visibility(computed),
    }


def measure_replication(
    sweep: Sweep, mode: str, nodes: int = 3, read_primary: bool = False, progress: Tick = None
) -> dict:
    """Writes to the primary, reads from a random replica right after the acknowledgement.

    ``read_primary`` sends the reads to the primary instead: never stale (the module doc says so; a test holds it).
    """
    sim = em.Simulation(seed=sweep.seed, latency=sweep.latency)
    names = [f"n{i}" for i in range(nodes)]
    extra = {"acks": 1} if mode == "semi-sync" else {}
    for name in names:
        sim.add_node(
            name,
            PrimaryReplica,
            mode=mode,
            read_from="replica",
            heartbeat_interval=0.02,
            election_timeout=2.0,
            lease=1.0,
            **extra,
        )
    sim.run(until=0.5)  # the first primary is in place
    replicas = names[1:]
    trials = _Trials(
        sim, lambda k, rng: names[0], lambda k, rng: names[0] if read_primary else rng.choice(replicas), False, progress
    )
    curve = {wait: sim.run(trials.run(sweep.trials, wait / 1000, f"t{wait}")) for wait in sweep.waits_ms}
    return {
        "config": f"p-r {mode}" + (" k=1" if mode == "semi-sync" else ""),
        "kind": "replication",
        "mode": mode,
        "n": nodes,
        "strict": None,
        "stale": curve[sweep.waits_ms[0]],
        "t_visibility": curve,
        **_latencies(trials),
    }


def _latencies(trials: _Trials) -> dict:
    return {
        "read_p50_ms": _percentile(trials.read_ms, 0.50),
        "read_p99_ms": _percentile(trials.read_ms, 0.99),
        "write_p50_ms": _percentile(trials.write_ms, 0.50),
        "write_p99_ms": _percentile(trials.write_ms, 0.99),
        "p99_ms": _percentile(trials.read_ms + trials.write_ms, 0.99),
        "mean_ms": statistics.fmean(trials.read_ms + trials.write_ms) if trials.write_ms else None,
        "unanswered": trials.unanswered,
    }


def jobs(sweep: Sweep) -> list[tuple]:
    """One job per configuration, for worker processes."""
    return [(sweep, "quorum", q) for q in sweep.quorums] + [(sweep, "replication", m) for m in sweep.replication]


def run_job(job: tuple, progress: Tick = None) -> dict:
    """One configuration of ``jobs(sweep)``; ``progress`` is told of each trial as it ends."""
    sweep, kind, what = job
    if kind == "quorum":
        n, r, w = what
        return measure_quorum(sweep, n, r, w, progress)
    return measure_replication(sweep, what, progress=progress)
