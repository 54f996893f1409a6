"""The Wing–Gong–Lowe linearizability search, as Porcupine runs it.

The history becomes a doubly linked list of call and return entries in
real-time order. The search walks the list from the front: at a call entry it
tries to linearize that op next (apply its step to the current state); if the
step is legal and the resulting configuration (set of linearized ops, state)
was never seen, it *lifts* the op's call and return out of the list, pushes
the op on a stack and starts again from the front. Reaching a return entry
means that op had to be linearized already and was not: the search pops the
last op, *unlifts* it and tries the entry after it. The history is
linearizable when every required op is lifted; it is not when the stack is
empty and nothing can move.

Lowe's memoisation keeps every configuration reached, as a set of
``(bitset, state)`` pairs; the bitset is a Python int with bit ``i`` set when
op ``i`` is linearized. A configuration seen once cannot lead anywhere new.

Ops that are not required (indeterminate writes) have their return at
+infinity: behind every other entry, so they may be linearized at any point
after their call, and the search ends as soon as all *required* ops are in,
which leaves the rest out of the linearization (never took effect).

Histories full of timeouts have many such ops pending at once, and plain
WGL then tries every subset of them at every point. Three sound reductions
keep that in check (all rest on an optional op constraining nothing):

- required ops are tried before optional ones at each configuration;
- the cache keys on (required ops linearized, state) and keeps the optional
  sets seen: a configuration whose optional set contains one already seen is
  dominated and skipped;
- an optional op followed at once by a blind write of the same key (a plain
  write) had no visible effect, so that order is skipped: the same order
  without the optional op is tried anyway.

On Porcupine's etcd logs this cuts the configurations explored by up to a
thousandfold; histories with no indeterminate ops take the plain path.

The list lives in flat Python lists indexed by entry number (0 is the head,
``2n + 1`` the tail), so the hot loop does only list indexing, one step call,
one int OR and one set lookup per attempt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from emulator.check.models import ILLEGAL

__all__ = ["SearchResult", "search"]

_CLOCK_EVERY = 1023  # backtracks between two looks at the wall clock (a mask: 2**k - 1)


@dataclass
class SearchResult:
    """The outcome of one search.

    ``valid`` is True (linearizable), False (not) or None (the deadline passed
    first). ``order`` is a full linearization of the required ops when valid,
    else the longest linearizable prefix found; ``state`` is the model state
    after ``order``; ``explored`` counts the configurations cached.
    """

    valid: bool | None
    order: list[int] = field(default_factory=list)
    state: Any = None
    explored: int = 0


def search(
    calls: Sequence[int],
    rets: Sequence[float],
    steps: Sequence[Callable[[Any], Any]],
    required: Sequence[bool],
    init: Any,
    deadline: float | None = None,
    blind: Sequence[bool] | None = None,
    keys: Sequence[Any] | None = None,
) -> SearchResult:
    """Search for a linearization of ops ``0..n-1``.

    Args:
        calls: each op's invocation time (any totally ordered numbers; all
            calls and returns must be distinct).
        rets: each op's return time; ``math.inf`` for an op that never returned.
        steps: each op's step: state -> next state, or ``ILLEGAL``.
        required: whether each op must be linearized (False for indeterminate ops).
        init: the model's initial state (hashable).
        deadline: a reading of ``time.monotonic`` after which the search gives up.
        blind: whether each op overwrites its key whatever its value was (a
            plain write). An optional op followed at once by a blind write of
            the same key had no visible effect, so the search skips such
            orders: the same order without the optional op is tried anyway.
        keys: each op's key, when the state holds several (unsplit checks);
            by default all ops act on one value.

    Returns:
        A :class:`SearchResult`.
    """
    # One function on purpose: this loop is the checker's whole cost, and
    # helper calls or attribute lookups per step would cost more than they read.
    remaining = sum(1 for r in required if r)
    if remaining == 0:
        return SearchResult(True, [], init, 0)
    nxt, prv, match, step, bit, req, opof = _link(calls, rets, steps, required)
    two_passes = not all(required)
    key_of, overwrites = _per_entry(opof, keys, blind if two_passes else None)
    limit = float("inf") if deadline is None else deadline
    monotonic = time.monotonic  # wall-clock ok: the time budget is wall time by design
    # Cache: (required ops linearized, state) -> bitsets of the optional ops
    # linearized alongside. A configuration whose optional set contains one
    # already seen is dominated: an op that need not happen constrains nothing,
    # so the smaller set can do all the larger one can.
    mask = sum(bit[e] for e in range(len(bit)) if req[e])
    exact: set = set()  # the plain (bitset, state) cache, when every op is required
    cache: dict = {}
    explored = 0
    stack: list = []
    best: tuple = ((), init)
    state, lin, ticks, late = init, 0, 0, 0
    e = nxt[0]
    while True:
        m = match[e]
        if m:
            # Pass 0 tries required ops, pass 1 optional ones: the same
            # candidates, but a valid history is found without first trying
            # every subset of indeterminate ops.
            if req[e] == late or (overwrites[e] and stack and _overwrites(stack[-1][0], e, req, key_of)):
                e = nxt[e]
                continue
            new = step[e](state)
            if new is not ILLEGAL:
                grown = lin | bit[e]
                if not two_passes:
                    key = (grown, new)
                    fresh = key not in exact
                    if fresh:
                        exact.add(key)
                else:
                    fresh = _remember(cache, (grown & mask, new), grown)
                if fresh:
                    explored += 1
                    stack.append((e, state, lin, late))
                    state, lin, late = new, grown, 0
                    p, q = prv[e], nxt[e]
                    nxt[p], prv[q] = q, p
                    p, q = prv[m], nxt[m]
                    nxt[p], prv[q] = q, p
                    remaining -= req[e]
                    if not remaining:
                        return SearchResult(True, [opof[x[0]] for x in stack], state, explored)
                    e = nxt[0]
                    continue
            e = nxt[e]
            continue
        # A return entry: its op should already be linearized.
        if two_passes and not late:
            late, e = 1, nxt[0]
            continue
        if len(stack) > len(best[0]):
            best = (tuple(x[0] for x in stack), state)
        if not stack:
            return SearchResult(False, [opof[x] for x in best[0]], best[1], explored)
        ticks += 1
        if not ticks & _CLOCK_EVERY and monotonic() > limit:
            return SearchResult(None, [opof[x] for x in best[0]], best[1], explored)
        e, state, lin, late = stack.pop()
        m = match[e]
        p, q = prv[m], nxt[m]
        nxt[p] = prv[q] = m
        p, q = prv[e], nxt[e]
        nxt[p] = prv[q] = e
        remaining += req[e]
        e = nxt[e]


def _per_entry(opof: list, keys: Sequence[Any] | None, blind: Sequence[bool] | None) -> tuple[list, list]:
    """Each entry's key and whether it is a blind write (all False when ``blind`` is None)."""
    entry_keys = [None if i < 0 or keys is None else keys[i] for i in opof]
    return entry_keys, [i >= 0 and blind is not None and bool(blind[i]) for i in opof]


