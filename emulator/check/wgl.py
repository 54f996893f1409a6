"""The Wing–Gong–Lowe linearizability search, as Porcupine runs it, resumable.

The required ops become a doubly linked list of call and return entries in
real-time order. The search walks the list from the front: at a call entry it
tries to linearize that op next (apply its step to the current state); if the
step is legal and the resulting configuration (ops linearized, state) was
never seen, it *lifts* the op's call and return out of the list, pushes the
op on a stack and starts again from the front. Reaching a return entry means
that op had to be linearized already and was not: the search tries the
optional ops (below), then pops the last op, *unlifts* it and tries the entry
after it. The history is linearizable when every required op is lifted; it
is not when the stack is empty and nothing can move. Lowe's memoisation
keeps every configuration reached; one seen before cannot lead anywhere new.

Optional ops (indeterminate: ``info`` or never completed) return at +infinity:
they may be linearized at any point after their call, or never, so the
search ends as soon as all *required* ops are in. Histories full of timeouts
have many such ops pending at once, and plain WGL then tries every subset of
them at every point. Four sound reductions keep that in check (all rest on
an optional op constraining nothing):

- optional ops stay out of the list, so a walk costs the ops in flight, not
  the timeouts piled up behind them; they are tried only where the walk is
  stuck at a return entry, after every required op;
- optional ops with the same signature (same action, arguments and key) are
  interchangeable, so they are linearized in call order: a group of them is
  a counter, not a subset;
- a configuration whose optional ops include those of one already seen with
  the same required ops and state is dominated and skipped (the check looks
  at a bounded number of earlier sets, so it never costs more than a few
  comparisons);
- an optional op followed at once by a blind write of the same key had no
  visible effect, so that order is skipped: the same order without the
  optional op is tried anyway.

Two more orderings cut the search. An *observer* (an op that leaves the
state as it is wherever it is legal: a read) that can be linearized now is
linearized now, and no alternative to it is tried: taking it now is never
worse, since every op that returned before its call is already in (it is in
the window), it changes nothing, and it only moves earlier; so when that
configuration fails, the one before it fails too. The caller passes
observers only for histories without optional ops: with many timeouts,
committing to reads early sends the search down long chains of optional
ops. And at every configuration the op that must be linearized soonest (the
one whose return is the first in the list: earliest deadline first) is
tried before the walk in call order, so an op with a long interval is not
linearized early by default.

:class:`Search` runs in slices of a given number of steps (lifts and
backtracks), so a caller can interleave many searches, watch a deadline
between slices and report progress. The stack keeps no bitset per level (a
pop clears the op's bit), and the longest prefix is copied only from where it
last changed, so a history of n ops costs O(n) memory besides the cache.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Hashable, Sequence

from emulator.check.models import ILLEGAL

__all__ = ["Search", "SearchResult", "search"]

_DOMINANCE_SCAN = 8  # earlier optional sets compared per configuration, at most
_SLICE = 2048  # steps between two looks at the clock in :func:`search`


@dataclass
class SearchResult:
    """The outcome of one search.

    ``valid`` is True (linearizable), False (not) or None (stopped first).
    ``order`` is a full linearization of the required ops (and the optional
    ops it uses) when valid, else the longest linearizable prefix found;
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
        calls: each op's invocation time (any totally ordered numbers; all
            calls and returns must be distinct).
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
    ) -> None:
        self.explored = 0
        self.steps_taken = 0
        self.result: SearchResult | None = None
        self._budget = 0
        self._walk = _walk(self, calls, rets, steps, required, init, blind, keys, signatures, observers)

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


