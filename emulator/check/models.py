"""Sequential models for the linearizability checker.

A model describes one key's value: its initial state and, for each operation,
a *step*: a function from the state before the op to the state after it, or
:data:`ILLEGAL` when the op's recorded result is impossible in that state.
Steps are compiled once per op (:meth:`Model.prepare`) so the search calls one
small closure per attempt and allocates nothing else.

Which operations enter the search, by completion type, is the same for every
model (the full table, with the foreign-rule models, is in
``docs/checker-outcomes.md``):

- an ``ok`` op must be linearized, and its recorded result must fit;
- a ``fail`` op did not happen and is dropped, as Jepsen, Knossos and
  Porcupine read it, with two exceptions that carry capsim's own definite
  error codes (Maelstrom's registry): a cas failed with **22**
  (precondition-failed) ran and found another value, so it must be linearized
  where the value is not ``from``; a read or cas failed with **20**
  (key-does-not-exist) ran and found no value, so it is a read of the initial
  value. A ``fail`` with no code, or any other code, is dropped;
- an ``info`` op (or one that never completed) may take effect once, at any
  time after its call, or never; an indeterminate read is dropped, since it
  returned nothing to check.

The models: ``register`` (read, write; starts ``None``), ``cas_register``
(read, write, cas; starts ``None``) and ``kv`` (get, put, append on strings;
each key starts ``""``), and two that judge by another tool's rules:
``knossos_cas_register`` is Knossos's ``(cas-register 0)`` (starts at 0, an
``ok`` read of nil matches any value, error codes mean nothing) and
``porcupine_etcd`` is the model Porcupine checks Jepsen's etcd logs with
(starts ``None``; a failed cas, with or without a code, ran and found another
value). Names are accepted with ``-`` or ``_``. All accept ``get``/``put`` for
``read``/``write`` and vice versa. A history with several keys is checked per
key, or, unsplit, against the product of one model per key
(:func:`product_steps`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from emulator.check.errors import ModelError
from emulator.check.ops import Op
from emulator.check.values import Exact, freeze, show

__all__ = [
    "ILLEGAL",
    "MODELS",
    "Exact",
    "Model",
    "Prepared",
    "canonical",
    "detect_model",
    "freeze",
    "get_model",
    "product_steps",
    "show",
]

ILLEGAL: Any = type("Illegal", (), {"__repr__": lambda self: "ILLEGAL"})()
"""Returned by a step when the op's recorded result is impossible in the given state."""

