"""How faults appear in a history, and how to read them back.

The kernel records every mechanism call as a nemesis op (``partition``,
``heal``, ``crash``, ``restart``, ``pause``, ``resume``, ``skew``, ``hold``,
``release``). A nemesis brackets the mechanism calls it makes with two ops of
its own, so a checker can see the fault as one thing::

    {"process": "nemesis", "type": "info", "f": "start-partition",
     "value": {"id": 3, "shape": "halves", "direction": "both",
               "sides": {"minority": ["n1", "n4"], "majority": ["n0", "n2", "n3"]},
               "grudge": {"n0": ["n1", "n4"], ...}}}
    ... the kernel's own {"f": "partition", ...} ...
    ... client operations ...
    ... the kernel's {"f": "heal"} ...
    {"process": "nemesis", "type": "info", "f": "stop-partition", "value": {"id": 3, "shape": "halves"}}

- ``f`` is ``start-<kind>`` then ``stop-<kind>``, ``kind`` one of :data:`KINDS`.
- ``value["id"]`` numbers the faults of one run from 1 and pairs a stop with
  its start even when faults of one kind overlap.
- ``start-*`` comes before the mechanism calls and ``stop-*`` after them, at
  the same virtual time, so the bracket holds every kernel op of the fault.
- A partition's ``sides`` names its node groups (``minority``/``majority``,
  ``isolated``/``rest``, ``left``/``right``/``bridge``, ``primary``/``rest``,
  ``group0``...; empty for ``majorities-ring``, which has no sides) and
  ``grudge`` maps each node to the nodes it cannot hear from. ``sides`` is the
  argument ``emulator.check.availability(sides=...)`` takes.
- A flapping partition's value also has ``flap`` (``[low, high]``); its
  ``sides`` and ``grudge`` are its first cut's. Inside its bracket,
  ``heal-partition`` (``{"id"}``) records each heal and ``cut-partition``
  (``{"id", "shape", "direction", "sides", "grudge"}``) each later cut, a
  new draw of its shape, both before the kernel's own ``heal`` or
  ``partition`` ops (so the convergence epoch of the kernel's ``heal``, a
  heal in :data:`HEALS`, runs to the next cut); :attr:`FaultSpan.cuts`
  reads them back, one :class:`CutSpan` per cut.
- Other kinds put the nodes or links they touched in the value: ``nodes`` for
  crash, pause and clock; ``links`` for latency, loss, duplicate, reorder.

:func:`fault_spans` reads the brackets back; :data:`HEALS` is the tuple to
pass as ``heals=`` to ``emulator.check.convergence`` and ``fault_windows``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import emulator as em

__all__ = ["COMMON_KINDS", "HEALS", "KINDS", "CutSpan", "FaultSpan", "fault_spans", "record"]

#: The nemesis kinds, in the order the docs list them.
KINDS = ("partition", "crash", "pause", "clock", "latency", "loss", "duplicate", "reorder", "hostile", "membership")

#: The kinds any protocol can take (``membership`` needs one whose nodes join and leave): random defaults.
COMMON_KINDS = tuple(kind for kind in KINDS if kind != "membership")

#: Nemesis ops that end a fault: the kernel's repairs and every ``stop-<kind>``.
HEALS = ("heal", "restart", "resume", "release") + tuple(f"stop-{kind}" for kind in KINDS)


def record(sim: em.Simulation, f: str, value: Any) -> dict:
    """Append a nemesis op to ``sim.history`` and the trace, as the kernel does for its own.

    ``value`` must be JSON-compatible with a deterministic ``repr`` (lists and
    dicts of names and numbers); it is part of the trace digest.
    """
    return sim.record_nemesis(f, value)


@dataclass
class CutSpan:
    """One cut of a partition: from when it was made to when it was healed, and its sides and grudge."""

    start: float
    stop: float | None
    sides: dict[str, list[str]]
    grudge: dict[str, list[str]]

    def contains(self, time: float) -> bool:
        """True when the cut was in place at virtual ``time``."""
        return self.start <= time and (self.stop is None or time < self.stop)


@dataclass
class FaultSpan:
    """One fault read back from a history: when it started and stopped, and what it did.

    ``cuts`` holds a partition's cuts in order: one for a steady partition
    (its whole span), one per cut for a flapping one (the gaps between them
    are its heals); empty for other kinds. A cut's ``stop`` is None while the
    history ends with it in place.
    """

    id: int
    kind: str
    start: float
    stop: float | None
    value: dict
    cuts: list[CutSpan] = field(default_factory=list)

    def __post_init__(self) -> None:
        # to_dict() gives the cuts as dicts: FaultSpan(**span.to_dict()) rebuilds the same span
        self.cuts = [piece if isinstance(piece, CutSpan) else CutSpan(**piece) for piece in self.cuts]

    @property
    def sides(self) -> dict[str, list[str]]:
        """A partition's sides (``{}`` for other kinds and for a ring); a flapping one's first cut's."""
        return dict(self.value.get("sides") or {})

    def contains(self, time: float) -> bool:
        """True when the fault was active at virtual ``time``."""
        return self.start <= time and (self.stop is None or time < self.stop)

    def to_dict(self) -> dict:
        return asdict(self)


def fault_spans(history: Iterable[dict], kind: str | None = None) -> list[FaultSpan]:
    """The faults of a history, in start order, from its ``start-*``/``stop-*`` ops.

    Args:
        history: capsim op dicts (a ``History`` or a list).
        kind: only faults of this kind (e.g. ``"partition"``).

    Returns:
        One span per ``start-<kind>``; ``stop`` is None for a fault still active
        when the history ends.
    """
    spans: dict[int, FaultSpan] = {}
    for op in history:
        if op.get("process") != "nemesis" or not isinstance(op.get("value"), dict):
            continue
        head, _, which = str(op.get("f")).partition("-")
        if which not in KINDS or (kind is not None and which != kind):
            continue
        value, time = op["value"], op.get("time", 0.0)
        ident = value.get("id")
        span = spans.get(ident)
        if head == "start":
            spans[ident] = span = FaultSpan(ident, which, time, None, value)
            if which == "partition":
                span.cuts.append(_cut(time, value))
        elif span is None or span.stop is not None:
            continue  # a stop, heal or cut of a fault this history did not start, or after its stop
        elif head == "stop":
            span.stop = time
            if span.cuts and span.cuts[-1].stop is None:
                span.cuts[-1].stop = time
        elif head == "heal" and span.cuts and span.cuts[-1].stop is None:
            span.cuts[-1].stop = time
        elif head == "cut" and (not span.cuts or span.cuts[-1].stop is not None):
            span.cuts.append(_cut(time, value))
    return sorted(spans.values(), key=lambda s: (s.start, s.id))


def _cut(time: float, value: dict) -> CutSpan:
    return CutSpan(time, None, dict(value.get("sides") or {}), dict(value.get("grudge") or {}))
