"""Tests of emulator/check/synth.py: synthetic histories of the benchmark's shapes."""

import pytest

from emulator.check import linearizable, parse_history
from emulator.check.linearizable import prepare_partition
from emulator.check.models import get_model
from emulator.check.ops import by_key, pair_ops
from emulator.check.synth import Shape, c50, corrupt, etcd_log, history, volatile
from emulator.check.triage import stale_read, unwritten_read


def _looks(ops, model, key=None):
    """What a look at one key's reads finds: (a stale read?, an unwritten read?)."""
    chosen = get_model(model)
    prepared = prepare_partition(chosen, by_key(pair_ops(ops)[0])[key])
    stale = stale_read(prepared, chosen.strings) is not None
    return stale, unwritten_read(prepared, chosen.init, chosen.strings) is not None


def _in_flight(ops):
    """The most ops in flight at once."""
    depth = most = 0
    for op in ops:
        depth += 1 if op["type"] == "invoke" else -1
        most = max(most, depth)
    return most


def test_a_shape_gives_a_linearizable_history_of_that_shape():
    """ops, in flight, keys and timeouts are as asked, and the history is linearizable by construction."""
    ops = history(Shape(ops=600, in_flight=5, keys=3, timeouts=0.05, seed=4))
    paired, _ = pair_ops(ops)
    assert len(paired) == 600 and _in_flight(ops) == 5
    assert {op.key for op in paired} == {"0", "1", "2"} and any(op.status == "info" for op in paired)
    assert any(op.status == "fail" and op.error[0] == 22 for op in paired)
    assert linearizable(ops, model="cas_register").valid is True


def test_the_same_seed_gives_the_same_history():
    """Histories are deterministic in their seed."""
    assert history(Shape(ops=200, seed=9)) == history(Shape(ops=200, seed=9)) != history(Shape(ops=200, seed=8))


def test_corrupt_makes_a_read_impossible():
    """corrupt() turns a linearizable history into one that is not."""
    ops = volatile(300, seed=2)
    assert linearizable(ops, model="register").valid is True
    assert linearizable(corrupt(ops, where=0.2), model="register").valid is False


def test_c50_bad_has_an_undecidable_key_and_a_refutable_one():
    """c50-bad: key "3" is refuted at once, the check stops, key "0" is left undecided (a put may excuse its read)."""
    verdict = linearizable(c50(bad=True, ops=500), model="kv", timeout=30)
    by_key = {p.key: p.valid for p in verdict.partitions}
    assert verdict.valid is False and by_key["3"] is False and by_key["0"] is None
    assert linearizable(c50(bad=False, ops=500), model="kv").valid is True


def test_c50_bad_s_hard_key_holds_no_read_a_look_refutes():
    """Key "0"'s bad read ends with an append invoked before it, and a put may come between: neither stale nor
    unwritten, so only the search could refute it (key "3"'s read of a value never written is unwritten)."""
    ops = c50(bad=True, ops=500)
    assert _looks(ops, "kv", key="0") == (False, False)
    assert _looks(ops, "kv", key="3") == (False, True)


@pytest.mark.parametrize("in_flight", [3, 10])
def test_an_overwritten_value_is_refuted_by_the_search_alone(in_flight):
    """kind="overwritten": the read's value was written, before the last write acknowledged before the read: no
    order exists, a look at the reads finds no proof, and the search refutes it."""
    ops = history(Shape(ops=1000, in_flight=in_flight, seed=1))
    bad = corrupt(ops, where=0.9, kind="overwritten")
    (changed,) = [i for i, (a, b) in enumerate(zip(ops, bad)) if a != b]
    acked = [op for op in ops[:changed] if op["type"] == "ok" and op["f"] in ("write", "cas")]
    written = [op["value"] if op["f"] == "write" else op["value"][1] for op in acked]
    assert bad[changed]["f"] == "read" and bad[changed]["value"] in written[:-1]
    assert bad[changed]["value"] not in (ops[changed]["value"], written[-1])
    assert _looks(bad, "cas_register") == (False, False)
    verdict = linearizable(bad, model="cas_register")
    assert verdict.valid is False and verdict.partitions[0].refuted_by == "search"


def test_an_overwritten_value_needs_a_register_and_a_read_that_can_have_one():
    """Appends, an unknown kind, or no read whose value can be overwritten (every value may be left by a timed-out
    write, late): a ValueError that says what to do."""
    with pytest.raises(ValueError, match="is for registers"):
        corrupt(history(Shape(ops=200, model="kv", seed=1)), where=0.5, kind="overwritten")
    with pytest.raises(ValueError, match="unknown corruption kind 'stale'; use 'unwritten' or 'overwritten'"):
        corrupt(history(Shape(ops=200, seed=1)), kind="stale")
    timeouts = history(Shape(ops=2000, in_flight=10, timeouts=0.05, seed=1))
    with pytest.raises(ValueError, match=r"no ok read of key None from 0\.9 on can return an overwritten value"):
        corrupt(timeouts, where=0.9, kind="overwritten")


def test_etcd_logs_read_back_with_tabs_and_with_spaces():
    """etcd_log() writes Jepsen console logs that the reader takes, both separators."""
    tabs, spaces = etcd_log(ops=100, seed=0), etcd_log(ops=100, seed=1)
    assert "\t:invoke\t" in tabs and "\t" not in spaces
    for text in (tabs, spaces):
        ops = parse_history(text)
        assert ops.format == "jepsen-log" and linearizable(ops).valid is True
