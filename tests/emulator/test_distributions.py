"""Latency distributions: validated at construction, sampled from a given stream."""

import math
import random
import statistics

import pytest

import emulator as em
from emulator.distributions import as_distribution


@pytest.mark.parametrize(
    "dist",
    [em.Constant(0.002), em.Uniform(0.001, 0.003), em.Exponential(0.002), em.LogNormal(0.0015, 0.5)],
)
def test_samples_are_non_negative_and_average_to_the_mean(dist):
    """Sample means land within 5% of the stated mean over 20,000 draws."""
    rng = random.Random(1)
    samples = [dist.sample(rng) for _ in range(20000)]
    assert min(samples) >= 0
    assert statistics.fmean(samples) == pytest.approx(dist.mean, rel=0.05)


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
