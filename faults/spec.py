"""Plain-data specs for fault parameters: validation with the key that was wrong.

Every parameter of a nemesis, a schedule step, a workload or a scenario is a
JSON/TOML-compatible value, so a schedule can be printed, written to a file
and pasted back. This module checks such values and turns distribution specs
into ``emulator`` distributions and back:

=============================  ==================================
spec                           distribution
=============================  ==================================
``0.05``                       ``Constant(0.05)``
``{constant = 0.05}``          ``Constant(0.05)``
``{uniform = [0.01, 0.2]}``    ``Uniform(0.01, 0.2)``
``{exponential = 0.1}``        ``Exponential(0.1)`` (the mean)
``{lognormal = [0.01, 1.0]}``  ``LogNormal(0.01, 1.0)`` (median, sigma)
``{pareto = [0.001, 1.5]}``    ``Pareto(0.001, 1.5)`` (scale, alpha; a third
                               number caps a draw: ``[0.001, 1.5, 1.0]``)
``"exponential:5ms"``          the command line's text form (``em.parse_distribution``)
=============================  ==================================

A bad value raises :class:`ParamError`, a ``ConfigError`` (so a ``ValueError``)
that names the key, what was found and what was expected; the scenario
reader prefixes the file and the section.
"""

from __future__ import annotations

from typing import Any

import emulator as em
from emulator.validate import is_int, is_number

__all__ = [
    "HOSTILE",
    "ParamError",
    "check_choice",
    "check_count",
    "check_names",
    "check_number",
    "check_probability",
    "distribution",
    "distribution_spec",
]

#: The hostile network, as plain data (``network = "hostile"`` in a scenario, the ``hostile`` nemesis):
#: every message may be lost (2%), duplicated (10%) or reordered (20%), and its latency is heavy-tailed,
#: Pareto with a 1 ms minimum and alpha 1.5 (median 1.6 ms, 3% over 10 ms, 0.1% over 100 ms), capped at 1 s.
HOSTILE = {"latency": {"pareto": [0.001, 1.5, 1.0]}, "loss": 0.02, "duplicate": 0.1, "reorder": 0.2}


class ParamError(em.ConfigError):
    """A parameter with a wrong value: ``key``, what was ``found``, what was ``expected``."""

    def __init__(self, key: str, found: Any, expected: str):
        self.key = key
        self.found = found
        self.expected = expected
        super().__init__(f"{key}: expected {expected}, found {_show(found)}")

    def under(self, prefix: str) -> ParamError:
        """The same error with ``prefix.`` in front of its key."""
        return ParamError(f"{prefix}.{self.key}" if prefix else self.key, self.found, self.expected)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_number(
    key: str, value: Any, *, low: float | None = None, high: float | None = None, strict_low: bool = False
) -> float:
    """``value`` as a finite float within bounds, else a ParamError."""
    if not is_number(value, finite=True, gt=low if strict_low else None, ge=None if strict_low else low, le=high):
        raise ParamError(key, value, _range("a number", low, high, strict_low))
    return float(value)


def _range(what: str, low, high, strict_low: bool) -> str:
    if low is not None and high is not None:
        return f"{what} {'>' if strict_low else '>='} {low:g} and <= {high:g}"
    if low is not None:
        return f"{what} {'>' if strict_low else '>='} {low:g}"
    return what


def check_probability(key: str, value: Any) -> float:
    """A probability in [0, 1]."""
    return check_number(key, value, low=0.0, high=1.0)


def check_count(key: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """An int within ``[low, high]``."""
    if not is_int(value, ge=low, le=high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ParamError(key, value, f"a whole number {bound}")
    return value


def check_choice(key: str, value: Any, choices: tuple) -> Any:
    """One of ``choices``."""
    if value not in choices:
        raise ParamError(key, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_names(key: str, value: Any) -> list[str]:
    """A non-empty list of node names, sorted, without repeats."""
    if (
        isinstance(value, str)
        or not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(v, str) and v for v in value)
        or len(set(value)) != len(value)
    ):
        raise ParamError(key, value, "a non-empty list of distinct node names such as ['n1', 'n2']")
    return sorted(value)


_DISTRIBUTIONS = ("constant", "uniform", "exponential", "lognormal", "pareto")


def distribution(spec: Any, key: str = "latency") -> em.Distribution:
    """An ``emulator`` distribution from a spec (see the module doc) or a Distribution.

    Raises:
        ParamError: the spec is not one of the forms above.
    """
    if isinstance(spec, em.Distribution):
        return spec
    expected = (
        "seconds, or a table with one of constant = S, uniform = [LOW, HIGH], exponential = MEAN, "
        "lognormal = [MEDIAN, SIGMA], pareto = [SCALE, ALPHA] or [SCALE, ALPHA, CAP], "
        'or a text such as "exponential:5ms"'
    )
    if isinstance(spec, str):
        try:
            return em.parse_distribution(spec)
        except em.ConfigError as exc:
            raise ParamError(key, spec, f'a latency text such as "exponential:5ms" ({exc})') from None
    if is_number(spec):
        return _build(key, "constant", spec, expected)
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in _DISTRIBUTIONS:
        raise ParamError(key, spec, expected)
    ((name, args),) = spec.items()
    return _build(key, name, args, expected)


def _build(key: str, name: str, args: Any, expected: str) -> em.Distribution:
    makers = {
        "constant": em.Constant,
        "uniform": em.Uniform,
        "exponential": em.Exponential,
        "lognormal": em.LogNormal,
        "pareto": em.Pareto,
    }
    arity = {"constant": (1,), "uniform": (2,), "exponential": (1,), "lognormal": (2,), "pareto": (2, 3)}[name]
    values = list(args) if isinstance(args, (list, tuple)) else [args]
    if len(values) not in arity or not all(is_number(v) for v in values):
        raise ParamError(key, args, expected)
    try:
        return makers[name](*values)
    except em.ConfigError as exc:
        raise ParamError(key, args, f"valid {name} parameters ({exc})") from None


def distribution_spec(dist: Any) -> Any:
    """The plain-data spec of a distribution (the inverse of :func:`distribution`)."""
    if isinstance(dist, em.Constant):
        return dist.value
    if isinstance(dist, em.Uniform):
        return {"uniform": [dist.low, dist.high]}
    if isinstance(dist, em.Exponential):
        return {"exponential": dist.mean}
    if isinstance(dist, em.LogNormal):
        return {"lognormal": [dist.median, dist.sigma]}
    if isinstance(dist, em.Pareto):
        return {"pareto": [dist.scale, dist.alpha] + ([] if dist.cap is None else [dist.cap])}
    if isinstance(dist, em.Distribution):
        raise ParamError("latency", dist, "a Constant, Uniform, Exponential, LogNormal or Pareto distribution")
    return distribution_spec(distribution(dist))