def _walk(owner: Search, calls, rets, steps, required, init, blind, keys, signatures, observers) -> Generator[None, None, SearchResult]:
    """The search loop; yields when ``owner._budget`` steps are spent, returns the result."""
    # One function on purpose: this loop is the checker's whole cost, and
    # helper calls or attribute lookups per step would cost more than they read.
    n = len(steps)
    req_ids = [i for i in range(n) if required[i]]
    remaining = len(req_ids)
    if remaining == 0:
        return SearchResult(True, [], init, 0)
    nxt, prv, match, step, rbit, rz, pos, opof = _link(req_ids, calls, rets, steps)
    callof = [0] * len(match)
    for c, r in enumerate(match):
        if r:
            callof[r] = c
    blindkey = _blind_keys(opof, req_ids, blind, keys)
    kind = [0 if i >= 0 and observers is not None and observers[i] else 1 for i in opof]
    groups, gstep, gcall, gkey = _groups(n, required, calls, steps, keys, signatures)
    gblind = [blind is not None and bool(blind[grp[0]]) for grp in groups]
    head = [0] * len(groups)  # per group: how many of its ops are linearized (always the first ones)
    gshift = _shifts(groups)
    gbit = [[1 << (j + gshift[k]) for j in range(len(grp))] for k, grp in enumerate(groups)]
    gz = [[_zobrist(len(req_ids) + j + gshift[k]) for j in range(len(grp))] for k, grp in enumerate(groups)]
    cache = _Cache(bool(groups))
    remember = cache.remember
    stack: list = []  # (entry > 0, or -(group + 1), state before, how it was tried: see the resume code)
    best: list = []  # the longest prefix's stack entries; equal to stack[:keep]
    best_state, keep = init, 0
    state, rlin, olin, rh, oh = init, 0, 0, 0, 0
    explored, work, budget = 0, 0, owner._budget
    # phase 0: observers from the front; 4: the earliest-deadline op; 1: the rest from the
    # front in call order; 2: optional groups from group g; 3: dead, backtrack.
    e, g, phase, limit, skip = nxt[0], 0, 0, 0.0, -1
    while True:
        if work >= budget:
            owner.explored, owner.steps_taken = explored, owner.steps_taken + work
            work = 0
            if budget >= 0:
                yield
                budget = owner._budget
            if budget < 0:
                if len(stack) > len(best):
                    best, best_state = stack, state
                return SearchResult(None, _order(best, opof, groups), best_state, explored)
        if phase < 2 or phase == 4:
            m = match[e]
            if m:
                if (phase != 4 and (kind[e] != phase or (phase and e == skip))) or (
                    blindkey[e] is not None and stack and stack[-1][0] < 0 and gkey[-stack[-1][0] - 1] == blindkey[e]
                ):
                    e, phase = (nxt[0], 1) if phase == 4 else (nxt[e], phase)
                    continue
                work += 1
                new = step[e](state)
                if new is not ILLEGAL:
                    grown, zh = rlin | rbit[e], rh ^ rz[e]
                    if remember(zh, oh, new, grown, olin):
                        explored += 1
                        stack.append((e, state, phase))
                        state, rlin, rh = new, grown, zh
                        p, q = prv[e], nxt[e]
                        nxt[p], prv[q] = q, p
                        p, q = prv[m], nxt[m]
                        nxt[p], prv[q] = q, p
                        remaining -= 1
                        if not remaining:
                            return SearchResult(True, _order(stack, opof, groups), state, explored)
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
                # before the walk in call order (which then skips it).
                skip = callof[e]
                e, phase = skip, 4
                continue
            if groups:
                g, phase, limit = 0, 2, pos[e]
                continue
        elif phase == 2 and g < len(groups):
            j = head[g]
            if j < len(groups[g]) and gcall[g][j] < limit:
                if gblind[g] and stack and stack[-1][0] < 0 and gkey[-stack[-1][0] - 1] == gkey[g]:
                    g += 1
                    continue
                work += 1
                new = gstep[g](state)
                if new is not ILLEGAL:
                    grown, zh = olin | gbit[g][j], oh ^ gz[g][j]
                    if remember(rh, zh, new, rlin, grown):
                        explored += 1
                        stack.append((-g - 1, state, 2))
                        state, olin, oh = new, grown, zh
                        head[g] = j + 1
                        e, phase = nxt[0], 0
                        continue
            g += 1
            continue
        # Stuck: record the longest prefix, then backtrack past every forced move.
        if len(stack) > len(best):
            del best[keep:]
            best.extend(stack[keep:])
            keep, best_state = len(stack), state
        while True:
            if not stack:
                return SearchResult(False, _order(best, opof, groups), best_state, explored)
            work += 1
            x, state, how = stack.pop()
            if len(stack) < keep:
                keep = len(stack)
            if x > 0:
                m = match[x]
                p, q = prv[m], nxt[m]
                nxt[p] = prv[q] = m
                p, q = prv[x], nxt[x]
                nxt[p] = prv[q] = x
                rlin ^= rbit[x]
                rh ^= rz[x]
                remaining += 1
            else:
                g = -x - 1
                head[g] -= 1
                olin ^= gbit[g][head[g]]
                oh ^= gz[g][head[g]]
            if how:
                break
        # Resume where the popped op was tried: the walk after it, the walk from the
        # front after the earliest-deadline try, or the next optional group.
        if x < 0:
            g, phase, limit = g + 1, 2, pos[_first_return(nxt, match)]
        elif how == 1:
            e, phase, skip = nxt[x], 1, callof[_first_return(nxt, match)]
        else:
            e, phase, skip = nxt[0], 1, x


