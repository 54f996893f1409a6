"""Values as the checkers compare and print them: equal as Clojure's ``=`` says.

Jepsen and Knossos compare values with Clojure's ``=``, where ``true`` is not
``1``, ``1.0`` is not ``1`` and the keyword ``:a`` is not the string ``"a"``;
Python's ``==`` takes the first two pairs as equal and has no keywords. So:

- :class:`Keyword` is an EDN keyword, equal only to the same keyword (the EDN
  reader gives one for each keyword it reads);
- :class:`Exact` is a bool or a float equal only to the same type's equal value;
- :func:`freeze` gives the models (and the other checkers) a hashable form of
  a JSON or EDN value in which all of these differ;
- :func:`clojure_key` is a key in the form in which keys so differ too (the
  readers of Jepsen's and Knossos's formats apply it);
- :func:`show` prints a value, frozen or not, for explanations: JSON, with a
  keyword as ``:a``; :func:`jsonable` gives one that JSON can write.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

__all__ = ["Exact", "Keyword", "clojure_key", "freeze", "jsonable", "show"]


class Keyword:
    """An EDN keyword such as ``:ok``: equal only to the same keyword, never to a string.

    ``name`` is the text after the colon (``Keyword("ok").name == "ok"``);
    ``str`` and ``repr`` give it with its colon, ``:ok``. A keyword hashes
    the same in every process (a string's hash follows ``PYTHONHASHSEED``).
    """

    __slots__ = ("_hash", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._hash = zlib.crc32(name.encode("utf-8", "surrogatepass"))

    def __eq__(self, other: object) -> bool:
        return type(other) is Keyword and other.name == self.name

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return ":" + self.name

    def __reduce__(self) -> tuple[type[Keyword], tuple[str]]:
        return Keyword, (self.name,)


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
    """A hashable equal of a JSON or EDN value: lists become tuples, dicts sorted item tuples.

    Bools and floats become :class:`Exact`, so that none of them equals an int;
    a :class:`Keyword` stays one (in a map's key, its ``:name``).
    """
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (bool, float)):
        return Exact(value)
    return value


def clojure_key(key: Any) -> Any:
    """``key`` with its bools and floats (in lists and maps too) as :class:`Exact`: 1, 1.0 and true are 3 keys.

    For the formats Jepsen and Knossos write, whose keys Jepsen's
    ``independent`` checker tells apart with Clojure's ``=``. (capsim's own
    nodes keep their keys in Python dicts, where 1, 1.0 and true are one key;
    so do its histories.) A key with neither comes back as it is.
    """
    if isinstance(key, (bool, float)):
        return Exact(key)
    if isinstance(key, list):
        return [clojure_key(k) for k in key]
    if isinstance(key, dict):
        return {clojure_key(k): clojure_key(v) for k, v in key.items()}
    return key


def jsonable(value: Any) -> Any:
    """``value`` as JSON can write it: a keyword as the string ``":name"`` (JSON has none), an Exact as its own.

    In lists, tuples and maps too (a keyword as a map's key as well); the rest comes back as it is.
    """
    if isinstance(value, Keyword):
        return repr(value)
    if isinstance(value, Exact):
        return value.value
    if isinstance(value, (list, tuple)):
        return type(value)(jsonable(v) for v in value)
    if isinstance(value, dict):
        return {repr(k) if isinstance(k, Keyword) else jsonable(k): jsonable(v) for k, v in value.items()}
    return value


def show(value: Any) -> str:
    """JSON-style rendering of a value for explanations (a frozen one too); a keyword is ``:name``."""
    try:
        return json.dumps(value, ensure_ascii=False, default=_plain)
    except (TypeError, ValueError):  # a keyword (JSON has none), a keyword as a map's key, or no JSON at all
        return _render(value) if isinstance(value, (list, tuple, dict, Keyword)) else repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Exact):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _render(value: Any) -> str:
    """:func:`show` for a value JSON cannot print whole (it holds a keyword), piece by piece."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_render(k)}: {_render(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, Keyword) else show(value)
