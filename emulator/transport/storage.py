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
numbers, booleans, None).
"""

from __future__ import annotations

import ast
import logging
import os
import time
from pathlib import Path
from typing import Any

from emulator.errors import ConfigError
from emulator.validate import is_number

__all__ = ["FileStorage", "WallClock"]

_log = logging.getLogger("capsim.transport")


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
            be read is logged and set aside as ``<path>.corrupt``, and the
            storage starts empty.
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
            os.replace(self.path, aside)
            _log.error("storage file %s unreadable (%s); moved to %s, starting empty", self.path, exc, aside)
            return {}

    def save(self) -> None:
        """Write the whole dict to the file, atomically."""
        self._write(repr(dict(self)))

    def sync(self) -> bool:
        """Save changes made in place since the last write (say whether there were any).

        The host calls it before each message its node sends.
        """
        text = repr(dict(self))
        if text == self._saved:
            return False
        self._write(text)
        return True

    def _write(self, text: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)
        self._saved = text

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.save()

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

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self.save()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]
