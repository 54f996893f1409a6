"""Tests of emulator/check/synth.py: synthetic histories of the benchmark's shapes."""

from emulator.check import linearizable, parse_history
from emulator.check.ops import pair_ops
from emulator.check.synth import Shape, c50, corrupt, etcd_log, history, volatile


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


def test_etcd_logs_read_back_with_tabs_and_with_spaces():
    """etcd_log() writes Jepsen console logs that the reader takes, both separators."""
    tabs, spaces = etcd_log(ops=100, seed=0), etcd_log(ops=100, seed=1)
    assert "\t:invoke\t" in tabs and "\t" not in spaces
    for text in (tabs, spaces):
        ops = parse_history(text)
        assert ops.format == "jepsen-log" and linearizable(ops).valid is True
