"""A stale read, found without a search: a proof that a partition is not linearizable.

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
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from emulator.check.models import Prepared

__all__ = ["stale_read"]

_LATEST = 3  # writes completed before a read that are compared with it, the latest first
_CHANGES = ("write", "swap", "may_swap", "append")
_End = tuple[float, Prepared | None]  # when an op ended (math.inf: maybe never), and the op


def stale_read(prepared: Sequence[Prepared], strings: bool) -> tuple[Prepared, Prepared] | None:
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
                return changes[i], read
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