Step = Callable[[Any], Any]
_ALIASES = {"get": "read", "put": "write"}
#: an op kind -> every ``f`` a history may spell it with (for messages)
_SPELLINGS = {
    kind: " or ".join([kind, *(f for f, k in _ALIASES.items() if k == kind)])
    for kind in dict.fromkeys(_ALIASES.values())
}
KEY_DOES_NOT_EXIST = 20  # Maelstrom's definite codes, as capsim records them
PRECONDITION_FAILED = 22


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
    args: tuple[Any, ...]
    required: bool
    step: Step

    @classmethod
    def compile(cls, op: Op, action: str, args: tuple[Any, ...], required: bool) -> Prepared:
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
        codes: whether capsim's definite error codes (20, 22) carry meaning.
        nil_reads_any: an ``ok`` read of nil matches any value (Knossos).
        failed_cas_ran: a failed cas with no code ran and found another value
            (Porcupine's etcd rules).
    """

    name: str
    init: Any
    kinds: tuple[str, ...]
    hint: str = ""
    strings: bool = False
    codes: bool = True
    nil_reads_any: bool = False
    failed_cas_ran: bool = False

    def kind(self, op: Op) -> str:
        """The canonical kind of ``op`` (``get`` is ``read``, ``put`` is ``write``).

        Raises:
            ModelError: the model has no such operation.
        """
        kind = _ALIASES.get(op.f, op.f)
        if kind not in self.kinds:
            accepted = ", ".join(_SPELLINGS.get(kind, kind) for kind in self.kinds)
            hint = self.hint if kind in _KINDS else _NO_MODEL
            raise ModelError(f"model {self.name!r} has no operation {op.f!r} (it knows {accepted}){hint}")
        return kind

    def prepare(self, op: Op) -> Prepared | None:
        """Compile ``op`` for the search, or None when it cannot have had an effect (see module doc)."""
        kind = self.kind(op)
        if kind == "read":
            return self._prepare_read(op)
        if op.status == "fail":
            return self._prepare_failed(op, kind)
        required = op.status == "ok"
        if kind == "write":
            return Prepared.compile(op, "write", (self._written(op),), required)
        if kind == "append":
            return Prepared.compile(op, "append", (self._written(op),), required)
        return Prepared.compile(op, "swap" if required else "may_swap", _cas_args(op), required)

    def _prepare_read(self, op: Op) -> Prepared | None:
        """An ok read must see its value; any other read is dropped."""
        if op.status != "ok" or (op.output is None and self.nil_reads_any):
            return None
        # "no such key" (an error-20 read, paired as an ok read of None) saw the initial value
        output = self.init if op.output is None and self.codes and _code(op) == KEY_DOES_NOT_EXIST else op.output
        return Prepared.compile(op, "read", (freeze(output),), True)

    def _written(self, op: Op) -> Any:
        """The value a write or append stores, checked against the model's value type."""
        if self.strings and not isinstance(op.value, str):
            raise ModelError(
                f"op {op.id} (process {op.process}): model {self.name!r} stores strings, got {op.value!r}; "
                "for a register of other values use model 'cas-register', or leave the model out to detect it"
            )
        return freeze(op.value)

    def _prepare_failed(self, op: Op, kind: str) -> Prepared | None:
        """A definite failure did not happen, unless capsim's code says the cas ran (module doc)."""
        if kind != "cas":
            return None
        code = _code(op) if self.codes else None
        if code == PRECONDITION_FAILED or (code is None and self.failed_cas_ran):
            return Prepared.compile(op, "mismatch", _cas_args(op)[:1], True)
        if code == KEY_DOES_NOT_EXIST:
            _cas_args(op)
            return Prepared.compile(op, "read", (freeze(self.init),), True)
        return None

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
            return f"it returned {show(op.output)} but after the prefix the value was {show(state)}"
        if kind == "cas" and op.status == "ok":
            return f"it swapped from {show(op.value[0])} but after the prefix the value was {show(state)}"
        if kind == "cas" and _code(op) == KEY_DOES_NOT_EXIST:
            return f"it found no value (error 20), but after the prefix the value was {show(state)}"
        if kind == "cas":
            return f"it failed, but after the prefix the value was {show(state)} so it would have swapped"
        return f"it cannot follow state {show(state)}"


_RESULTS = {"ok": "ok", "fail": "fail", "info": "?", "open": "?"}
_KINDS = ("read", "write", "cas", "append")  # what some model knows
_NO_MODEL = "; no model has it (they know read or get, write or put, cas, and append)"
_CAS_HINT = "; use model 'cas-register' for cas"

REGISTER = Model("register", None, ("read", "write"), _CAS_HINT)
CAS_REGISTER = Model("cas_register", None, ("read", "write", "cas"), "; use model 'kv' for append")
KV = Model("kv", "", ("read", "write", "append"), _CAS_HINT + " on values that are not strings", True)
KNOSSOS_CAS_REGISTER = Model(
    "knossos_cas_register", 0, ("read", "write", "cas"), "; use model 'kv' for append", codes=False, nil_reads_any=True
)
PORCUPINE_ETCD = Model(
    "porcupine_etcd", None, ("read", "write", "cas"), "; use model 'kv' for append", codes=False, failed_cas_ran=True
)


def canonical(name: str) -> str:
    """A model name with ``-`` spelled ``_``: ``cas-register`` and ``cas_register`` are one model."""
    return str(name).strip().replace("-", "_")


class _Models(dict[str, Model]):
    """The models by name; looking one up accepts ``-`` or ``_`` (``"cas-register" in MODELS``)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, canonical(name))

    def __getitem__(self, name: str) -> Model:
        return dict.__getitem__(self, canonical(name))

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, canonical(name), default) if isinstance(name, str) else default


MODELS: dict[str, Model] = _Models(
    (m.name, m) for m in (REGISTER, CAS_REGISTER, KV, KNOSSOS_CAS_REGISTER, PORCUPINE_ETCD)
)


def get_model(model: str | Model) -> Model:
    """Look a model up by name (``cas-register`` and ``cas_register`` both work).

    Raises:
        ModelError: no model has that name.
    """
    if isinstance(model, Model):
        return model
    found = MODELS.get(str(model))
    if found is None:
        names = ", ".join(n.replace("_", "-") for n in sorted(MODELS))
        raise ModelError(f"unknown model {model!r}; choose one of {names} (spelled with - or _)")
    return found


def detect_model(ops: Sequence[Op], whole_file_edn: bool = False) -> Model:
    """The model a history was written for, from its operations.

    ``get``/``put``/``append`` (Jepsen's and Porcupine's key-value tests) is
    ``kv``; ``read``/``write``/``cas`` (capsim's lin-kv clients, Jepsen's
    registers) is ``cas_register``, or ``knossos_cas_register`` for a
    whole-file EDN vector, the form of Knossos's own data.
    """
    names = {op.f for op in ops}
    if names & {"get", "put", "append"} and not names & {"cas"}:
        return KV
    return KNOSSOS_CAS_REGISTER if whole_file_edn else CAS_REGISTER


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


def _code(op: Op) -> Any:
    """The error code of a failed op (``[code, text]`` or a bare code), or None."""
    code = op.error[0] if isinstance(op.error, (list, tuple)) and op.error else op.error
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _cas_args(op: Op) -> tuple[Any, Any]:
    """The ``[from, to]`` of a cas, frozen."""
    if not _is_pair(op.value):
        raise ModelError(f"op {op.id} (process {op.process}): a cas value must be [from, to], got {op.value!r}")
    return freeze(op.value[0]), freeze(op.value[1])


def _is_pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2
