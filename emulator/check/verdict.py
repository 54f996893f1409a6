"""Verdicts of the linearizability checker, and how they explain themselves.

A :class:`Verdict` holds one :class:`PartitionResult` per key checked (the
data, in :mod:`emulator.check.results`). Its rendering lives beside it: the
words in :mod:`emulator.check.explain`, the HTML timeline in
:mod:`emulator.check.timeline`; the methods here only call them. Neither
renderer imports this module, so there is no import cycle. The timeline is
imported when a page is drawn: a run that checks and never draws (a chaos
seed) does not load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulator.check.explain import explanation, summary_line
from emulator.check.results import PartitionResult, VerdictData

__all__ = ["PartitionResult", "Verdict"]


class Verdict(VerdictData):
    """The result of :func:`emulator.check.linearizable`.

    ``valid`` is False if any partition is not linearizable, else None if any
    ran out of time (or never ran), else True; as in Jepsen, a definite
    violation outranks an unknown.
    """

    def summary(self) -> str:
        """One line: the verdict, the model, ops, keys (each checked on its own) and time."""
        return summary_line(self)

    def explain(self, limit: int = 10, keys: int = 3) -> str:
        """A human explanation: why not linearizable, why unknown, or that all is well.

        Args:
            limit: how many ops of each list (the prefix, the candidates) to show.
            keys: how many failing keys to explain; the rest are named only.
        """
        return explanation(self, limit, keys)

    def __str__(self) -> str:
        return self.explain()

    def __repr__(self) -> str:
        return f"<Verdict valid={self.valid} model={self.model.name} partitions={len(self.partitions)}>"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable form, explanation included."""
        return {**super().to_dict(), "explanation": self.explain()}

    def html(self) -> str:
        """A self-contained HTML timeline of the history (see :mod:`emulator.check.timeline`)."""
        from emulator.check.timeline import render_html

        return render_html(self)

    def write_html(self, path: str | Path) -> Path:
        """Write :meth:`html` to ``path``; returns the path."""
        from emulator.check.timeline import write_html

        return write_html(self, path)
