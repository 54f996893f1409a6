"""The Wing–Gong–Lowe linearizability search, as Porcupine runs it, resumable.

Every required op becomes a call entry and a return entry in a doubly
linked list in real-time order (a call sorts before a return at the same
instant). The search walks the list from the front: at a call entry it tries
to linearize that op next (apply its step to the current state); if the
step is legal and the resulting configuration (ops linearized, state) was
never seen, it *lifts* the op's entries out of the list, pushes the op on a
stack and starts again from the front. Reaching a return entry means that op
had to be linearized already and was not: the search pops the last op,
*unlifts* it and tries the entry after it. Lowe's memoisation keeps every
configuration reached; one seen before cannot lead anywhere new. The history
is linearizable once every required op is lifted, and is not when the stack
is empty and nothing can move.

Optional ops (indeterminate: ``info`` or never completed) may take effect
once, at any point after their call, or never: Porcupine and Knossos give
them a return at the end of the history, and so does this search in effect.
They wait in a second list in call order and are tried at a configuration
once every required op that may come next was (the walk reached the first
return entry), those called before that return: a timeout pending since the
start costs nothing until some op needs it. The search ends as soon as every
*required* op is in, since the optional ones left can all come last, where
they change nothing anyone saw. Three sound reductions apply to them, all
resting on an optional op constraining nothing:

- optional ops with the same signature (same action, arguments and key) are
  interchangeable, so they are linearized in call order: one is tried only
  once every earlier one of its group is in;
- a configuration whose optional ops include those of one reached before
  with the same required ops and state is dominated and skipped (an
  optional op that changes nothing is the simplest case); a few earlier sets
  are compared, so a check costs a few comparisons;
- an optional op followed at once by a blind write of the same key had no
  visible effect, so that order is skipped: the same order without the
  optional op is tried anyway.

Two orderings cut the search. An *observer* (an op that leaves the state as
it is wherever it is legal: a read, a cas that failed on a definite
precondition) that can be linearized now is linearized now, and no
alternative to it is tried: taking it now is never worse, since every op
that returned before its call is already in (it is in the window), it
changes nothing, and it only moves earlier; so when that configuration fails,
the one before it fails too. And at every configuration the op that must be
linearized soonest (the one whose return is the first in the list: earliest
deadline first) is tried before the walk in call order, so an op with a long
interval is not linearized early by default.

A configuration is cached exactly, in a few machine words: the required ops
linearized are the first ``f`` of them in call order plus a small set of
later ones within the window (``f`` and that set as a small integer), the
optional ops linearized are a bitset over the optional ops alone, and the
state. Nothing is hashed that grows with the required ops, so a step costs
the same at the end of a long history as at its start.

:class:`Search` runs in slices of a given number of steps (tries and
backtracks), so a caller can interleave many searches, watch a deadline
between slices and report progress. The longest prefix is copied only from
where it last changed, so a history of n ops costs O(n) memory besides the
cache.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.check.models import ILLEGAL, Step

__all__ = ["Search", "SearchResult", "search"]

_SLICE = 2048  # steps between two looks at the clock in :func:`search`
_DOMINANCE_SCAN = 16  # optional sets kept per (required ops, state), at most
_NO_KEY = object()  # the key of an entry that is not an optional op


def _no_step(state: Any) -> Any:
    """The step of a table entry that is not an op's call (never run)."""
    raise AssertionError("the search ran an entry that is not an op")


@dataclass
class SearchResult:
    """The outcome of one search.

    ``valid`` is True (linearizable), False (not) or None (stopped first).
    ``order`` is a full linearization of the required ops (and the optional
    ops it uses) when valid, else the longest linearizable prefix found
    (the one with the most required ops, then the most ops; when the search
    ran to its end, no linearizable prefix has more required ops);
    ``state`` is the model state after ``order``; ``explored`` counts the
    configurations cached.
    """

    valid: bool | None
    order: list[int] = field(default_factory=list)
    state: Any = None
    explored: int = 0


