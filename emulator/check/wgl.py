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
    ) -> None:
        self.explored = 0
        self.steps_taken = 0
        self.result: SearchResult | None = None
        self._budget = 0
        self._walk = _walk(self, calls, rets, steps, required, init, blind, keys, signatures)

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
) -> SearchResult:
    """Run a :class:`Search` to the end, or until ``deadline`` (a ``time.monotonic`` reading)."""
    run = Search(calls, rets, steps, required, init, blind, keys, signatures)
    monotonic = time.monotonic  # wall-clock ok: the time budget is wall time by design
    while True:
        if deadline is not None and monotonic() > deadline:
            return run.stop()
        result = run.run(_SLICE)
        if result is not None:
            return result


def _walk(owner: Search, calls, rets, steps, required, init, blind, keys, signatures) -> Generator[None, None, SearchResult]:
    """The search loop; yields when ``owner._budget`` steps are spent, returns the result."""
    # One function on purpose: this loop is the checker's whole cost, and
    # helper calls or attribute lookups per step would cost more than they read.
    n = len(steps)
    req_ids = [i for i in range(n) if required[i]]
    remaining = len(req_ids)
    if remaining == 0:
        return SearchResult(True, [], init, 0)
    nxt, prv, match, step, rbit, pos, opof = _link(req_ids, calls, rets, steps)
    blindkey = _blind_keys(opof, req_ids, blind, keys)
    groups, gstep, gcall, gkey = _groups(n, required, calls, steps, keys, signatures)
    gblind = [blind is not None and bool(blind[grp[0]]) for grp in groups]
    head = [0] * len(groups)  # per group: how many of its ops are linearized (always the first ones)
    gbit = [[1 << j for j in range(len(g))] for g in groups]
    gshift = _shifts(groups)
    optional = bool(groups)
    exact: set = set()
    dominance: dict = {}
    stack: list = []  # (entry > 0, or -(group + 1), state before)
    best: list = []  # the longest prefix's stack entries; equal to stack[:keep]
    best_state, keep = init, 0
    state, rlin, olin = init, 0, 0
    explored, work, budget = 0, 0, owner._budget
    e = nxt[0]
    g = -1  # >= 0 while trying optional groups (from group g on) at a stuck point
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
        if g < 0:
            m = match[e]
            if m:
                # A required call entry: try to linearize it next.
                if blindkey[e] is not None and stack and stack[-1][0] < 0 and gkey[-stack[-1][0] - 1] == blindkey[e]:
                    e = nxt[e]
                    continue
                work += 1
                new = step[e](state)
                if new is not ILLEGAL:
                    grown = rlin | rbit[e]
                    if optional:
                        fresh = _remember(exact, dominance, grown, olin, new)
                    else:
                        key = (grown, new)
                        fresh = key not in exact
                        if fresh:
                            exact.add(key)
                    if fresh:
                        explored += 1
                        stack.append((e, state))
                        state, rlin = new, grown
                        p, q = prv[e], nxt[e]
                        nxt[p], prv[q] = q, p
                        p, q = prv[m], nxt[m]
                        nxt[p], prv[q] = q, p
                        remaining -= 1
                        if not remaining:
                            return SearchResult(True, _order(stack, opof, groups), state, explored)
                        e = nxt[0]
                        continue
                e = nxt[e]
                continue
            # A return entry: its op should be linearized already. Try the optional ops first.
            if optional:
                g = 0
                limit = pos[e]
                continue
        elif g < len(groups):
            j = head[g]
            if j < len(groups[g]) and gcall[g][j] < limit:
                if gblind[g] and stack and stack[-1][0] < 0 and gkey[-stack[-1][0] - 1] == gkey[g]:
                    g += 1
                    continue
                work += 1
                new = gstep[g](state)
                if new is not ILLEGAL:
                    grown = olin | (gbit[g][j] << gshift[g])
                    if _remember(exact, dominance, rlin, grown, new):
                        explored += 1
                        stack.append((-g - 1, state))
                        state, olin = new, grown
                        head[g] = j + 1
                        g, e = -1, nxt[0]
                        continue
            g += 1
            continue
        # Stuck: record the longest prefix, then backtrack.
        g = -1
        if len(stack) > len(best):
            del best[keep:]
            best.extend(stack[keep:])
            keep, best_state = len(stack), state
        if not stack:
            return SearchResult(False, _order(best, opof, groups), best_state, explored)
        work += 1
        x, state = stack.pop()
        if len(stack) < keep:
            keep = len(stack)
        if x > 0:
            e = x
            m = match[e]
            p, q = prv[m], nxt[m]
            nxt[p] = prv[q] = m
            p, q = prv[e], nxt[e]
            nxt[p] = prv[q] = e
            rlin ^= rbit[e]
            remaining += 1
            e = nxt[e]
        else:
            g = -x - 1
            head[g] -= 1
            olin ^= gbit[g][head[g]] << gshift[g]
            limit = _stuck_at(nxt, match, pos)
            g += 1


def _stuck_at(nxt: list, match: list, pos: list) -> float:
    """The position of the first return entry in the list: where the walk got stuck."""
    e = nxt[0]
    while match[e]:
        e = nxt[e]
    return pos[e]


def _remember(exact: set, dominance: dict, rlin: int, olin: int, state: Any) -> bool:
    """Record a configuration; False when it, or one it dominates, was seen before.

    ``dominance`` maps (required ops, state) to a few optional sets seen with
    them; one that is a subset of ``olin`` dominates it.
    """
    key = (rlin, olin, state)
    if key in exact:
        return False
    short = (rlin, state)
    seen = dominance.get(short)
    if seen is None:
        dominance[short] = [olin]
    else:
        for other in seen:
            if other & olin == other:
                return False
        if len(seen) < _DOMINANCE_SCAN:
            seen.append(olin)
    exact.add(key)
    return True


def _order(stack: list, opof: list, groups: list) -> list[int]:
    """The op ids of a stack of lifted entries and optional groups, in order."""
    taken = [0] * len(groups)
    order = []
    for x, _ in stack:
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
    never be passed), its step, its bit, its history position and its op id.
    """
    events = sorted([(calls[i], 0, k) for k, i in enumerate(req_ids)] + [(rets[i], 1, k) for k, i in enumerate(req_ids)])
    size = 2 * len(req_ids) + 2
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    match, step, bit = [0] * size, [None] * size, [0] * size
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
            step[e], bit[e] = steps[req_ids[k]], 1 << k
    return nxt, prv, match, step, bit, pos, opof


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
