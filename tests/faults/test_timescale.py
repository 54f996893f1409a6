"""Tests of faults/timescale.py: a scenario and its schedule compressed (or stretched) by one factor."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from faults import ParamError, Schedule, load_scenario, random_schedule
from faults.chaos import scenario_schedule
from faults.timescale import check_factor, scale_distribution, scale_scenario, scale_schedule

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios"


def test_a_scaled_schedule_moves_times_and_time_like_parameters_only():
    """Step times, durations, latencies and strobe periods scale; offsets, probabilities, counts and shapes do not."""
    schedule = (
        Schedule()
        .add(1.0, "partition", 2.0, shape="halves", direction="out")
        .add(3.0, "clock", 1.0, mode="strobe", offset=5.0, period=0.1, count=2)
        .add(4.0, "latency", 2.0, latency={"lognormal": [0.05, 1.0]}, links="some")
        .add(5.0, "loss", loss=0.3)
        .add(6.0, "heal")
    )
    scaled = scale_schedule(schedule, 0.5).to_dict()["steps"]
    assert [(s["at"], s.get("duration")) for s in scaled] == [
        (0.5, 1.0),
        (1.5, 0.5),
        (2.0, 1.0),
        (2.5, None),
        (3.0, None),
    ]
    assert scaled[0]["shape"] == "halves" and scaled[0]["direction"] == "out"
    assert (scaled[1]["offset"], scaled[1]["period"], scaled[1]["count"]) == (5.0, 0.05, 2)
    assert scaled[2]["latency"] == {"lognormal": [0.025, 1.0]} and scaled[2]["links"] == "some"
    assert scaled[3]["loss"] == 0.3 and scaled[4]["kind"] == "heal"


@pytest.mark.parametrize(
    "kind, params, key",
    [
        ("latency", {}, "latency"),  # the default spike, {exponential = 0.1}
        ("hostile", {}, "latency"),  # the preset's heavy tail
        ("clock", {"mode": "strobe"}, "period"),  # the default 0.1 s
        ("partition", {"flap": [0.05, 0.2]}, "flap"),
        ("membership", {}, "retry"),  # the default 0.1 s between tries
    ],
)
def test_time_like_parameters_scale_when_left_at_their_defaults_too(kind, params, key):
    """A spike, a hostile tail, a strobe period, a flap's range and a membership retry scale, given or not."""
    from faults.spec import distribution_spec

    def effective(schedule):
        value = schedule.steps[0].nemesis().params[key]
        return distribution_spec(value) if key == "latency" else value

    schedule = Schedule().add(1.0, kind, 1.0, **params)
    expected = scale_distribution(effective(schedule), 0.5) if key == "latency" else None
    scaled = effective(scale_schedule(schedule, 0.5))
    if key == "latency":
        assert scaled == distribution_spec(expected)
    elif key == "flap":
        assert scaled == [0.025, 0.1]
    else:
        assert scaled == pytest.approx(0.05)


@pytest.mark.parametrize(
    "spec, expected",
    [
        (0.01, 0.005),
        ({"uniform": [0.002, 0.004]}, {"uniform": [0.001, 0.002]}),
        ({"exponential": 0.1}, {"exponential": 0.05}),
        ({"lognormal": [0.02, 0.5]}, {"lognormal": [0.01, 0.5]}),
        ({"pareto": [0.002, 1.5]}, {"pareto": [0.001, 1.5]}),
        ({"pareto": [0.002, 1.5, 1.0]}, {"pareto": [0.001, 1.5, 0.5]}),
    ],
)
def test_every_latency_distribution_scales_its_durations(spec, expected):
    """Constant, uniform and exponential scale every parameter; a lognormal its median, not its sigma; a pareto
    its scale and cap, not its alpha."""
    from faults.spec import distribution_spec

    assert distribution_spec(scale_distribution(spec, 0.5)) == expected


def test_a_scaled_scenario_keeps_its_shape_and_its_latency_bounds():
    """Durations, timeouts, think time and network latency scale.

    Latency bounds, probabilities and the original do not.
    """
    scenario = load_scenario(EXAMPLES / "lin-kv-crashes.toml")
    scaled = scale_scenario(scenario, 0.2)
    work, base = scaled.workload, scenario.workload
    assert (work.duration, work.timeout, work.rate) == pytest.approx(
        (base.duration * 0.2, base.timeout * 0.2, base.rate / 0.2)
    )
    assert [p.duration for p in scaled.phases] == pytest.approx([p.duration * 0.2 for p in scenario.phases])
    assert scaled.duration == pytest.approx(scenario.duration * 0.2)
    assert scaled.network.latency.mean == pytest.approx(scenario.network.latency.mean * 0.2)
    assert scaled.phases[1].checks["latency"]["p99"] == 0.05  # what a client waits for does not shrink
    assert scaled.checks == scenario.checks and scaled.cluster is scenario.cluster
    assert scenario.workload.timeout == 0.5 and scenario.phases[0].duration == 20.0


def test_convergence_bounds_scale_with_the_timeline():
    """convergence.within is a time after a heal on the scenario's timeline: it scales."""
    scenario = load_scenario(EXAMPLES / "lin-kv-partitions.toml")
    scenario.checks["convergence"] = {"within": 2.0}
    assert scale_scenario(scenario, 0.25).checks["convergence"]["within"] == 0.5


@pytest.mark.parametrize("factor", [0, -1.0, float("nan"), float("inf"), True, "0.2"])
def test_a_factor_must_be_a_positive_number(factor):
    """Zero, negatives, NaN, infinity and non-numbers are refused with the key named."""
    with pytest.raises(ParamError, match="time_scale"):
        check_factor(factor)
    with pytest.raises(em.ConfigError):
        scale_schedule(Schedule(), factor)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), factor=st.floats(0.01, 10.0))
def test_any_factor_plays_the_same_faults_in_the_same_order(seed, factor):
    """A drawn schedule, scaled: the same starts and stops in the same order, each at factor x its time."""
    schedule = random_schedule(seed, 5, 30.0, heal=True)
    scaled = scale_schedule(schedule, factor)
    assert [(action, i) for _, action, i in scaled.events()] == [(action, i) for _, action, i in schedule.events()]
    assert [t for t, _, _ in scaled.events()] == pytest.approx([t * factor for t, _, _ in schedule.events()])
    assert [s.kind for s in scaled] == [s.kind for s in schedule]


def test_each_example_scenario_scales():
    """Every shipped scenario scales, and its seed's schedule keeps its kinds at 0.2x."""
    for path in sorted(EXAMPLES.glob("*.toml")):
        scenario = load_scenario(path)
        schedule = scenario_schedule(scenario, scenario.seed)
        assert scale_scenario(scenario, 0.2).duration == pytest.approx(scenario.duration * 0.2)
        assert scale_schedule(schedule, 0.2).kinds() == schedule.kinds()
