"""The canonical trace of a run and its digest.

Every delivery, drop, duplicate, fault, handler error and history operation
is a flat tuple whose first two fields are the virtual time in nanoseconds and
a kind. The digest is a sha256 over the ``repr`` of each record, one per line,
so it depends only on the records, not on when they were hashed; records are
built from names, ints and strings, never ``id()`` or set order, so two
processes with different ``PYTHONHASHSEED`` print the same digest.

Records are hashed in batches rather than formatted one by one on the message
path. With ``keep=True`` they are also kept, for writing out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["Trace", "FIELDS", "BATCH"]

#: Records hashed together; the digest does not depend on it.
BATCH = 4096

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
        self.events: list[tuple] = []
        self._hash = hashlib.sha256()
        self._batch: list[tuple] = []
        self.count = 0

    def add(self, record: tuple) -> None:
        """Append one record: ``(time_ns, kind, *fields)``."""
        batch = self._batch
        batch.append(record)
        if len(batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        batch = self._batch
        if batch:
            self._hash.update(("\n".join(map(repr, batch)) + "\n").encode())
            self.count += len(batch)
            if self.keep:
                self.events.extend(batch)
            batch.clear()

    def digest(self) -> str:
        """Hex sha256 of every record so far."""
        self._flush()
        return self._hash.hexdigest()

    def records(self) -> list[dict]:
        """The kept records as dicts (needs ``keep=True``)."""
        self._flush()
        return [_as_dict(r) for r in self.events]

    def write_jsonl(self, path) -> Path:
        """Write the kept records as JSON Lines; returns the path."""
        path = Path(path)
        with path.open("w", encoding="utf-8") as out:
            for record in self.records():
                out.write(json.dumps(record, default=repr) + "\n")
        return path


def _as_dict(record: tuple) -> dict:
    time_ns, kind, *rest = record
    names = FIELDS.get(kind, ())
    out = {"time": time_ns / 1e9, "kind": kind}
    out.update(zip(names, rest))
    return out
