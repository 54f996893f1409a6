"""A stateful Hypothesis test of a protocol under faults: the pattern, ready to subclass.

    from faults import Cluster, Workload
    from faults.machine import ClusterMachine

    class LinKVMachine(ClusterMachine):
        cluster = Cluster("lin-kv", nodes=3)
        workload = Workload(clients=3, rate=40, keys=2, timeout=0.5)

    TestLinKV = LinKVMachine.TestCase

How it works. ``boot`` (the initializer) draws a seed, builds the cluster
and starts the workload, which runs in the background for the whole test.
Each rule injects a fault *now* (``partition`` of a drawn shape, ``crash``
of k servers, ``hostile``: the hostile network on every link, client links
included, with drawn settings; ``heal`` of everything) or only lets traffic
flow (``traffic``), then lets ``wait`` virtual seconds pass. After every step the
invariant runs the checks (``checks``, by default linearizability) on the
history so far, and fails with the seed, the schedule of faults applied and
the time reached: exactly what :meth:`ClusterMachine.replay` needs to run
the same simulation again, bit for bit (both apply each fault after
``sim.run(until=its time)``, through :class:`faults.Session`). Hypothesis
shrinks the rules toward fewer faults and shorter waits, so the schedule it
prints is close to minimal.

Keep runs small (a few nodes, tens of ops per second, waits under a second)
and settings modest (``stateful_step_count`` about 10): every step checks the
whole history again. Use ``faults.strategies.simulation_settings`` (no
deadline, no explain phase, whose tracer slows simulations tenfold)::

    LinKVMachine.TestCase.settings = simulation_settings(max_examples=20, stateful_step_count=10)
"""

from __future__ import annotations

import json
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from faults.chaos import Session
from faults.checks import CheckResult, run_check, validate_check
from faults.scenario import Cluster, Network
from faults.schedule import Schedule, Step
from faults.strategies import RANDOM_SHAPES, hostile_settings, millis, seeds
from faults.workload import Workload

__all__ = ["ClusterMachine"]


