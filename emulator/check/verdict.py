"""Verdicts of the linearizability checker, and how they explain themselves.

A :class:`Verdict` holds one :class:`PartitionResult` per key checked. When a
key is not linearizable its explanation is the longest linearizable prefix
the search found, the op that had to come next and cannot (it returned before
anything else could happen, and its recorded result is impossible after the
prefix), and the other ops that could have come next instead, each with why
it does not help.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.check.models import ILLEGAL, Model, Prepared, show
from emulator.check.ops import NemesisOp, Op, key_id

__all__ = ["PartitionResult", "Verdict"]


@dataclass
class PartitionResult:
    """The search's answer for one key (or for the whole history when unsplit).

    ``order`` lists op ids: the linearization found when ``valid`` is True,
    else the longest linearizable prefix found. ``state`` is the model state
    after ``order``. ``checked`` is False when the time ran out before this
    partition's turn. ``slots`` maps keys to positions in the state tuple of
    an unsplit multi-key check. ``note`` says how a verdict was reached when
    it is not by the search itself.
    """

    key: Any
    valid: bool | None
    ops: list[Op]
    prepared: list[Prepared]
    order: list[int]
    state: Any
    explored: int
    elapsed: float
    checked: bool = True
    slots: dict | None = field(default=None, repr=False)
    note: str = ""

    def value_of(self, state: Any, op: Op) -> Any:
        """The value of ``op``'s key within ``state``."""
        return state if self.slots is None else state[self.slots[key_id(op.key)]]

    def state_text(self) -> str:
        """``state`` for people: the value, or a ``{key: value}`` map for an unsplit multi-key check."""
        if self.slots is None:
            return show(self.state)
        return show({str(k): self.state[i] for k, i in self.slots.items()})

    def blocked(self) -> tuple[Prepared | None, list[Prepared]]:
        """After the prefix in ``order``: the op that must come next, and every op that could.

        Returns:
            ``(must, candidates)``: the unlinearized required op with the
            earliest return (None when there is none), and the unlinearized ops
            invoked before it returned, ``must`` included, in invocation order.
        """
        done = set(self.order)
        rest = [p for p in self.prepared if p.op.id not in done]
        required = [p for p in rest if p.required]
        if not required:
            return None, []
        must = min(required, key=lambda p: p.op.ret)
        return must, [p for p in rest if p.op.call < must.op.ret]

    def to_dict(self) -> dict:
        """A JSON-serializable summary (no op bodies)."""
        return {
            "key": _plain(self.key),
            "valid": self.valid,
            "ops": len(self.ops),
            "searched_ops": len(self.prepared),
            "linearized": len(self.order),
            "explored": self.explored,
            "elapsed": round(self.elapsed, 6),
            "checked": self.checked,
        }


