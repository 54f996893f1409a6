"""Jepsen-style histories: what clients asked for and what they were told.

A history is a list of operations, each a dict::

    {"index": 4, "time": 0.0123, "process": 1, "type": "invoke",
     "f": "write", "key": "k", "value": 3, "node": "n2", "client": "c1"}

``node`` is the server the client asked and ``client`` the client node's name
(a client keeps its name when an indeterminate result gives it a new process).

``type`` is ``invoke`` when a client starts an operation and then ``ok``,
``fail`` (a definite error: it did not happen) or ``info`` (indeterminate: it
may have happened). Faults appear in the same history as operations of the
``"nemesis"`` process. Histories are written and read as JSON Lines.

``on_complete(callback)`` calls ``callback(op)`` for every client operation's
completion as it is recorded, so a nemesis can act right after an
acknowledgement without polling the history.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, overload

__all__ = ["OP_TYPES", "History"]

OP_TYPES = ("invoke", "ok", "fail", "info")


class History:
    """An ordered list of operations with JSON Lines input and output."""

    def __init__(self, ops: Iterable[dict[str, Any]] = ()):
        self._ops: list[dict[str, Any]] = []
        self._on_complete: list[Callable[[dict[str, Any]], Any]] = []
        for op in ops:
            self.append(op)

    def append(self, op: dict[str, Any]) -> dict[str, Any]:
        """Add ``op`` at the end, numbering it; returns it. A completion then goes to the ``on_complete`` callbacks."""
        op["index"] = len(self._ops)
        self._ops.append(op)
        if self._on_complete and op.get("type") != "invoke" and op.get("process") != "nemesis":
            for callback in list(self._on_complete):
                callback(op)
        return op

    def on_complete(self, callback: Callable[[dict[str, Any]], Any]) -> Callable[[], None]:
        """Call ``callback(op)`` with each client operation's completion (ok, fail or info) once it is appended.

        It runs inside the simulation, in the client's task, at the virtual
        time the client learned the outcome: it may inject faults (crash the
        node that just acknowledged a write), and must not raise or block.

        Returns:
            A function that removes the callback (calling it twice is harmless).
        """
        self._on_complete.append(callback)

        def remove() -> None:
            if callback in self._on_complete:
                self._on_complete.remove(callback)

        return remove

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self._ops[i]

    def __repr__(self) -> str:
        return f"History({len(self._ops)} ops)"

    def client_ops(self) -> list[dict[str, Any]]:
        """Operations of client processes (not the nemesis)."""
        return [op for op in self._ops if op.get("process") != "nemesis"]

    def nemesis_ops(self) -> list[dict[str, Any]]:
        """Fault operations."""
        return [op for op in self._ops if op.get("process") == "nemesis"]

    def completions(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Each invoke paired with its completion (None if it never completed)."""
        open_by_process: dict[Any, list[Any]] = {}  # process -> [invoke, completion]
        pairs: list[list[Any]] = []
        for op in self._ops:
            if op.get("process") == "nemesis":
                continue
            if op["type"] == "invoke":
                pair = [op, None]
                open_by_process[op["process"]] = pair
                pairs.append(pair)
            else:
                waiting = open_by_process.pop(op["process"], None)
                if waiting is not None:
                    waiting[1] = op
        return [(a, b) for a, b in pairs]

    def dumps(self) -> str:
        """The history as JSON Lines."""
        return "".join(json.dumps(op, default=repr) + "\n" for op in self._ops)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the history to ``path`` as JSON Lines; returns the path."""
        target = Path(path)
        target.write_text(self.dumps(), encoding="utf-8")
        return target

    @classmethod
    def loads(cls, text: str, source: str = "<string>") -> History:
        """Parse JSON Lines; a bad line raises ValueError with its number."""
        ops: list[dict[str, Any]] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                op = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{source}:{number}: not JSON ({exc.msg}); expected one operation object per line"
                ) from None
            if not isinstance(op, dict) or op.get("type") not in OP_TYPES:
                raise ValueError(
                    f"{source}:{number}: expected an operation with a type in {OP_TYPES}, got {line[:80]!r}"
                )
            ops.append(op)
        return cls(ops)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> History:
        """Read a JSON Lines history written by ``write``."""
        source = Path(path)
        return cls.loads(source.read_text(encoding="utf-8"), str(source))
