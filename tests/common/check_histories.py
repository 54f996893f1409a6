"""Histories for checker tests: a builder, a brute-force checker, random and simulated histories.

tests/emulator/check/conftest.py hands these out as fixtures; tests of other
code that runs the checker (scripts/wgl_reference.py) import them from here.
"""

from __future__ import annotations

import importlib
import itertools
import math
import os
import random
import time
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


def search_reference(history: list[dict], model: str) -> bool:
    """Linearizability by a depth-first search over (ops done, state), memoised; for up to a dozen or so ops.

    Exhaustive like :func:`brute_force` (no pruning but the memo), on the same
    op table, for histories too long to try every permutation of.
    """
    return _Reference(history, model).longest(stop_when_complete=True) == _Reference(history, model).counted


def longest_prefix(history: list[dict], model: str) -> int:
    """The most ops that must be linearized (see :func:`order_problem`) in any linearizable prefix."""
    return _Reference(history, model).longest()


def order_problem(history: list[dict], model: str, calls: list[int], complete: bool) -> str | None:
    """What is wrong with an order of ops (given by their invoke positions) as a linearizable prefix, or None.

    Every op must be one that may have taken effect, legal where it is, and
    after every required op that returned before it was invoked. With
    ``complete``, every required op must be in it too, except Knossos's ok
    reads of nil, which fit anywhere.
    """
    ref = _Reference(history, model)
    by_call = {op["call"]: i for i, op in enumerate(ref.ops)}
    state, done = {}, set()
    for call in calls:
        i = by_call.get(call)
        if i is None or i in done:
            return f"op at {call} is not an op that may have had an effect, or comes twice"
        if not ref.ready(i, done):
            return f"op at {call} comes before an op that returned before it was invoked"
        if not _apply(model, state, ref.ops[i]):
            return f"op at {call} is illegal after the ops before it"
        done.add(i)
    missing = [op["call"] for i, op in enumerate(ref.ops) if ref.counts[i] and i not in done]
    return f"required ops at {missing} are missing" if complete and missing else None


class _Reference:
    """The memoised search behind :func:`search_reference` and :func:`longest_prefix`."""

    def __init__(self, history: list[dict], model: str) -> None:
        self.model, self.ops = model, _brute_ops(history, model)
        nil_any = model == "knossos_cas_register"
        self.counts = [op["must"] and not (nil_any and op["as"] == "read" and op["out"] is None) for op in self.ops]
        self.counted = sum(self.counts)

    def ready(self, i: int, done: set) -> bool:
        """Every counted op that returned before op i was invoked is done (a read that fits anywhere fits there)."""
        call = self.ops[i]["call"]
        return all(j in done for j, op in enumerate(self.ops) if self.counts[j] and op["ret"] < call)

    def longest(self, stop_when_complete: bool = False) -> int:
        seen: set = set()
        best = 0
        stack = [(frozenset(), ())]
        while stack:
            done, frozen = stack.pop()
            if (done, frozen) in seen:
                continue
            seen.add((done, frozen))
            best = max(best, sum(1 for i in done if self.counts[i]))
            if stop_when_complete and best == self.counted:
                return best
            for i in range(len(self.ops)):
                state = dict(frozen)
                if i not in done and self.ready(i, set(done)) and _apply(self.model, state, self.ops[i]):
                    stack.append((done | {i}, tuple(sorted(state.items(), key=repr))))
        return best


def busy_history(choose: Callable[[list], Any], model: str, max_ops: int = 12) -> list[dict]:
    """A random history with more going on than :func:`small_history`: up to 6 processes, 3 values, 2 keys.

    Ops time out often; a process whose op timed out carries on under a new
    id or (sometimes) the same one; some ops never complete.
    """
    n_ops, processes = choose(list(range(1, max_ops + 1))), choose([1, 2, 3, 4, 5, 6])
    keys, rename = choose([["a"], ["a"], ["a", "b"]]), choose([True, False])
    values = ["x", "y", "z"] if model == "kv" else [0, 1, 2]
    h, started, busy, live, hung = HistoryBuilder(), 0, {}, list(range(processes)), set()
    while busy or (started < n_ops and len(hung) < len(live)):
        idle = [p for p in live if p not in busy and p not in hung]
        if started < n_ops and idle and (not busy or choose([True, False])):
            p, f = choose(idle), choose(list(_FS[model]))
            h.invoke(p, f, _random_value(choose, f, values), key=choose(keys))
            busy[p] = f
            started += 1
            continue
        p = choose(sorted(busy))
        kind = _complete_randomly(choose, h, p, busy.pop(p), model, busy=True)
        if kind == "open":
            hung.add(p)
        elif kind == "info" and rename:
            live[live.index(p)] = max(live) + 1 + max(hung, default=0)
    return h.ops


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


def _complete_randomly(choose: Callable, h: HistoryBuilder, p: int, f: str, model: str, busy: bool = False) -> str:
    """Complete p's op ok, info or fail, or leave it open; returns which.

    ``busy``: info twice as often, and reads of one value more (for busy_history).
    """
    kind = choose(
        ["ok", "ok", "ok", "info", "info", "fail", "open"] if busy else ["ok", "ok", "ok", "info", "fail", "open"]
    )
    if kind == "open":
        h._pending.pop(p)
    elif f in ("read", "get") and kind == "ok":
        reads = ["", "x", "y", "xy", "yx"] if model == "kv" else [None, 0, 1]
        h.ok(p, choose(reads + (["xz", "zx"] if model == "kv" else [2]) if busy else reads))
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


def race_the_checkers_clock(monkeypatch: Any) -> None:
    """Make the linearizability checker's clock race: every look at it finds an hour gone, as on a machine too
    loaded to search at all. A wall-clock timeout runs out at once; a step budget does not notice."""
    searching = importlib.import_module("emulator.check.linearizable")  # the module: the package names the function

    class Racing:
        perf_counter = staticmethod(time.perf_counter)
        process_time = staticmethod(time.process_time)
        now = 0.0

        @classmethod
        def monotonic(cls) -> float:
            cls.now += 3600.0
            return cls.now

    monkeypatch.setattr(searching, "time", Racing)
