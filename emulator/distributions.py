"""Latency distributions, in seconds, sampled from a seeded stream.

Each distribution validates its parameters when built, so a negative or NaN
latency fails where it is written rather than deep inside a run. ``sample``
takes the ``random.Random`` stream to draw from: distributions hold no rng of
their own and are safe to share between links. ``ns_sampler`` binds one to a
stream for the network's message path: the same draws, in integer
nanoseconds, without the calls in between.

Each distribution also has a one-line text form, for command lines and
scenario files; :func:`parse` (``em.parse_distribution``) reads it and
``str(dist)`` writes it back:

===========================  ============================================
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from emulator.errors import ConfigError
from emulator.speedups import native
from emulator.validate import is_number

__all__ = ["Constant", "Distribution", "Exponential", "LogNormal", "Pareto", "Uniform", "as_distribution", "parse"]

_NS = 1_000_000_000


def _seconds(name: str, value: object, *, positive: bool = False) -> float:
    """``value`` as a finite float >= 0 (or > 0), else a ConfigError saying so."""
    if not is_number(value):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ConfigError(f"{name} must be a finite number of seconds, got {seconds!r}")
    if seconds < 0 or (positive and seconds == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name} must be {bound} seconds, got {seconds!r}; latencies cannot be negative")
    return seconds


class Distribution:
    """A non-negative random duration in seconds."""

    #: True when every sample is the same; lets the network skip the draw.
    constant = False

    def sample(self, rng: random.Random) -> float:
        """One duration drawn from ``rng``."""
        raise NotImplementedError

    def ns_sampler(self, rng: random.Random) -> Callable[[], int]:
        """A function of no arguments returning ``round(self.sample(rng) * 1e9)``: one draw, in nanoseconds.

        Subclasses specialise it so a message's latency costs one call; the
        draws are the same floats, so runs replay identically.
        """
        sample = self.sample
        return lambda: round(sample(rng) * _NS)

    @property
    def mean(self) -> float:
        """The expected value, in seconds."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{v!r}" for v in vars(self).values())
        return f"{type(self).__name__}({args})"

    def __str__(self) -> str:
        """The text form :func:`parse` reads, e.g. ``exponential:5ms``."""
        return ":".join([type(self).__name__.lower(), *self._text_args()])

    def _text_args(self) -> list[str]:
        return [_duration_text(v) for v in vars(self).values()]


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

    def ns_sampler(self, rng: random.Random) -> Callable[[], int]:
        low, span, draw = self.low, self.high - self.low, rng.random
        if native is not None:  # the same lambda, compiled (emulator.speedups)
            return native.UniformNs(low, span, draw)  # type: ignore[no-any-return]
        return lambda: round((low + span * draw()) * _NS)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


class Exponential(Distribution):
    """Exponential with the given ``mean`` seconds (memoryless queueing delay)."""

    def __init__(self, mean: float):
        self._mean = _seconds("Exponential mean", mean, positive=True)

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self._mean)

    def ns_sampler(self, rng: random.Random) -> Callable[[], int]:
        rate, draw = 1.0 / self._mean, rng.expovariate
        return lambda: round(draw(rate) * _NS)

    @property
    def mean(self) -> float:
        return self._mean

    def __repr__(self) -> str:
        return f"Exponential({self._mean!r})"


class LogNormal(Distribution):
    """Log-normal with the given ``median`` seconds and shape ``sigma``: a long tail."""

    def __init__(self, median: float, sigma: float):
        self.median = _seconds("LogNormal median", median, positive=True)
        if not is_number(sigma, ge=0, lt=math.inf):
            raise ConfigError(f"LogNormal sigma must be a finite number >= 0, got {sigma!r}")
        self.sigma = float(sigma)
        self._mu = math.log(self.median)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self._mu, self.sigma)

    def ns_sampler(self, rng: random.Random) -> Callable[[], int]:
        mu, sigma, draw = self._mu, self.sigma, rng.lognormvariate
        return lambda: round(draw(mu, sigma) * _NS)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def __repr__(self) -> str:
        return f"LogNormal({self.median!r}, {self.sigma!r})"

    def _text_args(self) -> list[str]:
        return [_duration_text(self.median), repr(self.sigma)]


