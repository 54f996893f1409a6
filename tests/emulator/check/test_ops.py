"""Tests of emulator/check/ops.py: pairing invokes with completions."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.check import linearizable, stale_reads
from emulator.check.errors import HistoryFormatError
from emulator.check.ops import by_key, pair_ops, pairs_shared
from tests.common.check_histories import simulated_history


def test_invokes_pair_with_the_next_completion_of_their_process(history):
    """Interleaved ops of two processes pair by process, ids follow invocation order."""
    h = history().invoke(1, "write", 1).invoke(2, "read").ok(2, 1).ok(1).ops
    ops, nemesis = pair_ops(h)
    assert [(op.id, op.process, op.call, op.ret) for op in ops] == [(0, 1, 0, 3), (1, 2, 1, 2)]
    assert ops[1].output == 1 and ops[0].status == "ok" and nemesis == []


def test_an_op_never_completed_is_open_and_indeterminate(history):
    """An invoke with no completion has status open, no return, and counts as indeterminate."""
    (op,), _ = pair_ops(history().invoke(1, "write", 1).ops)
    assert op.status == "open" and op.ret is None and op.ret_time is None and op.indeterminate


def test_returned_is_the_return_position_and_an_open_op_has_none(history):
    """Op.returned gives a completed op's ret; asked of an open op it raises instead of returning None."""
    ops, _ = pair_ops(history().invoke(1, "write", 1).invoke(2, "read").ok(2, 1).ops)
    assert ops[1].returned == ops[1].ret == 2
    with pytest.raises(ValueError, match="never completed"):
        _ = ops[0].returned


def test_info_is_indeterminate_and_fail_is_not(history):
    """info is indeterminate; ok and fail are definite."""
    ops, _ = pair_ops(history().op(1, "write", 1, kind="info").op(1, "write", 2, kind="fail").ops)
    assert [op.indeterminate for op in ops] == [True, False]


def test_nemesis_ops_are_set_apart(history):
    """Nemesis ops come back separately with position, time and value."""
    h = history().nemesis("partition", [["n1"], ["n2"]]).op(1, "read", out=None).nemesis("heal").ops
    ops, nemesis = pair_ops(h)
    assert len(ops) == 1
    assert [(n.position, n.f, n.value) for n in nemesis] == [(0, "partition", [["n1"], ["n2"]]), (3, "heal", None)]
    assert nemesis[1].time == pytest.approx(0.03)


def test_node_and_error_are_carried(history):
    """The node and the completion's error are kept on the op."""
    (op,), _ = pair_ops(history().invoke(1, "write", 1, node="n3").info(1, error=[0, "timeout"]).ops)
    assert op.node == "n3" and op.error == [0, "timeout"]


def test_a_completion_with_another_f_is_rejected(history):
    """A completion whose f differs from its invoke's is a format error."""
    h = history().invoke(1, "write", 1).ops + [{"process": 1, "type": "ok", "f": "read"}]
    with pytest.raises(HistoryFormatError, match="expected f 'write' as in its invoke"):
        pair_ops(h)


def test_errors_point_at_given_line_numbers():
    """With a line map, errors name the line the op came from."""
    with pytest.raises(HistoryFormatError, match=r"^f.edn:17: "):
        pair_ops([{"process": 0, "type": "ok", "f": "read"}], "f.edn", [17])


def test_a_non_dict_op_is_rejected():
    """Something other than a dict in the list is a format error."""
    with pytest.raises(HistoryFormatError, match="expected an op map"):
        pair_ops([["invoke"]])


def test_by_key_groups_in_order_of_first_appearance(history):
    """Keys come out in the order they first appear; list keys become tuples."""
    h = history().op(1, "read", key="b").op(1, "read", key=["x", 1]).op(1, "read", key="b").op(1, "read").ops
    groups = by_key(pair_ops(h)[0])
    assert list(groups) == ["b", ("x", 1), None]
    assert len(groups["b"]) == 2


def test_op_to_dict_is_plain(history):
    """Op.to_dict is a plain dict of its fields."""
    (op,), _ = pair_ops(history().op(1, "write", 2, key="k").ops)
    assert op.to_dict()["key"] == "k" and op.to_dict()["status"] == "ok"


