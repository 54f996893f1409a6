"""Schedules: steps, timelines, plain-data round trips, playing them, and drawing them from a seed."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from faults import KINDS, ParamError, RandomNemesis, Schedule, Step, fault_spans, random_schedule
from faults.strategies import schedules
from tests.common.faults_nodes import heard, pingers


def nemesis_times(sim):
    return [(op["time"], op["f"]) for op in sim.history.nemesis_ops() if "-" in op["f"]]


def test_steps_sort_by_time_and_add_chains():
    """add() returns the schedule; steps come out sorted by start, ties in the order given."""
    schedule = Schedule().add(3.0, "crash", 1.0).add(1.0, "partition", 2.0, shape="bridge").add(1.0, "loss", 0.5)
    assert [(s.at, s.kind) for s in schedule] == [(1.0, "partition"), (1.0, "loss"), (3.0, "crash")]
    assert schedule.end == 4.0 and schedule.kinds() == {"partition": 1, "loss": 1, "crash": 1}


def test_a_bad_step_fails_when_written_not_when_it_fires():
    """A negative time, an unknown kind or parameter, or a heal with parameters raise at once."""
    with pytest.raises(ParamError, match="at: expected a number >= 0, found -1"):
        Step(-1, "crash")
    with pytest.raises(ParamError, match="kind: expected one of partition"):
        Step(0, "meteor")
    with pytest.raises(ParamError, match="shape: expected one of"):
        Step(0, "partition", 1.0, {"shape": "triangle"})
    # each names the key that is wrong (a heal with a duration named `kind`, found by a review)
    with pytest.raises(ParamError, match=r"^duration: expected none on a heal step"):
        Step(0, "heal", 1.0)
    with pytest.raises(ParamError, match=r"^count: expected no parameters on a heal step"):
        Step(0, "heal", None, {"count": 2})
    with pytest.raises(em.ConfigError, match="holds Step objects"):
        Schedule([{"at": 0, "kind": "crash"}])


def test_to_dict_and_from_dict_round_trip_through_json():
    """Every kind, a distribution included, survives to_dict -> JSON -> from_dict unchanged."""
    schedule = (
        Schedule()
        .add(0.5, "partition", 1.0, shape="halves", direction="out")
        .add(1.0, "crash", 2.0, count=2)
        .add(1.5, "pause", 0.5, nodes=["n1"])
        .add(2.0, "clock", 1.0, mode="strobe", offset=-2.5, period=0.2)
        .add(2.5, "latency", 1.0, latency=em.Uniform(0.05, 0.2), links="some")
        .add(3.0, "loss", 1.0, loss=0.25, clients=True)
        .add(3.0, "duplicate", 1.0)
        .add(3.5, "reorder", None, reorder=0.5, links=[["n0", "n1"]])
        .add(5.0, "heal")
    )
    data = json.loads(json.dumps(schedule.to_dict()))
    again = Schedule.from_dict(data)
    assert again.to_dict() == schedule.to_dict()
    assert data["steps"][4]["latency"] == {"uniform": [0.05, 0.2]}
    assert Schedule.from_dict(data["steps"]).to_dict() == schedule.to_dict()


def test_repr_is_python_that_builds_the_same_schedule():
    """eval(repr(schedule)) with faults' names in scope equals the schedule: pasteable from a test failure."""
    schedule = Schedule().add(0.25, "partition", 1.5, shape="bridge").add(2.0, "heal")
    assert eval(repr(schedule), {"Schedule": Schedule, "Step": Step}) == schedule


def test_str_reads_as_a_timeline():
    """str() has one line per step: time, kind, duration, parameters."""
    text = str(Schedule().add(1.0, "partition", 2.0, shape="halves").add(4.0, "heal"))
    assert text.splitlines() == [
        "Schedule with 2 steps:",
        "  at    1.000 s  partition  for 2.000 s     shape=halves",
        "  at    4.000 s  heal",
    ]


def test_from_dict_names_the_step_that_is_wrong():
    """A bad step in a dict says which one: steps[1].count."""
    with pytest.raises(ParamError, match=r"steps\[1\]\.count: expected a whole number >= 1, found 0"):
        Schedule.from_dict({"steps": [{"at": 0, "kind": "crash"}, {"at": 1, "kind": "crash", "count": 0}]})
    with pytest.raises(ParamError, match=r"steps\[0\]\.kind: expected a step's kind"):
        Schedule.from_dict([{"at": 0}])


def test_events_put_stops_before_starts_at_one_instant():
    """A fault ending at t stops before one starting at t; a zero-length fault starts before it stops."""
    schedule = Schedule().add(0.0, "crash", 1.0).add(1.0, "pause", 0.0).add(1.0, "heal")
    assert schedule.events() == [
        (0.0, "start", 0),
        (1.0, "stop", 0),
        (1.0, "start", 1),
        (1.0, "heal", 2),
        (1.0, "stop", 1),
    ]