class Search:
    """A WGL search over ops ``0..n-1`` that runs in slices.

    Args:
        calls: each op's invocation time (any totally ordered numbers).
        rets: each op's return time; ``math.inf`` for an op that never returned.
        steps: each op's step: state -> next state, or ``ILLEGAL``.
        required: whether each op must be linearized (False for indeterminate ops).
        init: the model's initial state (hashable).
        blind: whether each op overwrites its key whatever its value was (a
            plain write); see the module doc.
        keys: each op's key, when the state holds several (unsplit checks);
            by default all ops act on one value.
        signatures: for each op, a hashable equal for ops with the same step
            (action, arguments, key); optional ops with equal signatures are
            linearized in call order. By default every op is its own.
        observers: whether each op leaves the state as it is wherever it is
            legal (a read, a failed cas); see the module doc.
        reuse_optional: let every optional op take effect any number of
            times (a relaxation: when even this finds no order, none exists;
            when it finds one, that proves nothing).

    Call :meth:`run` until it returns a result.
    """

    def __init__(
        self,
        calls: Sequence[float],
        rets: Sequence[float],
        steps: Sequence[Callable[[Any], Any]],
        required: Sequence[bool],
        init: Any,
        blind: Sequence[bool] | None = None,
        keys: Sequence[Any] | None = None,
        signatures: Sequence[Hashable] | None = None,
        observers: Sequence[bool] | None = None,
        reuse_optional: bool = False,
    ) -> None:
        self.explored = 0
        self.steps_taken = 0
        self.result: SearchResult | None = None
        self._budget = 0
        self._caches: tuple[
            Any, ...
        ] = ()  # the configurations cached, and the dominance sets (set when the walk starts)
        table = _Table(calls, rets, steps, required, blind, keys, signatures, observers)
        self._walk = self._search(table, init, reuse_optional)

    def run(self, budget: int) -> SearchResult | None:
        """Search for up to about ``budget`` more steps; the result once there is one, else None."""
        if self.result is None:
            self._budget = budget
            try:
                next(self._walk)
            except StopIteration as done:
                self.result = done.value
                self.explored = done.value.explored
        return self.result

    def forget(self, count: int) -> int:
        """Drop up to ``count`` cached configurations (and as many dominance entries); how many went.

        Sound: a configuration forgotten is only explored again if reached
        again. :mod:`emulator.check.linearizable` times this to learn what
        freeing the whole cache will cost on this machine, now.
        """
        if not self._caches:
            return 0
        seen, sets = self._caches
        n = min(count, len(seen) - 1)
        dropped = [seen.pop() for _ in range(n)]
        if sets:
            dropped += [sets.popitem() for _ in range(min(n, len(sets)))]
        del dropped
        return n

    def stop(self) -> SearchResult:
        """Give up: the result says ``valid=None`` with the longest prefix found so far."""
        if self.result is None:
            self._budget = -1
            try:
                next(self._walk)
            except StopIteration as done:
                self.result = done.value
                self.explored = done.value.explored
        return self.result  # type: ignore[return-value]

    def _search(self, t: _Table, init: Any, reuse: bool) -> Generator[None, None, SearchResult]:
        """The search loop; yields when ``self._budget`` steps are spent, returns the result."""
        # One function on purpose: this loop is the checker's whole cost, and
        # helper calls or attribute lookups per step would cost more than they read.
        remaining = t.required_count
        if remaining == 0:
            return SearchResult(True, [], init, 0)
        nxt, prv, match, step, callof, opof, pos = t.nxt, t.prv, t.match, t.step, t.callof, t.opof, t.pos
        rank, obit, observer, blindkey, okey, prevsame = t.rank, t.obit, t.observer, t.blindkey, t.okey, t.prevsame
        onxt, oprv, ohead, otail = t.onxt, t.oprv, t.ohead, t.otail
        lifted = bytearray(len(match))
        seen: set[Any] = set()
        stack: list[Any] = []  # (entry, state before, how it was tried, frontier before, window before, skip then)
        best: list[Any] = []  # the longest prefix's stack entries; best[:keep] equals stack[:keep]
        best_state, keep, best_in, total = init, 0, 0, remaining  # best_in: required ops in best
        # The configuration: state; required ops in are ranks < front plus the set bits of
        # window (bit j is rank front + j; bit 0 is always clear); optional ops in: opt.
        state, front, window, opt = init, 0, 0, 0
        explored, work, budget = 0, 0, self._budget
        seen.add((front, window, opt, state))
        has_optional = t.optional_count > 0
        dominance = _Dominance() if has_optional and not reuse else None
        dominated = None if dominance is None else dominance.dominated
        self._caches = (seen, None if dominance is None else dominance.sets)
        # phase 0: observers from the front; 4: the earliest-deadline op; 1: the other required
        # ops from the front in call order; 2: optional ops called before ``limit``; 3: dead.
        e, g, phase, skip, limit = nxt[0], otail, 0, -1, 0.0
        while True:
            if work >= budget:
                self.explored, self.steps_taken = explored, self.steps_taken + work
                work = 0
                if budget >= 0:
                    yield
                    budget = self._budget
                if budget < 0:
                    if total - remaining > best_in or (total - remaining == best_in and len(stack) > len(best)):
                        best, best_state = stack, state
                    return SearchResult(None, _order(best, opof), best_state, explored)
            if phase != 2 and phase != 3:
                m = match[e]
                if m:
                    if phase == 0:
                        if not observer[e]:
                            e = nxt[e]
                            continue
                    elif phase == 1 and (observer[e] or e == skip):
                        e = nxt[e]
                        continue
                    if blindkey[e] is not _NO_KEY and stack and okey[stack[-1][0]] == blindkey[e]:
                        e, phase = (nxt[0], 1) if phase == 4 else (nxt[e], phase)
                        continue
                    work += 1
                    new = step[e](state)
                    if new is not ILLEGAL:
                        r = rank[e]
                        f, w = front, window | (1 << (r - front))
                        if r == front:
                            ones = (~w & (w + 1)).bit_length() - 1
                            f, w = front + ones, w >> ones
                        config = (f, w, opt, new)
                        if config not in seen and (dominated is None or not dominated(config)):
                            seen.add(config)
                            explored += 1
                            stack.append((e, state, phase, front, window, skip))
                            state, front, window = new, f, w
                            lifted[e] = 1
                            p, q = prv[e], nxt[e]
                            nxt[p], prv[q] = q, p
                            p, q = prv[m], nxt[m]
                            nxt[p], prv[q] = q, p
                            remaining -= 1
                            if not remaining:
                                return SearchResult(True, _order(stack, opof), state, explored)
                            e, phase = nxt[0], 0
                            continue
                        if not phase:
                            phase = 3  # a legal observer led to a configuration seen: this one is dead too
                            continue
                    e, phase = (nxt[0], 1) if phase == 4 else (nxt[e], phase)
                    continue
                # A return entry: its op should be linearized already.
                if not phase:
                    # Earliest deadline first: the op that must be linearized soonest is tried
                    # before the walk in call order (which then skips it). An observer there
                    # was tried from the front already.
                    skip = callof[e]
                    e, phase = (nxt[0], 1) if observer[skip] else (skip, 4)
                    continue
                if has_optional:
                    # Every required op that may come next was tried: the optional ones called
                    # before this return may.
                    g, phase, limit = onxt[ohead], 2, pos[e]
                    continue
            elif phase == 2:  # noqa: SIM102 (merged, a false test would fall through to the branches below)
                if g != otail and pos[g] <= limit:
                    ps = prevsame[g]
                    if (ps and not lifted[ps]) or (
                        blindkey[g] is not _NO_KEY and stack and okey[stack[-1][0]] == blindkey[g]
                    ):
                        g = onxt[g]
                        continue
                    work += 1
                    new = step[g](state)
                    if new is not ILLEGAL and new != state:  # an optional op that changes nothing is dominated
                        config = (front, window, opt if reuse else opt | obit[g], new)
                        if config not in seen and (dominated is None or not dominated(config)):
                            seen.add(config)
                            explored += 1
                            stack.append((g, state, 2, front, window, skip))
                            state = new
                            if not reuse:  # else it stays available, in the list and out of the configuration
                                opt = config[2]
                                lifted[g] = 1
                                p, q = oprv[g], onxt[g]
                                onxt[p], oprv[q] = q, p
                            e, phase = nxt[0], 0
                            continue
                    g = onxt[g]
                    continue
            # Stuck: record the longest prefix (the most required ops, then the most ops; the
            # reductions skip orders that differ in optional ops only), then backtrack past every forced move.
            if total - remaining > best_in or (total - remaining == best_in and len(stack) > len(best)):
                del best[keep:]
                best.extend(stack[keep:])
                keep, best_state, best_in = len(stack), state, total - remaining
            while True:
                if not stack:
                    return SearchResult(False, _order(best, opof), best_state, explored)
                work += 1
                x, state, how, front, window, skip = stack.pop()
                if len(stack) < keep:
                    keep = len(stack)
                if how == 2:
                    if not reuse:
                        p, q = oprv[x], onxt[x]
                        onxt[p] = oprv[q] = x
                        opt ^= obit[x]
                else:
                    m = match[x]
                    p, q = prv[m], nxt[m]
                    nxt[p] = prv[q] = m
                    p, q = prv[x], nxt[x]
                    nxt[p] = prv[q] = x
                    remaining += 1
                lifted[x] = 0
                if how:
                    break
            # Resume where the popped op was tried: the walk after it, the walk from the
            # front after the earliest-deadline try, or the optional ops after it.
            if how == 1:
                e, phase = nxt[x], 1
            elif how == 4:
                e, phase = nxt[0], 1
            else:
                g, phase, limit = onxt[x], 2, pos[match[skip]]


