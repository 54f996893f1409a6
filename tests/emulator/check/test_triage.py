"""Tests of emulator/check/triage.py: stale reads found without a search, and only where no order exists."""

import random

import pytest

from emulator.check.linearizable import prepare_partition
from emulator.check.models import get_model
from emulator.check.ops import by_key, pair_ops
from emulator.check.triage import stale_read

MODELS = ["register", "cas_register", "kv", "knossos_cas_register", "porcupine_etcd"]


def _witnesses(history: list[dict], model: str) -> list:
    """The stale read found in each key of ``history`` (None where there is none)."""
    chosen = get_model(model)
    ops, _ = pair_ops(history)
    return [stale_read(prepare_partition(chosen, group), chosen.strings) for group in by_key(ops).values()]


def _found(history: list[dict], model: str = "register") -> tuple | None:
    (witness,) = _witnesses(history, model)
    return None if witness is None else (witness[0].op.process, witness[1].op.process)


def test_a_read_after_an_acknowledged_write_that_misses_it_is_stale(history):
    """write 1 (p0) completes, then p1 reads 0 with nothing in between: the read is stale."""
    h = history().op(0, "write", 0).op(0, "write", 1).op(1, "read", out=0).ops
    assert _found(h) == (0, 1)


def test_a_write_that_may_come_between_excuses_the_read(history):
    """A write of 0 overlapping the read (or pending as info) may be ordered between: no proof."""
    h = history().op(0, "write", 1).invoke(2, "write", 0).op(1, "read", out=0).ok(2).ops
    assert _found(h) is None
    h = history().op(0, "write", 1).invoke(2, "write", 0).info(2).op(1, "read", out=0).ops
    assert _found(h) is None


def test_a_failed_write_cannot_come_between(history):
    """A write that failed did not happen, so it excuses nothing."""
    h = history().op(0, "write", 1).invoke(2, "write", 0).fail(2).op(1, "read", out=0).ops
    assert _found(h) == (0, 1)


def test_a_cas_that_swapped_leaves_its_new_value(history):
    """cas(0, 1) acknowledged, then a read of 0: stale; a read of 1 is not."""
    h = history().op(0, "cas", [0, 1]).op(1, "read", out=0).ops
    assert _found(h, "cas_register") == (0, 1)
    assert _found(history().op(0, "cas", [0, 1]).op(1, "read", out=1).ops, "cas_register") is None


def test_an_append_must_be_seen_unless_a_put_may_come_between(history):
    """kv: a read missing an acknowledged append is stale; appends between only add; a put between excuses it."""
    base = history().op(0, "append", "a", key="k").op(2, "append", "b", key="k")
    assert _found(base.op(1, "read", out="b", key="k").ops, "kv") == (0, 1)
    assert _found(history().op(0, "append", "a", key="k").op(1, "read", out="ab", key="k").ops, "kv") is None
    h = history().op(0, "append", "a", key="k").invoke(2, "put", "b", key="k").op(1, "read", out="b", key="k").ok(2)
    assert _found(h.ops, "kv") is None


def test_a_put_must_begin_what_is_read_after_it(history):
    """kv: after put("x") only appends may follow, so a read must start with "x"."""
    h = history().op(0, "put", "x", key="k").op(2, "append", "y", key="k")
    assert _found(h.op(1, "read", out="xy", key="k").ops, "kv") is None
    assert _found(history().op(0, "put", "x", key="k").op(1, "read", out="yx", key="k").ops, "kv") == (0, 1)


@pytest.mark.parametrize("model", MODELS)
def test_a_stale_read_is_only_found_where_brute_force_finds_no_order(brute, small_histories, model):
    """Seeded random small histories: every stale read found is in a history with no linearization.

    And some are found.
    """
    rng = random.Random(f"stale-{model}")
    found = 0
    for _ in range(1500):
        h = small_histories(rng.choice, model, max_ops=7)
        if any(w is not None for w in _witnesses(h, model)):
            found += 1
            assert brute(h, model) is False, h
    assert found >= 20