def test_play_applies_each_step_at_its_time_and_traffic_feels_it():
    """play(): start and stop ops at exactly the steps' times; pings cross the cut only outside it."""
    sim, log = pingers(4)
    schedule = Schedule().add(0.5, "partition", 1.0, shape="halves").add(2.0, "crash", 0.5, count=1)
    injector = schedule.play(sim, until=3.0)
    assert nemesis_times(sim) == [
        (0.5, "start-partition"),
        (1.5, "stop-partition"),
        (2.0, "start-crash"),
        (2.5, "stop-crash"),
    ]
    assert sim.now == 3.0 and len(injector.log) == 2
    sides = fault_spans(sim.history)[0].sides
    a, b = sides["minority"][0], sides["majority"][0]
    assert (a, b) not in heard(log, 0.55, 1.5) and (a, b) in heard(log, 1.55, 2.0)


def test_run_inside_the_simulation_applies_the_same_faults_at_the_same_times():
    """Schedule.run as a coroutine gives the same fault ops, at the same times, as play."""
    schedule = Schedule().add(0.5, "partition", 1.0, shape="isolate-one").add(1.0, "clock", 1.0, offset=3)
    played, _ = pingers(4, seed=5)
    schedule.play(played, until=3.0)
    inside, _ = pingers(4, seed=5)
    inside.run(schedule.run(inside))
    assert nemesis_times(inside) == nemesis_times(played)
    assert fault_spans(inside.history)[0].value == fault_spans(played.history)[0].value


def test_a_heal_step_stops_every_active_fault():
    """Open-ended faults (no duration) all stop at the heal step, latest first."""
    sim, log = pingers(4)
    schedule = Schedule().add(0.1, "partition").add(0.2, "loss", loss=1.0).add(1.0, "heal")
    schedule.play(sim, until=2.0)
    assert nemesis_times(sim)[-2:] == [(1.0, "stop-loss"), (1.0, "stop-partition")]
    assert len(heard(log, 1.05, 2.0)) == 12
    assert heard(log, 0.25, 1.0) == {}


def test_a_shifted_schedule_starts_later():
    """shifted(2) moves every step 2 s later, keeping durations."""
    schedule = Schedule().add(0.5, "crash", 1.0).shifted(2.0)
    assert [(s.at, s.duration) for s in schedule] == [(2.5, 1.0)]


# -- drawn from a seed -----------------------------------------------------------------------------


def test_a_random_schedule_is_a_function_of_its_seed():
    """One seed draws one schedule; different seeds draw different ones."""
    assert random_schedule(3, 5, 60.0) == random_schedule(3, 5, 60.0)
    assert len({repr(random_schedule(seed, 5, 60.0)) for seed in range(10)}) == 10


def test_a_random_schedule_keeps_to_its_kinds_its_length_and_one_fault_per_kind_at_a_time():
    """Steps are of the kinds asked, inside [0, length]; two faults of one kind never overlap."""
    for seed in range(20):
        schedule = random_schedule(seed, 5, 30.0, kinds=["partition", "crash", "loss"], interval=2.0)
        assert set(schedule.kinds()) <= {"partition", "crash", "loss"}
        by_kind: dict = {}
        for step in schedule:
            assert step.at >= 0 and step.end <= 30.0 + 1e-9
            assert step.at >= by_kind.get(step.kind, 0.0)
            by_kind[step.kind] = step.end


def test_a_random_schedule_starts_a_fault_every_interval_on_average():
    """With interval=2 over 100 s of 400 seeds, about 50 steps a seed start.

    The per-seed mean is 2 s x U(0.5, 1.5), so the expected count is ln 3 = 1.0986 times 50. The
    per-seed factor alone has a relative spread of 32%, so 400 seeds put 5% about three sigmas out.
    """
    starts = sum(len(random_schedule(seed, 5, 100.0, interval=2.0)) for seed in range(400))
    assert 0.95 < starts / (400 * 100 / 2.0) / 1.0986 < 1.05


def test_parameters_are_drawn_once_per_seed():
    """Within a seed every loss step has one probability; across seeds the probabilities differ."""
    per_seed = []
    for seed in range(8):
        losses = {s.params["loss"] for s in random_schedule(seed, 5, 200.0, kinds=["loss"], interval=2.0)}
        assert len(losses) == 1
        per_seed.append(losses.pop())
    assert len(set(per_seed)) == 8


def test_random_shapes_fit_the_cluster_and_heal_ends_the_schedule():
    """Two nodes never get a bridge or a ring; heal=True ends with a heal step at the length."""
    for seed in range(10):
        schedule = random_schedule(seed, 2, 40.0, kinds=["partition"], interval=1.0, heal=True)
        assert {s.params["shape"] for s in schedule if s.kind == "partition"} <= {"halves", "isolate-one"}
        assert schedule.steps[-1] == Step(40.0, "heal")


