"""Fault policy: nemeses, schedules, scenario files, workloads and the chaos runner.

    import faults

    schedule = faults.Schedule().add(1.0, "partition", 3.0, shape="halves").add(5.0, "crash", 2.0, count=1)
    result = faults.run_chaos(faults.load_scenario("scenarios/lin-kv-partitions.toml"), seed=7)

The kernel (``emulator``) has the fault mechanisms; this package decides
when, which shape and how random. It imports ``emulator``, and ``nodes`` only
through ``nodes.registry.resolve``. The hypothesis strategies
(``faults.strategies``) and the stateful test machine (``faults.machine``)
import hypothesis, so they are not imported here; nor are ``faults.real``
(the same scenarios on real processes), ``faults.processes`` (on node
processes it starts and stops, ``capsim chaos --real``) and
``faults.timescale``, which bring in the aiohttp transport.
"""

from faults.chaos import ChaosResult, Session, replay, run_chaos, scenario_schedule
from faults.checks import CHECKS, CheckResult, run_check, validate_check
from faults.injector import Injector
from faults.membership import Membership
from faults.nemesis import (
    NEMESES,
    Clock,
    Crash,
    Duplicate,
    Hostile,
    Latency,
    LinkFault,
    Loss,
    Nemesis,
    Partition,
    Pause,
    Reorder,
    make_nemesis,
)
from faults.partitions import DIRECTIONS, SHAPES, Cut, cut
from faults.record import COMMON_KINDS, HEALS, KINDS, CutSpan, FaultSpan, fault_spans, record
from faults.scenario import PRESETS, Cluster, Network, Phase, Scenario, ScenarioError, load_scenario
from faults.schedule import RandomNemesis, Schedule, Step, random_schedule
from faults.spec import ParamError, distribution, distribution_spec
from faults.workload import OPERATIONS, Workload

__all__ = [
    "CHECKS",
    "COMMON_KINDS",
    "DIRECTIONS",
    "HEALS",
    "KINDS",
    "NEMESES",
    "OPERATIONS",
    "PRESETS",
    "SHAPES",
    "ChaosResult",
    "CheckResult",
    "Clock",
    "Cluster",
    "Crash",
    "Cut",
    "CutSpan",
    "Duplicate",
    "FaultSpan",
    "Hostile",
    "Injector",
    "Latency",
    "LinkFault",
    "Loss",
    "Membership",
    "Nemesis",
    "Network",
    "ParamError",
    "Partition",
    "Pause",
    "Phase",
    "RandomNemesis",
    "Reorder",
    "Scenario",
    "ScenarioError",
    "Schedule",
    "Session",
    "Step",
    "Workload",
    "cut",
    "distribution",
    "distribution_spec",
    "fault_spans",
    "load_scenario",
    "make_nemesis",
    "random_schedule",
    "record",
    "replay",
    "run_chaos",
    "run_check",
    "scenario_schedule",
    "validate_check",
]
