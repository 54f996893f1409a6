"""Chaos on a real cluster: a scenario's workload and faults on real nodes, in real time.

    from emulator.transport import RealCluster
    from faults import load_scenario
    from faults.real import run_real

    cluster = await RealCluster.from_state(state, seed=7)      # or RealCluster.local({...})
    try:
        result = await run_real(load_scenario("scenarios/lin-kv-partitions.toml"), cluster, seed=7,
                                time_scale=0.2)
    finally:
        await cluster.close()
    result.passed, result.counts, result.faults, result.checks     # as for run_chaos

``capsim chaos --real`` starts the node processes, calls this and stops them.

One code path with the simulation. A ``RealCluster`` has the simulation's
fault methods, names and clock (``now``, ``servers``, ``alive``, ``rng``,
``record_nemesis``, ``network.partition``...), so the same pieces run on it:

- the same :class:`~faults.workload.Workload` coroutine, its clients being
  ``emulator.Client`` nodes hosted on the real transport: one op in flight
  per process, an ``info`` retires the process;
- the same schedule, ``scenario_schedule(scenario, seed)``: the faults the
  simulation draws for that seed, played by the same :meth:`Schedule.run`
  coroutine, which waits with ``asyncio.sleep`` (real seconds here);
- the same :class:`~faults.injector.Injector` and nemeses (a cluster is a
  :class:`~faults.target.FaultTarget`: its cuts have ids, its links overrides);
- the same checks (:func:`faults.chaos.judge_history`) on the history.

Node faults are the cluster's: on node processes (``capsim chaos --real``)
crash is SIGKILL, restart starts the same command again (storage kept),
pause is SIGSTOP; on in-process hosts (``RealCluster.local``) see
:mod:`emulator.transport.cluster`.

With the cluster's ``seed`` equal to the run's, the injector, the workload
and the nodes draw from the streams the simulation uses, so the faults hit
the same nodes and the clients make the same choices; the timing is real,
so the run is not replayable, and says so. A :mod:`time scale
<faults.timescale>` compresses the scenario.

What it gives up, beyond what the transport gives up (extra latency adds to
loopback's; holds apply at senders):

- a fault takes effect when each node has had its control call, a few ms
  after the ``start-*`` op is recorded; an op invoked in those ms may not see it;
- node errors and events come from each node's ``/status``, polled every
  second and at the end: a process crashed less than a second after an
  error takes it along (its log still has it); traffic counters are those
  of each node's last incarnation.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import emulator as em
from emulator.transport import ControlError, RealCluster
from emulator.transport.network import traffic
from faults.chaos import ChaosResult, judge_history, scenario_schedule
from faults.injector import Injector
from faults.scenario import Network, Scenario
from faults.schedule import Schedule
from faults.timescale import scale_scenario, scale_schedule
from faults.workload import Workload

__all__ = ["NodeWatch", "RealChaosResult", "RealSession", "replay_real", "run_real"]


class NodeWatch:
    """Polls every live server's ``/status`` while a run lasts; keeps the last answers and every error seen.

    Args:
        cluster: the cluster to watch.
        interval: seconds between polls.
        timeout: seconds a node has to answer (a paused process never does).
    """

    def __init__(self, cluster: RealCluster, interval: float = 1.0, timeout: float = 0.5):
        self.cluster, self.interval, self.timeout = cluster, interval, timeout
        #: the last ``/status`` answer of each server
        self.statuses: dict[str, dict] = {}
        self._errors: dict[tuple, dict] = {}
        self._events: dict[tuple, dict] = {}
        self._task = cluster.loop.create_task(self._run(), name="capsim-node-watch")

    async def poll(self) -> None:
        """Ask every live server now."""
        names = [name for name in self.cluster.servers if self.cluster.alive(name)]
        answers = await asyncio.gather(*(self._status(name) for name in names))
        for name, status in zip(names, answers):
            if status is None:
                continue
            self.statuses[name] = status
            for error in status.get("errors", []):
                self._errors.setdefault((error["node"], error["time"], error["where"]), error)
            for event in status.get("events", []):
                self._events.setdefault((event["node"], event["time"], event["what"]), event)

    async def _status(self, name: str) -> dict | None:
        try:
            return await asyncio.wait_for(self.cluster.status(name), self.timeout)
        except (ControlError, TimeoutError):
            return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    @property
    def stopped(self) -> bool:
        return self._task.done()

    async def stop(self) -> None:
        """Stop polling, then poll one last time."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.poll()

    def errors(self) -> list[dict]:
        """Every node error seen, oldest first, ``time`` in seconds of the cluster's clock."""
        return self._timed(self._errors.values())

    def events(self) -> list[dict]:
        """Every protocol event seen (``Node.event``), oldest first, timed as ``errors``."""
        return self._timed(self._events.values())

    def _timed(self, entries) -> list[dict]:
        origin = time.time() - self.cluster.now  # wall-clock ok: nodes stamp errors with the wall clock
        out = [{**entry, "time": round(entry["time"] - origin, 6), "wall_time": entry["time"]} for entry in entries]
        return sorted(out, key=lambda entry: entry["time"])


