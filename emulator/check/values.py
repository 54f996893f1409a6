"""Values as the checkers compare and print them: equal as Clojure's ``=`` says.

Jepsen and Knossos compare values with Clojure's ``=``, where ``true`` is not
``1`` and ``1.0`` is not ``1``; Python's ``==`` takes both pairs as equal.
:func:`freeze` gives the models (and the other checkers) a hashable form of
a JSON value in which they differ (:class:`Exact`); :func:`show` prints a
value, frozen or not, for explanations.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Exact", "freeze", "show"]


class Exact:
    """A bool or a float as the models compare it: equal only to the same type's equal value.

    Python takes ``True == 1`` and ``1 == 1.0``; Knossos compares values with
    Clojure's ``=``, where neither holds, and so do JSON's and Go's readers
    (Porcupine) for a bool against a number. So a read of ``true`` after a
    write of 1, or of ``1.0`` after a write of 1, does not match here either.
    """

    __slots__ = ("value",)

    def __init__(self, value: bool | float) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is Exact and type(other.value) is type(self.value) and other.value == self.value

    def __hash__(self) -> int:  # a number's hash, the same in every process (no str in it: PYTHONHASHSEED)
        return (self.value.__hash__() << 1) | (type(self.value) is bool)

    def __repr__(self) -> str:
        return json.dumps(self.value)


def freeze(value: Any) -> Any:
    """A hashable equal of a JSON value: lists become tuples, dicts sorted item tuples.

    Bools and floats become :class:`Exact`, so that none of them equals an int.
    """
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (bool, float)):
        return Exact(value)
    return value


def show(value: Any) -> str:
    """JSON-style rendering of a value for explanations (a frozen one too)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=_plain)
    except (TypeError, ValueError):
        return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Exact):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")