def _overwrites(top: int, e: int, req: list, keys: list) -> bool:
    """Is entry ``e`` a blind write of the key that optional entry ``top``, just linearized, touched?"""
    return not req[top] and keys[top] == keys[e]


def _remember(cache: dict, key: tuple, grown: int) -> bool:
    """Record a configuration; False when one seen before had a subset of its ops.

    ``key`` is (required ops linearized, state); the configurations under one
    key differ only in which optional ops they linearized.
    """
    seen = cache.get(key)
    if seen is None:
        cache[key] = [grown]
        return True
    for other in seen:
        if other & grown == other:
            return False
    seen.append(grown)
    return True


def _link(calls, rets, steps, required) -> tuple[list, ...]:
    """Build the entry list: next/prev links and per-entry match, step, bit, required flag, op id.

    ``match[e]`` is the return entry of call entry ``e`` and 0 for return
    entries (and for the tail, which therefore acts as a return that can never
    be passed).
    """
    n = len(steps)
    events = sorted([(calls[i], 0, i) for i in range(n)] + [(rets[i], 1, i) for i in range(n)])
    size = 2 * n + 2
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    match, step, bit = [0] * size, [None] * size, [0] * size
    req, opof = [0] * size, [-1] * size
    call_entry = {}
    for e, (_, is_return, i) in enumerate(events, 1):
        opof[e] = i
        if is_return:
            match[call_entry[i]] = e
        else:
            call_entry[i] = e
            step[e], bit[e], req[e] = steps[i], 1 << i, 1 if required[i] else 0
    return nxt, prv, match, step, bit, req, opof
