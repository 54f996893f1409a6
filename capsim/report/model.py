"""What a report is made of: runs, their histories, and the fault windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Window:
    """A span of virtual time to shade on every plot (a partition, say)."""

    start: float
    end: float
    label: str


@dataclass
class Section:
    """One table of a report page: its runs (rows), the columns showing them, and what they show.

    Attributes:
        key: file stem of its Markdown and JSON, and its JSON key.
        note: one paragraph in plain language, shown under the table.
        transpose: one column per run instead of one row (better for few runs, many figures).
    """

    key: str
    title: str
    columns: list
    runs: list
    note: str = ""
    transpose: bool = False


@dataclass
class Run:
    """One configuration's run: its history and its row of figures.

    Attributes:
        name: the configuration's name (a row of the table, a panel of a plot).
        history: the run's operations (capsim's op dicts).
        row: column key -> value for the table.
        sides: side name -> the client names on that side (for per-side plots).
        windows: spans to shade (partitions and other faults).
        stale: virtual times of the reads a checker found stale.
        extra: anything else a demo wants to keep next to the run (not shown).
    """

    name: str
    history: list[dict]
    row: dict[str, Any]
    sides: dict[str, list[str]] = field(default_factory=dict)
    windows: list[Window] = field(default_factory=list)
    stale: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def completed(self) -> list[tuple[dict, dict]]:
        """(invoke, completion) pairs of client operations that completed."""
        open_ops: dict = {}
        pairs = []
        for op in self.history:
            if op.get("process") == "nemesis":
                continue
            if op["type"] == "invoke":
                open_ops[op["process"]] = op
            elif op["process"] in open_ops:
                pairs.append((open_ops.pop(op["process"]), op))
        return pairs

    def pending(self) -> list[dict]:
        """Invokes of client operations that never completed (no ok, fail or info before the history ends)."""
        open_ops: dict = {}
        for op in self.history:
            if op.get("process") == "nemesis":
                continue
            if op["type"] == "invoke":
                open_ops[op["process"]] = op
            else:
                open_ops.pop(op["process"], None)
        return list(open_ops.values())

    def side_of(self, op: dict) -> str:
        """The side an operation's client is on ('all' when sides are not given)."""
        client = op.get("client")
        for side, members in self.sides.items():
            if client in members:
                return side
        return "all"

    def duration(self) -> float:
        return max((op["time"] for op in self.history), default=0.0)
