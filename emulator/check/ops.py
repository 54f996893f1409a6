"""Pair a history's invocations with their completions.

Every checker starts here. A history is a list of op dicts in the order they
happened; a client operation is an ``invoke`` followed later by one
completion of the same process (``ok``, ``fail`` or ``info``). :func:`pair_ops`
turns the list into :class:`Op` records, one per client operation, and a list
of :class:`NemesisOp` for the faults.

Real-time order is the order of the list, not the ``time`` field: the list is
the order in which things happened, while several events may share one
virtual instant. ``Op.call`` and ``Op.ret`` are positions in the list.

A read that failed with error 20 (key does not exist, as lin-kv stores
answer a read of a missing key) is an observation, not a non-event: it is
paired as an ``ok`` read of nil, so a read that misses every acknowledged
write counts as stale and can break linearizability.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

from emulator.check.errors import HistoryFormatError

__all__ = ["COMPLETIONS", "NEMESIS", "TYPES", "NemesisOp", "Op", "by_key", "key_id", "pair_ops"]

NEMESIS = "nemesis"
COMPLETIONS = ("ok", "fail", "info")
TYPES = ("invoke",) + COMPLETIONS


@dataclass(frozen=True, slots=True)
class Op:
    """One client operation: its invocation and (if any) its completion.

    ``status`` is ``"ok"``, ``"fail"`` (definitely had no effect), ``"info"``
    (indeterminate) or ``"open"`` (never completed: as indeterminate as info).
    ``ret`` and ``ret_time`` are ``None`` for an open op.
    """

    id: int
    process: Any
    f: str
    key: Any
    value: Any
    output: Any
    status: str
    call: int
    ret: int | None
    call_time: float
    ret_time: float | None
    node: Any = None
    error: Any = None

    @property
    def indeterminate(self) -> bool:
        """True when the op may or may not have taken effect (``info`` or never completed)."""
        return self.status in ("info", "open")

    def to_dict(self) -> dict:
        """The op as a JSON-serializable dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class NemesisOp:
    """A fault (or its repair) as recorded in the history: ``partition``, ``heal``, ``crash``..."""

    position: int
    time: float
    f: str
    value: Any = None

    def to_dict(self) -> dict:
        """The event as a JSON-serializable dict."""
        return asdict(self)


def pair_ops(
    history: Sequence[dict], source: str = "<history>", lines: Sequence[int] | None = None
) -> tuple[list[Op], list[NemesisOp]]:
    """Match each invoke with its process's next completion.

    Args:
        history: op dicts in the order they happened (capsim's format).
        source: a name for error messages (the file the history came from).
        lines: for each op, the line it was read from, so errors can point at it;
            by default errors name the op's position in the list.

    Returns:
        ``(ops, nemesis)``: client operations in invocation order and faults in
        history order.

    Raises:
        HistoryFormatError: an op that is not a dict, has no valid ``type`` or
            ``process``, a completion with no invoke in flight, a second invoke
            while one is in flight, or a completion whose ``f`` differs.
    """
    pending: dict[Any, tuple[int, dict]] = {}
    done: dict[int, tuple[dict, dict | None, int | None]] = {}
    nemesis: list[NemesisOp] = []
    for pos, raw in enumerate(history):
        where = lines[pos] if lines is not None else pos
        kind, process = _validate(raw, source, where)
        if process == NEMESIS:
            nemesis.append(NemesisOp(pos, _time(raw, pos), str(raw.get("f")), raw.get("value")))
        elif kind == "invoke":
            if process in pending:
                first = pending[process][0]
                raise HistoryFormatError(
                    source, where, repr(raw), f"a completion of process {process}'s op at position {first} first"
                )
            pending[process] = (pos, raw)
        else:
            if process not in pending:
                raise HistoryFormatError(source, where, repr(raw), f"an invoke of process {process} before its {kind}")
            call, invoke = pending.pop(process)
            if raw.get("f") != invoke.get("f"):
                raise HistoryFormatError(source, where, repr(raw), f"f {invoke.get('f')!r} as in its invoke")
            done[call] = (invoke, raw, pos)
    for call, invoke in pending.values():
        done[call] = (invoke, None, None)
    ops = [_op(i, call, *done[call]) for i, call in enumerate(sorted(done))]
    return ops, nemesis


def _validate(raw: Any, source: str, where: int) -> tuple[str, Any]:
    """Check the fields every op needs; returns its type and process."""
    if not isinstance(raw, dict):
        raise HistoryFormatError(source, where, repr(raw), "an op map")
    kind = raw.get("type")
    if kind not in TYPES:
        raise HistoryFormatError(source, where, repr(raw), f"a type in {', '.join(TYPES)}")
    process = raw.get("process")
    if process is None or isinstance(process, (bool, float, list, dict)):
        raise HistoryFormatError(source, where, repr(raw), "a process (an int, or \"nemesis\")")
    if "f" not in raw:
        raise HistoryFormatError(source, where, repr(raw), "an f (the operation's name)")
    return kind, process


_READS = ("read", "get")
_KEY_DOES_NOT_EXIST = 20


def _observed(invoke: dict, done: dict) -> tuple[str, Any]:
    """The op's status and output; a read answered 'no such key' read nil."""
    status = done.get("type", "open")
    error = done.get("error")
    code = error[0] if isinstance(error, (list, tuple)) and error else error
    if status == "fail" and invoke.get("f") in _READS and code == _KEY_DOES_NOT_EXIST:
        return "ok", None
    return status, done.get("value")


def _op(op_id: int, call: int, invoke: dict, completion: dict | None, ret: int | None) -> Op:
    """Build an Op from an invoke dict and its completion (None when it never completed)."""
    done = completion or {}
    status, output = _observed(invoke, done)
    return Op(
        id=op_id,
        process=invoke["process"],
        f=str(invoke["f"]),
        key=invoke.get("key"),
        value=invoke.get("value"),
        output=output,
        status=status,
        call=call,
        ret=ret,
        call_time=_time(invoke, call),
        ret_time=None if completion is None else _time(completion, ret),
        node=invoke.get("node", done.get("node")),
        error=done.get("error"),
    )


def _time(raw: dict, pos: int) -> float:
    """The op's virtual time; its position when the history has no times."""
    t = raw.get("time")
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else float(pos)


def by_key(ops: Iterable[Op]) -> dict[Any, list[Op]]:
    """Group ops by key, keys in order of first appearance."""
    groups: dict[Any, list[Op]] = {}
    for op in ops:
        groups.setdefault(key_id(op.key), []).append(op)
    return groups


def key_id(key: Any) -> Any:
    """A hashable form of a key (JSON keys may be lists)."""
    if isinstance(key, list):
        return tuple(key_id(k) for k in key)
    return key
