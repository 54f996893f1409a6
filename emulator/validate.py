"""One way to check a parameter: what counts as a number, a whole number, a known node.

The constructors, request handlers and scenario readers of ``emulator``,
``nodes`` and ``faults`` check their numeric parameters with these predicates
(``emulator.check``, which imports only the standard library, keeps its own)
and raise their own errors in their own words (a ``ConfigError`` for a misuse
in code, an ``RPCError`` for a bad request, a ``ParamError`` for a scenario
file), so the rules are written once:

- ``True`` and ``False`` are never numbers, though Python makes ``bool`` an
  ``int``: ``Simulation(seed=True)`` is a mistake, not seed 1;
- a bound (``gt``, ``ge``, ``lt``, ``le``) refuses NaN, since NaN compares
  false with everything; with no bound, NaN and the infinities pass the type
  check, and the caller decides (a distribution gives NaN its own message);
- infinity passes a bound that does not exclude it: ``gt=0`` takes
  ``math.inf`` (a ttl that never expires), ``gt=0, lt=math.inf`` does not;
  ``finite=True`` refuses both infinities and NaN.

The messages that many modules share are written here too:
:func:`positive_seconds`, :func:`timeout_error`, :func:`whole`, and :func:`unknown_node`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeGuard

from emulator.errors import ConfigError

__all__ = ["is_int", "is_number", "is_timeout", "nesting", "positive_seconds", "timeout_error", "unknown_node", "whole"]


def is_number(
    value: object,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    finite: bool = False,
) -> TypeGuard[int | float]:
    """Whether ``value`` is an int or a float, not a bool, within every bound given.

    Args:
        value: anything a user passed.
        gt: refuse unless ``value > gt``.
        ge: refuse unless ``value >= ge``.
        lt: refuse unless ``value < lt``.
        le: refuse unless ``value <= le``.
        finite: refuse NaN and both infinities.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if finite and not -math.inf < value < math.inf:  # compared, not math.isfinite: a huge int is finite
        return False
    return _within(value, gt, ge, lt, le)


def is_int(
    value: object,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> TypeGuard[int]:
    """Whether ``value`` is an int, not a bool, within every bound given (as in :func:`is_number`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return _within(value, gt, ge, lt, le)


def _within(value: float, gt: float | None, ge: float | None, lt: float | None, le: float | None) -> bool:
    # Each test is written as "value passes", so NaN fails every bound.
    return (
        (gt is None or value > gt)
        and (ge is None or value >= ge)
        and (lt is None or value < lt)
        and (le is None or value <= le)
    )


def positive_seconds(label: str, value: object) -> int | float:
    """``value`` unchanged if it is a number of seconds in (0, inf), else a ConfigError.

    Raises:
        ConfigError: "``label`` must be a positive number of seconds, got ``value``", and for a bool
            what to pass instead, as :func:`timeout_error` says it.
    """
    if not is_number(value, gt=0, lt=math.inf):
        raise ConfigError(f"{label} must be a positive number of seconds, got {value!r}{_not_a_bool(value)}")
    return value


def is_timeout(value: object) -> bool:
    """Whether ``value`` is a timeout: None (wait forever) or seconds >= 0, infinity included, but no bool.

    Any number that compares with 0 passes (a ``Fraction``, a numpy float),
    as ``rpc`` takes them; ``timeout=True`` does not, though it compares as 1.
    """
    if value is None:
        return True
    try:
        return value >= 0 and type(value) is not bool  # type: ignore[operator]  # a TypeError says: not a number
    except TypeError:
        return False


def timeout_error(label: str, value: object) -> ConfigError:
    """The error for a timeout that is not seconds >= 0 or None (the caller raises it).

    A bool is no number of seconds (``timeout=True`` is not one second), and
    its message says what to pass instead.
    """
    return ConfigError(f"{label} must be a number of seconds >= 0 or None, got {value!r}{_not_a_bool(value)}")


def _not_a_bool(value: object) -> str:
    """What to pass instead of a bool where seconds are due (``timeout=True`` is not one second), else ""."""
    return "; pass a number of seconds such as 1.0 (a bool is not one)" if isinstance(value, bool) else ""


def whole(label: str, value: object, low: int = 1) -> int:
    """``value`` if it is an int ``>= low``, else a ConfigError.

    Raises:
        ConfigError: "``label`` must be an int >= ``low``, got ``value``".
    """
    if not is_int(value, ge=low):
        raise ConfigError(f"{label} must be an int >= {low}, got {value!r}")
    return value


def unknown_node(
    name: object, known: Iterable[str], *, who: str = "known nodes", empty: str = "none yet", hint: str = ""
) -> ConfigError:
    """The error for a node name nobody added, listing the names that exist (sorted) and how to add one.

    The caller raises it: ``raise unknown_node(name, self._names, hint="Add it with sim.add_node first")``.

    Args:
        name: the name asked for.
        known: the names that do exist.
        who: what the list is, such as ``"n1 knows"``.
        empty: what to say when there are none.
        hint: a sentence saying how to make the name known.
    """
    listed = ", ".join(sorted(known)) or empty
    return ConfigError(f"unknown node {name!r}; {who}: {listed}" + (f". {hint}" if hint else ""))


def nesting(value: object, most: int) -> int:
    """Levels of lists, tuples, dicts and sets in ``value``, counted up to ``most + 1`` (without recursion)."""
    level, frontier = 0, [value]
    while level <= most:
        containers = [item for item in frontier if isinstance(item, (dict, list, tuple, set, frozenset))]
        if not containers:
            break
        level += 1
        frontier = [child for c in containers for child in (c.values() if isinstance(c, dict) else c)]
    return level
