"""A real node's clock and its durable storage.

``WallClock`` is the real-time counterpart of the simulation's node clock:
the wall clock (``time.time``) plus a settable skew. ``FileStorage`` is the dict behind a
node's ``self.storage`` when a host has a data directory: every write
rewrites one file atomically (write a temporary file, then rename), so a
node killed at any moment restarts with its last completed write. A value
changed in place (``self.storage["log"].append(entry)``) is no assignment,
so the host calls ``sync()`` before every message the node sends: whatever
a node changed before it answers or acknowledges is on disk before the
answer leaves, as a database writes its log before it acknowledges.

What it gives up: the file is not fsynced, so a power loss can lose it (a
killed process cannot); a change made in place is saved at the node's next
message or write, so a node killed before it sends anything more loses it
(as it would lose an unflushed buffer); and values are stored as Python
literals, so they must be plain data (dicts, lists, tuples, sets, strings,
bytes, finite numbers, booleans, None, nested at most ``MAX_NESTING``
levels). Anything else (``inf``, an object, a frozenset) is refused when it
is written, with a ``ConfigError``, and the file keeps its last good
content: written, it could not be read back, and the next start would set
the whole file aside and begin empty.
"""

from __future__ import annotations

import ast
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from emulator.errors import ConfigError
from emulator.validate import is_number

__all__ = ["MAX_NESTING", "FileStorage", "WallClock"]

_log = logging.getLogger("capsim.transport")

#: Most levels of dicts, lists, tuples and sets in a storage file, its own dict included
#: (Python's parser, which reads the file back, stops at 200).
MAX_NESTING = 150


class WallClock:
    """A node's clock on a real machine: wall time, plus an offset, at a rate.

    Only ``now()`` moves; timers of a real event loop keep real time.
    """

    def __init__(self) -> None:
        self._base_true = time.time()  # wall-clock ok
        self._base_local = self._base_true
        self._rate = 1.0

    def now(self) -> float:
        """Seconds since the epoch as this node sees them."""
        return self._base_local + (time.time() - self._base_true) * self._rate  # wall-clock ok

    def set(self, offset: float = 0.0, drift: float = 0.0) -> None:
        """From now on read true time + ``offset``, advancing at ``1 + drift``.

        Raises:
            ConfigError: a non-finite value, or ``drift <= -1``.
        """
        for label, value in (("offset", offset), ("drift", drift)):
            if not is_number(value, finite=True):
                raise ConfigError(f"skew {label} must be a finite number, got {value!r}")
        if drift <= -1.0:
            raise ConfigError(f"skew drift must be > -1 (a clock cannot run backwards), got {drift!r}")
        true = time.time()  # wall-clock ok
        self._base_true = true
        self._base_local = true + float(offset)
        self._rate = 1.0 + float(drift)


class FileStorage(dict[Any, Any]):
    """A dict saved to ``path`` after every change, and loaded from it at start.

    Args:
        path: the file; its directory is made if missing. A file that cannot
            be read is logged and set aside as ``<path>.corrupt`` (``.corrupt.1``
            and so on when that is taken), and the storage starts empty.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._saved = ""  # the text last written (or read): sync() writes only when it differs
        if self.path.exists():
            super().update(self._load())
            self._saved = repr(dict(self))

    def _load(self) -> dict[Any, Any]:
        text = self.path.read_text(encoding="utf-8")
        try:
            data = ast.literal_eval(text) if text.strip() else {}
            if not isinstance(data, dict):
                raise ValueError(f"expected a dict, found {type(data).__name__}")
            return data
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            n = 1
            while aside.exists():  # never over one set aside before: each is kept for a person to look at
                aside = self.path.with_name(f"{self.path.name}.corrupt.{n}")
                n += 1
            os.replace(self.path, aside)
            _log.error("storage file %s unreadable (%s); moved to %s, starting empty", self.path, exc, aside)
            return {}

    def save(self) -> None:
        """Write the whole dict to the file, atomically.

        Raises:
            ConfigError: it holds something the file could not give back (the file is left as it was).
        """
        self._write(self._text())

    def sync(self) -> bool:
        """Save changes made in place since the last write (say whether there were any).

        The host calls it before each message its node sends.

        Raises:
            ConfigError: as ``save`` (nothing is written).
        """
        text = self._text()
        if text == self._saved:
            return False
        self._write(text)
        return True

    def _text(self) -> str:
        """The file's text for the dict as it is now, once checked that it reads back."""
        try:
            text = repr(dict(self))
        except ValueError:  # an int of more digits than Python converts: _check names it
            text = ""
        if text != self._saved:
            for key, value in self.items():
                _check(key, f"the key {_shown(key)}", 2)
                _check(value, f"the value of {_shown(key)}", 2)
        return text

    def _write(self, text: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)
        self._saved = text

    def _changed(self, undo: dict[Any, Any]) -> None:
        """Save after a change; if it cannot be saved, put back the entries in ``undo`` (a missing one: removed)."""
        try:
            self.save()
        except ConfigError:
            for key, old in undo.items():
                if old is _ABSENT:
                    super().pop(key, None)
                else:
                    super().__setitem__(key, old)
            raise

    def __setitem__(self, key: Any, value: Any) -> None:
        undo = {key: self.get(key, _ABSENT)}
        super().__setitem__(key, value)
        self._changed(undo)

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self.save()

    def clear(self) -> None:
        super().clear()
        self.save()

    def pop(self, key: Any, *default: Any) -> Any:
        value = super().pop(key, *default)
        self.save()
        return value

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self.save()
        return item

    def update(self, *args: Any, **kwargs: Any) -> None:
        new = dict(*args, **kwargs)
        undo = {key: self.get(key, _ABSENT) for key in new}
        super().update(new)
        self._changed(undo)

    def __ior__(self, other: Any) -> FileStorage:  # type: ignore[misc]  # dict's |= skips update()
        self.update(other)
        return self

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


_ABSENT = object()
_ATOMS = (str, bytes, int, bool, type(None))
_CONTAINERS = (list, tuple, set, dict)


_PLAIN = "store plain data: dicts, lists, tuples, sets, strings, bytes, finite numbers, booleans, None"


def _shown(value: Any) -> str:
    try:
        return f"{value!r:.60}"
    except ValueError:
        return f"an int of {value.bit_length()} bits"


def _check(value: Any, where: str, level: int) -> None:
    """Raise ConfigError unless ``ast.literal_eval(repr(value))`` gives ``value`` back at ``level`` of the file.

    The storage's own dict is level 1. Exact types only: a subclass (an IntEnum, say) has a repr of its own.
    """
    kind = type(value)
    if kind is int and value.bit_length() > 14_000:  # near Python's 4300-digit limit of int <-> str
        try:
            repr(value)
        except ValueError:
            raise ConfigError(f"storage cannot hold {where}: an int of more than 4300 digits; {_PLAIN}") from None
    if kind in _ATOMS:
        return
    if kind is float:
        if math.isfinite(value):
            return
        raise ConfigError(f"storage cannot hold {where}: {value!r} (the file could not be read back); {_PLAIN}")
    if kind not in _CONTAINERS:
        raise ConfigError(f"storage cannot hold {where}: a {kind.__name__} ({_shown(value)}); {_PLAIN}")
    if level > MAX_NESTING:
        raise ConfigError(f"storage cannot hold {where}: it is nested deeper than {MAX_NESTING} levels; {_PLAIN}")
    if kind is dict:
        for key, item in value.items():
            _check(key, where, level + 1)
            _check(item, where, level + 1)
    else:
        for item in value:
            _check(item, where, level + 1)
