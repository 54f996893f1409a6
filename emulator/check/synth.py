"""Synthetic histories of known shapes, for benchmarks and tests.

Each history is what a real sequential object gives under a random
concurrent schedule (one seeded ``random.Random``): every op takes effect at
one instant between its call and its return, so the history is linearizable
by construction. :func:`corrupt` then makes it not linearizable in a way
that is easy (early) or hard (behind many orders) to refute: one read of a
value never written (which a look at the reads refutes without a search,
:func:`emulator.check.triage.unwritten_read`), or of a value written and
then overwritten (which it may not).

    ops = history(Shape(ops=10_000, in_flight=5, timeouts=0.02, seed=1))
    verdict = linearizable(ops, model="cas_register")

Shapes follow the ones the checker is measured on: a register or cas
register with 3 to 30 ops in flight and a few percent of timeouts;
Knossos's "volatile" register (100 processes, about 9 ops in flight);
key-value histories of 100,000 ops over 100 keys; Porcupine's ``c50``
key-value histories (50 clients, 10 keys, get/put/append).

Ops are served roughly in order (one of the three oldest in flight moves
next), so an op lasts about as long as the others in flight. An op that
times out ends ``info`` and retires its process (Jepsen's process model); it
may take effect before the timeout, soon after it, or never. A cas
that finds another value fails with capsim's code 22 (``codes=True``), or
with no code, as Jepsen records it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emulator.check.ops import Op, pair_ops

__all__ = ["Shape", "c50", "corrupt", "etcd_log", "history", "volatile"]

_MIX = {
    "register": (("read", 0.5), ("write", 0.5)),
    "cas_register": (("read", 0.5), ("write", 0.3), ("cas", 0.2)),
    "kv": (("get", 0.5), ("put", 0.1), ("append", 0.4)),
}
_INIT = {"register": None, "cas_register": None, "kv": ""}


@dataclass(frozen=True)
class Shape:
    """The shape of a synthetic history.

    Args:
        ops: how many operations.
        in_flight: how many ops are in flight at once (the target; fewer near the end).
        processes: the pool of client processes (at least ``in_flight``; default equal).
        keys: how many keys (named ``"0"``, ``"1"``...; one key has no name).
        timeouts: the share of ops that end ``info``.
        model: ``"register"``, ``"cas_register"`` or ``"kv"``.
        values: how many distinct values a write picks from (registers).
        codes: failed cas ops carry capsim's code 22 (else no code).
        seed: the seed of the schedule.
    """

    ops: int = 1000
    in_flight: int = 5
    processes: int | None = None
    keys: int = 1
    timeouts: float = 0.0
    model: str = "cas_register"
    values: int = 5
    codes: bool = True
    seed: int = 0


def history(shape: Shape) -> list[dict[str, Any]]:
    """A linearizable history of the given shape, as capsim op dicts (times in seconds)."""
    return _Run(shape).run()


def volatile(ops: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Knossos's "volatile" shape: a register, 100 processes, about 9 ops in flight, 2% timeouts."""
    return history(Shape(ops=ops, in_flight=9, processes=100, model="register", timeouts=0.02, seed=seed))


