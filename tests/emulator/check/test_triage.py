"""Tests of emulator/check/triage.py: stale and unwritten reads found without a search, only where no order exists."""

import importlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.check.linearizable import linearizable, prepare_partition
from emulator.check.models import get_model
from emulator.check.ops import by_key, pair_ops
from emulator.check.triage import stale_read, unwritten_read

linearizable_module = importlib.import_module("emulator.check.linearizable")  # the package's name is the function
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


def _unwritten(history: list[dict], model: str) -> list:
    """The unwritten read found in each key of ``history`` (None where there is none)."""
    chosen = get_model(model)
    ops, _ = pair_ops(history)
    groups = by_key(ops).values()
    return [unwritten_read(prepare_partition(chosen, group), chosen.init, chosen.strings) for group in groups]


def _unwritten_by(history: list[dict], model: str = "register") -> tuple | None:
    """(the read's process, the process of the first op that could leave its value, if any), or None."""
    (witness,) = _unwritten(history, model)
    if witness is None:
        return None
    return witness.read.op.process, None if witness.later is None else witness.later.op.process


REGISTERS = ["register", "cas_register", "knossos_cas_register", "porcupine_etcd"]


@pytest.mark.parametrize("model", REGISTERS)
def test_a_value_written_only_after_the_read_returned_is_unwritten(history, model):
    """p1 reads 7, and the only write of 7 is invoked after the read returned: refuted, naming that write."""
    h = history().op(0, "write", 1).op(1, "read", out=7).op(2, "write", 7).ops
    assert _unwritten_by(h, model) == (1, 2)


def test_a_value_written_only_after_the_read_returned_is_unwritten_in_kv(history):
    """kv: p1 gets "b", and the only put of "b" is invoked after it returned."""
    h = history().op(0, "put", "a", key="k").op(1, "get", out="b", key="k").op(2, "put", "b", key="k").ops
    assert _unwritten_by(h, "kv") == (1, 2)


@pytest.mark.parametrize("model", REGISTERS)
def test_a_write_invoked_while_the_read_ran_may_have_left_its_value(history, model):
    """A write of 7 invoked before the read returned (completing after it) may come first: no proof."""
    h = history().invoke(1, "read").invoke(2, "write", 7).ok(1, 7).ok(2).ops
    assert _unwritten_by(h, model) is None


@pytest.mark.parametrize("model", REGISTERS)
@pytest.mark.parametrize("pending", ["info", "open"])
def test_an_indeterminate_write_invoked_before_the_read_returned_excuses_it(history, model, pending):
    """A write of 7 that timed out (info), or never completed, before the read may have taken effect: no proof."""
    h = history().invoke(2, "write", 7)
    if pending == "info":
        h.info(2)
    assert _unwritten_by(h.op(1, "read", out=7).ops, model) is None


@pytest.mark.parametrize("model", REGISTERS)
@pytest.mark.parametrize("error", [None, [11, "unavailable"], [22, "precondition failed"]])
def test_a_value_written_only_by_a_failed_op_is_unwritten(history, model, error):
    """A write of 7 that failed did not happen (whatever its code), so a read of 7 has no writer."""
    extra = {} if error is None else {"error": error}
    h = history().invoke(2, "write", 7).fail(2, **extra).op(1, "read", out=7).ops
    assert _unwritten_by(h, model) == (1, None)


@pytest.mark.parametrize("model", ["cas_register", "knossos_cas_register", "porcupine_etcd"])
def test_a_cas_to_the_value_may_leave_it(history, model):
    """A cas to 7, acknowledged or indeterminate, invoked before the read returned: no proof."""
    assert _unwritten_by(history().op(2, "cas", [1, 7]).op(1, "read", out=7).ops, model) is None
    assert _unwritten_by(history().op(2, "cas", [1, 7], kind="info").op(1, "read", out=7).ops, model) is None


@pytest.mark.parametrize("model", ["cas_register", "knossos_cas_register", "porcupine_etcd"])
def test_a_cas_that_failed_leaves_nothing(history, model):
    """A cas to 7 that failed its precondition (code 22; in Porcupine's rules, no code) ran and swapped nothing."""
    code = {} if model == "porcupine_etcd" else {"error": [22, "precondition failed"]}
    h = history().invoke(2, "cas", [1, 7]).fail(2, **code).op(1, "read", out=7).ops
    assert _unwritten_by(h, model) == (1, None)


@pytest.mark.parametrize("model", ["cas_register", "knossos_cas_register", "porcupine_etcd"])
def test_a_cas_from_the_value_does_not_leave_it(history, model):
    """A cas from 7 to 1 is no writer of 7."""
    assert _unwritten_by(history().op(2, "cas", [7, 1], kind="info").op(1, "read", out=7).ops, model) == (1, None)


@pytest.mark.parametrize(("model", "init"), [("register", None), ("cas_register", None), ("knossos_cas_register", 0)])
def test_a_read_of_the_initial_value_is_never_unwritten(history, model, init):
    """Nothing wrote the initial value, and a read of it needs no writer (nil: 0 is Knossos's first value)."""
    assert _unwritten_by(history().op(0, "write", 1).op(1, "read", out=init).ops, model) is None