class Verdict:
    """The result of :func:`emulator.check.linearizable`.

    ``valid`` is False if any partition is not linearizable, else None if any
    ran out of time (or never ran), else True; as in Jepsen, a definite
    violation outranks an unknown.
    """

    def __init__(
        self,
        model: Model,
        partitions: list[PartitionResult],
        ops: list[Op],
        nemesis: list[NemesisOp],
        split: bool,
        elapsed: float,
        timeout: float | None = None,
    ) -> None:
        self.model = model
        self.partitions = partitions
        self.ops = ops
        self.nemesis = nemesis
        self.split = split
        self.elapsed = elapsed
        self.timeout = timeout
        self.detected = False  # True when the model was detected from the history
        results = [p.valid for p in partitions]
        self.valid: bool | None = False if False in results else (None if None in results else True)

    @property
    def failures(self) -> list[PartitionResult]:
        """The partitions found not linearizable."""
        return [p for p in self.partitions if p.valid is False]

    def summary(self) -> str:
        """One line: the verdict, the model, ops, keys (each checked on its own) and time."""
        word = {True: "linearizable", False: "NOT linearizable", None: "unknown"}[self.valid]
        how = _keys(len(self.partitions)) if self.split else "unsplit"
        model = self.model.name + (", detected" if self.detected else "")
        return f"{word} (model {model}, {len(self.ops)} ops, {how}, {self.elapsed:.3f} s)"

    def explain(self, limit: int = 10, keys: int = 3) -> str:
        """A human explanation: why not linearizable, why unknown, or that all is well.

        Args:
            limit: how many ops of each list (the prefix, the candidates) to show.
            keys: how many failing keys to explain; the rest are named only.
        """
        lines = [self.summary()]
        if self.valid is None:
            lines += self._explain_unknown()
        failures = self.failures
        for part in failures[:keys]:
            lines += _explain_failure(self.model, part, limit)
        if len(failures) > keys:
            rest = ", ".join(show(p.key) for p in failures[keys:])
            lines.append(f"{len(failures) - keys} more keys are not linearizable: {rest}")
        undecided = sum(1 for p in self.partitions if p.valid is None)
        if failures and undecided:
            lines.append(f"{undecided} other key(s) left undecided: the search stops once a key is refuted")
        return "\n".join(lines)

    def _explain_unknown(self) -> list[str]:
        """Which partitions ran out of time and how far they got."""
        lines = [f"the time budget of {self.timeout} s ran out"]
        for part in self.partitions:
            if part.valid is None and part.checked:
                lines.append(
                    f"  {'the register' if part.key is None else 'key ' + show(part.key)}: stopped after {part.explored} configurations, "
                    f"{len(part.order)} of {len(part.prepared)} ops in the longest prefix"
                )
        skipped = sum(1 for p in self.partitions if not p.checked)
        if skipped:
            lines.append(f"  {_keys(skipped)} not checked")
        return lines

    def __str__(self) -> str:
        return self.explain()

    def __repr__(self) -> str:
        return f"<Verdict valid={self.valid} model={self.model.name} partitions={len(self.partitions)}>"

    def to_dict(self) -> dict:
        """A JSON-serializable form, explanation included."""
        return {
            "valid": self.valid,
            "model": self.model.name,
            "split": self.split,
            "ops": len(self.ops),
            "elapsed": round(self.elapsed, 6),
            "timeout": self.timeout,
            "partitions": [p.to_dict() for p in self.partitions],
            "explanation": self.explain(),
        }

    def html(self) -> str:
        """A self-contained HTML timeline of the history (see :mod:`emulator.check.timeline`)."""
        from emulator.check.timeline import render_html

        return render_html(self)

    def write_html(self, path: str | Path) -> Path:
        """Write :meth:`html` to ``path``; returns the path."""
        from emulator.check.timeline import write_html

        return write_html(self, path)


def _explain_failure(model: Model, part: PartitionResult, limit: int) -> list[str]:
    """The prefix, the op that cannot follow it and the alternatives, for one failing key."""
    by_id = {p.op.id: p for p in part.prepared}
    if part.slots is not None or part.key == "*":
        where = "the whole history"
    else:
        where = "the register" if part.key is None else f"key {show(part.key)}"
    lines = [f"{where}: {len(part.order)} of {len(part.prepared)} ops linearized before the search got stuck"]
    if part.note:
        lines.append(f"  ({part.note})")
    shown = part.order[-limit:] if limit else []
    lines.append(
        f"  longest linearizable prefix ({_count(len(shown), len(part.order))}), state after it: {part.state_text()}"
    )
    start = len(part.order) - len(shown)
    lines += [f"    {start + i + 1:>4}. {_op_line(model, by_id[op_id].op)}" for i, op_id in enumerate(shown)]
    must, candidates = part.blocked()
    if must is None:
        return lines
    lines.append("  the op that must come next and cannot:")
    lines.append(f"          {_op_line(model, must.op)}: {_why(model, part, must)}")
    others = [c for c in candidates if c is not must]
    if others:
        lines.append(f"  the other ops that could come next ({_count(min(limit, len(others)), len(others), 'first')}):")
        lines += [f"          {_op_line(model, c.op)}: {_why(model, part, c)}" for c in others[:limit]]
    return lines


def _why(model: Model, part: PartitionResult, prepared: Prepared) -> str:
    """Why ``prepared`` cannot be the next op after the prefix."""
    value = part.value_of(part.state, prepared.op)
    after = prepared.step(value)
    if after is ILLEGAL:
        return model.why_not(prepared.op, value)
    return f"legal here (value {show(value)} -> {show(after)}), but nothing can follow it to the end"


def _op_line(model: Model, op: Op) -> str:
    """``p3 get("k") -> "x" [12..20]``: process, op, and positions in the history."""
    ret = "" if op.ret is None else str(op.ret)
    return f"p{op.process} {model.describe(op)} [{op.call}..{ret}]"


def _count(shown: int, total: int, which: str = "last") -> str:
    return f"all {total}" if shown >= total else f"{which} {shown} of {total}"


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a key."""
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _keys(count: int) -> str:
    """'1 key' / 'N keys': the printed name of the key partitions (not network partitions)."""
    return f"{count} key" if count == 1 else f"{count} keys"
