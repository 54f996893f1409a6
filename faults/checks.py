"""Named checks: what a scenario asks of a run, mapped to ``emulator.check``.

====================  ========================================  ==============================================
name                  parameters (defaults)                     passes when
====================  ========================================  ==============================================
``linearizable``      model="cas_register", steps=10000000,     every key is linearizable (per key, Porcupine's
                      timeout (seconds; none)                   P-compositionality); an unknown (the search ran
                                                                out of ``steps``, a count that gives the same
                                                                verdict on any machine, or of the wall-clock
                                                                ``timeout`` if one is given) does not pass
``stale-reads``       max=0                                     at most ``max`` reads missed an acknowledged write
``lost-writes``       max=0                                     at most ``max`` acknowledged writes are missing
                                                                from their key's final read; unknown when no
                                                                key with an acknowledged write was read at the
                                                                end (Jepsen's set checker: never read, unknown)
``availability``      min (none: report only),                  answered / invoked >= ``min`` over the ops
                      answered=[20, 22],                        invoked in the phase (or the whole run); an op
                      reach (none: every op)                    is answered when ok (a read of a missing key
                                                                is an ok read of nothing, as in Jepsen) or
                                                                when it failed with an error code in
                                                                ``answered`` and no other (the store replied:
                                                                key does not exist, precondition failed); with
                                                                ``reach``, only over the ops sent to a node
                                                                that reached at least ``reach`` servers, itself
                                                                included, when they were invoked (see below)
``latency``           p50, p90, p99, max (seconds; none)        each given percentile of ok ops is at most that
``convergence``       within (seconds; none: report only)       after every heal, reads settled within ``within``;
                                                                unknown when a key's value changed up to its
                                                                last read (one read shows no agreement)
``node-errors``       max=0                                     protocol code raised at most ``max`` exceptions
``replicas-agree``                                              at the end, the live owners of every key hold
                                                                the same values, read from each replica's own
                                                                copy (``replica(key)``, :mod:`nodes.quorum`);
                                                                simulations only
====================  ========================================  ==============================================

``availability``'s ``reach`` is for a store that needs that many servers
to answer: a quorum store's max(R, W), sloppy or not. A node *reaches* a
server when messages pass both ways between them under every cut in force
(read from the cuts' ``grudge``, :mod:`faults.record`; a bridge node reaches
both halves, a node cut off one way reaches no one across the cut), and
always reaches itself; the servers are the cluster's and any the history
names. Crashes and pauses are not counted: a down peer still counts as
reached, so more ops are judged, never fewer. The ops sent to a node that
reached fewer are reported (``details["set_aside"]``) but not judged: Dynamo's
availability asks an answer only where R or W nodes are reachable, Gilbert
and Lynch's of every node that has not failed, which only R = W = 1 gives.

``availability`` also reports, for each partition with sides, the
availability on each side while it lasted (ops grouped by the node they were
sent to), read from the ``start-partition`` ops (:mod:`faults.record`); a
flapping partition's cuts one by one (``cut`` numbers them from 1), each
with the sides of its own draw and from its cut to its heal, read from the
``cut-partition`` and ``heal-partition`` ops. The heals between cuts are
in no cut's report.
A phase may ask only ``availability`` and ``latency``: the others judge a
whole history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator import check
from emulator.check.ops import NEMESIS, pair_ops
from emulator.validate import is_int
from faults.record import HEALS, CutSpan, fault_spans
from faults.spec import ParamError, check_count, check_number

__all__ = ["CHECKS", "PHASE_CHECKS", "CheckResult", "merged", "run_check", "validate_check"]

PHASE_CHECKS = ("availability", "latency")


@dataclass
class CheckResult:
    """One check's verdict: ``passed`` is True, False, or None (could not tell: not a pass)."""

    name: str
    passed: bool | None
    summary: str
    phase: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "unknown"}[self.passed]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "phase": self.phase,
            "passed": self.passed,
            "verdict": self.verdict,
            "summary": self.summary,
            "details": self.details,
        }


