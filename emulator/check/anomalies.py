"""Stale reads and lost acknowledged writes: two anomalies, counted per key.

Both rest on one question: *could the value v still be current after write
W?* It could if some write of v (ok or indeterminate; not failed) may be
ordered after W, that is, it had not completed when W was invoked, and it was
invoked before the read that saw v completed. The initial value counts as
written by a write that precedes everything. Order is history order (see
:mod:`emulator.check.ops`); "before" means "completed before the other was
invoked". Writes are ``write``/``put`` of their value and ``cas`` of its
``to`` (when it may have swapped); ``append`` is handled by
:func:`lost_writes` only.

- A **stale read** is an ok read that returned v although some write W of
  another value was acknowledged before the read was invoked and v could not
  be current after W. Reads of a value that no op wrote are listed apart
  (``unwritten``), not counted as stale.
- A **lost write**: for each key, take its *final read*, the ok read invoked
  last among those invoked after the history's last nemesis op (any fault or
  heal; all reads count when there is none). An acknowledged write W that
  completed before the final read was invoked is lost when the final value is
  not W's and could not be current after W. An acknowledged append is lost
  when the final value (a string) does not contain what it appended and no
  put of the key may be ordered after it. Keys written but never read at the
  end are listed as ``unchecked``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.check.ops import Op, by_key, pair_ops
from emulator.check.values import freeze

__all__ = ["LostWrite", "LostWrites", "StaleRead", "StaleReads", "lost_writes", "stale_reads"]

_READS = ("read", "get")
_WRITES = ("write", "put")


@dataclass
class StaleRead:
    """A read that missed an acknowledged write; ``lag`` is seconds from that write's ack to the read's invoke."""

    read: Op
    newer: Op
    lag: float

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read.to_dict(), "newer": self.newer.to_dict(), "lag": self.lag}


@dataclass
class StaleReads:
    """The result of :func:`stale_reads`."""

    reads: int
    stale: list[StaleRead] = field(default_factory=list)
    unwritten: list[Op] = field(default_factory=list)
    by_key: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        """Stale reads as a fraction of ok reads (None when there were none)."""
        return len(self.stale) / self.reads if self.reads else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reads": self.reads,
            "stale": len(self.stale),
            "fraction": self.fraction,
            "by_key": {str(k): v for k, v in self.by_key.items()},
            "stale_reads": [s.to_dict() for s in self.stale],
            "unwritten": [op.to_dict() for op in self.unwritten],
        }

    def __str__(self) -> str:
        share = "n/a" if self.fraction is None else f"{self.fraction:.1%}"
        return f"{len(self.stale)} stale of {self.reads} ok reads ({share}), {len(self.unwritten)} of unwritten values"


@dataclass
class LostWrite:
    """An acknowledged write whose effect is missing from its key's final read."""

    write: Op
    final_read: Op

    def to_dict(self) -> dict[str, Any]:
        return {"write": self.write.to_dict(), "final_read": self.final_read.to_dict()}


@dataclass
class LostWrites:
    """The result of :func:`lost_writes`."""

    acknowledged: int
    lost: list[LostWrite] = field(default_factory=list)
    unchecked: list[Any] = field(default_factory=list)

    @property
    def fraction(self) -> float | None:
        """Lost writes as a fraction of the acknowledged writes checked."""
        return len(self.lost) / self.acknowledged if self.acknowledged else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "acknowledged": self.acknowledged,
            "lost": len(self.lost),
            "fraction": self.fraction,
            "lost_writes": [w.to_dict() for w in self.lost],
            "unchecked_keys": [str(k) for k in self.unchecked],
        }

    def __str__(self) -> str:
        share = "n/a" if self.fraction is None else f"{self.fraction:.1%}"
        lost, unchecked = len(self.lost), len(self.unchecked)
        return f"{lost} lost of {self.acknowledged} acknowledged writes ({share}), {unchecked} keys unchecked"


class _Writers:
    """Every write that may have taken effect on one key, indexed by the value written."""

    def __init__(self, ops: Sequence[Op], initial: Any) -> None:
        by_value: dict[Any, list[tuple[int, float]]] = {freeze(initial): [(-2, -1)]}
        for op in ops:
            value = _written(op)
            if value is not _NOTHING:
                # An indeterminate write may land any time after its call.
                by_value.setdefault(value, []).append((op.call, math.inf if op.indeterminate else op.returned))
        self._calls, self._max_ret = {}, {}
        for value, spans in by_value.items():
            spans.sort()
            self._calls[value] = [c for c, _ in spans]
            self._max_ret[value] = _running_max([r for _, r in spans])

    def wrote(self, value: Any) -> bool:
        """True when some op (or the initial state) may have written ``value``."""
        return freeze(value) in self._calls

    def current_after(self, value: Any, newer: Op, reader: Op) -> bool:
        """Could ``value`` be current after ``newer``, as seen by ``reader``?"""
        calls = self._calls.get(freeze(value))
        if not calls:
            return False
        count = bisect.bisect_left(calls, reader.ret if reader.ret is not None else math.inf)
        return count > 0 and self._max_ret[freeze(value)][count - 1] > newer.call


