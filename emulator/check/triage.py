"""Proofs without a search that a partition is not linearizable: stale reads and unwritten values.

The keys of a history are searched in equal turns (see
:mod:`emulator.check.linearizable`), so a key refuted after N steps costs N
steps of every other key too, and a key whose search cannot end in time is
never refuted at all: on Porcupine's ``c50-bad`` nine keys ran alongside the
one the search refutes first, and nine of the ten hold a stale read, key
``"0"`` among them, which the search alone does not decide in 200,000
steps. A look at each read, in O(n log n), finds many of them.

A read R of value v is *stale* when some write W that completed before R
was invoked (one of the last few, by completion) leaves a value that v
cannot be, and no other op may come between them (be ordered after W and
before R) that could change it. In every linearization W comes before R and
whatever comes between them leaves W's mark, so R is illegal in every one:

- a write or successful cas of w: v is not w (for strings, v does not start
  with w; appends between them may only add to it), and no other write, cas
  or (for values that are not strings) append may come between;
- an append of a (strings): v does not contain a, and no write or cas may
  come between (appends only add).

Ops that may not have happened (``info``, never completed) count as ops
that may come between, from their call on; a failed op did not happen. A
read whose value is not of the model's type is left to the search.

A read R of value v is *unwritten* (:func:`unwritten_read`) when v is not
the model's initial value and no op that may leave v was invoked before R
returned. In a linearization only ops invoked before R returned can come
before R, and the value R sees is the initial one or what the last op to
change it left: a write of w leaves w, a cas (successful, or one that
may have swapped) to t leaves t, an append of a leaves a string that ends
with a. So the ops that may leave v are the writes of v, the cas ops to v
and, for strings, the appends of a suffix of v (an append of ``""`` is a
suffix of every string); reads and failed-precondition cas ops change
nothing, and a failed op did not happen. Ops that may not have happened
count from their call on, as they may take effect then. Values compare as
the model's steps compare them (:mod:`emulator.check.values`). A read of
the initial value is never unwritten. It costs a pass over the ops, a
dictionary of the values written and, for strings, a walk of each read's
value from its end through a trie of the appended values, no longer than
the longest of them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from emulator.check.models import Prepared

__all__ = ["Stale", "Unwritten", "stale_read", "unwritten_read"]

_LATEST = 3  # writes completed before a read that are compared with it, the latest first
_CHANGES = ("write", "swap", "may_swap", "append")
_LEAVES = ("write", "swap", "may_swap")  # actions that leave exactly their last argument
_End = tuple[float, Prepared | None]  # when an op ended (math.inf: maybe never), and the op


class Stale(NamedTuple):
    """A stale read: ``read`` cannot see what ``write`` left, and nothing able to change it comes between."""

    write: Prepared
    read: Prepared


class Unwritten(NamedTuple):
    """A read of a value no op could have left by the time it returned.

    ``later`` is the first op that could leave it, invoked after the read
    returned; None when no op in the partition could.
    """

    read: Prepared
    later: Prepared | None


def unwritten_read(prepared: Sequence[Prepared], init: Any, strings: bool) -> Unwritten | None:
    """The first unwritten read of a partition (in its order), or None (see the module doc).

    Args:
        prepared: one partition's compiled ops (one key's value).
        init: the model's initial value.
        strings: whether the model's values are strings that ``append`` extends.
    """
    first: dict[Any, Prepared] = {}  # a value -> the first-invoked op that leaves exactly it
    appends = _Suffixes()
    for p in prepared:
        if p.action in _LEAVES:
            value = p.args[-1]
            if value not in first or p.op.call < first[value].op.call:
                first[value] = p
        elif p.action == "append" and strings:
            appends.add(p)
    for read in prepared:
        if read.action != "read" or init == read.args[0]:
            continue
        seen = read.args[0]
        writers = (first.get(seen), appends.first_ending(seen) if isinstance(seen, str) else None)
        later = min((w for w in writers if w is not None), key=_called, default=None)
        if later is None or later.op.call > read.op.returned:
            return Unwritten(read, later)
    return None


class _Suffixes:
    """Appended strings in a trie read from their ends, for the first-invoked append a string ends with."""

    def __init__(self) -> None:
        self.root = _Node()

    def add(self, append: Prepared) -> None:
        node = self.root
        for char in reversed(append.args[0]):
            node = node.children.setdefault(char, _Node())
        node.first = _earlier(node.first, append)

    def first_ending(self, text: str) -> Prepared | None:
        """The first-invoked append whose string ``text`` ends with (any, for an append of ``""``), or None."""
        node = self.root
        best = node.first
        for char in reversed(text):
            child = node.children.get(char)
            if child is None:
                return best
            node = child
            best = _earlier(best, node.first)
        return best


class _Node:
    """A node of :class:`_Suffixes`: the next characters back, and the first append that ends here."""

    __slots__ = ("children", "first")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.first: Prepared | None = None


def _earlier(a: Prepared | None, b: Prepared | None) -> Prepared | None:
    """The one of two ops (either may be None) invoked first."""
    return b if a is None or (b is not None and b.op.call < a.op.call) else a


def _called(p: Prepared) -> int:
    return p.op.call


def stale_read(prepared: Sequence[Prepared], strings: bool) -> Stale | None:
    """The first stale read of a partition (in its order) and the write it cannot see, or None.

    Args:
        prepared: one partition's compiled ops (one key's value).
        strings: whether the model's values are strings that ``append`` extends.
    """
    changes = [p for p in prepared if p.action in _CHANGES]
    done = sorted((p.op.returned, i) for i, p in enumerate(changes) if p.required and p.action != "may_swap")
    if not done:
        return None
    rets = [r for r, _ in done]
    resets = _Between([p for p in changes if not (strings and p.action == "append")])
    for read in prepared:
        if read.action != "read" or (strings and not isinstance(read.args[0], str)):
            continue
        end = bisect.bisect_left(rets, read.op.call)
        for _, i in done[max(0, end - _LATEST) : end][::-1]:
            if _stale(changes[i], read, resets, strings):
                return Stale(changes[i], read)
    return None


def _stale(write: Prepared, read: Prepared, resets: _Between, strings: bool) -> bool:
    """Whether ``read`` cannot see what ``write`` left, nothing able to change it in between."""
    seen = read.args[0]
    if write.action == "append":
        if not strings or not isinstance(write.args[0], str) or write.args[0] in seen:
            return False
    else:
        left = write.args[-1]
        if strings:
            if not isinstance(left, str) or seen.startswith(left):
                return False
        elif left == seen:
            return False
    return not resets.any_between(write, read)


class _Between:
    """Whether any of some ops may be ordered after one op and before another."""

    def __init__(self, ops: Sequence[Prepared]) -> None:
        ordered = sorted(ops, key=lambda p: p.op.call)
        self.calls = [p.op.call for p in ordered]
        self.top: list[tuple[_End, _End]] = []  # per prefix by call: the two latest ends (end, op)
        first: _End = (-math.inf, None)
        second = first
        for p in ordered:
            end = (_end(p), p)
            if end[0] > first[0]:
                first, second = end, first
            elif end[0] > second[0]:
                second = end
            self.top.append((first, second))

    def any_between(self, after: Prepared, before: Prepared) -> bool:
        """True when an op other than ``after`` began before ``before`` returned and ended after ``after`` began."""
        n = bisect.bisect_right(self.calls, _end(before))
        if not n:
            return False
        for end, op in self.top[n - 1]:
            if op is not after and op is not None:
                return end >= after.op.call
        return False


def _end(p: Prepared) -> float:
    """When ``p`` returned; never, for an op that may not have happened yet."""
    return p.op.ret if p.required and p.op.ret is not None else math.inf
