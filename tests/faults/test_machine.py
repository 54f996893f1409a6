"""The stateful pattern: rules that partition, crash, heal and send traffic; invariants that run the checkers."""

import json
import re

import pytest
from hypothesis import Phase
from hypothesis.stateful import run_state_machine_as_test

from faults import Cluster, Schedule, Workload
from faults.machine import ClusterMachine
from faults.strategies import simulation_settings


class LinKVMachine(ClusterMachine):
    """lin-kv on three nodes: must stay linearizable whatever the rules do."""

    cluster = Cluster("lin-kv", nodes=3)
    workload = Workload(clients=3, rate=30, keys=2, timeout=0.3)


LinKVMachine.TestCase.settings = simulation_settings(max_examples=6, stateful_step_count=8)
TestLinKVUnderFaults = LinKVMachine.TestCase


class LocalKVMachine(ClusterMachine):
    """A store that reads locally: the machine must catch it."""

    cluster = Cluster("tests.common.faults_nodes:LocalKV", nodes=3)
    workload = Workload(clients=3, rate=30, keys=2, timeout=0.3)
    checks = {"linearizable": {}, "stale-reads": {}}


def test_the_machine_catches_a_broken_store_and_prints_what_replays_it():
    """On LocalKV the invariant fails; the printed seed, schedule and time replay to the same failure and digest."""
    settings = simulation_settings(max_examples=40, stateful_step_count=8, derandomize=True, database=None)
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(LocalKVMachine, settings=settings)
    message = str(caught.value)
    fields = dict(re.findall(r"^(seed|until|digest|schedule) = (.*)$", message, re.MULTILINE))
    assert set(fields) == {"seed", "until", "digest", "schedule"}, message
    assert "LocalKVMachine.replay(seed=" in message
    schedule = Schedule.from_dict(json.loads(fields["schedule"]))
    session, results = LocalKVMachine.replay(int(fields["seed"]), schedule, float(fields["until"]))
    assert session.sim.trace_digest() == fields["digest"]
    assert any(r.passed is False for r in results)


class EveryCopyKVMachine(ClusterMachine):
    """A store that applies every copy of a request: only the hostile rule can catch it."""

    cluster = Cluster("tests.common.faults_nodes:EveryCopyKV", nodes=3)
    workload = Workload(clients=4, rate=80, keys=2, timeout=0.5)
    max_wait = 4.0


def test_the_machines_hostile_rule_catches_a_store_that_applies_duplicates():
    """The hostile rule (duplicates, reordering, latency spikes on every link) finds EveryCopyKV's bug.

    And replays it.
    """
    settings = simulation_settings(
        max_examples=60,
        stateful_step_count=8,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )  # no shrinking: speed
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(EveryCopyKVMachine, settings=settings)
    fields = dict(re.findall(r"^(seed|until|digest|schedule) = (.*)$", str(caught.value), re.MULTILINE))
    schedule = Schedule.from_dict(json.loads(fields["schedule"]))
    assert "hostile" in schedule.kinds()
    _, results = EveryCopyKVMachine.replay(int(fields["seed"]), schedule, float(fields["until"]))
    assert any(r.passed is False for r in results)


def test_replay_runs_a_schedule_of_open_ended_faults_and_heals():
    """replay applies each step at its time and returns the verdicts: lin-kv passes under a partition, crash, heal."""
    schedule = Schedule().add(0.2, "partition", shape="bridge").add(0.5, "crash", count=1).add(1.0, "heal")
    session, results = LinKVMachine.replay(9, schedule, 2.0)
    fs = [op["f"] for op in session.sim.history.nemesis_ops() if "-" in op["f"]]
    assert fs == ["start-partition", "start-crash", "stop-crash", "stop-partition"]
    assert session.now == 2.0 and [r.passed for r in results] == [True]
