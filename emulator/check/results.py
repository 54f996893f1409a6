"""The data of a linearizability verdict: one :class:`PartitionResult` per key, and the whole.

Pure data and the questions it answers (which partitions failed, what blocked
the search); :mod:`emulator.check.explain` renders it as text and
:mod:`emulator.check.timeline` as an HTML page. :class:`emulator.check.Verdict`
adds both as methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.check.models import Model, Prepared
from emulator.check.ops import NemesisOp, Op, key_id
from emulator.check.values import show

__all__ = ["PartitionResult", "VerdictData"]


@dataclass
class PartitionResult:
    """The search's answer for one key (or for the whole history when unsplit).

    ``order`` lists op ids: the linearization found when ``valid`` is True,
    else the longest linearizable prefix found. ``state`` is the model state
    after ``order``. ``checked`` is False when the time ran out before this
    partition's turn. ``slots`` maps keys to positions in the state tuple of
    an unsplit multi-key check. ``note`` says how a verdict was reached when
    it is not by the search itself, and ``witnesses`` gives the ops it names
    (by id) with the part each plays in it. ``refuted_by`` says what found a
    partition not linearizable: ``"search"``, ``"relaxed search"``,
    ``"stale read"`` or ``"unwritten read"`` (the last two a look at the
    reads, :mod:`emulator.check.triage`); None when it was not refuted.
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
    slots: dict[str, Any] | None = field(default=None, repr=False)
    note: str = ""
    witnesses: dict[int, str] = field(default_factory=dict, repr=False)
    refuted_by: str | None = None

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
        must = min(required, key=lambda p: p.op.returned)  # a required op is an ok one: it returned
        return must, [p for p in rest if p.op.call < must.op.returned]

    def to_dict(self) -> dict[str, Any]:
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
            "refuted_by": self.refuted_by,
        }


class VerdictData:
    """What :func:`emulator.check.linearizable` found, as data (see :class:`emulator.check.Verdict`).

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
        steps: int | None = None,
    ) -> None:
        self.model = model
        self.partitions = partitions
        self.ops = ops
        self.nemesis = nemesis
        self.split = split
        self.elapsed = elapsed
        self.timeout = timeout
        self.steps = steps
        self.detected = False  # True when the model was detected from the history
        results = [p.valid for p in partitions]
        self.valid: bool | None = False if False in results else (None if None in results else True)

    @property
    def failures(self) -> list[PartitionResult]:
        """The partitions found not linearizable."""
        return [p for p in self.partitions if p.valid is False]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable form (without the explanation)."""
        return {
            "valid": self.valid,
            "model": self.model.name,
            "split": self.split,
            "ops": len(self.ops),
            "elapsed": round(self.elapsed, 6),
            "timeout": self.timeout,
            "steps": self.steps,
            "partitions": [p.to_dict() for p in self.partitions],
        }


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a key."""
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
