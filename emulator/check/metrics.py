"""Service-level numbers from a history: availability, latency, convergence after heal.

Definitions, all in virtual seconds:

- **availability**: of the client ops *invoked* in a span, the fraction the
  system answered: ``ok``, or a ``fail`` whose error is an answer about the
  data rather than a refusal (codes 20 key does not exist, 21 key already
  exists, 22 precondition failed: the store was there and said no). Other
  fails (11 unavailable, ...), ``info`` (the client's timeout ran out) and
  ops that never completed count against it. This is Gilbert and Lynch's
  availability (every request gets an answer) with a deadline: the client's
  timeout, since a history cannot tell "never" from "later".
- **availability per time window** (:func:`mean_fraction` of the
  ``windows`` or ``side_windows``): the same fraction in each window of
  ``window`` seconds, then the mean over the windows that saw any op, each
  window weighing the same. Weighted by op count instead, a side whose
  clients wait out timeouts issues fewer ops and hardly counts: a client
  answered every 50 ms for half the run, then waiting out 0.5 s timeouts,
  scores 91% by op count and 50% per window.
- **answered time** (:func:`answered_time`): per client, the share of its
  time in which it was being answered. Each op a client invoked in the span
  holds the client's time from its invocation to the client's next
  invocation (its last op: to its own completion; one never completed: to
  the end of the span), and that time is answered time when the op was
  answered, as above. So a 0.5 s wait on a timeout is 0.5 s unanswered
  whatever else the client did that second: a client answered every 50 ms
  for half a second, then waiting out one 0.5 s timeout, is answered 50% of
  its time, where 10 of its 11 ops (91%) were answered. The windows above
  correct that bias only between windows; within one, ops still weigh the
  same.
- **latency**: completion time minus invocation time of ``ok`` ops, as
  nearest-rank percentiles; an op belongs to the window of its invocation.
- **convergence after a heal**: for each heal (``heal``, ``stop-partition``,
  ``restart``, ``resume``), the *epoch* runs to the next other nemesis op (or
  the end). Within it, for each key, the final value is what the epoch's last
  ok read returned; the key has converged from the first read of the longest
  run of reads, up to the last, that all return the final value. The epoch's
  ``converged_at`` is the latest such time over its keys; ``time`` is that
  minus the heal's time. ``last_divergent_at`` is the invocation of the last
  read that disagreed, if any: the system converged between the two.
  Measured at the resolution of the reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from emulator.check.ops import NemesisOp, Op, by_key, pair_ops

__all__ = [
    "Convergence",
    "FaultWindow",
    "Percentiles",
    "Rate",
    "Share",
    "answered_time",
    "availability",
    "convergence",
    "fault_windows",
    "latency",
    "mean_fraction",
]

HEALS = ("heal", "stop-partition", "restart", "resume")
#: Error codes that are answers, not refusals: they count as available.
ANSWERED = (20, 21, 22)


def is_heal(f: str, heals: Sequence[str] | None = None) -> bool:
    """Whether nemesis op ``f`` repairs a fault: one of ``heals``, or any ``stop-*`` by default."""
    return f in heals if heals is not None else (f in HEALS or f.startswith("stop-"))


_READS = ("read", "get")
Interval = tuple[float, float]


@dataclass
class Rate:
    """``ok`` (answered) of ``total`` ops; ``fraction`` is None when there were none."""

    ok: int = 0
    total: int = 0
    start: float | None = None
    end: float | None = None

    @property
    def fraction(self) -> float | None:
        return self.ok / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fraction": self.fraction}


@dataclass
class Share:
    """``answered`` of the ``held`` seconds of one client's time; ``fraction`` is None when it held none."""

    answered: float = 0.0
    held: float = 0.0

    @property
    def fraction(self) -> float | None:
        return self.answered / self.held if self.held > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fraction": self.fraction}