def test_a_read_that_found_no_such_key_is_an_ok_read_of_nil():
    """A read failing with error 20 pairs as ok with output None, so checkers can judge it."""
    history = [
        {"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1},
        {"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1},
        {"process": 1, "type": "invoke", "f": "read", "key": "k", "value": None},
        {"process": 1, "type": "fail", "f": "read", "key": "k", "value": None, "error": [20, "no key"]},
        {"process": 2, "type": "invoke", "f": "read", "key": "k", "value": None},
        {"process": 2, "type": "fail", "f": "read", "key": "k", "value": None, "error": [11, "unavailable"]},
    ]
    ops, _ = pair_ops(history)
    assert [(op.status, op.output) for op in ops] == [("ok", 1), ("ok", None), ("fail", None)]
    from emulator.check import linearizable, stale_reads

    assert linearizable(history, model="cas_register").valid is False
    assert len(stale_reads(history).stale) == 1


@pytest.mark.parametrize(
    ("f", "error", "status"),
    [
        ("read", 20, "ok"),
        ("read", (20, "no key"), "ok"),
        ("get", [20], "ok"),
        ("read", "key-does-not-exist", "fail"),  # named, not coded: a plain failed read
        ("read", [22, "precondition failed"], "fail"),
        ("read", None, "fail"),
        ("write", [20, "no key"], "fail"),  # only reads observe absence
        ("cas", [20, "no key"], "fail"),
    ],
)
def test_only_a_read_that_failed_with_code_20_is_read_as_a_read_of_nil(f, error, status):
    """The module doc's rule, exactly: code 20, bare or first in a list, on a read; nothing else."""
    done = {"process": 0, "type": "fail", "f": f, "key": "k", "value": None}
    if error is not None:
        done["error"] = error
    (op,), _ = pair_ops([{"process": 0, "type": "invoke", "f": f, "key": "k", "value": None}, done])
    assert (op.status, op.output) == (status, None)


def test_a_no_such_key_read_is_the_initial_value_of_the_kv_model():
    """Under the kv model (keys start as ""), a get answered 'no such key' before any put is linearizable."""
    from emulator.check import linearizable

    history = [
        {"process": 0, "type": "invoke", "f": "get", "key": "k", "value": None},
        {"process": 0, "type": "fail", "f": "get", "key": "k", "value": None, "error": [20, "no key"]},
        {"process": 0, "type": "invoke", "f": "put", "key": "k", "value": "x"},
        {"process": 0, "type": "ok", "f": "put", "key": "k", "value": "x"},
    ]
    assert linearizable(history, model="kv").valid is True


def test_a_key_that_is_a_json_object_is_a_key_like_any_other(history):
    """Keys may be JSON objects (dicts): equal objects are one key, whatever their order, and others are not."""
    h = history().op(1, "write", 1, key={"t": "a", "n": 1}).op(2, "read", out=1, key={"n": 1, "t": "a"})
    h.op(3, "read", out=None, key={"t": "a", "n": 2}).op(3, "read", out=None, key=[["n", 1], ["t", "a"]])
    groups = by_key(pair_ops(h.ops)[0])
    assert [len(group) for group in groups.values()] == [2, 1, 1]
    from emulator.check import linearizable

    assert linearizable(h.ops, model="register").valid is True
    assert linearizable(h.ops, model="register", partition=False).valid is True


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(0, 40), processes=st.integers(1, 4))
def test_inside_pairs_shared_every_checker_gets_what_pairing_alone_gives(seed, n_ops, processes):
    """pairs_shared changes no result: each checker, on a copy of the list as run_check passes it, sees the same."""
    history = simulated_history(random.Random(seed), "cas_register", n_ops, processes)
    history.insert(len(history) // 2, {"process": "nemesis", "type": "info", "f": "start-partition", "value": [1]})
    alone = pair_ops(history)
    with pairs_shared():
        first = pair_ops(list(history))
        first[0].clear()  # the caller's list to change: the next caller still gets every op
        again = pair_ops(list(history))
        verdicts = (linearizable(list(history), model="cas_register").valid, stale_reads(list(history)).stale)
    assert again == alone
    assert verdicts == (linearizable(history, model="cas_register").valid, stale_reads(history).stale)


def test_inside_pairs_shared_a_list_with_another_op_is_another_history():
    """An op added (or replaced by another dict) pairs afresh; only the same dicts in the same order share."""
    history = [
        {"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1},
        {"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1},
    ]
    with pairs_shared():
        (write,), _ = pair_ops(history)
        longer = [*history, {"process": 1, "type": "invoke", "f": "read", "key": "k", "value": None}]
        assert [op.f for op in pair_ops(longer)[0]] == ["write", "read"]
        replaced = [history[0], {**history[1], "type": "info"}]
        assert pair_ops(replaced)[0][0].status == "info" and write.status == "ok"
        assert pair_ops(history)[0] == [write]


def test_outside_pairs_shared_nothing_is_kept():
    """Without the block, an op dict changed in place between two calls is seen (nothing is cached)."""
    history = [
        {"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1},
        {"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1},
    ]
    assert pair_ops(history)[0][0].status == "ok"
    history[1]["type"] = "fail"
    assert pair_ops(history)[0][0].status == "fail"
    with pairs_shared():
        pass
    history[1]["type"] = "info"
    assert pair_ops(history)[0][0].status == "info"


def test_inside_pairs_shared_only_the_last_history_is_kept():
    """Pairing another history drops the first one's pairing: a change made to it since shows (one held at a time)."""
    first = [
        {"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1},
        {"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1},
    ]
    second = [{**op, "key": "j"} for op in first]
    with pairs_shared():
        assert pair_ops(first)[0][0].status == "ok"
        first[1]["type"] = "info"
        assert pair_ops(first)[0][0].status == "ok"  # kept: the same dicts, changed in place, are not looked at
        pair_ops(second)
        assert pair_ops(first)[0][0].status == "info"  # paired again


def test_a_pairs_shared_block_is_its_own_threads():
    """Another thread, outside any block, keeps nothing while this one has a block open."""
    import threading

    history = [
        {"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1},
        {"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1},
    ]
    seen = []

    def elsewhere():
        seen.append(pair_ops(history)[0][0].status)
        history[1]["type"] = "info"
        seen.append(pair_ops(history)[0][0].status)

    with pairs_shared():
        pair_ops(history)
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    assert seen == ["ok", "info"]


def test_an_ops_dict_is_json_with_keywords_and_clojure_keys():
    """An op read from EDN with a keyword value and a key of 1.0 serializes (it was a TypeError): :x as ":x"."""
    import json

    from emulator.check.readers import parse_history

    text = "".join(f"{{:process 0, :type :{t}, :f :write, :value [1.0 [:x]]}}\n" for t in ("invoke", "ok"))
    (op,), _ = pair_ops(parse_history(text))
    assert json.loads(json.dumps(op.to_dict()))["key"] == 1.0 and op.to_dict()["value"] == [":x"]
