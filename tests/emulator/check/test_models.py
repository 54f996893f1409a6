"""Tests of emulator/check/models.py: which ops enter the search, and their steps."""

import pytest

from emulator.check.errors import ModelError
from emulator.check.models import ILLEGAL, MODELS, detect_model, get_model, product_steps
from emulator.check.ops import pair_ops


def _prepared(model, ops):
    paired, _ = pair_ops(ops)
    return [get_model(model).prepare(op) for op in paired]


def test_read_step_accepts_only_the_value_read(history):
    """An ok read is required and legal only in the state it returned."""
    (read,) = _prepared("register", history().op(1, "read", out=3).ops)
    assert read.required and read.step(3) == 3 and read.step(4) is ILLEGAL


def test_failed_and_indeterminate_reads_are_dropped(history):
    """A read that failed or timed out constrains nothing and is left out."""
    ops = history().op(1, "read", kind="fail").op(1, "read", kind="info").invoke(1, "read").ops
    assert _prepared("register", ops) == [None, None, None]


def test_writes_ok_required_info_optional_fail_dropped(history):
    """An ok write must be linearized, an info one may be, a failed one is dropped."""
    ops = history().op(1, "write", 1).op(1, "write", 2, kind="info").op(1, "write", 3, kind="fail").ops
    ok, info, fail = _prepared("register", ops)
    assert ok.required and not info.required and fail is None
    assert ok.step(None) == 1 and info.step(7) == 2


def test_cas_ok_must_find_from(history):
    """An ok cas swaps when the value is from and is illegal otherwise."""
    (cas,) = _prepared("cas_register", history().op(1, "cas", [1, 2]).ops)
    assert cas.step(1) == 2 and cas.step(3) is ILLEGAL


def test_cas_fail_22_ran_and_found_another_value(history):
    """A cas failed with 22 (precondition-failed) is required, and illegal where it would have swapped."""
    ops = history().invoke(2, "cas", [1, 2]).fail(2, error=[22, "precondition failed"]).ops
    (cas,) = _prepared("cas_register", ops)
    assert cas.required and cas.step(5) == 5 and cas.step(1) is ILLEGAL


def test_cas_fail_with_no_code_did_not_happen(history):
    """A failed cas with no error code is dropped, as Jepsen, Knossos and Porcupine's kv read it."""
    ops = history().op(1, "cas", [1, 2], kind="fail").ops
    assert _prepared("cas_register", ops) == [None] and _prepared("knossos-cas-register", ops) == [None]


def test_cas_fail_20_found_no_value(history):
    """A cas failed with 20 (key-does-not-exist) is a required read of the initial value."""
    ops = history().invoke(2, "cas", [1, 2]).fail(2, error=[20, "no such key"]).ops
    (cas,) = _prepared("cas_register", ops)
    assert cas.required and cas.step(None) is None and cas.step(1) is ILLEGAL


def test_knossos_model_starts_at_0_and_a_nil_read_matches_anything(history):
    """knossos-cas-register: initial 0, ok read of nil dropped, error codes ignored."""
    ops = history().op(1, "read", out=None).op(1, "read", out=0).ops
    ops += history().invoke(2, "cas", [0, 2]).fail(2, error=[22, "precondition failed"]).ops
    nil_read, zero_read, cas = _prepared("knossos_cas_register", ops)
    assert nil_read is None and cas is None and zero_read.step(0) == 0
    assert get_model("knossos-cas-register").init == 0


def test_cas_fail_with_another_code_did_not_happen(history):
    """A cas failed with e.g. 11 (temporarily unavailable) is dropped."""
    ops = history().invoke(1, "cas", [1, 2]).fail(1, error=[11, "unavailable"]).ops
    assert _prepared("cas_register", ops) == [None]


def test_cas_info_may_or_may_not_swap(history):
    """An indeterminate cas is optional and swaps only when from matches."""
    (cas,) = _prepared("cas_register", history().op(1, "cas", [1, 2], kind="info").ops)
    assert not cas.required and cas.step(1) == 2 and cas.step(3) == 3


def test_kv_appends_and_aliases(history):
    """kv appends strings; read/write are aliases of get/put."""
    ops = history().op(1, "append", "x").op(1, "write", "y").op(1, "read", out="y").ops
    append, put, get = _prepared("kv", ops)
    assert append.step("a") == "ax" and put.step("a") == "y" and get.step("y") == "y"


def test_register_accepts_get_and_put(history):
    """register takes get/put as aliases of read/write."""
    put, get = _prepared("register", history().op(1, "put", 1).op(1, "get", out=1).ops)
    assert put.step(None) == 1 and get.step(1) == 1