class Pareto(Distribution):
    """Pareto with minimum ``scale`` seconds and tail index ``alpha``: a heavy tail.

    A sample is ``scale * U ** (-1 / alpha)`` with U uniform in (0, 1], so
    P(X > x) = (scale / x) ** alpha for x >= scale. The mean is finite only
    for alpha > 1 (``alpha * scale / (alpha - 1)``) and the variance only for
    alpha > 2: with alpha near 1, a few legs are enormously slower than the rest.
    ``cap`` (seconds, optional) bounds every draw, so that one draw cannot
    stall a FIFO link for a simulated hour; the hostile network uses 1 s.
    """

    def __init__(self, scale: float, alpha: float, cap: float | None = None):
        self.scale = _seconds("Pareto scale", scale, positive=True)
        if not is_number(alpha, gt=0, lt=math.inf):
            raise ConfigError(f"Pareto alpha must be a finite number > 0 (smaller is heavier-tailed), got {alpha!r}")
        self.alpha = float(alpha)
        self.cap = None if cap is None else _seconds("Pareto cap", cap)
        if self.cap is not None and self.cap < self.scale:
            raise ConfigError(f"Pareto cap must be >= scale, got scale={scale!r} cap={cap!r}")

    def sample(self, rng: random.Random) -> float:
        value = self.scale * rng.paretovariate(self.alpha)  # paretovariate draws (1 - random()) ** (-1 / alpha)
        return value if self.cap is None or value < self.cap else self.cap

    @property
    def mean(self) -> float:
        """The mean; capped: ``E[min(X, cap)] = scale + integral of (scale / x) ** alpha from scale to cap``."""
        s, a, c = self.scale, self.alpha, self.cap
        if c is None:
            return a * s / (a - 1) if a > 1 else math.inf
        if a == 1.0:
            return s + s * math.log(c / s)
        capped: float = s + s**a * (c ** (1 - a) - s ** (1 - a)) / (1 - a)  # float ** float is typed Any
        return capped

    def _text_args(self) -> list[str]:
        args = [_duration_text(self.scale), repr(self.alpha)]
        return args if self.cap is None else [*args, _duration_text(self.cap)]

    def __repr__(self) -> str:
        cap = "" if self.cap is None else f", cap={self.cap!r}"
        return f"Pareto({self.scale!r}, {self.alpha!r}{cap})"


_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_FORMS: dict[str, tuple[type[Distribution], str, str]] = {  # name -> (class, kinds of its arguments,
    # then of its optional ones: "d" a duration, "n" a plain number)
    "constant": (Constant, "d", ""),
    "uniform": (Uniform, "dd", ""),
    "exponential": (Exponential, "d", ""),
    "lognormal": (LogNormal, "dn", ""),
    "pareto": (Pareto, "dn", "d"),  # an optional third part caps every draw
}
_EXAMPLES = (
    "constant:2ms, uniform:1ms:5ms, exponential:5ms, lognormal:2ms:0.8 or pareto:1ms:1.5 (pareto:1ms:1.5:1s caps it)"
)


def parse(text: str) -> Distribution:
    """A distribution from its text form (see the module doc), e.g. ``parse("exponential:5ms")``.

    Raises:
        ConfigError: not one of the forms, a duration without a unit, or a parameter out of range.
    """
    if not isinstance(text, str):
        raise ConfigError(f"a latency spec is a string such as {_EXAMPLES}; got {text!r}")
    name, *args = text.strip().split(":")
    form = _FORMS.get(name.strip().lower())
    if form is None:
        raise ConfigError(f"unknown latency distribution {name!r} in {text!r}; use {_EXAMPLES}")
    cls, kinds, optional = form
    if not len(kinds) <= len(args) <= len(kinds) + len(optional):
        raise ConfigError(f"{name} takes {len(kinds)} parameter(s), got {len(args)} in {text!r}; use {_EXAMPLES}")
    kinds += optional
    values = [_duration(a, text) if kind == "d" else _number(a, text) for a, kind in zip(args, kinds)]
    try:
        return cls(*values)
    except ConfigError as exc:
        raise ConfigError(f"{text!r}: {exc}") from None


def _duration(word: str, text: str) -> float:
    word = word.strip()
    for unit in ("ns", "us", "ms", "s"):  # "s" last: "ms" also ends with it
        if word.endswith(unit):
            return _number(word[: -len(unit)], text) * _UNITS[unit]
    raise ConfigError(f"{word!r} in {text!r} needs a unit (ns, us, ms or s), e.g. 5ms")


def _number(word: str, text: str) -> float:
    try:
        value = float(word)
    except ValueError:
        raise ConfigError(f"{word!r} in {text!r} is not a number; use {_EXAMPLES}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{word!r} in {text!r} must be finite")
    return value


def _duration_text(seconds: float) -> str:
    """Seconds in the shortest unit that keeps them a plain number: 0.002 -> '2ms'."""
    if seconds == 0:
        return "0s"
    unit = next((u for u in ("s", "ms", "us") if seconds >= _UNITS[u]), "ns")
    text = f"{seconds / _UNITS[unit]:.15g}"
    if float(text) * _UNITS[unit] == seconds:  # reads back exactly
        return text + unit
    return f"{seconds!r}s"


def as_distribution(value: object, name: str = "latency") -> Distribution:
    """A Distribution from a Distribution or a plain number of seconds."""
    if isinstance(value, Distribution):
        return value
    if is_number(value):
        return Constant(_seconds(name, value))
    raise ConfigError(
        f"{name} must be a number of seconds or a distribution such as em.Uniform(0.001, 0.003), got {value!r}"
    )
