"""Sequential models for the linearizability checker.

A model describes one key's value: its initial state and, for each operation,
a *step*: a function from the state before the op to the state after it, or
:data:`ILLEGAL` when the op's recorded result is impossible in that state.
Steps are compiled once per op (:meth:`Model.prepare`) so the search calls one
small closure per attempt and allocates nothing else.

Which operations enter the search, by completion type:

============  ======================  ============================================
f             ok                      fail / info (or never completed)
============  ======================  ============================================
read / get    must be linearized,     dropped: a failed read had no effect, and an
              must see the value      indeterminate one returned nothing to check
write / put   must be linearized      fail: dropped (definitely did not happen);
append                                info: may take effect once, any time after
                                      its call, or never
cas           must be linearized,     fail: it ran and found another value, so it
              value must equal from   must be linearized where the value is not
                                      ``from`` (with error code 20 or 22, or none).
                                      A fail with any other code (e.g. 11,
                                      temporarily unavailable) never ran: dropped.
                                      info: may swap once, or never
============  ======================  ============================================

The models: ``register`` (read, write; starts ``None``), ``cas_register``
(read, write, cas; starts ``None``) and ``kv`` (get, put, append on strings;
each key starts ``""``). All accept ``get``/``put`` for ``read``/``write`` and
vice versa. A history with several keys is checked per key, or, unsplit,
against the product of one model per key (:func:`product_steps`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from emulator.check.errors import ModelError
from emulator.check.ops import Op

__all__ = ["ILLEGAL", "MODELS", "Model", "Prepared", "freeze", "get_model", "product_steps", "show"]

ILLEGAL: Any = type("Illegal", (), {"__repr__": lambda self: "ILLEGAL"})()
"""Returned by a step when the op's recorded result is impossible in the given state."""

Step = Callable[[Any], Any]
_ALIASES = {"get": "read", "put": "write"}
_CAS_MISMATCH_CODES = (20, 22)  # key-does-not-exist, precondition-failed: the cas ran


@dataclass(frozen=True, slots=True)
class Prepared:
    """An op ready for the search.

    ``step`` is its compiled step over one key's value; ``action`` and ``args``
    name it (``"read"``, ``"write"``, ``"append"``, ``"swap"``, ``"may_swap"``
    or ``"mismatch"``) so :func:`product_steps` can compile it again over a
    multi-key state; ``required`` is False for an op that may never have
    taken effect.
    """

    op: Op
    action: str
    args: tuple
    required: bool
    step: Step

    @classmethod
    def compile(cls, op: Op, action: str, args: tuple, required: bool) -> "Prepared":
        """Build the Prepared op with its single-key step compiled."""
        return cls(op, action, args, required, _STEPS[action](*args))


@dataclass(frozen=True)
class Model:
    """A sequential specification of a single key's value.

    Args:
        name: the model's name, as given to ``linearizable(model=...)``.
        init: the value of every key before any op.
        kinds: the op kinds it accepts: ``read``, ``write``, ``cas``, ``append``.
        hint: what to use instead when an op is not accepted.
        strings: whether values are strings (so ``append`` can concatenate them).
    """

    name: str
    init: Any
    kinds: tuple[str, ...]
    hint: str = ""
    strings: bool = False

    def kind(self, op: Op) -> str:
        """The canonical kind of ``op`` (``get`` is ``read``, ``put`` is ``write``).

        Raises:
            ModelError: the model has no such operation.
        """
        kind = _ALIASES.get(op.f, op.f)
        if kind not in self.kinds:
            accepted = ", ".join(self.kinds)
            raise ModelError(f"model {self.name!r} has no operation {op.f!r} (it knows {accepted}){self.hint}")
        return kind

    def prepare(self, op: Op) -> Prepared | None:
        """Compile ``op`` for the search, or None when it cannot have had an effect (see module doc)."""
        kind = self.kind(op)
        if kind == "read":
            if op.status != "ok":
                return None
            # "no such key" (an error-20 read, paired as an ok read of None) saw the initial value
            output = self.init if op.output is None and _missing(op) else op.output
            return Prepared.compile(op, "read", (freeze(output),), True)
        if op.status == "fail":
            return self._prepare_failed(op, kind)
        required = op.status == "ok"
        if kind == "write":
            return Prepared.compile(op, "write", (self._written(op),), required)
        if kind == "append":
            return Prepared.compile(op, "append", (self._written(op),), required)
        return Prepared.compile(op, "swap" if required else "may_swap", _cas_args(op), required)

    def _written(self, op: Op) -> Any:
        """The value a write or append stores, checked against the model's value type."""
        if self.strings and not isinstance(op.value, str):
            raise ModelError(f"op {op.id} (process {op.process}): model {self.name!r} stores strings, got {op.value!r}")
        return freeze(op.value)

    def _prepare_failed(self, op: Op, kind: str) -> Prepared | None:
        """A definite failure: only a cas that ran and saw another value is kept."""
        code = op.error[0] if isinstance(op.error, (list, tuple)) and op.error else None
        if kind != "cas" or (code is not None and code not in _CAS_MISMATCH_CODES):
            return None
        return Prepared.compile(op, "mismatch", _cas_args(op)[:1], True)

    def describe(self, op: Op) -> str:
        """A one-line rendering such as ``cas(1, 4) -> ok`` or ``get("k") -> "x"``."""
        kind = _ALIASES.get(op.f, op.f)
        key = "" if op.key is None else show(op.key)
        if kind == "read":
            result = show(op.output) if op.status == "ok" else _RESULTS.get(op.status, "?")
            return f"{op.f}({key}) -> {result}"
        args = ", ".join(show(v) for v in op.value) if kind == "cas" and _is_pair(op.value) else show(op.value)
        args = f"{key}, {args}" if key else args
        return f"{op.f}({args}) -> {_RESULTS.get(op.status, '?')}"

    def why_not(self, op: Op, state: Any) -> str:
        """Why ``op``, with its recorded result, cannot be applied to ``state``."""
        kind = _ALIASES.get(op.f, op.f)
        if kind == "read":
            return f"it returned {show(op.output)} but the value was {show(state)}"
        if kind == "cas" and op.status == "ok":
            return f"it swapped from {show(op.value[0])} but the value was {show(state)}"
        if kind == "cas":
            return f"it failed, but the value was {show(state)} so it would have swapped"
        return f"it cannot follow state {show(state)}"


