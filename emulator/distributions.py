"""Latency distributions, in seconds, sampled from a seeded stream.

Each distribution validates its parameters when built, so a negative or NaN
latency fails where it is written rather than deep inside a run. ``sample``
takes the ``random.Random`` stream to draw from: distributions hold no rng of
their own and are safe to share between links.
"""

from __future__ import annotations

import math
import random

from emulator.errors import ConfigError

__all__ = ["Distribution", "Constant", "Uniform", "Exponential", "LogNormal", "as_distribution"]


def _seconds(name: str, value, *, positive: bool = False) -> float:
    """``value`` as a finite float >= 0 (or > 0), else a ConfigError saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name} must be {bound} seconds, got {value!r}; latencies cannot be negative")
    return value


class Distribution:
    """A non-negative random duration in seconds."""

    #: True when every sample is the same; lets the network skip the draw.
    constant = False

    def sample(self, rng: random.Random) -> float:
        """One duration drawn from ``rng``."""
        raise NotImplementedError

    @property
    def mean(self) -> float:
        """The expected value, in seconds."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{v!r}" for v in vars(self).values())
        return f"{type(self).__name__}({args})"


class Constant(Distribution):
    """Always ``value`` seconds."""

    constant = True

    def __init__(self, value: float):
        self.value = _seconds("Constant value", value)

    def sample(self, rng: random.Random) -> float:
        return self.value

    @property
    def mean(self) -> float:
        return self.value


class Uniform(Distribution):
    """Uniform between ``low`` and ``high`` seconds."""

    def __init__(self, low: float, high: float):
        self.low = _seconds("Uniform low", low)
        self.high = _seconds("Uniform high", high)
        if self.high < self.low:
            raise ConfigError(f"Uniform needs low <= high, got low={low!r} high={high!r}")

    def sample(self, rng: random.Random) -> float:
        return self.low + (self.high - self.low) * rng.random()

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


class Exponential(Distribution):
    """Exponential with the given ``mean`` seconds (memoryless queueing delay)."""

    def __init__(self, mean: float):
        self._mean = _seconds("Exponential mean", mean, positive=True)

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self._mean)

    @property
    def mean(self) -> float:
        return self._mean


class LogNormal(Distribution):
    """Log-normal with the given ``median`` seconds and shape ``sigma``: a long tail."""

    def __init__(self, median: float, sigma: float):
        self.median = _seconds("LogNormal median", median, positive=True)
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma >= 0 or math.isinf(sigma):
            raise ConfigError(f"LogNormal sigma must be a finite number >= 0, got {sigma!r}")
        self.sigma = float(sigma)
        self._mu = math.log(self.median)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self._mu, self.sigma)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def __repr__(self):
        return f"LogNormal({self.median!r}, {self.sigma!r})"


def as_distribution(value, name: str = "latency") -> Distribution:
    """A Distribution from a Distribution or a plain number of seconds."""
    if isinstance(value, Distribution):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Constant(_seconds(name, value))
    raise ConfigError(
        f"{name} must be a number of seconds or a distribution such as "
        f"em.Uniform(0.001, 0.003), got {value!r}"
    )