def test_a_read_answered_no_such_key_is_a_read_of_the_initial_value(history):
    """kv: a get that failed with error 20 saw "", the initial value; an ok get of nil, no string, has no writer."""
    h = history().op(0, "put", "a", key="k").invoke(1, "get", key="k").fail(1, error=[20, "no such key"]).ops
    assert _unwritten_by(h, "kv") is None
    assert _unwritten_by(history().op(0, "put", "a", key="k").op(1, "get", out=None, key="k").ops, "kv") == (1, None)


def test_values_compare_as_the_models_compare_them(history):
    """After a write of 1, a read of 1.0 or of true has no writer (Clojure's =); a read of 1 has one."""
    for seen in (1.0, True):
        assert _unwritten_by(history().op(0, "write", 1).op(1, "read", out=seen).ops) == (1, None)
    assert _unwritten_by(history().op(0, "write", [1, {"a": 2}]).op(1, "read", out=[1, {"a": 2}]).ops) is None


def test_a_write_of_another_key_does_not_count(history):
    """Keys are checked apart: a write of 7 to key b writes nothing to key a."""
    h = history().op(0, "write", 7, key="b").op(1, "read", out=7, key="a").ops
    written, read = _unwritten(h, "register")
    assert written is None and (read.read.op.process, read.later) == (1, None)


def test_the_first_unwritten_read_is_named_with_the_first_op_that_could_leave_its_value(history):
    """Two unwritten reads: the first (by call) is named, and the earliest of the later writes of its value."""
    h = history().op(1, "read", out=7).op(3, "read", out=8).op(4, "write", 8).op(2, "write", 7).op(5, "write", 7)
    assert _unwritten_by(h.ops) == (1, 2)


def test_kv_a_read_must_end_with_an_append_or_be_a_put(history):
    """kv: the last op to change a string put it whole or appended to its end, so a read ending in no append
    invoked before it returned, and equal to no put, has no writer."""
    base = history().op(0, "append", "ab", key="k").op(2, "put", "x", key="k")
    assert _unwritten_by(base.op(1, "get", out="zab", key="k").ops, "kv") is None  # ends with "ab"
    base = history().op(0, "append", "ab", key="k").op(2, "put", "x", key="k")
    assert _unwritten_by(base.op(1, "get", out="x", key="k").ops, "kv") is None  # the put's value
    base = history().op(0, "append", "ab", key="k").op(2, "put", "x", key="k")
    assert _unwritten_by(base.op(1, "get", out="abx", key="k").ops, "kv") == (1, None)
    late = history().op(0, "append", "ab", key="k").op(1, "get", out="b", key="k").op(2, "append", "b", key="k")
    assert _unwritten_by(late.ops, "kv") == (1, 2)


def test_kv_an_append_of_nothing_may_leave_any_string(history):
    """An append of "" leaves the string as it was, which may end in anything: no proof for any read after it."""
    h = history().op(0, "append", "", key="k").op(1, "get", out="anything", key="k").ops
    assert _unwritten_by(h, "kv") is None


def test_kv_the_first_append_a_read_ends_with_is_named(history):
    """Of the appends a read ends with ("c", "bc", "abc"), all invoked after it returned, the first invoked is named."""
    h = history().op(1, "get", out="abc", key="k").op(2, "append", "bc", key="k").op(3, "append", "c", key="k")
    assert _unwritten_by(h.op(4, "append", "abc", key="k").ops, "kv") == (1, 2)


@pytest.mark.parametrize("model", MODELS)
def test_an_unwritten_read_is_only_found_where_brute_force_finds_no_order(brute, small_histories, model):
    """Seeded random small histories, reads of values none wrote among them: every unwritten read found is in a
    history with no linearization, and some are found."""
    rng = random.Random(f"unwritten-{model}")
    found = 0
    for _ in range(1500):
        h = small_histories(rng.choice, model, max_ops=7)
        if any(w is not None for w in _unwritten(h, model)):
            found += 1
            assert brute(h, model) is False, h
    assert found >= 50


_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("model", ["register", "cas_register"])
@_SETTINGS
@given(data=st.data())
def test_the_look_at_the_reads_is_sound_and_flips_no_verdict(small_histories, model, data):
    """Small random histories (1 to 3 processes, 1 or 2 keys): where a read is unwritten the search alone finds no
    order either; and with the look taken before the search can end (turns of one step), each verdict is the one
    the search alone gives."""
    h = small_histories(lambda xs: data.draw(st.sampled_from(xs)), model, max_ops=8)
    searched = linearizable(h, model=model, triage=False)
    if any(w is not None for w in _unwritten(h, model)):
        assert searched.valid is False
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linearizable_module, "_TURN", 1)
        triaged = linearizable(h, model=model)
    assert triaged.valid is searched.valid
    assert {p.refuted_by for p in triaged.partitions} <= {None, "search", "stale read", "unwritten read"}
