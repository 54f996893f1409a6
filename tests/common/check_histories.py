"""Histories for checker tests: a builder, a brute-force checker, random and simulated histories.

tests/emulator/check/conftest.py hands these out as fixtures; tests of other
code that runs the checker (scripts/wgl_reference.py) import them from here.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("CAPSIM_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
KV_DIR = SHARED / "data" / "kv-histories"
KNOSSOS_DIR = SHARED / "data" / "knossos"
KV_VERDICTS = {"c01-ok": True, "c01-bad": False, "c10-ok": True, "c10-bad": False}
MODELS = ("register", "cas_register", "kv", "knossos_cas_register", "porcupine_etcd")
_INIT = {"register": None, "cas_register": None, "kv": "", "knossos_cas_register": 0, "porcupine_etcd": None}
_CODES = {"register", "cas_register", "kv"}  # models that read capsim's error codes 20 and 22


class HistoryBuilder:
    """Builds capsim histories op by op; times advance by 0.01 s per event unless given."""

    def __init__(self) -> None:
        self.ops: list[dict] = []
        self._pending: dict[Any, dict] = {}

    def invoke(self, process: Any, f: str, value: Any = None, key: Any = None, **extra: Any) -> HistoryBuilder:
        op = self._add(process, "invoke", f, value, key, extra)
        self._pending[process] = op
        return self

    def complete(self, process: Any, kind: str, value: Any = None, **extra: Any) -> HistoryBuilder:
        invoke = self._pending.pop(process)
        if value is None and invoke["f"] not in ("read", "get"):
            value = invoke["value"]
        self._add(process, kind, invoke["f"], value, invoke.get("key"), extra)
        return self

    def ok(self, process: Any, value: Any = None, **extra: Any) -> HistoryBuilder:
        return self.complete(process, "ok", value, **extra)

    def fail(self, process: Any, **extra: Any) -> HistoryBuilder:
        return self.complete(process, "fail", **extra)

    def info(self, process: Any, **extra: Any) -> HistoryBuilder:
        return self.complete(process, "info", **extra)

    def op(self, process: Any, f: str, value: Any = None, out: Any = None, key: Any = None, kind: str = "ok", **extra):
        """A whole op: invoke then its completion, nothing in between."""
        self.invoke(process, f, value, key, **extra)
        return self.complete(process, kind, out)

    def nemesis(self, f: str, value: Any = None, **extra: Any) -> HistoryBuilder:
        self._add("nemesis", "info", f, value, None, extra)
        return self

    def _add(self, process, kind, f, value, key, extra) -> dict:
        op = {"index": len(self.ops), "time": round(len(self.ops) * 0.01, 6), "process": process, "type": kind, "f": f}
        if key is not None:
            op["key"] = key
        op["value"] = value
        op.update(extra)
        self.ops.append(op)
        return op


def _apply(model: str, state: dict, op: dict) -> bool:
    """Reference sequential semantics of one op on a dict of key values; False when illegal.

    Written from the table in docs/checker-outcomes.md, not from the checker.
    """
    f, key, init = op["f"], op.get("key"), _INIT[model]
    current = state.get(key, init)
    if op["as"] == "read":
        if op["out"] is None and model == "knossos_cas_register":
            return True  # Knossos: an ok read of nil matches any value
        seen = init if op["out"] is None and op["code"] == 20 and model in _CODES else op["out"]
        return seen == current
    if op["as"] == "missing":
        return current == init
    if f in ("write", "put"):
        state[key] = op["value"]
        return True
    if f == "append":
        state[key] = current + op["value"]
        return True
    frm, to = op["value"]
    if op["as"] == "mismatch":
        return current != frm
    if current == frm:
        state[key] = to
        return True
    return not op["must"]  # an indeterminate cas that did not match changed nothing


def brute_force(history: list[dict], model: str) -> bool:
    """Linearizability by trying every order of every admissible subset (for a handful of ops)."""
    ops = _brute_ops(history, model)
    must = [o for o in ops if o["must"]]
    maybe = [o for o in ops if not o["must"]]
    for size in range(len(maybe) + 1):
        for extra in itertools.combinations(maybe, size):
            for order in itertools.permutations(must + list(extra)):
                if _respects_time(order) and _replays(order, model):
                    return True
    return False


def _code(raw: dict) -> Any:
    error = raw.get("error")
    return error[0] if isinstance(error, list) and error else None


def _brute_ops(history: list[dict], model: str) -> list[dict]:
    """Pair invokes and completions; keep what may have had an effect, as the docs' table says."""
    open_ops, out = {}, []
    for pos, raw in enumerate(history):
        if raw["process"] == "nemesis":
            continue
        if raw["type"] == "invoke":
            open_ops[raw["process"]] = {
                **raw,
                "call": pos,
                "ret": math.inf,
                "status": "open",
                "out": None,
                "code": None,
            }
        else:
            op = open_ops.pop(raw["process"])
            op.update(ret=pos, status=raw["type"], out=raw.get("value"), code=_code(raw))
            out.append(op)
    out += open_ops.values()
    kept = []
    for op in out:
        kind = _kind(op, model)
        if kind == "optional":
            kept.append({**op, "must": False, "as": "op", "ret": math.inf})
        elif kind is not None:
            kept.append({**op, "must": True, "as": kind})
    return kept