def merged(checks) -> bool | None:
    """The checks' outcomes merged as Jepsen merges ``:valid?``.

    False when one failed, else None when one could not tell (``passed``
    None, Jepsen's ``:unknown``), else True (no checks at all too).
    """
    outcomes = [check.passed for check in checks]
    if any(p is False for p in outcomes):
        return False
    return None if any(p is None for p in outcomes) else True


@dataclass
class Context:
    """What a check may look at besides the history."""

    errors: Sequence = ()
    window: tuple[float, float] | None = None
    phase: str | None = None
    replicas: dict | None = None  # key -> {server: [values], ...} of the key's live owners, at the end
    servers: Sequence[str] = ()  # the cluster's servers, for availability's reach


def _linearizable(history, params, ctx) -> CheckResult:
    verdict = check.linearizable(history, model=params["model"], timeout=params["timeout"], steps=params["steps"])
    keys = ", ".join(str(p.key) for p in verdict.failures[:5])
    summary = verdict.summary() + (f"; failing keys: {keys}" if keys else "")
    return CheckResult("linearizable", verdict.valid, summary, details=verdict.to_dict())


def _stale_reads(history, params, ctx) -> CheckResult:
    result = check.stale_reads(history)
    return CheckResult("stale-reads", len(result.stale) <= params["max"], str(result), details=result.to_dict())


def _lost_writes(history, params, ctx) -> CheckResult:
    result = check.lost_writes(history)
    passed: bool | None = len(result.lost) <= params["max"]
    summary = str(result)
    if result.acknowledged == 0 and result.unchecked:  # writes acknowledged, none on a key read at the end
        passed, summary = None, f"{summary}: no final read to check any acknowledged write against"
    return CheckResult("lost-writes", passed, summary, details=result.to_dict())


def _answered(history, codes) -> list[dict]:
    """The history as availability should count it: only ok ops and the fails ``codes`` names answered.

    A ``fail`` whose code is in ``codes`` is relabelled ``ok``, any other
    ``fail`` ``info`` (not answered), but for a read's "no such key", an ok
    read of nothing. ``emulator.check.availability`` counts 20, 21 and 22 as
    answers whatever ``codes`` says: relabelling each fail makes ``answered``
    the whole list.
    """
    codes = set(codes)
    out = []
    for op in history:
        if op.get("type") == "fail":
            code = (op.get("error") or [None])[0]
            if code in codes:
                op = {**op, "type": "ok"}
            elif not (op.get("f") in ("read", "get") and code == 20):
                op = {**op, "type": "info"}
        out.append(op)
    return out


def _availability(history, params, ctx) -> CheckResult:
    history = _answered(history, params["answered"])
    judged, reach, aside = history, params["reach"], None
    if reach is not None:
        judged, cut_off = _by_reach(history, reach, ctx.servers)
        aside = check.availability(cut_off, during=ctx.window)["overall"]
    rate = check.availability(judged, during=ctx.window)["overall"]
    details = {"overall": rate.to_dict(), "partitions": _per_side(history, ctx.window)}
    if aside is not None:
        details["set_aside"] = {"reach": reach, **aside.to_dict()}
    if rate.fraction is None:
        return CheckResult(
            "availability", None if params["min"] is not None else True, "no operations invoked", details=details
        )
    summary = f"{rate.fraction:.1%} answered ({rate.ok} of {rate.total})"
    if aside is not None:
        summary += f" at nodes reaching {reach} or more servers"
    passed = True if params["min"] is None else rate.fraction >= params["min"]
    if params["min"] is not None:
        summary += f", {'>=' if passed else '<'} {params['min']:.1%}"
    if aside is not None:
        summary += f"; {aside.total} sent to nodes reaching fewer, not judged ({aside.ok} answered)"
    return CheckResult("availability", passed, summary, details=details)