def search(
    calls: Sequence[float],
    rets: Sequence[float],
    steps: Sequence[Callable[[Any], Any]],
    required: Sequence[bool],
    init: Any,
    deadline: float | None = None,
    blind: Sequence[bool] | None = None,
    keys: Sequence[Any] | None = None,
    signatures: Sequence[Hashable] | None = None,
    observers: Sequence[bool] | None = None,
) -> SearchResult:
    """Run a :class:`Search` to the end, or until ``deadline`` (a ``time.monotonic`` reading)."""
    run = Search(calls, rets, steps, required, init, blind, keys, signatures, observers)
    monotonic = time.monotonic  # wall-clock ok: the time budget is wall time by design
    while True:
        if deadline is not None and monotonic() > deadline:
            return run.stop()
        result = run.run(_SLICE)
        if result is not None:
            return result


class _Table:
    """The entry lists and, per entry, what the search loop reads about its op.

    The required ops' call and return entries form the main list, between
    head entry 0 and a tail that acts as a return that can never be passed.
    The optional ops' call entries form a second list in call order, between
    ``ohead`` and ``otail`` (``onxt``/``oprv``). Per entry: ``match`` is a
    call entry's return entry (0 for return entries and the ends), ``callof``
    a return entry's call entry, ``pos`` its time (an optional op's call
    time), ``step`` its op's step, ``rank`` a required op's position among
    the required ops in call order, ``obit`` an optional op's bit among the
    optional ops, ``observer`` whether it is an observer, ``blindkey`` its key
    if it is a blind write, ``okey`` its key if it is optional, ``prevsame``
    the entry of the optional op of the same signature called just before it
    (0 if none), ``opof`` its op id.
    """

    def __init__(
        self,
        calls: Sequence[float],
        rets: Sequence[float],
        steps: Sequence[Step],
        required: Sequence[bool],
        blind: Sequence[bool] | None,
        keys: Sequence[Any] | None,
        signatures: Sequence[Hashable] | None,
        observers: Sequence[bool] | None,
    ) -> None:
        n = len(steps)
        req = [i for i in range(n) if required[i]]
        events = sorted([(calls[i], 0, i) for i in req] + [(rets[i], 1, i) for i in req])
        optional = sorted((calls[i], i) for i in range(n) if not required[i])
        tail = len(events) + 1
        self.ohead, self.otail = tail + 1, tail + len(optional) + 2
        size = self.otail + 1
        self.nxt = list(range(1, size + 1))
        self.prv = list(range(-1, size - 1))
        self.onxt, self.oprv = list(self.nxt), list(self.prv)
        self.match, self.callof, self.opof = [0] * size, [0] * size, [-1] * size
        self.pos: list[float] = [math.inf] * size
        self.step: list[Step] = [_no_step] * size
        self.rank, self.obit = [-1] * size, [0] * size
        self.observer = [False] * size
        self.blindkey: list[Any] = [_NO_KEY] * size
        self.okey: list[Any] = [_NO_KEY] * size
        self.prevsame = [0] * size
        call_entry: dict[int, int] = {}
        ranks = 0
        for e, (at, is_return, i) in enumerate(events, 1):
            self.opof[e], self.pos[e] = i, at
            if is_return:
                self.match[call_entry[i]], self.callof[e] = e, call_entry[i]
                continue
            call_entry[i] = e
            self._op(e, i, steps, blind, keys, observers)
            self.rank[e], ranks = ranks, ranks + 1
        last_of_group: dict[Hashable, int] = {}
        for j, (at, i) in enumerate(optional):
            e = self.ohead + 1 + j
            self.opof[e], self.pos[e] = i, at
            self._op(e, i, steps, blind, keys, observers)
            self.obit[e] = 1 << j
            self.okey[e] = 0 if keys is None else keys[i]
            sig = ("op", i) if signatures is None else signatures[i]
            self.prevsame[e] = last_of_group.get(sig, 0)
            last_of_group[sig] = e
        self.required_count, self.optional_count = ranks, len(optional)

    def _op(
        self,
        e: int,
        i: int,
        steps: Sequence[Step],
        blind: Sequence[bool] | None,
        keys: Sequence[Any] | None,
        observers: Sequence[bool] | None,
    ) -> None:
        self.step[e] = steps[i]
        self.observer[e] = bool(observers is not None and observers[i])
        if blind is not None and blind[i]:
            self.blindkey[e] = 0 if keys is None else keys[i]


class _Dominance:
    """Configurations dominated by one reached before: same required ops and state, fewer optional ops.

    An optional op may be left out, so a configuration can do whatever one
    with the same required ops and state and a superset of its optional ops
    can: when that one was reached (explored and failed, or an ancestor being
    explored), the superset adds nothing. A few sets per (required ops, state)
    are kept, the empty set first; the scan is bounded, so a check costs a
    few comparisons.
    """

    def __init__(self) -> None:
        self.sets: dict[tuple[Any, Any, Any], list[Any]] = {}

    def dominated(self, config: tuple[Any, Any, Any, Any]) -> bool:
        """True when ``config`` is dominated; else records its optional set."""
        front, window, opt, state = config
        sets = self.sets.get((front, window, state))
        if sets is None:
            self.sets[(front, window, state)] = [opt]
            return False
        if not opt:
            sets.insert(0, 0)
            return False
        for other in sets:
            if other & opt == other:
                return True
        if len(sets) < _DOMINANCE_SCAN:
            sets.append(opt)
        return False


def _order(stack: list[Any], opof: list[int]) -> list[int]:
    """The op ids of a stack of lifted entries, in order."""
    return [opof[x[0]] for x in stack]