_RESULTS = {"ok": "ok", "fail": "fail", "info": "?", "open": "?"}

REGISTER = Model("register", None, ("read", "write"), "; use model 'cas_register' for cas")
CAS_REGISTER = Model("cas_register", None, ("read", "write", "cas"))
KV = Model("kv", "", ("read", "write", "append"), "; use model 'cas_register' for a key-value store with cas", True)
MODELS: dict[str, Model] = {m.name: m for m in (REGISTER, CAS_REGISTER, KV)}


def get_model(model: str | Model) -> Model:
    """Look a model up by name (``cas-register`` and ``cas_register`` both work).

    Raises:
        ModelError: no model has that name.
    """
    if isinstance(model, Model):
        return model
    found = MODELS.get(str(model).replace("-", "_"))
    if found is None:
        names = ", ".join(sorted(MODELS))
        raise ModelError(f"unknown model {model!r}; choose one of {names}")
    return found


def product_steps(prepared: list[Prepared], slots: list[int]) -> list[Step]:
    """Compile ops over a tuple state that holds every key's value.

    Args:
        prepared: the ops.
        slots: for each op, the index of its key in the tuple state.

    Returns:
        One step per op over the whole tuple.
    """
    return [_SLOT_STEPS[p.action](j, *p.args) for p, j in zip(prepared, slots)]


# One factory per action, over a single value and over slot j of a tuple. A
# step returns the next state or ILLEGAL; those that change nothing return
# their input, so a read allocates nothing.
_STEPS: dict[str, Callable[..., Step]] = {
    "read": lambda v: lambda s: s if s == v else ILLEGAL,
    "write": lambda v: lambda s: v,
    "append": lambda v: lambda s: s + v,
    "swap": lambda frm, to: lambda s: to if s == frm else ILLEGAL,
    "may_swap": lambda frm, to: lambda s: to if s == frm else s,
    "mismatch": lambda frm: lambda s: s if s != frm else ILLEGAL,
}
_SLOT_STEPS: dict[str, Callable[..., Step]] = {
    "read": lambda j, v: lambda s: s if s[j] == v else ILLEGAL,
    "write": lambda j, v: lambda s: s[:j] + (v,) + s[j + 1 :],
    "append": lambda j, v: lambda s: s[:j] + (s[j] + v,) + s[j + 1 :],
    "swap": lambda j, frm, to: lambda s: s[:j] + (to,) + s[j + 1 :] if s[j] == frm else ILLEGAL,
    "may_swap": lambda j, frm, to: lambda s: s[:j] + (to,) + s[j + 1 :] if s[j] == frm else s,
    "mismatch": lambda j, frm: lambda s: s if s[j] != frm else ILLEGAL,
}
def _missing(op: Op) -> bool:
    """Whether ``op`` is a read the store answered with error 20, "key does not exist"."""
    code = op.error[0] if isinstance(op.error, (list, tuple)) and op.error else op.error
    return code == 20


def _cas_args(op: Op) -> tuple[Any, Any]:
    """The ``[from, to]`` of a cas, frozen."""
    if not _is_pair(op.value):
        raise ModelError(f"op {op.id} (process {op.process}): a cas value must be [from, to], got {op.value!r}")
    return freeze(op.value[0]), freeze(op.value[1])


def _is_pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2


def freeze(value: Any) -> Any:
    """A hashable equal of a JSON value (lists become tuples, dicts sorted item tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    return value


def show(value: Any) -> str:
    """JSON-style rendering of a value for explanations."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
