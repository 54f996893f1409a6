"""Hypothesis strategies: schedules in bounds, shrinking toward fewer, shorter, earlier faults; replayable failures."""

import re

import pytest
from hypothesis import example, find, given

from faults import KINDS, Schedule, Step, replay
from faults.scenario import Network
from faults.strategies import hostile_networks, hostile_settings, schedules, seeds, simulation_settings, steps
from tests.common.faults_nodes import small_scenario

FIND = simulation_settings(database=None, derandomize=True, max_examples=300)
LINKV = small_scenario(duration=3.0)
LOCALKV = small_scenario("tests.common.faults_nodes:LocalKV", duration=2.0)


@simulation_settings(max_examples=60)
@given(seed=seeds(), schedule=schedules(5, 10.0, max_steps=4))
def test_schedules_stay_within_their_bounds(seed, schedule):
    """Every drawn schedule has at most 4 steps, each of a known kind, starting and ending within [0, 10]."""
    assert 0 <= seed < 2**32 and len(schedule) <= 4
    for step in schedule:
        assert step.kind in KINDS and 0 <= step.at <= step.end <= 10.0
        step.nemesis()  # parameters valid for the kind


@simulation_settings(max_examples=30)
@given(schedule=schedules(2, 5.0, kinds=["partition"], heal=True))
def test_shapes_fit_the_cluster_and_heal_ends_the_schedule(schedule):
    """On two nodes only halves and isolate-one are drawn; heal=True appends a heal at the end."""
    assert schedule.steps[-1] == Step(5.0, "heal")
    assert {s.params["shape"] for s in schedule.steps[:-1]} <= {"halves", "isolate-one"}


@simulation_settings(max_examples=50)
@given(settings=hostile_settings(), network=hostile_networks())
def test_hostile_settings_always_duplicate_reorder_and_draw_heavy_tailed_latency(settings, network):
    """Every drawn hostile network duplicates and reorders (> 0) with a Pareto latency; a hostile step takes them."""
    for drawn in (settings, network.kwargs()):
        assert drawn["duplicate"] > 0 and drawn["reorder"] > 0 and 0 <= drawn["loss"] <= 0.1
    assert isinstance(network, Network) and network.fifo and type(network.latency).__name__ == "Pareto"
    assert Step(0.0, "hostile", 1.0, settings).nemesis().params["latency"].alpha >= 1.1


def test_hostile_steps_are_drawn_with_the_preset_or_drawn_settings():
    """schedules(kinds=['hostile']) yields hostile steps: the preset itself, or every link with drawn settings."""
    found = find(schedules(3, 5.0, kinds=["hostile"]), lambda s: any(len(step.params) > 1 for step in s), settings=FIND)
    step = next(step for step in found if len(step.params) > 1)
    assert step.kind == "hostile" and step.params["links"] == "all" and step.params["duplicate"] > 0


def test_the_simplest_schedule_is_empty_then_one_fault_at_zero_lasting_zero():
    """Shrinking a schedule with any step gives one step: the first kind, at 0, for 0 s, simplest parameters."""
    assert find(schedules(5, 10.0), lambda s: True, settings=FIND) == Schedule()
    found = find(schedules(5, 10.0), lambda s: len(s) > 0, settings=FIND)
    assert found == Schedule([Step(0.0, "partition", 0.0, {"shape": "halves", "direction": "both"})])


def test_shrinking_goes_toward_fewer_shorter_and_earlier_faults():
    """'A crash of at least 2 s starting at 3 s or later' shrinks to that one crash, exactly at the boundary."""

    def wanted(schedule):
        return any(s.kind == "crash" and s.duration >= 2.0 and s.at >= 3.0 for s in schedule)

    found = find(schedules(5, 10.0, kinds=["partition", "crash"]), wanted, settings=FIND)
    assert found == Schedule([Step(3.0, "crash", 2.0, {"count": 1})])


def test_steps_refuse_unknown_kinds():
    """steps(kinds=...) with a kind that does not exist says which kinds exist."""
    with pytest.raises(ValueError, match="kinds must be a non-empty list from partition"):
        steps(3, 1.0, kinds=["flood"])


# -- the pattern: a property over seeds and schedules --------------------------------------------------


@simulation_settings(max_examples=8)
@given(
    seed=seeds(), schedule=schedules(3, 3.0, kinds=("partition", "crash", "pause", "loss", "duplicate"), max_steps=3)
)
@example(seed=268435456, schedule=Schedule([Step(0.0, "crash", 2.653, {"count": 1})]))  # no op succeeds: UNKNOWN
def test_lin_kv_stays_linearizable_under_any_schedule(seed, schedule):
    """The documented pattern: for any seed and schedule, lin-kv's history is never found not linearizable."""
    result = replay(LINKV, seed, schedule)
    assert result.verdict != "FAILED", [c.summary for c in result.failed]


def test_a_schedule_that_leaves_nothing_to_judge_is_unknown_not_failed():
    """The crash of lin-kv's leader through the run: no operation succeeds, so the run is UNKNOWN, not PASSED
    (the documented property asks for not FAILED: this is no counterexample)."""
    result = replay(LINKV, 268435456, Schedule([Step(0.0, "crash", 2.653, {"count": 1})]))
    assert result.verdict == "UNKNOWN" and not result.passed
    assert [c.summary for c in result.failed] == [
        "no client operation succeeded (24 invoked): the checks had nothing to judge"
    ]


def test_a_store_that_reads_locally_shrinks_to_one_short_partition():
    """At seed 0 LocalKV is fine without faults; the smallest schedule that breaks it is one brief partition at t=0."""
    assert replay(LOCALKV, 0, Schedule()).passed
    found = find(
        schedules(3, 2.0, kinds=["partition", "crash", "loss"], max_steps=4),
        lambda s: not replay(LOCALKV, 0, s).passed,
        settings=FIND,
    )
    (step,) = found.steps
    assert step.kind == "partition" and step.at == 0.0 and step.duration < 1.0


def test_a_failing_property_prints_a_seed_and_schedule_that_replay_the_failure():
    """Hypothesis's falsifying example (seed=..., schedule=Schedule([...])) pasted into replay fails the same way."""

    @simulation_settings(database=None, derandomize=True, max_examples=50)
    @given(seed=seeds(), schedule=schedules(3, 2.0, kinds=["partition"], max_steps=2))
    def local_kv_is_linearizable(seed, schedule):
        assert replay(LOCALKV, seed, schedule).passed

    with pytest.raises(AssertionError) as caught:
        local_kv_is_linearizable()
    printed = "\n".join(getattr(caught.value, "__notes__", []))
    seed = int(re.search(r"seed=(\d+)", printed).group(1))
    schedule = eval(re.search(r"schedule=(Schedule\(.*\)),?\n", printed).group(1), {"Schedule": Schedule, "Step": Step})
    first, second = replay(LOCALKV, seed, schedule), replay(LOCALKV, seed, schedule)
    assert not first.passed and first.sim.trace_digest() == second.sim.trace_digest()
