"""A linearizability verdict in words: the one-line summary and the explanation.

When a key is not linearizable its explanation is the longest linearizable
prefix the search found (the most ops that must take effect, then the most
ops; when the search itself refuted the key, no prefix holds more of them),
the op that had to come next and cannot (it returned
before anything else could happen, and its recorded result is impossible after
the prefix), and the other ops that could have come next instead, each with
why it does not help.
"""

from __future__ import annotations

from emulator.check.models import ILLEGAL, Model, Prepared
from emulator.check.ops import Op
from emulator.check.results import PartitionResult, VerdictData
from emulator.check.values import show

__all__ = ["explanation", "summary_line"]


def summary_line(verdict: VerdictData) -> str:
    """One line: the verdict, the model, ops, keys (each checked on its own) and time."""
    word = {True: "linearizable", False: "NOT linearizable", None: "unknown"}[verdict.valid]
    how = _keys(len(verdict.partitions)) if verdict.split else "unsplit"
    model = verdict.model.name + (", detected" if verdict.detected else "")
    return f"{word} (model {model}, {len(verdict.ops)} ops, {how}, {verdict.elapsed:.3f} s)"


def explanation(verdict: VerdictData, limit: int = 10, keys: int = 3) -> str:
    """A human explanation: why not linearizable, why unknown, or that all is well.

    Args:
        verdict: the checker's verdict.
        limit: how many ops of each list (the prefix, the candidates) to show.
        keys: how many failing keys to explain; the rest are named only.
    """
    lines = [summary_line(verdict)]
    if verdict.valid is None:
        lines += _explain_unknown(verdict)
    failures = verdict.failures
    for part in failures[:keys]:
        lines += _explain_failure(verdict.model, part, limit)
    if len(failures) > keys:
        rest = ", ".join(_key(p) for p in failures[keys:])
        lines.append(f"{len(failures) - keys} more keys are not linearizable: {rest}")
    undecided = sum(1 for p in verdict.partitions if p.valid is None)
    if failures and undecided:
        lines.append(f"{undecided} other key(s) left undecided: the search stops once a key is refuted")
    return "\n".join(lines)


def _explain_unknown(verdict: VerdictData) -> list[str]:
    """Which partitions ran out of time (or of steps) and how far they got."""
    time, steps = verdict.timeout is not None, verdict.steps is not None
    budget = " or ".join(([f"{verdict.timeout} s"] if time else []) + ([f"{verdict.steps:,} steps"] if steps else []))
    kind = "time budget" if time and not steps else "step budget" if steps and not time else "budget"
    lines = [f"the {kind} of {budget} ran out" if budget else "the search did not finish"]
    for part in verdict.partitions:
        if part.valid is None and part.checked:
            where = "the register" if part.key is None else "key " + _key(part)
            lines.append(
                f"  {where}: stopped after {part.explored} configurations, "
                f"{len(part.order)} of {len(part.prepared)} ops in the longest prefix"
            )
    skipped = sum(1 for p in verdict.partitions if not p.checked)
    if skipped:
        lines.append(f"  {_keys(skipped)} not checked")
    return lines


def _explain_failure(model: Model, part: PartitionResult, limit: int) -> list[str]:
    """The prefix, the op that cannot follow it and the alternatives, for one failing key."""
    by_id = {p.op.id: p for p in part.prepared}
    if part.slots is not None or part.key == "*":
        where = "the whole history"
    else:
        where = "the register" if part.key is None else f"key {_key(part)}"
    lines = [f"{where}: {len(part.order)} of {len(part.prepared)} ops linearized before the search got stuck"]
    if part.note:
        lines.append(f"  ({part.note})")
    shown = part.order[-limit:] if limit else []
    lines.append(
        f"  longest linearizable prefix the search found ({_count(len(shown), len(part.order))}), "
        f"state after it: {part.state_text()}"
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


def _key(part: PartitionResult) -> str:
    """The partition's key as the history wrote it (the grouping form of an object key is a frozenset)."""
    return show(part.ops[0].key if part.ops else part.key)


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


def _keys(count: int) -> str:
    """'1 key' / 'N keys': the printed name of the key partitions (not network partitions)."""
    return f"{count} key" if count == 1 else f"{count} keys"
