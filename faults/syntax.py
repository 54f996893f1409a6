"""What ``tomllib`` found wrong in a TOML file, in words for the file's author: the line, and what to write.

``tomllib`` says *what* broke and where ("Cannot overwrite a value (at line
5, column 9)"), not *why*: the usual why is a key or a table given twice,
and the first time is some lines up. :func:`explain` finds it and says what
to write instead::

    network = "hostile"      # line 1
    [network]                # line 5: Cannot overwrite a value
    loss = 0.1

    -> line 5: expected preset = "hostile" inside the [network] table (line 1's network = "hostile" is
       short for it, and TOML takes network once: drop line 1), found '[network]'

The scanner is line-based, as scenario files are written (no multi-line
strings): where it cannot tell, it gives ``tomllib``'s own words, at their line.
"""

from __future__ import annotations

import re
import sys
import tomllib
from typing import NamedTuple

__all__ = ["Problem", "explain"]

_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_WORDS = ("true", "false", "inf", "nan")  # values that start with a letter and need no quotes


class Problem(NamedTuple):
    """Where a TOML text goes wrong (``line`` None: nowhere in particular), what is there, and what to write."""

    line: int | None
    found: str
    expected: str


class _Entry(NamedTuple):
    """A line that defines something: a header (``[a.b]``, ``[[a.b]]``) or a key (``a.b = value``)."""

    line: int
    path: tuple[str, ...]
    header: bool
    value: str  # the text after "=" (a key), or "" (a header)
    table: tuple[str, ...]  # the table a key is in (a header: its own path)


def explain(exc: ValueError, text: str) -> Problem:
    """What ``tomllib.loads(text)`` raising ``exc`` means, and what to write instead."""
    if not isinstance(exc, tomllib.TOMLDecodeError):  # tomllib's own ValueError: an int past Python's digits
        return Problem(None, f"a number of more than {sys.get_int_max_str_digits():,} digits", "valid TOML")
    message = str(exc)
    at = _AT.search(message)
    reason = _AT.sub("", _AT_END.sub("", message))
    if at is None:  # at the end of the document: an unclosed table or string, no line of its own
        return Problem(None, reason, "valid TOML")
    number = int(at.group(1))
    lines = text.splitlines()
    here = lines[number - 1].strip() if number <= len(lines) else ""
    entries = _entries(lines[:number])
    advice = None
    if reason == "Cannot overwrite a value" or reason.startswith(("Cannot declare", "Cannot mutate")):
        advice = _twice(entries, number)
    elif reason == "Invalid value":
        advice = _unquoted(here)
    return Problem(number, here, advice or f"valid TOML ({reason}, at column {at.group(2)})")


def _entries(lines: list[str]) -> list[_Entry]:
    """The headers and keys of ``lines``, each with its full path (a key's under the header above it)."""
    entries: list[_Entry] = []
    table: tuple[str, ...] = ()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("["):
            inner = line.strip("[]").split("#")[0].strip(" []")
            path = _path(inner)
            if path is not None:
                table = path
                entries.append(_Entry(number, path, True, "", path))
        elif "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            path = _path(key)
            if path is not None:
                entries.append(_Entry(number, table + path, False, value.strip(), table))
    return entries


def _path(key: str) -> tuple[str, ...] | None:
    """A dotted key's parts (bare or quoted), or None if ``key`` is not one."""
    parts: list[str] = []
    rest = key.strip()
    while rest:
        quoted = rest[0] in "\"'" and rest.find(rest[0], 1)
        if quoted:
            parts.append(rest[1:quoted])
            rest = rest[quoted + 1 :].strip()
        else:
            bare = _BARE.match(rest)
            if bare is None:
                return None
            parts.append(bare.group())
            rest = rest[bare.end() :].strip()
        if rest and not rest.startswith("."):
            return None
        rest = rest[1:].strip()
    return tuple(parts) or None


def _twice(entries: list[_Entry], number: int) -> str | None:
    """What to write when line ``number`` defines a key or a table that an earlier line defined already."""
    last = entries[-1] if entries and entries[-1].line == number else None
    if last is None:
        return None
    same = [first for first in entries[:-1] if first.path == last.path]  # the likeliest: the same name twice
    clashing = same or [first for first in entries[:-1] if _clash(first, last)]
    return _advice(clashing[0], last) if clashing else None


def _clash(first: _Entry, last: _Entry) -> bool:
    """Whether ``last`` defines again, under another name, what ``first`` did."""
    if _under(last.path, first.path):  # a value (a string, an inline table) cannot take keys
        return not first.header
    # A dotted key (mix.read = 0.5) made the table that last names (mix = {...}, or a [workload.mix] header).
    return not first.header and _under(first.path, last.path) and len(first.table) < len(last.path)


def _under(path: tuple[str, ...], parent: tuple[str, ...]) -> bool:
    return len(path) > len(parent) and path[: len(parent)] == parent


def _advice(first: _Entry, last: _Entry) -> str:
    name = ".".join(first.path if len(first.path) <= len(last.path) else last.path)
    if first.header and last.header and first.path == last.path:
        return f"the [{name}] table once (it is also at line {first.line}): merge the two into one"
    if not first.header and not last.header and first.path == last.path:
        return f"{name} set once (line {first.line} sets it too): keep one of the two"
    if not first.header and last.header and first.path == ("network",) and first.value.startswith(('"', "'")):
        return (
            f"preset = {first.value} inside the [network] table (line {first.line}'s network = {first.value} "
            "is short for it, and TOML takes network once: drop that line)"
        )
    if not first.header and last.header and first.path == ("checks",):
        return (
            f"the checks once: line {first.line} lists them (checks = [...]) and this [checks] table gives "
            "them again; keep the table (one line per check: name = true, or name = { parameter = value })"
        )
    if not first.header and first.value.startswith("{"):
        return (
            f"{name} written once: line {first.line} gives it as an inline table {{ ... }}, which TOML "
            f"closes there; put these keys inside those braces, or write it all as a [{name}] table"
        )
    if not first.header and not _under(first.path, last.path):
        return (
            f"{name} once: line {first.line} sets it to {first.value}, and this line would make it a table; "
            "keep one of the two"
        )
    return (
        f"{name} defined one way: line {first.line} already makes it a table, key by key; "
        "add to it the same way (a dotted key or a line under its header), not a second definition"
    )


def _unquoted(line: str) -> str | None:
    """What to write for ``key = word``: a string needs quotes (``protocol = lin-kv``)."""
    key, sep, value = line.partition("=")
    value = value.split("#")[0].strip()
    if sep and value[:1].isalpha() and value not in _WORDS:
        return f'a string in quotes: {key.strip()} = "{value}"'
    return None
