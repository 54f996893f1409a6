"""A plain reference of the search Porcupine runs, to count its configurations.

Porcupine (anishathalye/porcupine, ``checker.go``) checks one partition with
the Wing–Gong–Lowe search and nothing more: every op is an entry pair in a
doubly linked list in time order (a call sorts before a return at the same
instant); the walk starts at the head; at a call entry it applies the op's
step and, when the step is legal and the configuration (ops linearized,
state) is not cached, caches it, pushes it and lifts the op's two entries,
then starts again at the head; an illegal or cached step moves on to the next
entry; at a return entry it pops the last op, unlifts it and moves to the
entry after it. An op that never returned (Jepsen's ``info``) gets its return
at the end of the history and must be linearized like any other; the
search ends when the list is empty.

This module is that algorithm, written from its description, over capsim's
compiled steps (:class:`emulator.check.models.Prepared`), so the benchmark
can print how many configurations the reference explores beside capsim's
own count on the same history. It is not used by the checker.

    result = reference_search(prepared)   # prepared: one partition's ops
    result.valid, result.explored, result.steps
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emulator.check.models import ILLEGAL, Model, Prepared

__all__ = ["ReferenceResult", "reference_check", "reference_search"]


@dataclass
class ReferenceResult:
    """``valid`` (None when the step limit ran out), configurations cached, steps applied."""

    valid: bool | None
    explored: int
    steps: int


def reference_search(prepared: Sequence[Prepared], init: Any, max_steps: int | None = None) -> ReferenceResult:
    """Porcupine's search over one partition's ops; ops that did not return, return at the end."""
    n = len(prepared)
    if n == 0:
        return ReferenceResult(True, 0, 0)
    events = []
    for i, p in enumerate(prepared):
        ret = p.op.ret if p.required else math.inf
        events.append((p.op.call, 0, i))
        events.append((ret, 1, i))
    events.sort()
    size = len(events) + 1  # entry 0 is the head sentinel
    nxt = list(range(1, size + 1))
    nxt[-1] = 0  # 0 ends the list
    prv = list(range(-1, size - 1))
    match = [0] * size
    op_of = [0] * size
    call_of: dict = {}
    for e, (_, kind, i) in enumerate(events, 1):
        op_of[e] = i
        if kind == 0:
            call_of[i] = e
        else:
            match[call_of[i]] = e
    steps = [p.step for p in prepared]
    cache: set = set()
    stack: list = []
    state, linearized = init, 0
    explored = applied = 0
    e = nxt[0]
    while nxt[0]:
        if max_steps is not None and applied >= max_steps:
            return ReferenceResult(None, explored, applied)
        m = match[e]
        if m:
            i = op_of[e]
            applied += 1
            new = steps[i](state)
            if new is not ILLEGAL:
                grown = linearized | (1 << i)
                if (grown, new) not in cache:
                    cache.add((grown, new))
                    explored += 1
                    stack.append((e, state))
                    state, linearized = new, grown
                    _lift(nxt, prv, e, m)
                    e = nxt[0]
                    continue
            e = nxt[e]
            continue
        if not stack:
            return ReferenceResult(False, explored, applied)
        e, state = stack.pop()
        linearized &= ~(1 << op_of[e])
        _unlift(nxt, prv, e, match[e])
        e = nxt[e]
    return ReferenceResult(True, explored, applied)


def reference_check(ops_by_key: dict, model: Model, max_steps: int | None = None) -> dict:
    """Run :func:`reference_search` on every partition; totals and CPU seconds.

    ``ops_by_key`` maps each key to its prepared ops (as
    :func:`emulator.check.linearizable.prepare_partition` makes them).
    Returns ``{"valid", "explored", "steps", "cpu_s", "keys": {key: ReferenceResult}}``.
    """
    cpu = time.process_time()  # wall-clock ok: a benchmark's own measurement
    keys = {key: reference_search(ops, model.init, max_steps) for key, ops in ops_by_key.items()}
    cpu = time.process_time() - cpu  # wall-clock ok
    verdicts = [r.valid for r in keys.values()]
    valid = False if False in verdicts else (None if None in verdicts else True)
    return {
        "valid": valid,
        "explored": sum(r.explored for r in keys.values()),
        "steps": sum(r.steps for r in keys.values()),
        "cpu_s": cpu,
        "keys": keys,
    }


def _lift(nxt: list, prv: list, call: int, ret: int) -> None:
    for e in (call, ret):
        p, q = prv[e], nxt[e]
        nxt[p] = q
        if q:
            prv[q] = p


def _unlift(nxt: list, prv: list, call: int, ret: int) -> None:
    for e in (ret, call):
        p, q = prv[e], nxt[e]
        nxt[p] = e
        if q:
            prv[q] = e