def _kind(op: dict, model: str) -> str | None:
    """How an op enters the search: "read", "op", "mismatch", "missing", "optional", or None (dropped)."""
    reads = op["f"] in ("read", "get")
    if reads and op["status"] == "fail" and op["code"] == 20:
        return "read"  # a read answered "no such key" read nil
    if op["status"] == "ok":
        return "read" if reads else "op"
    if op["status"] in ("info", "open"):
        return None if reads else "optional"
    if op["f"] != "cas":
        return None
    if model == "porcupine_etcd" or (model in _CODES and op["code"] == 22):
        return "mismatch"
    if model in _CODES and op["code"] == 20:
        return "missing"
    return None


def _respects_time(order: tuple) -> bool:
    return all(not (b["ret"] < a["call"]) for i, a in enumerate(order) for b in order[i + 1 :])


def _replays(order: tuple, model: str) -> bool:
    state: dict = {}
    return all(_apply(model, state, op) for op in order)


_FS = {
    "register": ("read", "write"),
    "cas_register": ("read", "write", "cas"),
    "kv": ("get", "put", "append"),
    "knossos_cas_register": ("read", "write", "cas"),
    "porcupine_etcd": ("read", "write", "cas"),
}
_ERRORS = [None, None, [22, "precondition failed"], [20, "no such key"], [11, "unavailable"]]


def small_history(choose: Callable[[list], Any], model: str, max_ops: int = 6) -> list[dict]:
    """A random small history, often not linearizable: random interleaving, random results.

    Args:
        choose: picks one element of a list; ``rng.choice``, or a hypothesis
            ``lambda xs: data.draw(st.sampled_from(xs))`` so examples shrink.
        model: which model's operations to use.
        max_ops: at most this many ops.
    """
    n_ops = choose(list(range(1, max_ops + 1)))
    processes = choose([1, 2, 3])
    keys = choose([["a"], ["a", "b"]])
    values = ["x", "y"] if model == "kv" else [0, 1]
    h, started, busy, hung = HistoryBuilder(), 0, {}, set()
    while busy or (started < n_ops and len(hung) < processes):
        idle = [p for p in range(processes) if p not in busy and p not in hung]
        if started < n_ops and idle and (not busy or choose([True, False])):
            p, f = choose(idle), choose(list(_FS[model]))
            h.invoke(p, f, _random_value(choose, f, values), key=choose(keys))
            busy[p] = f
            started += 1
        else:
            p = choose(sorted(busy))
            if _complete_randomly(choose, h, p, busy.pop(p), model) == "open":
                hung.add(p)  # its op never completes, so it invokes nothing more
    return h.ops


def _random_value(choose: Callable, f: str, values: list) -> Any:
    if f in ("read", "get"):
        return None
    if f == "cas":
        return [choose(values + [None]), choose(values)]
    return choose(values)