class ClusterMachine(RuleBasedStateMachine):
    """Rules that partition, crash, heal and send traffic; an invariant that runs the checks.

    Subclass and set the class attributes:

    Attributes:
        cluster: the protocol and its servers.
        workload: the background traffic (its ``duration`` is ignored: it runs throughout).
        network: link defaults.
        checks: ``{name: params}`` as in a scenario's ``[checks]``.
        max_wait: the longest wait a rule draws, in virtual seconds.
        shapes: the partition shapes the ``partition`` rule may apply (it draws
            from every shape and only waits when it draws one not listed).
    """

    cluster: ClassVar[Cluster] = Cluster("lin-kv", nodes=3)
    workload: ClassVar[Workload] = Workload(clients=3, rate=30.0, keys=2, timeout=0.5)
    network: ClassVar[Network] = Network()
    checks: ClassVar[dict] = {"linearizable": {}}
    max_wait: ClassVar[float] = 1.0
    shapes: ClassVar[tuple] = RANDOM_SHAPES

    def __init__(self):
        super().__init__()
        self.session: Session | None = None
        self.seed: int | None = None

    @initialize(seed=seeds())
    def boot(self, seed: int) -> None:
        """Build the cluster for ``seed`` and start the background traffic."""
        self.seed = seed
        self.session = self.start(seed)

    @classmethod
    def start(cls, seed: int) -> Session:
        """The session of ``seed``: cluster built, traffic flowing, no fault yet."""
        workload = Workload(**{**cls.workload.to_dict(), "duration": None})
        return Session(cls.cluster, workload, seed, cls.network)

    # -- rules ------------------------------------------------------------------------------

    @rule(shape=st.sampled_from(RANDOM_SHAPES), wait=millis(1.0))
    def partition(self, shape: str, wait: float) -> None:
        """Cut the servers into a drawn shape now (if the class allows it), then let traffic flow."""
        if shape in self.shapes and len(self.cluster.names) >= (3 if shape in ("bridge", "majorities-ring") else 2):
            self._inject("partition", {"shape": shape})
        self._wait(wait)

    @rule(count=st.integers(1, 2), wait=millis(1.0))
    def crash(self, count: int, wait: float) -> None:
        """Crash one or two servers now (they stay down until a heal), then let traffic flow."""
        self._inject("crash", {"count": count})
        self._wait(wait)

    @rule(settings=st.just({}) | hostile_settings(), wait=millis(1.0))
    def hostile(self, settings: dict, wait: float) -> None:
        """Make every link hostile now (the preset, or drawn settings), then let traffic flow."""
        self._inject("hostile", settings)
        self._wait(wait)

    @rule(wait=millis(1.0))
    def heal(self, wait: float) -> None:
        """Stop every fault (heal cuts, restart crashed nodes), then let traffic flow."""
        self._inject("heal", {})
        self._wait(wait)

    @rule(wait=millis(1.0))
    def traffic(self, wait: float) -> None:
        """Only let traffic flow for a while."""
        self._wait(wait)

    @property
    def _booted(self) -> Session:
        """The session ``boot`` made: Hypothesis runs it before any rule."""
        if self.session is None:
            raise AssertionError("unreachable: boot() runs before every rule")
        return self.session

    def _inject(self, kind: str, params: dict) -> None:
        session = self._booted
        session.apply(Step(session.now, kind, None, params))

    def _wait(self, wait: float) -> None:
        session = self._booted
        session.advance(session.now + wait * self.max_wait)

    def teardown(self) -> None:
        if self.session is not None:
            self.session.close()

    # -- the invariant -------------------------------------------------------------------------

    @invariant()
    def checks_pass(self) -> None:
        """Run the class's checks on the history so far; fail with the seed and schedule that replay it."""
        if self.session is None:
            return
        failed = [r for r in self.judge(self.session) if r.passed is False or (r.passed is None and not _pending(r))]
        if failed:
            raise AssertionError(self.reproduction(failed))

    @classmethod
    def judge(cls, session: Session) -> list[CheckResult]:
        """Run the machine's checks on the session's history so far."""
        history, errors = list(session.sim.history), session.sim.errors
        return [run_check(name, validate_check(name, params), history, errors) for name, params in cls.checks.items()]

    def reproduction(self, failed: list[CheckResult]) -> str:
        """What failed, and the seed, schedule and time that replay it."""
        session = self._booted
        lines = [f"{r.name}: {r.summary}" for r in failed]
        schedule = json.dumps(session.schedule.to_dict())
        lines += [
            f"seed = {self.seed}",
            f"until = {session.now!r}",
            f"digest = {session.sim.trace_digest()}",
            f"schedule = {schedule}",
            f"replay: {type(self).__name__}.replay(seed={self.seed}, "
            f"schedule=Schedule.from_dict(json.loads(schedule)), until={session.now!r})",
        ]
        return "\n".join(lines)

    @classmethod
    def replay(cls, seed: int, schedule: Schedule, until: float) -> tuple[Session, list[CheckResult]]:
        """Run ``schedule`` (open-ended steps and heals) from ``seed`` to ``until``; return the session and verdicts."""
        session = cls.start(seed)
        for step in schedule:
            session.apply(step)
        session.advance(until)
        return session, cls.judge(session)


def _pending(result: CheckResult) -> bool:
    """An unknown that only means "not yet": mid-run, an acknowledged write's key may not have been read since.

    The invariant runs after every step, on the history so far; lost-writes judges against each key's last
    read, and is unknown until there is one (a chaos run reads every key at its end). Any other unknown (a
    search out of steps, a check with nothing to compare) fails, as a failed check does.
    """
    return result.name == "lost-writes" and result.details.get("acknowledged") == 0