def c50(bad: bool, ops: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Porcupine's ``c50`` shape: 50 clients over 10 keys, get/put/append on strings.

    ``bad`` reproduces the structure of ``c50-bad``: key ``"0"`` holds a
    violation behind many concurrent appends (no checker refutes it in
    minutes) and key ``"3"`` one that is refuted at once.
    """
    base = history(Shape(ops=ops, in_flight=50, processes=50, keys=10, model="kv", seed=seed))
    if not bad:
        return base
    base = corrupt(base, key="3", where=0.0, seed=seed)
    return _append_block(base, key="0", width=14)


def etcd_log(ops: int = 300, seed: int = 0) -> str:
    """A Jepsen console log in the shape of Porcupine's etcd logs (5 clients, values 0-4, timeouts).

    Columns are separated by tabs on even seeds and by spaces on odd ones, as
    in the real logs.
    """
    shape = Shape(ops=ops, in_flight=5, model="cas_register", timeouts=0.03, codes=False, seed=seed)
    sep = "\t" if seed % 2 == 0 else "  "
    lines = []
    for op in history(shape):
        value = "nil" if op["value"] is None else _edn(op["value"])
        if op["type"] == "info":
            value = ":timed-out"
        lines.append(f"INFO  jepsen.util - {op['process']}{sep}:{op['type']}{sep}:{op['f']}{sep}{value}")
    return "\n".join(lines) + "\n"


def corrupt(
    ops: list[dict[str, Any]], key: Any = None, where: float = 0.5, seed: int = 0, kind: str = "unwritten"
) -> list[dict[str, Any]]:
    """A copy of ``ops`` where one ok read of ``key``, near ``where`` (0..1), returns a value it cannot.

    ``kind="unwritten"``: a value never written. ``kind="overwritten"``
    (registers, not strings): a value written and then overwritten. Let W be
    the acknowledged write or cas that completed last before the read was
    invoked: the read returns a value other than W's, written before (so
    not unwritten), whose every write or cas invoked before the read
    returned was acknowledged before W was invoked (an indeterminate one may
    land late, and excuses it): W comes before the read in every order, and
    nothing that may come between them leaves that value. The read is the
    first from ``where`` on that can have such a value, and gets the most
    recently written one. ``seed`` is not used (the choice is the history's).

    Either read can never be linearized; how fast a checker says so depends
    on how much of the history comes before it.

    Raises:
        ValueError: no ok read of ``key``, or (overwritten) none from ``where`` on has such a value.
    """
    reads = [
        i for i, op in enumerate(ops) if op["type"] == "ok" and op["f"] in ("read", "get") and op.get("key") == key
    ]
    if not reads:
        raise ValueError(f"no ok read of key {key!r} to corrupt")
    start = min(int(where * len(reads)), len(reads) - 1)
    out = [dict(op) for op in ops]
    if kind == "unwritten":
        at = reads[start]
        out[at]["value"] = "never written" if isinstance(out[at]["value"], str) or out[at]["value"] is None else -1
        return out
    if kind != "overwritten":
        raise ValueError(f"unknown corruption kind {kind!r}; use 'unwritten' or 'overwritten'")
    paired = [op for op in pair_ops(ops)[0] if op.key == key]
    if any(op.f == "append" for op in paired):
        raise ValueError(
            "kind='overwritten' is for registers: appends leave values it does not follow; use 'unwritten'"
        )
    by_ret = {op.ret: op for op in paired}
    for at in reads[start:]:
        value = _overwritten(paired, by_ret[at])
        if value is not _NONE:
            out[at]["value"] = value
            return out
    raise ValueError(f"no ok read of key {key!r} from {where} on can return an overwritten value")


_NONE = object()


def _overwritten(ops: Sequence[Op], read: Op) -> Any:
    """The most recently written value that ``read`` cannot return (see :func:`corrupt`), or ``_NONE``."""
    acked = [op for op in ops if op.status == "ok" and _left(op) is not _NONE and op.returned < read.call]
    if not acked:
        return _NONE
    last = max(acked, key=lambda op: op.returned)
    written: dict[Any, int] = {}  # a value -> when its latest writer before the read returned
    excused: list[Any] = [_left(last), read.output]
    for op in ops:
        value = _left(op)
        if value is _NONE or op.call > read.returned:
            continue
        if op.indeterminate or op.returned > last.call:
            excused.append(value)  # it may be ordered after the last write and before the read
        else:
            written[value] = max(written.get(value, -1), op.returned)
    candidates = [(ret, value) for value, ret in written.items() if value not in excused]
    return max(candidates, key=lambda c: c[0])[1] if candidates else _NONE


def _left(op: Op) -> Any:
    """The value a write or a cas (not failed) may leave, or ``_NONE``."""
    if op.status == "fail":
        return _NONE
    if op.f in ("write", "put"):
        return op.value
    if op.f == "cas":
        return op.value[1]
    return _NONE


def _append_block(ops: list[dict[str, Any]], key: str, width: int) -> list[dict[str, Any]]:
    """Add ``width`` concurrent appends to ``key``, then a read that no order of them explains.

    A put runs across them all and past the read, so it may come between any
    append and the read: the read is not stale by :mod:`emulator.check.triage`'s
    rule. It returns ``"never written"`` followed by the first append's
    string, which no order gives (every string put or appended ends with
    ``y``, so what comes before an append never ends ``written``), yet it ends
    with an append invoked before it returned, so it is not unwritten by that
    module's rule either: only a search over the orders can refute it.
    """
    out = [dict(op) for op in ops]
    t = out[-1]["time"] if out else 0.0
    first = 1 + max((op["process"] for op in out if isinstance(op["process"], int)), default=0)
    procs = list(range(first, first + width))
    appended = f"x {procs[0]} z y"
    put = {"process": first + width + 1, "f": "put", "key": key, "value": "x reset y"}
    out.append({**put, "type": "invoke"})
    for p in procs:
        out.append({"process": p, "type": "invoke", "f": "append", "key": key, "value": f"x {p} z y"})
    for p in procs:
        out.append({"process": p, "type": "ok", "f": "append", "key": key, "value": f"x {p} z y"})
    out.append({"process": first + width, "type": "invoke", "f": "get", "key": key, "value": None})
    out.append({"process": first + width, "type": "ok", "f": "get", "key": key, "value": f"never written{appended}"})
    out.append({**put, "type": "ok"})
    for i, op in enumerate(out[len(ops) :]):
        op["time"] = round(t + 0.001 * (i + 1), 6)
    return [{"index": i, **op} for i, op in enumerate({k: v for k, v in op.items() if k != "index"} for op in out)]


class _Run:
    """One seeded run of a sequential object under a random schedule."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.rng = random.Random(shape.seed)
        self.state: dict[str, Any] = {}
        self.out: list[dict[str, Any]] = []
        self.idle = list(range(shape.processes or shape.in_flight))
        self.next_process = len(self.idle)
        self.inflight: list[dict[str, Any]] = []
        self.ghosts: list[dict[str, Any]] = []  # timed out before taking effect: may take effect later, or never
        self.counter = 0

    def run(self) -> list[dict[str, Any]]:
        started = 0
        while started < self.shape.ops or self.inflight:
            if started < self.shape.ops and len(self.inflight) < self.shape.in_flight and self.idle:
                self._invoke()
                started += 1
            else:
                # Requests are served roughly in order, with jitter: one of the oldest few moves.
                self._advance(self.inflight[self.rng.randrange(min(3, len(self.inflight)))])
            if self.ghosts and self.rng.random() < 0.3:
                self._apply(self.ghosts.pop(self.rng.randrange(len(self.ghosts))))
        return self.out

    def _record(self, op: dict[str, Any], kind: str, value: Any, error: Any = None) -> None:
        entry = {
            "index": len(self.out),
            "time": round(len(self.out) * 0.001, 6),
            "process": op["process"],
            "type": kind,
            "f": op["f"],
        }
        if op["key"] is not None:
            entry["key"] = op["key"]
        entry["value"] = value
        if error is not None:
            entry["error"] = error
        self.out.append(entry)

    def _invoke(self) -> None:
        process = self.idle.pop(self.rng.randrange(len(self.idle)))
        f = self._pick_f()
        key = None if self.shape.keys == 1 else str(self.rng.randrange(self.shape.keys))
        op = {"process": process, "f": f, "key": key, "value": self._value(f, process), "done": False}
        self._record(op, "invoke", None if f in ("read", "get") else op["value"])
        self.inflight.append(op)

    def _advance(self, op: dict[str, Any]) -> None:
        """Take effect if it has not yet (half the time), else complete."""
        if not op["done"] and self.rng.random() < 0.5:
            op["result"], op["done"] = self._apply(op), True
            return
        self.inflight.remove(op)
        if self.rng.random() < self.shape.timeouts:
            self._record(op, "info", None if op["f"] in ("read", "get") else op["value"], [0, "timed out"])
            self.next_process += 1
            self.idle.append(self.next_process - 1)
            if not op["done"] and self.rng.random() < 0.5:
                self.ghosts.append(op)
            return
        if not op["done"]:
            op["result"] = self._apply(op)
        self.idle.append(op["process"])
        if op.get("result") == "mismatch":
            self._record(op, "fail", op["value"], [22, "precondition failed"] if self.shape.codes else None)
        elif op["f"] in ("read", "get"):
            self._record(op, "ok", op["result"])
        else:
            self._record(op, "ok", op["value"])

    def _apply(self, op: dict[str, Any]) -> Any:
        current = self.state.get(op["key"], _INIT[self.shape.model])
        f = op["f"]
        if f in ("read", "get"):
            return current
        if f in ("write", "put"):
            self.state[op["key"]] = op["value"]
        elif f == "append":
            self.state[op["key"]] = current + op["value"]
        elif current == op["value"][0]:
            self.state[op["key"]] = op["value"][1]
        else:
            return "mismatch"
        return None

    def _pick_f(self) -> str:
        roll, total = self.rng.random(), 0.0
        for f, share in _MIX[self.shape.model]:
            total += share
            if roll < total:
                return f
        return _MIX[self.shape.model][-1][0]

    def _value(self, f: str, process: int) -> Any:
        if f in ("read", "get"):
            return None
        if self.shape.model == "kv":
            self.counter += 1
            return f"x {process} {self.counter} y"
        if f == "cas":
            return [self.rng.randrange(self.shape.values), self.rng.randrange(self.shape.values)]
        return self.rng.randrange(self.shape.values)


def _edn(value: Any) -> str:
    if isinstance(value, list):
        return "[" + " ".join(_edn(v) for v in value) + "]"
    return "nil" if value is None else str(value)