def _complete_randomly(choose: Callable, h: HistoryBuilder, p: int, f: str, model: str) -> str:
    """Complete p's op ok, info or fail, or leave it open; returns which."""
    kind = choose(["ok", "ok", "ok", "info", "fail", "open"])
    if kind == "open":
        h._pending.pop(p)
    elif f in ("read", "get") and kind == "ok":
        h.ok(p, choose(["", "x", "y", "xy", "yx"] if model == "kv" else [None, 0, 1]))
    elif kind == "fail":
        error = choose(_ERRORS)
        h.complete(p, kind, **({} if error is None else {"error": error}))
    else:
        h.complete(p, kind)
    return kind


def simulated_history(rng: random.Random, model: str, n_ops: int, processes: int, keys: int = 2) -> list[dict]:
    """A history produced by a real sequential object under a random concurrent schedule.

    Each op takes effect at one instant between its invocation and completion
    (or, for an indeterminate op, possibly never), so the result is
    linearizable by construction.
    """
    h, state, started = HistoryBuilder(), {}, 0
    inflight: dict[int, dict] = {}  # process -> {"f", "key", "value", "done": applied?, "result"}
    ghosts: list[dict] = []  # timed out before taking effect: may take effect later, or never
    while started < n_ops or inflight:
        moves = []
        if started < n_ops and len(inflight) < processes:
            moves.append("invoke")
        if inflight:
            moves += ["apply", "complete", "complete"]
        if ghosts:
            moves.append("ghost")
        move = rng.choice(moves)
        if move == "ghost":
            _sim_apply(model, state, ghosts.pop(rng.randrange(len(ghosts))))
        elif move == "invoke":
            p = min(set(range(processes)) - set(inflight))
            f = rng.choice(_FS[model])
            key = f"k{rng.randrange(keys)}"
            value = _sim_value(rng, f, model)
            h.invoke(p, f, value, key=key)
            inflight[p] = {"f": f, "key": key, "value": value, "done": False}
            started += 1
        else:
            p = rng.choice(sorted(inflight))
            op = inflight[p]
            if move == "apply" and not op["done"]:
                op["result"], op["done"] = _sim_apply(model, state, op), True
            elif move == "complete":
                op = inflight.pop(p)
                if _sim_complete(rng, h, p, op, model, state) == "ghost":
                    ghosts.append(op)
    return h.ops


def _sim_value(rng: random.Random, f: str, model: str) -> Any:
    if f in ("read", "get"):
        return None
    if f == "cas":
        return [rng.choice([None, 0, 1, 2]), rng.choice([0, 1, 2])]
    return rng.choice(["a", "b", "c"]) if model == "kv" else rng.choice([0, 1, 2])


def _sim_apply(model: str, state: dict, op: dict) -> Any:
    current = state.get(op["key"], _INIT[model])
    if op["f"] in ("read", "get"):
        return current
    if op["f"] in ("write", "put"):
        state[op["key"]] = op["value"]
    elif op["f"] == "append":
        state[op["key"]] = current + op["value"]
    else:
        frm, to = op["value"]
        if current != frm:
            return "mismatch"
        state[op["key"]] = to
    return None


def _sim_complete(rng: random.Random, h: HistoryBuilder, p: int, op: dict, model: str, state: dict) -> str:
    """Complete an in-flight op; returns "ghost" when it timed out before taking effect."""
    roll = rng.random()
    if not op["done"]:
        if roll < 0.15:
            h.info(p)  # timed out before taking effect; may take effect later, or never
            return "ghost"
        if roll < 0.25:
            h.fail(p, error=[11, "temporarily unavailable"])  # definitely never happened
            return "failed"
        op["result"], op["done"] = _sim_apply(model, state, op), True
    if roll > 0.9 and op["f"] not in ("read", "get"):
        h.info(p)  # took effect, but the client never heard
    elif op["result"] == "mismatch":
        h.fail(p, error=[22, "precondition failed"])
    elif op["f"] in ("read", "get"):
        h.ok(p, op["result"])
    else:
        h.ok(p)
    return "done"