class RealSession:
    """The chaos :class:`~faults.chaos.Session` on a real cluster: traffic flowing, faults in real time.

    Made by ``await RealSession.open(...)``; call from a coroutine on the cluster's loop.
    """

    def __init__(
        self,
        cluster: RealCluster,
        workload: Workload,
        injector: Injector,
        clients: list,
        traffic: asyncio.Task,
        watch: NodeWatch,
    ):
        self.cluster, self.workload, self.injector = cluster, workload, injector
        self.clients, self.traffic, self.watch = clients, traffic, watch

    @classmethod
    async def open(
        cls, cluster: RealCluster, workload: Workload, network: Network | None = None, primary=None
    ) -> RealSession:
        """Set the network's defaults, add the clients (seeded from the cluster), start the clock and the traffic.

        The cluster's clock starts again here: history times count from the
        start of traffic, as in the simulation.
        """
        if network is not None:
            settings = network.kwargs()
            if not settings.pop("fifo"):
                raise em.ConfigError(
                    "network.fifo = false is for simulated runs only: real links keep their "
                    "order except the reordered share; use reorder = 1.0 instead"
                )
            await cluster.network.set_defaults(**settings)
        clients = [await cluster.add_client(name, seed=cluster.seed) for name in workload.client_names()]
        cluster.reset_clock()
        injector = Injector(cluster, primary=primary)
        return cls(cluster, workload, injector, clients, workload.start(cluster, clients), NodeWatch(cluster))

    @property
    def now(self) -> float:
        return self.cluster.now

    async def play(self, schedule: Schedule, until: float) -> None:
        """Apply ``schedule`` (times in real seconds from now), then wait until ``until`` seconds."""
        await schedule.run(self.cluster, self.injector, until=until)

    async def finish(self) -> None:
        """Let the traffic end: no new ops after its duration, in-flight ones end by their timeout."""
        if self.workload.duration is not None:
            end = max(self.now, self.workload.duration) + self.workload.drain()
            await asyncio.wait({self.traffic}, timeout=max(0.0, end - self.now))
        await self.close()
        error = None if self.traffic.cancelled() else self.traffic.exception()
        if error is not None:
            raise error

    async def close(self) -> None:
        """Stop the traffic now and collect the nodes' last statuses (idempotent)."""
        if not self.traffic.done():
            self.traffic.cancel()
            await asyncio.gather(self.traffic, return_exceptions=True)
        if not self.watch.stopped:
            await self.watch.stop()


