"""Latency distributions, in seconds, sampled from a seeded stream.

Each distribution validates its parameters when built, so a negative or NaN
latency fails where it is written rather than deep inside a run. ``sample``
takes the ``random.Random`` stream to draw from: distributions hold no rng of
their own and are safe to share between links. ``ns_sampler`` binds one to a
stream for the network's message path: the same draws, in integer
nanoseconds, without the calls in between.

A latency is less than :data:`MAX_LATENCY` (1e298 s), under half the clock's
range (``emulator.handles.RANGE_END``, about 1.8e299 s), so that a reordered
message, whose latency is rescaled by up to 2, still gets a time. A
parameter at or past it (or infinite) is refused when the distribution is
built, with the advice that a message that never arrives is a loss or a
partition, not a latency; so are parameters whose longest draw would reach
it (an exponential draw is at most 36.74 means, a log-normal one the median
times e ** (12.12 sigma), an uncapped Pareto one scale * 2 ** (53 / alpha):
``random()`` is a multiple of 2**-53). A draw of ``MAX_LATENCY`` or more
from a distribution of one's own raises a ``ConfigError`` at the send that
draws it.

Each distribution also has a one-line text form, for command lines and
scenario files; :func:`parse` (``em.parse_distribution``) reads it and
``str(dist)`` writes it back:

===========================  ===================================================
text                         distribution
===========================  ===================================================
``constant:2ms``             ``Constant(0.002)``
``uniform:1ms:5ms``          ``Uniform(0.001, 0.005)``
``exponential:5ms``          ``Exponential(0.005)`` (the mean)
``lognormal:2ms:0.8``        ``LogNormal(0.002, 0.8)`` (median, sigma)
``pareto:1ms:1.5``           ``Pareto(0.001, 1.5)`` (scale, alpha): heavy-tailed
``pareto:1ms:1.5:1s``        ``Pareto(0.001, 1.5, cap=1.0)``: every draw at most 1 s
===========================  ===================================================

Durations take a unit: ``ns``, ``us``, ``ms`` or ``s``.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable

from emulator.errors import ConfigError
from emulator.speedups import native
from emulator.validate import is_number

__all__ = [
    "MAX_LATENCY",
    "Constant",
    "Distribution",
    "Exponential",
    "LogNormal",
    "Pareto",
    "Uniform",
    "as_distribution",
    "parse",
]

_NS = 1_000_000_000

#: Every latency is less than this many seconds: a round number under half the clock's range
#: (``handles.RANGE_END / 2``, about 9e298), so that twice a latency, a reordered message's most, has a time.
MAX_LATENCY = 1e298

#: What to use instead of a latency that never ends.
_NEVER = "for a message that never arrives, use loss=1.0 or a partition, not a latency"

# The longest draws. ``random()`` is a multiple of 2**-53 below 1, so ``1 - random()`` is at least 2**-53:
#: an exponential draw, ``-ln(1 - random()) * mean``, is at most 53 ln 2 (36.74) means;
_EXP_MOST = 53 * math.log(2)
#: a Pareto draw, ``scale * (1 - random()) ** (-1 / alpha)``, at most ``scale * 2 ** (53 / alpha)``;
_PARETO_BITS = 53
#: a normal draw (Kinderman and Monahan's, as ``random.normalvariate`` makes it: z is kept only if
#: ``z * z / 4 <= -ln(1 - random())``) is within 2 * sqrt(53 ln 2) (12.12) sigmas of mu.
_NORMAL_MOST = 2 * math.sqrt(53 * math.log(2))
#: A little room for the rounding of the float arithmetic that makes a draw.
_MARGIN = 1 + 1e-9


def _seconds(name: str, value: object, *, positive: bool = False) -> float:
    """``value`` as a float >= 0 (or > 0) and under ``MAX_LATENCY``, else a ConfigError saying so."""
    if not is_number(value):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if value != value or value in (math.inf, -math.inf):
        raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}; {_NEVER}")
    if value >= MAX_LATENCY:  # compared before float(): an int past the floats' range would raise OverflowError
        raise ConfigError(
            f"{name} must be less than {MAX_LATENCY:g} seconds, the longest latency the clock can schedule, "
            f"got {value!r}; {_NEVER}"
        )
    seconds = float(value)
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

        Raises:
            ConfigError: (from the function) a draw of ``MAX_LATENCY`` seconds or more.
        """
        return self._checked(functools.partial(self.sample, rng))

    def _checked(self, draw: Callable[[], float]) -> Callable[[], int]:
        """A sampler of ``round(draw() * 1e9)`` that refuses a draw of ``MAX_LATENCY`` or more.

        Such a draw (a heavy tail's) is no time the clock can schedule: the
        send that drew it raises a ConfigError that says what to change.
        """

        def ns() -> int:
            try:
                seconds = draw()
            except OverflowError:  # lognormvariate's exp, paretovariate's power: past the floats
                seconds = math.inf
            if seconds < MAX_LATENCY:
                return round(seconds * _NS)
            raise self._past_range(seconds)

        return ns

    def _past_range(self, seconds: float) -> ConfigError:
        return ConfigError(
            f"{self!r} drew a latency of {seconds:g} s, past the longest the clock can schedule "
            f"({MAX_LATENCY:g} s); bound its tail (Pareto's cap, a smaller mean or sigma); {_NEVER}"
        )

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
        if self._mean * _EXP_MOST * _MARGIN >= MAX_LATENCY:
            raise ConfigError(
                f"Exponential mean must be less than {MAX_LATENCY / _EXP_MOST / _MARGIN:.3g} seconds: a draw may be "
                f"{_EXP_MOST:.4g} times the mean, and a latency must be less than {MAX_LATENCY:g} s; got {mean!r}"
            )

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
        widest = (math.log(MAX_LATENCY / _MARGIN) - self._mu) / _NORMAL_MOST
        if self.sigma >= widest:
            raise ConfigError(
                f"LogNormal sigma must be less than {widest:.4g} with a median of {median!r} s: a draw may be the "
                f"median times e ** ({_NORMAL_MOST:.4g} * sigma), and a latency must be less than {MAX_LATENCY:g} s; "
                f"got {sigma!r}"
            )

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self._mu, self.sigma)

    def ns_sampler(self, rng: random.Random) -> Callable[[], int]:
        mu, sigma, draw = self._mu, self.sigma, rng.lognormvariate
        return lambda: round(draw(mu, sigma) * _NS)

    @property
    def mean(self) -> float:
        try:
            return self.median * math.exp(self.sigma**2 / 2)
        except OverflowError:
            return math.inf

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
        least = _PARETO_BITS / (math.log2(MAX_LATENCY / _MARGIN) - math.log2(self.scale))
        if self.cap is None and self.alpha <= least:
            raise ConfigError(
                f"Pareto({scale!r}, {alpha!r}) may draw scale * 2 ** (53 / alpha) seconds, past the longest "
                f"latency, {MAX_LATENCY:g} s: give it a cap, such as Pareto({scale!r}, {alpha!r}, cap=1.0), "
                f"or an alpha over {least:.4g}"
            )

    def ns_sampler(self, rng: random.Random) -> Callable[[], int]:
        # No check of each draw (the base's): __init__ refused an uncapped tail that could reach MAX_LATENCY.
        sample = self.sample
        return lambda: round(sample(rng) * _NS)

    def sample(self, rng: random.Random) -> float:
        try:
            value = self.scale * rng.paretovariate(self.alpha)  # paretovariate draws (1 - random()) ** (-1 / alpha)
        except OverflowError:  # a tiny alpha's power, past every float: past the cap too
            value = math.inf
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
