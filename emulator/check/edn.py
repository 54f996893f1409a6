"""A reader for the subset of EDN that Jepsen histories use.

Supported: ``nil``, ``true``/``false``, integers (``42``, ``-7``, ``42N``),
floats (``1.5``, ``-2e3``, ``1.5M``), strings with escapes, keywords
(``:ok`` becomes ``Keyword("ok")``, a :class:`~emulator.check.values.Keyword`:
as in Clojure, never equal to the string ``"ok"``), bare symbols (kept as
strings), vectors ``[..]`` and lists ``(..)`` (both become Python lists), maps
``{..}`` (dicts) and sets ``#{..}``, plus ``;`` comments, ``#_`` discards and
tagged literals such as ``#inst "..."`` (the tag is dropped, the value kept).

A set becomes a list sorted by ``(type name, repr)``: JSON has no sets, and a
canonical order makes two equal sets compare equal without depending on
``PYTHONHASHSEED``. Collections used as map keys become tuples.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
from typing import Any, cast

from emulator.check.errors import EdnError
from emulator.check.values import Keyword

__all__ = ["LineIndex", "line_of", "parse_edn", "parse_edn_forms", "parse_edn_items"]

_TOKEN = re.compile(
    r"""
    (?P<ws>[\s,]+|;[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<badstr>")
  | (?P<discard>\#_)
  | (?P<open>\#\{|[\[({])
  | (?P<close>[\])}])
  | (?P<tag>\#[A-Za-z][^\s,\[\](){}"]*)
  | (?P<atom>[^\s,\[\](){}"\#][^\s,\[\](){}"]*)
    """,
    re.VERBOSE,
)
_INT = re.compile(r"[+-]?\d+N?")
_FLOAT = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?")
_Token = tuple[str, str, int]  # (kind: a group name of _TOKEN, its text, its offset)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}
_STR_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_CLOSERS = {"[": "]", "(": ")", "{": "}", "#{": "}"}
_END = object()
_NEWLINE = re.compile("\n")


def parse_edn(text: str) -> Any:
    """Parse exactly one EDN value from ``text``.

    Args:
        text: the EDN source, e.g. one line of a Jepsen history.

    Returns:
        The value, in plain Python types (see the module docstring).

    Raises:
        EdnError: on anything outside the subset, unbalanced brackets, or
            trailing text after the value.
    """
    tokens = _tokenize(text)
    try:
        value, pos = _read(tokens, 0)
    except RecursionError:
        raise EdnError("collections nested too deeply", 1) from None
    if value is _END:
        raise EdnError("no value (the text is empty)", len(text) + 1)
    if pos < len(tokens):
        raise EdnError(f"unexpected {tokens[pos][1]!r} after the value", tokens[pos][2] + 1)
    return value


def parse_edn_forms(text: str) -> list[tuple[Any, int]]:
    """Parse every top-level EDN value in ``text`` (a whole file), with where each starts.

    Returns:
        ``(value, offset)`` pairs in order; ``offset`` is the 0-based
        character offset of the value's first token.

    Raises:
        EdnError: as :func:`parse_edn`; ``column`` is then 1 + the offset in
            the whole text (see :func:`line_of`).
    """
    return _forms(_tokenize(text))


def _forms(tokens: list[_Token]) -> list[tuple[Any, int]]:
    """Every top-level value in ``tokens``, with the offset of each."""
    forms, pos = [], 0
    try:
        while pos < len(tokens):
            start = tokens[pos][2]
            value, pos = _read(tokens, pos)
            if value is not _END:
                forms.append((value, start))
    except RecursionError:
        raise EdnError("collections nested too deeply", 1) from None
    return forms


def parse_edn_items(text: str) -> tuple[bool, list[tuple[Any, int]]]:
    """The ops of an EDN history file, with the offset of each.

    A file that is one vector or list (Knossos's data: ``[{:process 0 ...}
    ...]``, often after ``;`` comments) gives its items; any other file gives
    its top-level values (Jepsen's one map per line, maps over several lines
    too).

    Returns:
        ``(whole, items)``: whether the file was one collection, and
        ``(value, offset)`` pairs.

    Raises:
        EdnError: text outside the subset, unbalanced, or after the collection.
    """
    tokens = _tokenize(text)
    if not tokens or tokens[0][1] not in ("[", "("):
        return False, _forms(tokens)
    closer, items, pos = _CLOSERS[tokens[0][1]], [], 1
    try:
        while True:
            if pos >= len(tokens):
                raise EdnError(f"{tokens[0][1]!r} is never closed", tokens[0][2] + 1)
            kind, token, where = tokens[pos]
            if kind == "close":
                if token != closer:
                    raise EdnError(f"{tokens[0][1]!r} closed by {token!r}", where + 1)
                break
            value, pos = _read(tokens, pos)
            if value is not _END:
                items.append((value, where))
    except RecursionError:
        raise EdnError("collections nested too deeply", 1) from None
    if pos + 1 < len(tokens):
        raise EdnError(
            f"unexpected {tokens[pos + 1][1]!r} after the history's closing {closer!r}", tokens[pos + 1][2] + 1
        )
    return True, items


def line_of(text: str, offset: int) -> int:
    """The 1-based line of a 0-based character offset in ``text``."""
    return text.count("\n", 0, offset) + 1


class LineIndex:
    """Lines of many offsets in one text, each in O(log lines): ``LineIndex(text).line(offset)``."""

    def __init__(self, text: str) -> None:
        self.newlines = [match.start() for match in _NEWLINE.finditer(text)]

    def line(self, offset: int) -> int:
        """The 1-based line of a 0-based character offset (as :func:`line_of`)."""
        return bisect.bisect_left(self.newlines, offset) + 1


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into (kind, token, offset) triples, skipping whitespace and comments."""
    tokens: list[_Token] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        start = match.start()
        if start != pos:
            raise EdnError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = cast(str, match.lastgroup)  # every alternative of _TOKEN is a named group
        if kind == "badstr":
            raise EdnError("unterminated string", pos + 1)
        if kind != "ws":
            tokens.append((kind, match.group(), start))
        pos = match.end()
    if pos != len(text):
        raise EdnError(f"unexpected character {text[pos]!r}", pos + 1)
    return tokens


def _read(tokens: list[_Token], pos: int) -> tuple[Any, int]:
    """Read one value starting at ``tokens[pos]``; returns it and the next position."""
    if pos >= len(tokens):
        return _END, pos
    kind, token, offset = tokens[pos]
    if kind == "atom":
        return _atom(token, offset), pos + 1
    if kind == "str":
        return _string(token, offset), pos + 1
    if kind == "open":
        return _collection(tokens, pos)
    if kind == "close":
        raise EdnError(f"unbalanced {token!r}", offset + 1)
    # A tag or a discard applies to the value that follows it.
    value, after = _read(tokens, pos + 1)
    if value is _END:
        raise EdnError(f"{token!r} with no value after it", offset + 1)
    if kind == "discard":
        return _read(tokens, after)
    return value, after


def _collection(tokens: list[_Token], pos: int) -> tuple[Any, int]:
    """Read a vector, list, map or set whose opening bracket is ``tokens[pos]``."""
    opener, offset = tokens[pos][1], tokens[pos][2]
    closer = _CLOSERS[opener]
    items: list[Any] = []
    pos += 1
    while True:
        if pos >= len(tokens):
            raise EdnError(f"{opener!r} is never closed", offset + 1)
        kind, token, where = tokens[pos]
        if kind == "close":
            if token != closer:
                raise EdnError(f"{opener!r} closed by {token!r}", where + 1)
            return _build(opener, items, offset), pos + 1
        value, pos = _read(tokens, pos)
        if value is not _END:
            items.append(value)


def _build(opener: str, items: list[Any], offset: int) -> Any:
    """Turn the items read between brackets into the Python value for ``opener``."""
    if opener == "{":
        if len(items) % 2:
            raise EdnError("a map needs an even number of forms", offset + 1)
        return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}
    if opener == "#{":
        unique = {_hashable(item): item for item in items}
        return [unique[k] for k in sorted(unique, key=lambda k: (type(k).__name__, repr(k)))]
    return items