@dataclass
class RealChaosResult(ChaosResult):
    """What a real run did and what the checks said; ``sim`` is the cluster, ``schedule`` in scenario seconds."""

    # The base's summary() and write(), which read a Simulation's trace, are overridden below.
    sim: RealCluster = field(repr=False)  # type: ignore[assignment]  # a cluster where the base has a Simulation
    time_scale: float = 1.0
    #: seconds of real time from the start of traffic to the end of the run
    elapsed: float = 0.0
    #: the last ``/status`` of each server
    statuses: list = field(default_factory=list)
    node_errors: list = field(default_factory=list)
    events: list = field(default_factory=list)
    #: control calls that failed (a fault not applied on some node)
    control_errors: list = field(default_factory=list)
    network: dict = field(default_factory=dict)

    def command(self) -> str:
        """The command line that runs the scenario again on real processes (not a replay: timing is real)."""
        scale = f" --time-scale {self.time_scale:g}" if self.time_scale != 1.0 else ""
        return f"capsim chaos --real {shlex.quote(self.scenario.source)} --seed {self.seed}{scale}"

    def simulate_command(self) -> str:
        """The command line that plays the same faults on the same workload in virtual time."""
        return f"capsim chaos {shlex.quote(self.scenario.source)} --seed {self.seed}"

    def summary(self) -> dict:
        """The run as JSON-compatible data (``summary.json``); times in real seconds from the start of traffic."""
        return {
            **self._summary(),
            "real": True,
            "time_scale": self.time_scale,
            "real_time": self.elapsed,
            "node_errors": len(self.node_errors),
            "control_errors": len(self.control_errors),
            "network": self.network,
            "rerun": self.command(),
            "simulate": self.simulate_command(),
        }

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``history.jsonl``, ``summary.json``, ``statuses.json`` and ``errors.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"history": self.history.write(directory / "history.jsonl")}
        documents = {
            "summary": self.summary(),
            "statuses": self.statuses,
            "errors": {"node_errors": self.node_errors, "control_errors": self.control_errors, "events": self.events},
        }
        for name, data in documents.items():
            paths[name] = directory / f"{name}.json"
            paths[name].write_text(json.dumps(data, indent=2, default=repr) + "\n", encoding="utf-8")
        return paths


async def run_real(
    scenario: Scenario, cluster: RealCluster, seed: int | None = None, time_scale: float = 1.0
) -> RealChaosResult:
    """Run ``scenario``'s workload and faults on ``cluster`` in real time, and judge the history.

    The cluster's servers must be the scenario's (``n0``..), running its
    protocol with fresh storage (the checkers assume every key starts empty).
    Give the cluster the same seed for the simulation's choices. The caller
    owns the cluster: this neither starts nor closes it.

    Raises:
        ConfigError: the cluster does not fit the scenario, or a fault does not fit the cluster.
    """
    seed = scenario.seed if seed is None else seed
    return await replay_real(scenario, cluster, seed, scenario_schedule(scenario, seed), time_scale)


async def replay_real(
    scenario: Scenario, cluster: RealCluster, seed: int, schedule: Schedule, time_scale: float = 1.0
) -> RealChaosResult:
    """:func:`run_real` with ``schedule`` (in scenario seconds) instead of the scenario's own faults."""
    if cluster.servers != scenario.cluster.names:
        raise em.ConfigError(
            f"the scenario's servers are {', '.join(scenario.cluster.names)}; this cluster has "
            f"{', '.join(cluster.servers)}: start one with those names"
        )
    scaled = scale_scenario(scenario, time_scale)
    played = scale_schedule(schedule, time_scale)
    session = await RealSession.open(cluster, scaled.workload, scaled.network, scenario.cluster.primary)
    try:
        await session.play(played, until=max(scaled.duration, played.end))
        await session.finish()
    finally:
        await session.close()
    watch = session.watch
    errors = watch.errors()
    result = RealChaosResult(
        scenario,
        seed,
        schedule,
        cluster,
        session.injector,
        time_scale=time_scale,
        elapsed=cluster.now,
        statuses=[watch.statuses[n] for n in sorted(watch.statuses)],
        node_errors=errors,
        events=watch.events(),
        control_errors=list(cluster.errors),
        network=traffic(list(watch.statuses.values())),
    )
    result.checks = judge_history(
        scaled, cluster.history, [f"{e['node']} at {e['time']:.3f} s in {e['where']}: {e['error']}" for e in errors]
    )
    return result
