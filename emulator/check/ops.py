"""Pair a history's invocations with their completions.

Every checker starts here. A history is a list of op dicts in the order they
happened; a client operation is an ``invoke`` followed later by one
completion of the same process (``ok``, ``fail`` or ``info``). :func:`pair_ops`
turns the list into :class:`Op` records, one per client operation, and a list
of :class:`NemesisOp` for the faults.

A process whose op ended in ``info`` may invoke again: the new op is a new
operation, and the indeterminate one stays pending for ever (it may still take
effect, once, after the new op), exactly as if the process had been given a
new id. Jepsen gives it one, and never reuses it; Knossos refuses a history
that does ("already running").

Real-time order is the order of the list, not the ``time`` field: the list is
the order in which things happened, while several events may share one
virtual instant. ``Op.call`` and ``Op.ret`` are positions in the list.

A read that failed with error 20 (key does not exist, as lin-kv stores
answer a read of a missing key) is an observation, not a non-event: it is
paired as an ``ok`` read of nil, so a read that misses every acknowledged
write counts as stale and can break linearizability. Maelstrom's lin-kv
client records that read as a ``fail`` (error 20 is definite), which Knossos
drops as a non-event, so the same answer passes there. Only a failed read
whose error is code 20 (``20`` or ``[20, text]``) is read this way; any other
failed read stays a ``fail``.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from emulator.check.errors import HistoryFormatError
from emulator.check.values import jsonable

__all__ = [
    "COMPLETIONS",
    "NEMESIS",
    "TYPES",
    "NemesisOp",
    "Op",
    "by_key",
    "collector_paused",
    "key_id",
    "pair_ops",
    "pairs_shared",
]

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

    @property
    def returned(self) -> int:
        """``ret`` of an op known to have completed (every ok op has): an open op has none (ValueError)."""
        ret = self.ret
        if ret is None:
            raise ValueError(f"op {self.id} ({self.f} by process {self.process!r}) never completed")
        return ret

    def to_dict(self) -> dict[str, Any]:
        """The op as a JSON-serializable dict (a keyword read from EDN as ``":name"``: see :func:`jsonable`)."""
        out = asdict(self)
        for name in ("key", "value", "output"):
            out[name] = jsonable(out[name])
        return out


@dataclass(frozen=True, slots=True)
class NemesisOp:
    """A fault (or its repair) as recorded in the history: ``partition``, ``heal``, ``crash``..."""

    position: int
    time: float
    f: str
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-serializable dict."""
        return asdict(self)