class _Cache:
    """Lowe's memo: every configuration reached, keyed by a 64-bit Zobrist hash of its op sets.

    A key holds the exact sets too, so a hash collision costs a look in a
    second set, never a wrong answer. With optional ops, a configuration is
    also dominated by one with the same required ops and state whose
    optional ops are a subset of its own (a bounded scan of a few).
    """

    def __init__(self, optional: bool) -> None:
        self.seen: dict = {}
        self.spill: set = set()
        self.subsets: dict | None = {} if optional else None

    def remember(self, rh: int, oh: int, state: Any, rlin: int, olin: int) -> bool:
        """Record a configuration; False when it, or one that dominates it, was seen."""
        key = (rh ^ oh, state)
        stored = self.seen.get(key)
        if stored is None:
            self.seen[key] = (rlin, olin)
        elif stored == (rlin, olin):
            return False
        else:
            exact = (rlin, olin, state)
            if exact in self.spill:
                return False
            self.spill.add(exact)
        if self.subsets is not None:
            return self._undominated(rh, state, rlin, olin)
        return True

    def _undominated(self, rh: int, state: Any, rlin: int, olin: int) -> bool:
        short = (rh, state)
        seen = self.subsets.get(short)  # type: ignore[union-attr]
        if seen is None:
            self.subsets[short] = [(rlin, olin)]  # type: ignore[index]
            return True
        for r, other in seen:
            if other & olin == other and r == rlin:
                return False
        if len(seen) < _DOMINANCE_SCAN:
            seen.append((rlin, olin))
        return True


def _zobrist(k: int) -> int:
    """A fixed pseudo-random 64-bit number for op slot ``k`` (splitmix64)."""
    z = (k + 1) * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _first_return(nxt: list, match: list) -> int:
    """The first return entry in the list: where a walk gets stuck."""
    e = nxt[0]
    while match[e]:
        e = nxt[e]
    return e


def _order(stack: list, opof: list, groups: list) -> list[int]:
    """The op ids of a stack of lifted entries and optional groups, in order."""
    taken = [0] * len(groups)
    order = []
    for x, *_ in stack:
        if x > 0:
            order.append(opof[x])
        else:
            g = -x - 1
            order.append(groups[g][taken[g]])
            taken[g] += 1
    return order


def _link(req_ids: list, calls, rets, steps) -> tuple[list, ...]:
    """Build the entry list of the required ops.

    Returns next/prev links and, per entry, the return entry it matches (0 for
    return entries and for the tail, which therefore acts as a return that can
    never be passed), its step, its bit, its Zobrist number, its history
    position and its op id.
    """
    events = sorted([(calls[i], 0, k) for k, i in enumerate(req_ids)] + [(rets[i], 1, k) for k, i in enumerate(req_ids)])
    size = 2 * len(req_ids) + 2
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    match, step, bit, z = [0] * size, [None] * size, [0] * size, [0] * size
    pos: list = [0.0] * size
    opof = [-1] * size
    pos[size - 1] = math.inf
    call_entry = {}
    for e, (at, is_return, k) in enumerate(events, 1):
        opof[e], pos[e] = req_ids[k], at
        if is_return:
            match[call_entry[k]] = e
        else:
            call_entry[k] = e
            step[e], bit[e], z[e] = steps[req_ids[k]], 1 << k, _zobrist(k)
    return nxt, prv, match, step, bit, z, pos, opof


def _blind_keys(opof: list, req_ids: list, blind, keys) -> list:
    """Per entry: the op's key (0 when unkeyed) if it is a blind write, else None."""
    out: list = [None] * len(opof)
    if blind is None:
        return out
    for e, i in enumerate(opof):
        if i >= 0 and blind[i]:
            out[e] = 0 if keys is None else keys[i]
    return out


def _groups(n: int, required, calls, steps, keys, signatures) -> tuple[list, list, list, list]:
    """The optional ops grouped by signature, each group in call order, groups by first call.

    Returns the groups (op ids), each group's step, its ops' calls and its key
    (0 when unkeyed).
    """
    by_sig: dict = {}
    for i in sorted((i for i in range(n) if not required[i]), key=lambda i: calls[i]):
        sig = ("op", i) if signatures is None else signatures[i]
        by_sig.setdefault(sig, []).append(i)
    groups = list(by_sig.values())
    gstep = [steps[g[0]] for g in groups]
    gcall = [[calls[i] for i in g] for g in groups]
    gkey = [0 if keys is None else keys[g[0]] for g in groups]
    return groups, gstep, gcall, gkey


def _shifts(groups: list) -> list[int]:
    """Where each group's bits start in the optional bitset."""
    shifts, at = [], 0
    for g in groups:
        shifts.append(at)
        at += len(g)
    return shifts