def test_values_are_frozen_so_states_hash(history):
    """List values become tuples, so states stay hashable."""
    write, read = _prepared("register", history().op(1, "write", [1, [2]]).op(1, "read", out=[1, [2]]).ops)
    assert write.step(None) == (1, (2,)) and read.step((1, (2,))) == (1, (2,))


@pytest.mark.parametrize(
    "model, f, value, message",
    [
        ("register", "cas", [1, 2], "model 'register' has no operation 'cas'.*use model 'cas-register'"),
        ("kv", "cas", [1, 2], r"model 'kv' has no operation 'cas' \(it knows read or get, write or put, append\)"),
        ("cas_register", "append", 1, "has no operation 'append'.*use model 'kv' for append"),
        (
            "cas_register",
            "incr",
            1,
            r"has no operation 'incr' \(it knows read or get, write or put, cas\); no model has it",
        ),
        (
            "kv",
            "delete",
            1,
            r"has no operation 'delete' \(it knows read or get, write or put, append\); no model has it",
        ),
        ("cas_register", "cas", 5, r"a cas value must be \[from, to\], got 5"),
        ("kv", "append", 5, "model 'kv' stores strings, got 5; .*use model 'cas-register'"),
    ],
)
def test_ops_a_model_cannot_interpret_raise_model_error(history, model, f, value, message):
    """An op outside the model, or with a malformed value, raises ModelError saying what to do."""
    with pytest.raises(ModelError, match=message):
        _prepared(model, history().op(1, f, value).ops)


def test_model_names_accept_dashes_and_underscores_and_reject_unknown():
    """cas-register and cas_register name one model, in get_model and in MODELS; unknown names list the choices."""
    for name in ("cas-register", "cas_register", "knossos-cas-register", "knossos_cas_register"):
        assert get_model(name).name == name.replace("-", "_") and name in MODELS
    with pytest.raises(ModelError, match="unknown model 'queue'; choose one of cas-register, knossos-cas-register, kv"):
        get_model("queue")


def test_detect_model_from_the_operations(history):
    """get/put/append is kv; read/write/cas is cas_register, or Knossos's rules for a whole-file EDN vector."""
    kv, _ = pair_ops(history().op(1, "put", "x").op(1, "get", out="x").ops)
    reg, _ = pair_ops(history().op(1, "write", 1).op(1, "cas", [1, 2]).ops)
    assert detect_model(kv).name == "kv" and detect_model(reg).name == "cas_register"
    assert detect_model(reg, whole_file_edn=True).name == "knossos_cas_register"


def test_product_steps_act_on_one_slot(history):
    """Product steps change only their key's slot and leave reads allocation-free."""
    ops = history().op(1, "write", 5, key="b").op(1, "read", out=5, key="b").op(1, "cas", [5, 6], key="b").ops
    write, read, cas = product_steps(_prepared("cas_register", ops), [1, 1, 1])
    state = write((None, None))
    assert state == (None, 5) and read(state) is state and cas(state) == (None, 6)
    assert read((None, 4)) is ILLEGAL and cas((None, 4)) is ILLEGAL


def test_describe_and_why_not(history):
    """Ops render as one line; why_not says what the op saw against the state."""
    model = get_model("cas_register")
    read, cas = pair_ops(history().op(1, "read", out=3, key="k").op(2, "cas", [1, 2]).ops)[0]
    assert model.describe(read) == 'read("k") -> 3' and model.describe(cas) == "cas(1, 2) -> ok"
    assert model.why_not(read, 4) == "it returned 3 but after the prefix the value was 4"
    assert model.why_not(cas, 4) == "it swapped from 1 but after the prefix the value was 4"


@pytest.mark.parametrize("model", ["register", "kv"])
def test_a_cas_under_a_model_without_one_names_the_model_to_use(history, model):
    """docs/checker-outcomes.md: register and kv have no cas; a history with one is an error naming cas-register."""
    from emulator.check import ModelError, linearizable

    with pytest.raises(ModelError, match=f"model '{model}' has no operation 'cas'.*use model 'cas-register'"):
        linearizable(history().op(1, "cas", [1, 2]).ops, model=model)


@pytest.mark.parametrize(
    "written, read",
    [(1, True), (0, False), (True, 1), (1, 1.0), (1.0, 1), ([1], [True]), ({"a": 1}, {"a": 1.0})],
)
def test_values_are_equal_as_clojure_says_not_as_python_does(written, read):
    """Knossos compares with Clojure's =, where true is not 1 and 1.0 is not 1; Python's == says both are."""
    from emulator.check import linearizable

    history = [
        {"process": 0, "type": "invoke", "f": "write", "value": written},
        {"process": 0, "type": "ok", "f": "write", "value": written},
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": 1, "type": "ok", "f": "read", "value": read},
    ]
    assert linearizable(history).valid is False
    history[3]["value"] = written
    assert linearizable(history).valid is True