def _hashable(value: Any) -> Any:
    """A hashable stand-in for a collection used as a map key or set member."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((k, _hashable(v)) for k, v in value.items()), key=repr))
    return value


def _atom(token: str, offset: int) -> Any:
    """Interpret a bare token: nil, a boolean, a number, a keyword or a symbol."""
    if token[0] == ":":  # first: most atoms of a history are keywords (:process, :type, :invoke...)
        if len(token) == 1:
            raise EdnError("a keyword needs a name after ':'", offset + 1)
        return _keyword(token)
    if token == "nil":
        return None
    if token in ("true", "false"):
        return token == "true"
    if _INT.fullmatch(token):
        try:
            return int(token.rstrip("N"))
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            raise EdnError(f"an integer of more than {sys.get_int_max_str_digits():,} digits", offset + 1) from None
    if _FLOAT.fullmatch(token):
        return float(token.rstrip("M"))
    if token[0].isdigit() or token[0] == "\\":
        raise EdnError(f"unsupported token {token!r}", offset + 1)
    return token


@functools.lru_cache(maxsize=4096)
def _keyword(token: str) -> Keyword:
    """The keyword a token such as ``:type`` reads as: one object for each token a history repeats."""
    return Keyword(token[1:])


def _string(token: str, offset: int) -> str:
    """Decode a double-quoted EDN string, escapes included."""

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "u" and len(code) == 5:
            return chr(int(code[1:], 16))
        if code in _ESCAPES:
            return _ESCAPES[code]
        raise EdnError(f"unknown escape \\{code} in a string", offset + match.start() + 1)

    return _STR_ESCAPE.sub(unescape, token[1:-1])