@dataclass
class Percentiles:
    """Latency percentiles (nearest rank) of ``count`` ok ops; all None when there were none."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Convergence:
    """How long after one heal the reads of every key settled on a final value."""

    heal: NemesisOp
    epoch_end: float | None
    keys: int
    reads: int
    converged_at: float | None
    time: float | None
    last_divergent_at: float | None
    divergent_keys: list[Any] = field(default_factory=list)
    #: divergent keys whose last read alone has the final value: nothing shows they settled (they may flip on)
    unsettled_keys: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "heal": self.heal.to_dict(),
            "divergent_keys": [str(k) for k in self.divergent_keys],
            "unsettled_keys": [str(k) for k in self.unsettled_keys],
        }


@dataclass
class FaultWindow:
    """A span from a fault to the next heal (``end`` None when never healed)."""

    start: float
    end: float | None
    f: str
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def availability(
    history: Sequence[dict[str, Any]],
    window: float | None = None,
    sides: Mapping[str, Iterable[Any]] | None = None,
    during: Interval | None = None,
) -> dict[str, Any]:
    """Fraction of client ops the system answered: overall, per window, per partition side.

    Args:
        history: capsim op dicts.
        window: if given, also bucket ops by invocation time into windows of this many seconds
            (from ``during``'s start when given, else from a multiple of ``window``).
        sides: side name -> node or process names; an op belongs to the first
            side holding its ``node``, else the first holding its process.
        during: only count ops invoked in ``[start, end)``.

    Returns:
        ``{"overall": Rate, "windows": [Rate], "sides": {name: Rate}, "side_windows": {name: [Rate]},
        "unassigned": Rate}``; ``side_windows`` uses the same windows as ``windows``.
    """
    ops = _client_ops(history, during)
    overall = _rate(ops, *(during or (None, None)))
    grid = _grid(ops, window, during)
    windows = [_rate(chunk, lo, hi) for lo, hi, chunk in _bucketed(ops, grid)]
    report: dict[str, Any] = {
        "overall": overall,
        "windows": windows,
        "sides": {},
        "side_windows": {},
        "unassigned": Rate(),
    }
    if sides:
        members = {name: {str(m) for m in group} for name, group in sides.items()}
        groups: dict[str, list[Op]] = {name: [] for name in members}
        stray: list[Op] = []
        for op in ops:
            side = _side_of(op, members)
            (groups[side] if side is not None else stray).append(op)
        report["sides"] = {name: _rate(group) for name, group in groups.items()}
        report["side_windows"] = {
            name: [_rate(chunk, lo, hi) for lo, hi, chunk in _bucketed(group, grid)] for name, group in groups.items()
        }
        report["unassigned"] = _rate(stray)
    return report


def answered_time(
    history: Sequence[dict[str, Any]], during: Interval, clients: Mapping[str, Iterable[Any]]
) -> dict[str, Share]:
    """Per client, the seconds it was answered of the seconds its ops invoked in ``during`` held it (module doc).

    Args:
        history: capsim op dicts.
        during: ``(start, end)``: the ops invoked in ``[start, end)`` count; each holds the client's time to the
            client's next invocation (anywhere in the history), its last to its completion, an open one to ``end``.
        clients: client name -> node or process names; an op belongs to the first client holding its ``node``,
            else the first holding its process. A client is one sequential actor: when several processes share
            a client, the time belongs to the latest op invoked.

    Returns:
        ``{client: Share}`` for every client named, in the mapping's order.
    """
    members = {name: {str(m) for m in group} for name, group in clients.items()}
    mine: dict[str, list[Op]] = {name: [] for name in members}
    for op in pair_ops(history)[0]:
        name = _side_of(op, members)
        if name is not None:
            mine[name].append(op)
    return {name: _share(ops, during) for name, ops in mine.items()}


def _share(ops: list[Op], during: Interval) -> Share:
    """One client's answered and held seconds over the ops it invoked in ``during`` (``ops`` in history order)."""
    start, end = during
    share = Share()
    for i, op in enumerate(ops):
        if not start <= op.call_time < end:
            continue
        last = op.ret_time if op.ret_time is not None else end
        until = ops[i + 1].call_time if i + 1 < len(ops) else last
        share.held += until - op.call_time
        if _answered(op):
            share.answered += until - op.call_time
    return share


def mean_fraction(rates: Sequence[Rate]) -> float | None:
    """The mean of the rates' fractions over those with any op (each window weighs the same); None if none had."""
    fractions = [rate.ok / rate.total for rate in rates if rate.total]
    return sum(fractions) / len(fractions) if fractions else None


def latency(
    history: Sequence[dict[str, Any]], window: float | None = None, during: Interval | None = None
) -> dict[str, Any]:
    """Latency percentiles of ok ops: overall, per f, and per window of invocation time.

    Returns:
        ``{"overall": Percentiles, "by_f": {f: Percentiles}, "windows": [Percentiles]}``.
    """
    ops = [op for op in _client_ops(history, during) if op.status == "ok"]
    fs = sorted({op.f for op in ops})
    return {
        "overall": _percentiles(ops, *(during or (None, None))),
        "by_f": {f: _percentiles([op for op in ops if op.f == f]) for f in fs},
        "windows": [_percentiles(chunk, lo, hi) for lo, hi, chunk in _bucketed(ops, _grid(ops, window))],
    }


def convergence(history: Sequence[dict[str, Any]], heals: Sequence[str] | None = None) -> list[Convergence]:
    """For each heal, when the reads of every key settled (see module doc)."""
    ops, nemesis = pair_ops(history)
    reads = [op for op in ops if op.f in _READS and op.status == "ok"]
    out = []
    for i, heal in enumerate(nemesis):
        if not is_heal(heal.f, heals):
            continue
        stop = next((n for n in nemesis[i + 1 :] if not is_heal(n.f, heals)), None)
        limit = stop.position if stop is not None else math.inf
        epoch = [op for op in reads if heal.position < op.call < limit]
        out.append(_settle(heal, stop, epoch))
    return out


def fault_windows(history: Sequence[dict[str, Any]], heals: Sequence[str] | None = None) -> list[FaultWindow]:
    """Spans while any fault is active, for ``availability(during=...)``.

    A fault policy brackets each fault in ``start-<kind>`` / ``stop-<kind>``
    ops; a span lasts while any bracket is open, and the kernel's own ops
    inside a bracket (the mechanism calls of that fault) are not counted
    again. Unbracketed kernel faults open a span that the next heal closes.
    """
    _, nemesis = pair_ops(history)
    spans: list[FaultWindow] = []
    brackets = 0
    for event in nemesis:
        opened = bool(spans) and spans[-1].end is None
        if event.f.startswith("start-"):
            brackets += 1
            if not opened:
                spans.append(FaultWindow(event.time, None, event.f, event.value))
        elif event.f.startswith("stop-") and brackets:
            brackets -= 1
            if not brackets and opened:
                spans[-1].end = event.time
        elif brackets:
            continue  # a bracketed fault's own mechanism calls
        elif is_heal(event.f, heals):
            if opened:
                spans[-1].end = event.time
        elif not opened:
            spans.append(FaultWindow(event.time, None, event.f, event.value))
    return spans


def _settle(heal: NemesisOp, stop: NemesisOp | None, epoch: list[Op]) -> Convergence:
    """The convergence of one epoch's reads."""
    settled, divergent, bad_keys, lone = [], [], [], []
    groups = by_key(epoch)
    for key, group in groups.items():
        group.sort(key=lambda op: op.call)
        final = group[-1].output
        run = len(group)
        while run > 0 and group[run - 1].output == final:
            run -= 1
        settled.append(group[run].call_time)
        if run:
            divergent.append(group[run - 1].call_time)
            bad_keys.append(key)
            if run == len(group) - 1:
                lone.append(key)
    at = max(settled, default=None)
    return Convergence(
        heal=heal,
        epoch_end=None if stop is None else stop.time,
        keys=len(groups),
        reads=len(epoch),
        converged_at=at,
        time=None if at is None else at - heal.time,
        last_divergent_at=max(divergent, default=None),
        divergent_keys=bad_keys,
        unsettled_keys=lone,
    )


def _client_ops(history: Sequence[dict[str, Any]], during: Interval | None) -> list[Op]:
    ops, _ = pair_ops(history)
    if during is None:
        return ops
    start, end = during
    return [op for op in ops if start <= op.call_time < end]


def _answered(op: Op) -> bool:
    if op.status == "ok":
        return True
    code = op.error[0] if isinstance(op.error, (list, tuple)) and op.error else op.error
    return op.status == "fail" and code in ANSWERED


def _rate(ops: Sequence[Op], start: float | None = None, end: float | None = None) -> Rate:
    return Rate(sum(1 for op in ops if _answered(op)), len(ops), start, end)


def _percentiles(ops: Sequence[Op], start: float | None = None, end: float | None = None) -> Percentiles:
    values = sorted(op.ret_time - op.call_time for op in ops if op.ret_time is not None)  # ok ops: all
    if not values:
        return Percentiles(0, start=start, end=end)
    p50, p90, p99 = (_nearest_rank(values, p) for p in (50, 90, 99))
    return Percentiles(len(values), p50, p90, p99, values[-1], start, end)


def _nearest_rank(values: list[float], percent: float) -> float:
    """The smallest value with at least ``percent`` % of ``values`` at or below it."""
    return values[max(0, math.ceil(percent / 100 * len(values)) - 1)]


def _grid(ops: Sequence[Op], width: float | None, during: Interval | None = None) -> tuple[float, float, int] | None:
    """Windows of ``width`` as (origin, width, count): over ``during`` when given, else over the ops' invocations.

    Raises:
        ValueError: ``width`` is not positive.
    """
    if width is None:
        return None
    if not width > 0:
        raise ValueError(f"window must be a positive number of seconds, got {width}")
    if during is not None:
        start, end = during
        return start, width, max(1, math.ceil((end - start) / width - 1e-9))
    if not ops:
        return None
    first = math.floor(min(op.call_time for op in ops) / width)
    last = math.floor(max(op.call_time for op in ops) / width)
    return first * width, width, last - first + 1


def _bucketed(ops: Sequence[Op], grid: tuple[float, float, int] | None) -> list[tuple[float, float, list[Op]]]:
    """Ops bucketed by invocation time into the grid's windows ``[origin + k*width, ...)``, empty ones included."""
    if grid is None:
        return []
    origin, width, count = grid
    buckets: list[list[Op]] = [[] for _ in range(count)]
    for op in ops:
        index = math.floor((op.call_time - origin) / width)
        if 0 <= index < count:
            buckets[index].append(op)
    return [(origin + i * width, origin + (i + 1) * width, chunk) for i, chunk in enumerate(buckets)]


def _side_of(op: Op, members: Mapping[str, set[str]]) -> str | None:
    """The first side holding the op's node, else the first holding its process."""
    for attr in (op.node, op.process):
        if attr is not None:
            for name, group in members.items():
                if str(attr) in group:
                    return name
    return None
