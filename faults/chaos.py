"""The chaos runner: a scenario, a seed, a run, a history, verdicts.

    from faults import load_scenario, run_chaos

    result = run_chaos(load_scenario("scenarios/lin-kv-partitions.toml"), seed=7)
    result.passed                       # every check passed
    result.verdict                      # "PASSED", "FAILED" or "UNKNOWN"
    result.counts                       # {"ok": .., "fail": .., "info": ..}
    result.faults                       # {"partition": 3, "crash": 1}
    for c in result.checks: print(c.name, c.verdict, c.summary)
    result.write("out/")                # history.jsonl, trace.jsonl, summary.json

A run: build the cluster (servers ``n0``..), add the clients (``c0``..), start
the workload as a task, then play one merged :class:`Schedule` (every
phase's faults shifted to the phase's start, a ``heal`` step where a phase
asks for one) from outside the simulation with :meth:`Schedule.play`, then
let the in-flight operations finish (within the workload's ``drain()``: one
client timeout, and the final reads when it asks for them) and run the
checks. The seed fixes the random nemesis, the targets of every fault, the
network and the workload: ``replay(scenario, seed, result.schedule)`` gives
the same trace digest.

:class:`Session` is the same machinery, step by step, for callers that
decide the faults as they go (the stateful test machine of
:mod:`faults.machine`).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import emulator as em
from emulator.check.ops import NEMESIS, pairs_shared
from emulator.rng import derive_seed
from faults.checks import CheckResult, merged, run_check
from faults.injector import Injector
from faults.record import KINDS
from faults.scenario import Cluster, Network, Scenario
from faults.schedule import HEAL, Schedule, Step
from faults.workload import Workload

__all__ = ["ChaosResult", "Session", "replay", "replica_copies", "run_chaos", "scenario_schedule"]


class Session:
    """A cluster with traffic flowing, to which faults are applied as time goes on.

    Args:
        cluster: the nodes to build.
        workload: the clients and their traffic.
        network: the network's settings (None: ``Network()``'s defaults).
        seed: the root seed.
        keep_trace: keep the trace records (for ``trace.jsonl``).
    """

    def __init__(
        self, cluster: Cluster, workload: Workload, seed: int, network: Network | None = None, keep_trace: bool = False
    ):
        self.workload = workload
        self.sim = cluster.build(seed, network, keep_trace)
        self.injector = Injector(self.sim, primary=cluster.primary)
        self.clients = cluster.add_clients(self.sim, workload)
        self.traffic = workload.start(self.sim, self.clients)
        self.sim.run(until=self.sim.now)  # start the nodes and the traffic
        #: the steps applied so far by ``apply``
        self.steps: list[Step] = []

    @property
    def now(self) -> float:
        return self.sim.now

    def apply(self, step: Step) -> None:
        """Run to ``step.at`` and start its nemesis (open-ended: a later ``heal`` step stops it)."""
        if step.duration is not None:
            raise em.ConfigError("Session.apply takes steps without a duration; stop faults with a heal step")
        self.sim.run(until=step.at)
        if step.kind == HEAL:
            self.injector.heal()
        else:
            self.injector.start(step.nemesis())
        self.steps.append(step)

    def advance(self, until: float) -> None:
        """Let the simulation run to virtual time ``until``."""
        self.sim.run(until=until)

    def play(self, schedule: Schedule, until: float) -> None:
        """Apply a whole schedule, then run to ``until``."""
        schedule.play(self.sim, self.injector, until=until)

    def finish(self) -> None:
        """Let the traffic end: no new ops after its duration, in-flight ones end by their timeout."""
        if self.workload.duration is not None:
            self.sim.run(until=max(self.sim.now, self.workload.duration) + self.workload.drain())
        self.close()
        error = None if self.traffic.cancelled() else self.traffic.exception()
        if error is not None:
            raise error

    def close(self) -> None:
        """Stop the traffic now (a session that will not run again)."""
        if not self.traffic.done():
            self.traffic.cancel()
            self.sim.run(until=self.sim.now)
        self.sim.close()

    @property
    def schedule(self) -> Schedule:
        """The steps applied so far, as a schedule that ``replay`` accepts."""
        return Schedule(self.steps)


@dataclass
class ChaosResult:
    """What a chaos run did and what the checks said."""

    scenario: Scenario
    seed: int
    schedule: Schedule
    sim: em.Simulation = field(repr=False)
    injector: Injector = field(repr=False)
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def history(self) -> em.History:
        return self.sim.history

    @property
    def passed(self) -> bool:
        """True when every check passed (an unknown verdict is not a pass)."""
        return all(c.passed is True for c in self.checks)

    @property
    def verdict(self) -> str:
        """``"PASSED"``, ``"FAILED"`` or ``"UNKNOWN"``: the checks' verdicts merged as Jepsen merges ``:valid?``.

        FAILED when a check failed; else UNKNOWN when a check could not tell
        (``passed`` None: Jepsen's ``:unknown``); else PASSED (no checks at
        all too). PASSED exactly when ``passed`` is True; the word ``capsim
        chaos`` prints for the run.
        """
        return {True: "PASSED", False: "FAILED", None: "UNKNOWN"}[merged(self.checks)]

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.passed is not True]

    @property
    def counts(self) -> dict[str, int]:
        """Completed client operations by type; one never completed counts as ``info``."""
        counts = {"ok": 0, "fail": 0, "info": 0}
        for _, done in self.history.completions():
            counts["info" if done is None else done["type"]] += 1
        return counts

    def counts_by_f(self) -> dict[str, dict[str, int]]:
        """``{f: {"ok", "fail", "info"}}`` for each operation name."""
        out: dict[str, dict[str, int]] = {}
        for invoke, done in self.history.completions():
            row = out.setdefault(invoke["f"], {"ok": 0, "fail": 0, "info": 0})
            row["info" if done is None else done["type"]] += 1
        return dict(sorted(out.items()))

    @property
    def faults(self) -> dict[str, int]:
        """How many faults of each kind were started."""
        counts: dict[str, int] = {}
        for entry in self.injector.log:
            counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
        return {k: counts[k] for k in KINDS if k in counts}

    def command(self) -> str:
        """The command line that replays this run (the scenario's path quoted for a POSIX shell)."""
        return f"capsim chaos {shlex.quote(self.scenario.source)} --seed {self.seed}"

    def _summary(self) -> dict:
        """What every kind of run reports (``summary`` adds its own)."""
        return {
            "scenario": self.scenario.name,
            "source": self.scenario.source,
            "seed": self.seed,
            "verdict": self.verdict,
            "passed": self.passed,
            "counts": self.counts,
            "by_f": self.counts_by_f(),
            "faults": self.faults,
            "fault_log": self.injector.log,
            "schedule": self.schedule.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
        }

    def summary(self) -> dict:
        """Everything above as JSON-compatible data (``summary.json``)."""
        return {
            **self._summary(),
            "virtual_time": self.sim.now,
            "node_errors": len(self.sim.errors),
            "network": self.sim.network.stats,
            "digest": self.sim.trace_digest(),
            "replay": self.command(),
        }

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``history.jsonl``, ``summary.json`` and (if kept) ``trace.jsonl`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"history": self.history.write(directory / "history.jsonl")}
        if self.sim.trace.keep:
            paths["trace"] = self.sim.trace.write_jsonl(directory / "trace.jsonl")
        paths["summary"] = directory / "summary.json"
        paths["summary"].write_text(json.dumps(self.summary(), indent=2, default=repr) + "\n", encoding="utf-8")
        return paths


def scenario_schedule(scenario: Scenario, seed: int) -> Schedule:
    """The merged schedule of every phase for ``seed``: each phase's steps shifted to its start."""
    merged, start = Schedule(), 0.0
    for i, phase in enumerate(scenario.phases):
        if phase.heal:
            merged = merged + Schedule([Step(start, HEAL)])
        merged = merged + phase.schedule(derive_seed(seed, f"phase:{i}"), scenario.cluster.nodes).shifted(start)
        start += phase.duration
    return merged


def run_chaos(scenario: Scenario, seed: int | None = None, keep_trace: bool = False) -> ChaosResult:
    """Run ``scenario`` with ``seed`` (default: the scenario's) and judge it.

    Raises:
        ConfigError: the scenario does not fit together (e.g. isolate-primary without a primary).
    """
    seed = scenario.seed if seed is None else seed
    return replay(scenario, seed, scenario_schedule(scenario, seed), keep_trace)


def replay(scenario: Scenario, seed: int, schedule: Schedule, keep_trace: bool = False) -> ChaosResult:
    """Run ``scenario``'s cluster and workload under ``schedule`` instead of its own faults, and judge it."""
    session = Session(scenario.cluster, scenario.workload, seed, scenario.network, keep_trace)
    session.play(schedule, until=max(scenario.duration, schedule.end))
    session.finish()
    result = ChaosResult(scenario, seed, schedule, session.sim, session.injector)
    result.checks = judge(scenario, session.sim)
    return result


def judge(scenario: Scenario, sim: em.Simulation) -> list[CheckResult]:
    """Run the scenario's checks on the whole history, then each phase's on its own window."""
    keys = [*range(scenario.workload.keys), *(k for k in scenario.workload.written if not isinstance(k, int))]
    replicas = replica_copies(sim, keys) if "replicas-agree" in scenario.checks else None
    return judge_history(scenario, sim.history, sim.errors, replicas)


def replica_copies(sim: em.Simulation, keys) -> dict | None:
    """Key -> {server: values} from each live owner's own copy (``node.replica(key)``); None without replicas.

    The owners are ``node.owners(key)`` where the protocol tells (a quorum
    store), else every live server.
    """
    live: list[Any] = [sim.node(name) for name in sim.servers if sim.alive(name)]  # replica(), owners(): duck-typed
    if not live or not all(hasattr(node, "replica") for node in live):
        return None
    copies = {}
    for key in keys:
        owners = live[0].owners(key) if hasattr(live[0], "owners") else [node.name for node in live]
        copies[key] = {node.name: node.replica(key) for node in live if node.name in owners}
    return copies


def judge_history(scenario: Scenario, history, errors=(), replicas: dict | None = None) -> list[CheckResult]:
    """:func:`judge` for any history (times from the start of traffic) and list of node errors."""
    history = list(history)  # this list stays as it is while the checks run: they may share its pairing
    servers = scenario.cluster.names
    with pairs_shared():
        results = [
            run_check(name, params, history, errors, replicas=replicas, servers=servers)
            for name, params in scenario.checks.items()
        ]
        start = 0.0
        for phase in scenario.phases:
            window = (start, start + phase.duration)
            for name, params in phase.checks.items():
                results.append(run_check(name, params, history, errors, window, phase.name, servers=servers))
            start += phase.duration
    if not any(op["type"] == "ok" and op["process"] != NEMESIS for op in history):
        # Every check passes a history with no ok op (Knossos too: vacuously linearizable), so the run tested
        # nothing: unknown, as ``capsim cluster workload`` says "nothing to check". Jepsen's stats checker
        # would fail it instead (:valid? false when an :f has no :ok).
        invoked = sum(1 for op in history if op["type"] == "invoke" and op["process"] != NEMESIS)
        results.append(
            CheckResult(
                "operations",
                None,
                f"no client operation succeeded ({invoked} invoked): the checks had nothing to judge",
            )
        )
    return results
