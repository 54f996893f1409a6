"""The canonical trace of a run and its digest.

Every delivery, drop, duplicate, fault, handler error and history operation
is a flat tuple whose first two fields are the virtual time in nanoseconds and
a kind. The digest is a sha256 over the ``repr`` of each record, one per line,
so it depends only on the records, not on when they were hashed; records are
built from names, ints and strings, never ``id()`` or set order, so two
processes with different ``PYTHONHASHSEED`` print the same digest.

A record is formatted when it is appended (so a value changed later does not
change it) and hashed in batches. Records that repeat but for their time (a
message type on a link) come through a ``recorder``, which formats the rest of
the line once: the same bytes as ``repr``, for about half the cost. With the
compiled core (``emulator.speedups``) the lines wait for hashing as the bytes
the digest reads, in one small buffer (``TraceBuffer``), and a recorder writes
its line there without making a string. With ``keep=True`` the records are
also kept as tuples, for writing out.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emulator.speedups import native

__all__ = ["BATCH", "BATCH_BYTES", "FIELDS", "Trace"]

#: Records hashed together (pure Python); the digest does not depend on it.
BATCH = 4096
#: Bytes of records hashed together (the compiled core): its buffer holds about this much however long
#: the run, so the same few pages are written over and over; the digest does not depend on it.
BATCH_BYTES = 1 << 14


#: The field names of each record kind, after (time, kind).
FIELDS: dict[str, tuple[str, ...]] = {
    "deliver": ("src", "dest", "type"),  # or the body's repr, with trace_bodies
    "drop": ("src", "dest", "type", "reason"),
    "duplicate": ("src", "dest", "type"),
    "op": ("process", "type", "f", "key", "value"),
    "error": ("node", "where", "error"),
    "event": ("node", "what", "value"),
}


class Trace:
    """Append-only record of a run, with a running digest.

    Args:
        keep: keep every record in ``events`` (memory grows with the run).
    """

    def __init__(self, keep: bool = False):
        self.keep = keep
        self.events: list[tuple[Any, ...]] = []
        self._hash = hashlib.sha256()
        self._lines: list[str] = []  # formatted, not yet hashed (pure Python)
        #: the same, as the bytes hashed (the compiled core), or None
        self._buffer = native.TraceBuffer(self._flush, BATCH_BYTES) if native is not None else None
        self.count = 0

    def append(self, record: tuple[Any, ...]) -> None:
        """Append one record: ``(time_ns, kind, *fields)``. Bind it once on a hot path."""
        buffer = self._buffer
        if buffer is not None:
            buffer.add(repr(record))
        else:
            lines = self._lines
            lines.append(repr(record))
            if len(lines) >= BATCH:
                self._flush()
        if self.keep:
            self.events.append(record)

    #: The same as ``append`` (its older name).
    add = append

    def recorder(self, kind: str, *fields: Any) -> Callable[[int], None]:
        """A function that appends ``(time_ns, kind, *fields)`` when called with ``time_ns``.

        For a record that repeats but for its time: the rest of its line is
        formatted here, once. Appending through it and through ``append`` adds
        the same line.
        """
        tail = repr((0, kind, *fields))[2:]  # what follows "(<time>"
        keep = self.events.append if self.keep else None
        if self._buffer is not None and native is not None:  # the same function, compiled (emulator.speedups)
            return native.Recorder(self._buffer, tail.encode(), keep, kind, fields)  # type: ignore[no-any-return]
        lines = self._lines  # the same list for the trace's whole life: _flush empties it in place
        flush = self._flush

        def record(time_ns: int) -> None:
            lines.append(f"({time_ns}{tail}")
            if keep is not None:
                keep((time_ns, kind, *fields))
            if len(lines) >= BATCH:
                flush()

        return record

    def _flush(self) -> None:
        buffer = self._buffer
        if buffer is not None:
            if buffer.lines:
                self.count += buffer.lines
                self._hash.update(buffer.take())
            return
        lines = self._lines
        if lines:
            lines.append("")  # the last line ends with a newline too
            self._hash.update("\n".join(lines).encode())
            self.count += len(lines) - 1
            lines.clear()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Discard what is appended inside the block: the trace, its digest and count are as before it.

        For the cleanup that ``Simulation.close`` runs after the world has ended.
        """
        self._flush()
        hashed, count, kept = self._hash.copy(), self.count, len(self.events)
        try:
            yield
        finally:
            self._lines.clear()
            if self._buffer is not None:
                self._buffer.clear()
            self._hash, self.count = hashed, count
            del self.events[kept:]

    def digest(self) -> str:
        """Hex sha256 of every record so far."""
        self._flush()
        return self._hash.hexdigest()

    def records(self) -> list[dict[str, Any]]:
        """The kept records as dicts (needs ``keep=True``)."""
        self._flush()
        return [_as_dict(r) for r in self.events]

    def write_jsonl(self, path: str | os.PathLike[str]) -> Path:
        """Write the kept records as JSON Lines; returns the path."""
        target = Path(path)
        with target.open("w", encoding="utf-8") as out:
            for record in self.records():
                out.write(json.dumps(record, default=repr) + "\n")
        return target


def _as_dict(record: tuple[Any, ...]) -> dict[str, Any]:
    time_ns, kind, *rest = record
    names = FIELDS.get(kind, ())
    out = {"time": time_ns / 1e9, "kind": kind}
    out.update(zip(names, rest))
    return out
