"""Linearizability of a history against a model, split by key (P-compositionality).

A history of a key-value store is linearizable exactly when the sub-history
of every key is (Herlihy and Wing's locality, which Porcupine calls
P-compositionality), so by default each key is checked on its own: many
small searches instead of one whose state space is the product of all keys.
``partition=False`` checks the history whole against the product model, the
slow way, for comparison.

Real-time order is history order (see :mod:`emulator.check.ops`). Which ops
enter the search, and with what meaning, is in :mod:`emulator.check.models`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

from emulator.check.models import Model, Prepared, get_model, product_steps
from emulator.check.ops import NemesisOp, Op, by_key, key_id, pair_ops
from emulator.check.readers import read_history
from emulator.check.verdict import PartitionResult, Verdict
from emulator.check.wgl import search

__all__ = ["check_file", "linearizable", "prepare_partition", "search_partition"]

ALL_KEYS = "*"
"""The key reported for the single partition of an unsplit check."""


def linearizable(
    history: Sequence[dict] | Sequence[Op],
    model: str | Model = "kv",
    timeout: float | None = None,
    partition: bool = True,
) -> Verdict:
    """Check a history for linearizability.

    Args:
        history: capsim op dicts (as recorded or read by :func:`read_history`),
            or ops already paired by :func:`emulator.check.ops.pair_ops`.
        model: ``"kv"``, ``"register"``, ``"cas_register"`` (or ``"cas-register"``)
            or a :class:`Model`.
        timeout: wall-clock seconds to search before answering ``valid=None``;
            None searches until done.
        partition: check each key separately (True) or the whole history at once.

    Returns:
        A :class:`Verdict`: ``.valid`` is True, False, or None when the time
        ran out before any key was found non-linearizable.

    Raises:
        ModelError: an op the model has no meaning for, or an unknown model.
        HistoryFormatError: the history does not pair up into operations.
    """
    chosen = get_model(model)
    ops, nemesis = _paired(history)
    started = time.perf_counter()  # wall-clock ok: reports how long the check took
    deadline = None if timeout is None else time.monotonic() + timeout  # wall-clock ok
    groups = by_key(ops)
    parts = groups.items() if partition else [(ALL_KEYS, ops)]
    slots = {key: i for i, key in enumerate(groups)}
    results = []
    for key, group in parts:
        prepared = prepare_partition(chosen, group)
        if partition or len(groups) == 1:
            results.append(search_partition(chosen, key, group, prepared, deadline))
        else:
            results.append(_search_product(chosen, group, prepared, slots, deadline))
    elapsed = time.perf_counter() - started  # wall-clock ok
    return Verdict(chosen, results, ops, nemesis, partition, elapsed, timeout)


def check_file(
    path: str | Path, model: str | Model = "kv", partition: bool = True, timeout: float | None = None
) -> Verdict:
    """Read a history file (any supported format) and check it; the benchmark's entry point.

    ``verdict.elapsed`` is the checking time alone, without reading the file.
    """
    return linearizable(read_history(path), model=model, timeout=timeout, partition=partition)


def prepare_partition(model: Model, ops: Sequence[Op]) -> list[Prepared]:
    """Compile the ops of one partition, dropping those that cannot have had an effect."""
    prepared = (model.prepare(op) for op in ops)
    return [p for p in prepared if p is not None]


def search_partition(
    model: Model,
    key: Any,
    ops: Sequence[Op],
    prepared: Sequence[Prepared],
    deadline: float | None,
    init: Any = None,
    steps: Sequence[Any] | None = None,
) -> PartitionResult:
    """Run the search on one partition and package the result.

    Args:
        model: the model, for its initial state and for explanations.
        key: the partition's key (``"*"`` for an unsplit check).
        ops: every op of the partition, the dropped ones included (for display).
        prepared: the ops that enter the search.
        deadline: a reading of the monotonic wall clock after which to give up.
        init: the initial state when not the model's (the product's tuple).
        steps: the step functions when not the prepared ops' own (lifted ones).
    """
    if deadline is not None and time.monotonic() > deadline:  # wall-clock ok
        return PartitionResult(key, None, list(ops), list(prepared), [], init, 0, 0.0, checked=False)
    started = time.perf_counter()  # wall-clock ok
    calls = [p.op.call for p in prepared]
    rets = [p.op.ret if p.required else math.inf for p in prepared]
    result = search(
        calls,
        rets,
        steps if steps is not None else [p.step for p in prepared],
        [p.required for p in prepared],
        model.init if init is None else init,
        deadline,
        blind=[p.action == "write" for p in prepared],
        keys=[key_id(p.op.key) for p in prepared],
    )
    order = [prepared[i].op.id for i in result.order]
    elapsed = time.perf_counter() - started  # wall-clock ok
    return PartitionResult(
        key, result.valid, list(ops), list(prepared), order, result.state, result.explored, elapsed
    )


def _search_product(
    model: Model, ops: Sequence[Op], prepared: Sequence[Prepared], slots: dict, deadline: float | None
) -> PartitionResult:
    """Search the whole multi-key history against one model instance per key."""
    steps = product_steps(list(prepared), [slots[key_id(p.op.key)] for p in prepared])
    init = tuple(model.init for _ in slots)
    result = search_partition(model, ALL_KEYS, ops, prepared, deadline, init=init, steps=steps)
    result.slots = slots
    return result


def _paired(history: Sequence[dict] | Sequence[Op]) -> tuple[list[Op], list[NemesisOp]]:
    """Pair a list of op dicts; pass through a list of Ops."""
    if history and all(isinstance(op, Op) for op in history):
        return list(history), []
    return pair_ops(history)