def _by_reach(history: list[dict], least: int, servers: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """The history split: the ops sent to a node that reached ``least`` servers when invoked, and the others.

    Nemesis ops go in both. An op with no ``node`` is judged (it cannot be shown to be cut off).
    """
    cuts = [piece for span in fault_spans(history, "partition") for piece in span.cuts]
    named = {op["node"] for op in history if isinstance(op.get("node"), str)} | set(servers)
    for piece in cuts:
        named.update(name for side in piece.sides.values() for name in side)
        named.update(name for listener, speakers in piece.grudge.items() for name in (listener, *speakers))
    everyone = sorted(named)
    ops, _ = pair_ops(history)
    aside: set[int] = set()
    for op in ops:
        if isinstance(op.node, str) and _reach(op.node, op.call_time, cuts, everyone) < least:
            aside.update(i for i in (op.call, op.ret) if i is not None)
    judged = [op for i, op in enumerate(history) if i not in aside]
    others = [op for i, op in enumerate(history) if i in aside or op.get("process") == NEMESIS]
    return judged, others


def _reach(node: str, time: float, cuts: list[CutSpan], servers: list[str]) -> int:
    """How many of ``servers`` exchange messages both ways with ``node`` (itself included) at ``time``."""
    deaf: dict[str, set[str]] = {}  # each node -> the nodes it cannot hear from, under every cut in force
    for piece in cuts:
        if piece.contains(time):
            for listener, speakers in piece.grudge.items():
                deaf.setdefault(listener, set()).update(speakers)
    return sum(1 for s in servers if s == node or (s not in deaf.get(node, ()) and node not in deaf.get(s, ())))


def _per_side(history, window) -> list[dict]:
    """Availability on each side of every cut with sides, while it lasted: a flapping partition's cuts one by one."""
    end = max((op.get("time", 0.0) for op in history), default=0.0) + 1.0
    out = []
    for span in fault_spans(history, "partition"):
        for number, piece in enumerate(span.cuts, 1):
            if not piece.sides:
                continue
            during = (piece.start, piece.stop if piece.stop is not None else end)
            if window is not None and (during[1] <= window[0] or during[0] >= window[1]):
                continue
            sides = check.availability(history, sides=piece.sides, during=during)["sides"]
            out.append(
                {
                    "id": span.id,
                    "cut": number,
                    "shape": span.value.get("shape"),
                    "start": during[0],
                    "stop": piece.stop,
                    "sides": {name: rate.to_dict() for name, rate in sides.items()},
                }
            )
    return out


def _latency(history, params, ctx) -> CheckResult:
    overall = check.latency(history, during=ctx.window)["overall"]
    bounds = {k: params[k] for k in ("p50", "p90", "p99", "max") if params[k] is not None}
    if overall.count == 0:
        return CheckResult("latency", None if bounds else True, "no ok operations", details=overall.to_dict())
    over = [f"{k} {getattr(overall, k):.3f} s > {v:.3f} s" for k, v in bounds.items() if getattr(overall, k) > v]
    summary = f"p50 {overall.p50:.3f} s, p99 {overall.p99:.3f} s, max {overall.max:.3f} s"
    return CheckResult(
        "latency", not over, summary + ("; " + ", ".join(over) if over else ""), details=overall.to_dict()
    )


def _convergence(history, params, ctx) -> CheckResult:
    epochs = [c for c in check.convergence(history, heals=HEALS) if c.reads]
    times = [c.time for c in epochs if c.time is not None]
    details = {"epochs": [c.to_dict() for c in epochs]}
    if not times:
        return CheckResult("convergence", True, "no reads after a heal", details=details)
    slowest = max(times)
    summary = f"{len(epochs)} heals with reads; slowest settled {slowest:.3f} s after its heal"
    passed: bool | None = True if params["within"] is None else slowest <= params["within"]
    unsettled = sorted({str(k) for c in epochs for k in c.unsettled_keys})
    if passed and params["within"] is not None and unsettled:  # a lone last read shows no agreement
        passed = None
        summary += f"; key(s) {', '.join(unsettled[:3])} changed value up to the last read: cannot tell they settled"
    return CheckResult("convergence", passed, summary, details=details)


def _replicas_agree(history, params, ctx) -> CheckResult:
    if ctx.replicas is None:
        return CheckResult(
            "replicas-agree",
            None,
            "no replica copies to compare: the protocol has no replica(key), or this is not a simulation",
        )
    split = {
        str(key): copies
        for key, copies in ctx.replicas.items()
        if len({repr(values) for values in copies.values()}) > 1
    }
    summary = f"{len(ctx.replicas) - len(split)} of {len(ctx.replicas)} keys alike on every live owner"
    if split:
        first = next(iter(split))
        summary += f"; {first}: {split[first]}"
    return CheckResult("replicas-agree", not split, summary, details={"differ": split})


def _node_errors(history, params, ctx) -> CheckResult:
    errors = list(ctx.errors)
    summary = f"{len(errors)} exception(s) in protocol code" + (f"; first: {errors[0]}" if errors else "")
    return CheckResult(
        "node-errors", len(errors) <= params["max"], summary, details={"errors": [str(e) for e in errors[:20]]}
    )


#: name -> (function, {parameter: default}).
CHECKS: dict[str, tuple[Callable, dict[str, Any]]] = {
    "linearizable": (_linearizable, {"model": "cas_register", "steps": 10_000_000, "timeout": None}),
    "stale-reads": (_stale_reads, {"max": 0}),
    "lost-writes": (_lost_writes, {"max": 0}),
    "availability": (_availability, {"min": None, "answered": [20, 22], "reach": None}),
    "latency": (_latency, {"p50": None, "p90": None, "p99": None, "max": None}),
    "convergence": (_convergence, {"within": None}),
    "node-errors": (_node_errors, {"max": 0}),
    "replicas-agree": (_replicas_agree, {}),
}


def validate_check(name: str, params: Any, phase: bool = False) -> dict:
    """The check's full parameters from the given ones (``True`` or ``{}`` for the defaults).

    Raises:
        ParamError: an unknown check or parameter, or a bad value.
    """
    allowed = PHASE_CHECKS if phase else tuple(CHECKS)
    if name not in allowed:
        raise ParamError(
            name,
            name,
            "a check from " + ", ".join(allowed) + (" (a phase judges only the ops invoked in it)" if phase else ""),
        )
    if params is True:
        params = {}
    if not isinstance(params, dict):
        raise ParamError(name, params, "true or a table of the check's parameters")
    defaults = CHECKS[name][1]
    for key, value in params.items():
        if key not in defaults:
            raise ParamError(f"{name}.{key}", value, f"a parameter of {name}: {', '.join(defaults) or 'none'}")
    full = {**defaults, **params}
    for key, value in params.items():
        _check_param(name, key, value)
    return full


def _check_param(name: str, key: str, value: Any) -> None:
    where = f"{name}.{key}"
    if key == "model":
        if value not in check.MODELS and value != "cas-register":
            raise ParamError(where, value, "a model from " + ", ".join(sorted(check.MODELS)))
    elif key == "max" and name != "latency":
        check_count(where, value, low=0)
    elif key in ("steps", "reach"):
        check_count(where, value, low=1)
    elif key == "answered":
        if not isinstance(value, list) or not all(is_int(c) for c in value):
            raise ParamError(where, value, "a list of error codes, e.g. [20, 22]")
    elif key == "min":
        check_number(where, value, low=0.0, high=1.0)
    else:
        check_number(where, value, low=0.0, strict_low=key == "timeout")


def run_check(
    name: str,
    params: dict,
    history: Sequence[dict],
    errors: Sequence = (),
    window: tuple[float, float] | None = None,
    phase: str | None = None,
    replicas: dict | None = None,
    servers: Sequence[str] = (),
) -> CheckResult:
    """Run check ``name`` with full ``params`` (from :func:`validate_check`) on ``history``.

    Args:
        name: a key of ``CHECKS``.
        params: its parameters, every default filled in.
        history: the ops, as dicts.
        errors: the run's node errors (``sim.errors``), for ``node-errors``.
        window: ``(start, end)`` seconds of a phase, for the availability and latency checks.
        phase: the phase's name, recorded on the result.
        replicas: for ``replicas-agree``: key -> {owner: values} (see :func:`faults.chaos.replica_copies`).
        servers: the cluster's server names, for ``availability``'s ``reach`` (those the history names are added).
    """
    function, _ = CHECKS[name]
    result = function(list(history), params, Context(errors, window, phase, replicas, servers))
    result.phase = phase
    return result