def test_random_nemesis_rejects_bad_options():
    """Unknown kinds, a non-positive interval or an unknown shape raise ParamError at once."""
    with pytest.raises(ParamError, match="kinds: expected fault kinds"):
        RandomNemesis(kinds=["earthquake"])
    with pytest.raises(ParamError, match=r"interval: expected a number >= 0\.001"):
        RandomNemesis(interval=0)
    with pytest.raises(ParamError, match=r"interval: expected a number >= 0\.001, found 1e-09"):
        RandomNemesis(interval=1e-9)  # a schedule drawn a nanosecond at a time: a run that did not end in 60 s
    with pytest.raises(ParamError, match="shape"):
        RandomNemesis(shapes=["hexagon"])
    with pytest.raises(ParamError, match="shapes: expected partition shape names such as 'halves', found None"):
        RandomNemesis(shapes=[None])
    assert set(RandomNemesis().weights) == set(KINDS) - {"membership"}


def test_a_random_schedule_plays_every_kind_on_a_cluster():
    """A schedule of every kind plays start to end on five pingers; each fault started is stopped."""
    sim, log = pingers(5, seed=2, interval=0.05)
    schedule = random_schedule(2, 5, 20.0, interval=1.0, duration=(0.2, 1.0), heal=True)
    injector = schedule.play(sim, until=21.0)
    assert set(schedule.kinds()) >= {"partition", "crash", "clock"}
    assert injector.active == [] and all(entry["stop"] is not None for entry in injector.log)
    assert len(heard(log, 20.1, 21.0)) == 20


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    interval=st.sampled_from([0.001, 0.01, 0.5, 2.0]),
    low=st.sampled_from([0.0, 0.0005, 0.3]),
    spread=st.sampled_from([0.0, 0.001, 1.0]),
)
def test_a_random_schedule_never_has_two_faults_of_one_kind_active_at_once(seed, interval, low, spread):
    """Played in the order of events(), no kind ever has two faults active: zero-length and millisecond ones too."""
    schedule = random_schedule(seed, 5, 3.0, kinds=["crash", "loss"], interval=interval, duration=(low, low + spread))
    active: dict = {}
    for _, action, index in schedule.events():
        kind = schedule.steps[index].kind
        if action == "start":
            assert not active.get(kind), (kind, schedule)
            active[kind] = True
        elif action == "stop":
            active[kind] = False


@settings(max_examples=100, deadline=None)
@given(schedule=schedules(5, 10.0, kinds=KINDS, max_steps=5, heal=True))
def test_any_schedule_round_trips_through_json_and_its_repr(schedule):
    """from_dict(JSON of to_dict()) and eval(repr()) give the same schedule back, for steps of every kind."""
    again = Schedule.from_dict(json.loads(json.dumps(schedule.to_dict())))
    assert again == schedule and again.events() == schedule.events()
    assert eval(repr(schedule), {"Schedule": Schedule, "Step": Step}) == schedule


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), schedule=schedules(4, 2.0, max_steps=4))
def test_playing_a_schedule_twice_from_one_seed_gives_one_trace(seed, schedule):
    """The seed and the schedule fix the run: two plays on fresh pingers give the same digest and fault log."""
    runs = []
    for _ in range(2):
        sim, _ = pingers(4, seed=seed, interval=0.05)
        injector = schedule.play(sim, until=2.5)
        runs.append((sim.trace_digest(), injector.log))
        sim.close()
    assert runs[0] == runs[1]


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), low=st.sampled_from([0.0, 0.5, 2.0]), spread=st.sampled_from([0.0, 1.5]))
def test_a_random_fault_lasts_its_drawn_duration_unless_the_schedule_ends_first(seed, low, spread):
    """Each step lasts between duration's low and high, or is cut short to end exactly at the schedule's length."""
    length = 20.0
    schedule = random_schedule(seed, 5, length, interval=1.0, duration=(low, low + spread))
    for step in schedule:
        assert low - 1e-6 <= step.duration <= low + spread + 1e-6 or step.end == pytest.approx(length, abs=1e-6)
        assert step.end <= length + 1e-6


def test_a_stop_an_ulp_after_a_start_is_the_same_instant_and_goes_first():
    """Found by a review: a phase's last fault cut short to its end stopped at 7.300000000000001 (float sums),
    after the next phase's crash at 7.3 started, which found a server still held and hit one fewer."""
    first = Step(7.2, "crash", 7.3 - 7.2 + 1e-15, {"nodes": ["n2"]})
    assert first.at + first.duration > 7.3  # the ulp
    schedule = Schedule([first, Step(7.3, "crash", 1.0, {"count": 3})])
    assert [(action, index) for _, action, index in schedule.events()][:3] == [("start", 0), ("stop", 0), ("start", 1)]