def pair_ops(
    history: Sequence[dict[str, Any]], source: str = "<history>", lines: Sequence[int] | None = None
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
    blocks = getattr(_open, "blocks", None)
    shared = blocks[-1] if blocks else None
    if shared is None:
        return _pair(history, source, lines)
    key = tuple(map(id, history))  # the same op dicts in the same order: a copy of the list is the same history
    kept = shared.get(key)
    if kept is None:  # ``lines`` only name where an error is: a pairing made with them is the same pairing
        shared.clear()  # only the last history's pairing is kept: checkers mostly take turns on one history
        kept = shared[key] = (list(history), *_pair(history, source, lines))  # the dicts held: ids not reused
    return list(kept[1]), list(kept[2])  # the lists are the caller's to change; the ops are frozen


#: per thread, ``blocks``: the memos of the ``pairs_shared`` blocks open in it, innermost last (a thread
#: outside any block, a Dask worker's other task say, keeps nothing, whatever another thread has open)
_open = threading.local()


@contextlib.contextmanager
def pairs_shared() -> Iterator[None]:
    """Within: :func:`pair_ops` keeps the last history it paired, and gives later calls on it the same ops.

    For a caller that runs several checkers on one history that nothing
    changes meanwhile (a chaos run's judge: each checker pairs the history
    itself, and pairing was about a quarter of a short scenario's seed). A
    history is known by which op dicts it holds, in which order, so a copy
    of the list is the same history, and a list with an op added, removed
    or replaced is another; an op dict changed in place is not noticed,
    which is why the block must not outlive the history's changes. Only the
    last pairing is kept (its ops for as long as calls keep to that history),
    so the block holds one pairing's memory at a time. The block is the
    thread's own: other threads' calls keep nothing.
    """
    blocks = _open.__dict__.setdefault("blocks", [])
    blocks.append({})
    try:
        yield
    finally:
        blocks.pop()


def _pair(
    history: Sequence[dict[str, Any]], source: str, lines: Sequence[int] | None
) -> tuple[list[Op], list[NemesisOp]]:
    pending: dict[Any, int] = {}
    completion: list[Any] = [None] * len(history)  # at each invoke's position: (completion, its position)
    invokes: list[int] = []
    nemesis: list[NemesisOp] = []
    for pos, raw in enumerate(history):
        # The checks of _validate, inlined for the common case; it explains any failure.
        kind = raw.get("type") if type(raw) is dict else None
        process = raw.get("process") if kind is not None else None
        if kind not in TYPES or type(process) not in _PROCESS_TYPES or "f" not in raw:
            kind, process = _validate(raw, source, lines[pos] if lines is not None else pos)
        if process == NEMESIS:
            nemesis.append(NemesisOp(pos, _time(raw, pos), str(raw.get("f")), raw.get("value")))
        elif kind == "invoke":
            if process in pending:
                first = f"line {lines[pending[process]]}" if lines is not None else f"position {pending[process]}"
                raise HistoryFormatError(
                    source,
                    lines[pos] if lines is not None else pos,
                    repr(raw),
                    f"a completion of process {process}'s op invoked at {first} first",
                )
            pending[process] = pos
            invokes.append(pos)
        else:
            call = pending.pop(process, None)
            where = lines[pos] if lines is not None else pos
            if call is None:
                raise HistoryFormatError(source, where, repr(raw), f"an invoke of process {process} before its {kind}")
            invoke = history[call]
            if raw.get("f") != invoke.get("f"):
                raise HistoryFormatError(source, where, repr(raw), f"f {invoke.get('f')!r} as in its invoke")
            if "key" in raw and "key" in invoke and raw["key"] != invoke["key"]:
                raise HistoryFormatError(source, where, repr(raw), f"key {invoke['key']!r} as in its invoke (or none)")
            completion[call] = (raw, pos)
    ops = [_op(i, call, history[call], completion[call]) for i, call in enumerate(invokes)]
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
        raise HistoryFormatError(source, where, repr(raw), 'a process (an int, or "nemesis")')
    if "f" not in raw:
        raise HistoryFormatError(source, where, repr(raw), "an f (the operation's name)")
    return kind, process


_READS = ("read", "get")
_PROCESS_TYPES = (int, str)  # what a valid process usually is; anything else goes through _validate
_TIME_TYPES = (int, float)
_NO_COMPLETION: dict[str, Any] = {}
_KEY_DOES_NOT_EXIST = 20


def _observed(invoke: dict[str, Any], done: dict[str, Any]) -> tuple[str, Any]:
    """The op's status and output; a read answered 'no such key' read nil."""
    status = done.get("type", "open")
    error = done.get("error")
    code = error[0] if isinstance(error, (list, tuple)) and error else error
    if status == "fail" and invoke.get("f") in _READS and code == _KEY_DOES_NOT_EXIST:
        return "ok", None
    return status, done.get("value")


def _op(op_id: int, call: int, invoke: dict[str, Any], completion: tuple[dict[str, Any], int] | None) -> Op:
    """Build an Op from an invoke dict and its completion with its position (None when it never completed)."""
    if completion is None:
        done, ret, ret_time = _NO_COMPLETION, None, None
    else:
        done, ret = completion
        t = done.get("time")
        ret_time = float(t) if t.__class__ is not bool and isinstance(t, _TIME_TYPES) else float(ret)
    status, output = _observed(invoke, done)
    t = invoke.get("time")
    return Op(
        op_id,
        invoke["process"],
        str(invoke["f"]),
        invoke.get("key"),
        invoke.get("value"),
        output,
        status,
        call,
        ret,
        float(t) if t.__class__ is not bool and isinstance(t, _TIME_TYPES) else float(call),
        ret_time,
        invoke.get("node", done.get("node")),
        done.get("error"),
    )


def _time(raw: dict[str, Any], pos: int) -> float:
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
    """A hashable form of a key (JSON keys may be lists or objects).

    A list becomes a tuple and an object a frozenset of its items, so equal
    objects are one key whatever the order of their fields, and no object is
    the same key as a list.
    """
    if isinstance(key, list):
        return tuple(key_id(k) for k in key)
    if isinstance(key, dict):
        return frozenset((key_id(k), key_id(v)) for k, v in key.items())
    return key


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration, then restore it as it was.

    Reading and checking a history builds hundreds of thousands of small
    objects and keeps them all: each collection then walks every one of them
    for cycles that are not there (more than half of a 100,000-op check went
    to it). Reference counting still frees what is dropped; only cycles wait
    until the collector runs again.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
