"""Conflict-free replicated data types: a counter, an add-wins set, a multi-value register.

Every type is a JSON value with a pure ``merge`` that is commutative,
associative and idempotent, so replicas that have received the same updates,
in any order and any number of times, hold equal states (strong eventual
consistency, Shapiro et al. 2011). Nothing here needs a clock.

- **PN-counter**: ``{"p": {node: n}, "n": {node: n}}``, one increment and one
  decrement total per node; ``merge`` takes the pointwise maximum and the
  value is ``sum(p) - sum(n)``. Concurrent increments all count.
- **Add-wins set** (the optimised OR-set of Bieniusa et al. 2012): each add
  of an element is tagged with a *dot* ``[node, counter]``; a remove drops
  the dots it has seen; ``clock`` records every dot a replica has seen. On a
  merge a dot survives unless the other replica has seen it (in its clock)
  and dropped it, so an add concurrent with a remove wins.
- **Multi-value register** (dotted version vectors, Preguiça et al. 2010):
  the same structure with values instead of elements. A write names the
  context it supersedes (the clock of the read it follows); versions the
  context does not cover stay as *siblings*. Unlike a vector clock per
  server (``nodes.versions`` and Riak before 2.0), two writes through the
  same node from the same context both survive: a dot identifies the write,
  not the server's latest counter.

Elements and values are any JSON values; sets are kept as lists sorted by
the element's JSON text, so equal states are equal dicts.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "COUNTER",
    "REGISTER",
    "SET",
    "TYPES",
    "counter",
    "counter_add",
    "counter_value",
    "kind_of",
    "merge",
    "orset",
    "orset_add",
    "orset_remove",
    "orset_value",
    "register",
    "register_values",
    "register_write",
]

COUNTER, SET, REGISTER = "counter", "set", "register"
TYPES = (COUNTER, SET, REGISTER)


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _max_map(a: dict, b: dict) -> dict:
    out = dict(a)
    for node, count in b.items():
        if node not in out or count > out[node]:
            out[node] = count
    return dict(sorted(out.items()))


def kind_of(state: dict) -> str:
    """The type of a CRDT state: ``"counter"``, ``"set"`` or ``"register"``."""
    return state["crdt"]


# -- PN-counter --------------------------------------------------------------------------------


def counter() -> dict:
    """An empty PN-counter (value 0)."""
    return {"crdt": COUNTER, "p": {}, "n": {}}


def counter_add(state: dict, node: str, delta: int) -> dict:
    """``state`` with ``delta`` (positive or negative) added by replica ``node``."""
    side = "p" if delta >= 0 else "n"
    out: dict[str, Any] = {"crdt": COUNTER, "p": dict(state["p"]), "n": dict(state["n"])}
    out[side][node] = out[side].get(node, 0) + abs(delta)
    out[side] = dict(sorted(out[side].items()))
    return out


def counter_value(state: dict) -> int:
    """Every increment minus every decrement the state has seen."""
    return sum(state["p"].values()) - sum(state["n"].values())


# -- dotted entries: the add-wins set and the multi-value register --------------------------------


def _covered(dot: list, clock: dict) -> bool:
    return clock.get(dot[0], 0) >= dot[1]


def _next_dot(state: dict, node: str, context: dict | None = None) -> tuple[list, dict]:
    """A dot no replica has used: one past every counter of ``node`` seen here or in ``context``."""
    clock = dict(state["clock"])
    clock[node] = max(clock.get(node, 0), (context or {}).get(node, 0)) + 1
    return [node, clock[node]], dict(sorted(clock.items()))


def _merge_dotted(a: dict, b: dict, field: str) -> dict:
    """Keep an entry's dot if both sides have it, or one has it and the other never saw it."""
    dots_a = {(e[0], tuple(e[1])): e for e in _flat(a[field])}
    dots_b = {(e[0], tuple(e[1])): e for e in _flat(b[field])}
    kept = [e for k, e in dots_a.items() if k in dots_b or not _covered(e[1], b["clock"])]
    kept += [e for k, e in dots_b.items() if k not in dots_a and not _covered(e[1], a["clock"])]
    return {"crdt": a["crdt"], field: _group(kept), "clock": _max_map(a["clock"], b["clock"])}


def _flat(entries: list) -> list:
    """[[x, [dot, ...]], ...] -> [(x_text, dot, x), ...]."""
    return [(_text(x), list(dot), x) for x, dots in entries for dot in dots]


def _group(flat: list) -> list:
    grouped: dict[str, list] = {}
    values: dict[str, Any] = {}
    for text, dot, x in flat:
        grouped.setdefault(text, []).append(dot)
        values[text] = x
    return [[values[t], sorted(grouped[t])] for t in sorted(grouped)]


def orset() -> dict:
    """An empty add-wins set."""
    return {"crdt": SET, "entries": [], "clock": {}}


def orset_add(state: dict, node: str, element: Any) -> dict:
    """``state`` with ``element`` added at replica ``node`` (a fresh dot replaces the ones seen here)."""
    dot, clock = _next_dot(state, node)
    text = _text(element)
    entries = [e for e in state["entries"] if _text(e[0]) != text] + [[element, [dot]]]
    return {"crdt": SET, "entries": sorted(entries, key=lambda e: _text(e[0])), "clock": clock}


def orset_remove(state: dict, element: Any) -> dict:
    """``state`` without ``element``: the dots seen here go; a concurrent add elsewhere survives the merge."""
    text = _text(element)
    return {"crdt": SET, "entries": [e for e in state["entries"] if _text(e[0]) != text], "clock": state["clock"]}


def orset_value(state: dict) -> list:
    """The elements present, sorted by their JSON text."""
    return [element for element, _ in state["entries"]]


def register() -> dict:
    """An empty multi-value register."""
    return {"crdt": REGISTER, "versions": [], "clock": {}}


def register_write(state: dict, node: str, value: Any, context: dict | None) -> dict:
    """``state`` with ``value`` written at replica ``node``, superseding the versions ``context`` covers.

    ``context`` None means the register's own clock: the write supersedes
    every version this replica has seen, as a write to a single copy would.
    """
    context = state["clock"] if context is None else context
    dot, clock = _next_dot(state, node, context)
    kept = [[v, [d for d in dots if not _covered(d, context)]] for v, dots in state["versions"]]
    flat = _flat([e for e in kept if e[1]]) + [(_text(value), dot, value)]
    return {"crdt": REGISTER, "versions": _group(flat), "clock": _max_map(clock, context)}


def register_values(state: dict) -> list:
    """The siblings' distinct values, ordered by their newest dot (counter, then node): the last is the newest."""
    newest = [(max((d[1], d[0]) for d in dots), value) for value, dots in state["versions"]]
    return [value for _, value in sorted(newest, key=lambda p: p[0])]


def merge(a: dict, b: dict) -> dict:
    """The join of two states of the same type.

    Raises:
        ValueError: the states are of different types.
    """
    if a["crdt"] != b["crdt"]:
        raise ValueError(f"cannot merge a {a['crdt']} with a {b['crdt']}")
    if a["crdt"] == COUNTER:
        return {"crdt": COUNTER, "p": _max_map(a["p"], b["p"]), "n": _max_map(a["n"], b["n"])}
    return _merge_dotted(a, b, "entries" if a["crdt"] == SET else "versions")
