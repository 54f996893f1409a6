"""Latency distributions: validated at construction, sampled from a given stream."""

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from emulator.distributions import as_distribution, parse


@pytest.mark.parametrize(
    "dist",
    [
        em.Constant(0.002),
        em.Uniform(0.001, 0.003),
        em.Exponential(0.002),
        em.LogNormal(0.0015, 0.5),
        em.Pareto(0.001, 3.0),
        em.Pareto(0.001, 1.5, cap=0.05),
    ],
)
def test_samples_are_non_negative_and_average_to_the_mean(dist):
    """Sample means land within 5% of the stated mean over 20,000 draws."""
    rng = random.Random(1)
    samples = [dist.sample(rng) for _ in range(20000)]
    assert min(samples) >= 0
    assert statistics.fmean(samples) == pytest.approx(dist.mean, rel=0.05)


def test_pareto_has_the_stated_tail_and_never_exceeds_its_cap():
    """A share (scale / t) ** alpha of Pareto draws exceeds t; with a cap, none exceeds it."""
    dist, rng = em.Pareto(0.001, 1.5, cap=0.05), random.Random(2)
    samples = [dist.sample(rng) for _ in range(50000)]
    assert min(samples) >= 0.001 and max(samples) == dist.cap == 0.05
    assert max(em.Pareto(0.001, 1.5).sample(rng) for _ in range(50000)) > 0.05  # uncapped by default
    for t in (0.005, 0.02):
        share = sum(s > t for s in samples) / len(samples)
        assert share == pytest.approx((0.001 / t) ** 1.5, rel=0.15)


def test_the_same_stream_gives_the_same_samples():
    """A distribution holds no rng: equal streams give equal draws."""
    dist = em.Exponential(0.01)
    assert [dist.sample(random.Random(3)) for _ in range(3)] == [dist.sample(random.Random(3)) for _ in range(3)]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: em.Constant(-1), "cannot be negative"),
        (lambda: em.Constant(math.nan), "finite"),
        (lambda: em.Uniform(-1.0, 2.0), "cannot be negative"),
        (lambda: em.Uniform(3, 1), "low <= high"),
        (lambda: em.Exponential(0), "> 0"),
        (lambda: em.LogNormal(0.001, -1), "sigma"),
        (lambda: em.Pareto(0.0, 1.5), "> 0"),
        (lambda: em.Pareto(0.001, 0), "alpha must be a finite number > 0"),
        (lambda: em.Pareto(0.01, 1.5, cap=0.001), "cap must be >= scale"),
        (lambda: em.Constant("1ms"), "number of seconds"),
        (lambda: as_distribution([1]), "distribution such as"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(make, message):
    """Negative, NaN or ill-typed parameters raise ConfigError (a ValueError) at once."""
    with pytest.raises(em.ConfigError, match=message):
        make()
    assert issubclass(em.ConfigError, ValueError)


def test_a_plain_number_is_a_constant_latency():
    """as_distribution(0.004) is Constant(0.004)."""
    dist = as_distribution(0.004)
    assert isinstance(dist, em.Constant) and dist.value == 0.004


@pytest.mark.parametrize("x_over_scale", [1.5, 3.0, 10.0])
def test_pareto_tail_is_a_power_law(x_over_scale):
    """P(X > x) = (scale / x) ** alpha for x >= scale, within 4 standard errors over 40,000 draws."""
    dist, rng, draws = em.Pareto(0.002, 1.2), random.Random(5), 40000
    expected = (1 / x_over_scale) ** 1.2
    share = sum(dist.sample(rng) > 0.002 * x_over_scale for _ in range(draws)) / draws
    assert abs(share - expected) <= 4 * math.sqrt(expected * (1 - expected) / draws)
    assert min(dist.sample(rng) for _ in range(1000)) >= 0.002


def test_pareto_mean_is_infinite_at_or_below_alpha_one():
    """The mean is alpha * scale / (alpha - 1) above alpha = 1 and infinite at or below it."""
    assert em.Pareto(0.001, 2.0).mean == pytest.approx(0.002)
    assert em.Pareto(0.001, 1.0).mean == math.inf


@pytest.mark.parametrize(
    "text, expected",
    [
        ("constant:2ms", em.Constant(0.002)),
        ("uniform:1ms:5ms", em.Uniform(0.001, 0.005)),
        ("exponential:5ms", em.Exponential(0.005)),
        ("lognormal:2ms:0.8", em.LogNormal(0.002, 0.8)),
        ("pareto:1ms:1.5", em.Pareto(0.001, 1.5)),
        ("uniform:500us:1.5s", em.Uniform(0.0005, 1.5)),
        (" Exponential:250000ns ", em.Exponential(0.00025)),
    ],
)
def test_the_text_forms_of_the_command_line(text, expected):
    """Each documented text form gives its distribution, and str() writes the form back."""
    dist = parse(text)
    assert repr(dist) == repr(expected)
    assert repr(parse(str(dist))) == repr(dist)


@pytest.mark.parametrize(
    "text, message",
    [
        ("exp:5ms", "unknown latency distribution 'exp'.*use constant:2ms"),
        ("exponential:5", "needs a unit \\(ns, us, ms or s\\)"),
        ("uniform:1ms", "uniform takes 2 parameter"),
        ("lognormal:2ms:x", "'x' in 'lognormal:2ms:x' is not a number"),
        ("pareto:1ms:0", "'pareto:1ms:0': Pareto alpha must be"),
        ("constant:-1ms", "cannot be negative"),
        ("uniform:5ms:1ms", "low <= high"),
        ("constant:infms", "must be finite"),
    ],
)
def test_a_bad_text_form_says_what_to_write(text, message):
    """A mistake in a latency text names the text and the fix."""
    with pytest.raises(em.ConfigError, match=message):
        parse(text)


_SECONDS = st.floats(min_value=1e-9, max_value=100.0, allow_nan=False)


@given(
    st.one_of(
        st.builds(em.Constant, _SECONDS),
        st.builds(lambda a, b: em.Uniform(min(a, b), max(a, b)), _SECONDS, _SECONDS),
        st.builds(em.Exponential, _SECONDS),
        st.builds(em.LogNormal, _SECONDS, st.floats(min_value=0, max_value=5)),
        st.builds(em.Pareto, _SECONDS, st.floats(min_value=0.1, max_value=10)),
    )
)
def test_every_distribution_reads_back_from_its_text_exactly(dist):
    """parse(str(d)) has exactly d's parameters, whatever they are."""
    assert repr(parse(str(dist))) == repr(dist)


@given(
    st.floats(min_value=0, max_value=10, allow_nan=False),
    st.floats(min_value=0, max_value=10, allow_nan=False),
    st.integers(min_value=0, max_value=2**32),
)
def test_a_uniform_ns_sampler_draws_what_sample_draws_in_whole_nanoseconds(a, b, seed):
    """Property: the message path's sampler (compiled when the C core runs) gives, draw for draw,
    ``round(sample * 1e9)`` from a stream in the same state: the same latencies in both modes."""
    dist = em.Uniform(min(a, b), max(a, b))
    sampler, rng = dist.ns_sampler(random.Random(seed)), random.Random(seed)
    for _ in range(5):
        drawn = sampler()
        assert type(drawn) is int and drawn == round(dist.sample(rng) * 1_000_000_000)