def stale_reads(history: Sequence[dict[str, Any]], initial: Any = None) -> StaleReads:
    """Find ok reads that missed a write acknowledged before they began (see module doc).

    Args:
        history: capsim op dicts.
        initial: every key's value before any write (``None``; ``""`` for kv histories).
    """
    ops, _ = pair_ops(history)
    result = StaleReads(reads=0)
    for key, group in by_key(ops).items():
        writers = _Writers(group, initial)
        acked = sorted(
            (op for op in group if op.status == "ok" and _written(op) is not _NOTHING), key=lambda o: o.returned
        )
        reads = sorted((op for op in group if op.f in _READS and op.status == "ok"), key=lambda o: o.call)
        top = _TopTwo()
        i = 0
        for read in reads:
            while i < len(acked) and acked[i].returned < read.call:
                top.add(acked[i])
                i += 1
            result.reads += 1
            _judge_read(read, top, writers, result, key)
    return result


def _judge_read(read: Op, top: _TopTwo, writers: _Writers, result: StaleReads, key: Any) -> None:
    """Classify one ok read as fine, stale or of an unwritten value."""
    if not writers.wrote(read.output):
        result.unwritten.append(read)
        return
    newer = top.latest_other_than(freeze(read.output))
    if newer is not None and not writers.current_after(read.output, newer, read):
        result.stale.append(StaleRead(read, newer, read.call_time - (newer.ret_time or 0.0)))
        result.by_key[key] = result.by_key.get(key, 0) + 1


class _TopTwo:
    """The two latest-invoked acknowledged writes with different values, for O(1) queries."""

    def __init__(self) -> None:
        self.first: Op | None = None
        self.second: Op | None = None

    def add(self, op: Op) -> None:
        if self.first is None or op.call > self.first.call:
            if self.first is not None and _written(self.first) != _written(op):
                self.second = self.first
            self.first = op
        elif _written(op) != _written(self.first) and (self.second is None or op.call > self.second.call):
            self.second = op

    def latest_other_than(self, value: Any) -> Op | None:
        """The latest-invoked acknowledged write of a value other than ``value``."""
        if self.first is not None and _written(self.first) != value:
            return self.first
        return self.second


def lost_writes(history: Sequence[dict[str, Any]], initial: Any = None) -> LostWrites:
    """Find acknowledged writes missing from their key's final read (see module doc).

    Args:
        history: capsim op dicts.
        initial: every key's value before any write.
    """
    ops, nemesis = pair_ops(history)
    after = max((n.position for n in nemesis), default=-1)
    result = LostWrites(acknowledged=0)
    for key, group in by_key(ops).items():
        finals = [op for op in group if op.f in _READS and op.status == "ok" and op.call > after]
        acked = [op for op in group if op.status == "ok" and (_written(op) is not _NOTHING or op.f == "append")]
        if not finals:
            if acked:
                result.unchecked.append(key)
            continue
        final = max(finals, key=lambda op: op.call)
        writers = _Writers(group, initial)
        puts = [op for op in group if op.f in _WRITES and op.status != "fail"]
        for write in (op for op in acked if op.returned < final.call):
            result.acknowledged += 1
            if _is_lost(write, final, writers, puts):
                result.lost.append(LostWrite(write, final))
    return result


def _is_lost(write: Op, final: Op, writers: _Writers, puts: list[Op]) -> bool:
    """Is the acknowledged ``write`` missing from ``final``, the key's final read?"""
    if write.f == "append":
        seen = isinstance(final.output, str) and isinstance(write.value, str) and write.value in final.output
        overwritten = any(p.indeterminate or p.returned > write.call for p in puts if p.call < final.returned)
        return not seen and not overwritten
    if freeze(final.output) == _written(write):
        return False
    return not writers.current_after(final.output, write, final)


_NOTHING = object()


def _written(op: Op) -> Any:
    """The value ``op`` may have written (frozen), or ``_NOTHING`` if it writes none."""
    if op.status == "fail":
        return _NOTHING
    if op.f in _WRITES:
        return freeze(op.value)
    if op.f == "cas" and isinstance(op.value, (list, tuple)) and len(op.value) == 2:
        return freeze(op.value[1])
    return _NOTHING


def _running_max(values: list[float]) -> list[float]:
    out, best = [], -math.inf
    for v in values:
        best = max(best, v)
        out.append(best)
    return out
