"""Tests of emulator/check/anomalies.py: stale reads and lost acknowledged writes."""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.check.anomalies import lost_writes, stale_reads
from emulator.check.linearizable import linearizable


def test_a_read_missing_an_acknowledged_write_is_stale(history):
    """write 1 ok, write 2 ok, then a read of 1: stale, with the newer write and the lag."""
    h = history().op(1, "write", 1).op(1, "write", 2).op(2, "read", out=1).ops
    result = stale_reads(h)
    assert result.reads == 1 and len(result.stale) == 1 and result.fraction == 1.0
    (stale,) = result.stale
    assert stale.read.output == 1 and stale.newer.value == 2
    assert abs(stale.lag - 0.01) < 1e-9  # acked at t=0.03, read invoked at t=0.04


def test_a_read_of_the_latest_value_is_not_stale(history):
    """Reading what the last acknowledged write wrote is fine."""
    h = history().op(1, "write", 1).op(1, "write", 2).op(2, "read", out=2).ops
    assert stale_reads(h).stale == []


def test_a_read_of_the_initial_value_after_a_write_is_stale(history):
    """Reading the initial value after an acknowledged write is stale."""
    h = history().op(1, "write", 1).op(2, "read", out=None).ops
    assert len(stale_reads(h).stale) == 1
    kv = history().op(1, "put", "a").op(2, "get", out="").ops
    assert len(stale_reads(kv, initial="").stale) == 1


def test_concurrent_writes_may_leave_either_value(history):
    """Two overlapping writes may be ordered either way: reading the first-acked one is not stale."""
    h = history().invoke(1, "write", 1).invoke(2, "write", 2).ok(2).ok(1).op(3, "read", out=2).ops
    assert stale_reads(h).stale == []


def test_a_write_concurrent_with_the_read_may_explain_it(history):
    """A rewrite of the old value overlapping the read excuses it."""
    h = history().op(1, "write", 1).op(1, "write", 2).invoke(3, "write", 1).op(2, "read", out=1).ok(3).ops
    assert stale_reads(h).stale == []


def test_an_indeterminate_write_may_explain_a_read(history):
    """An info write of the value read might have landed late: not stale."""
    h = history().op(1, "write", 1).op(1, "write", 2, kind="info").op(2, "write", 3).op(2, "read", out=2).ops
    assert stale_reads(h).stale == []


def test_a_failed_write_never_explains_a_read(history):
    """A definitely failed write of the value read does not excuse the read; the value is unwritten."""
    h = history().op(1, "write", 1).op(1, "write", 2, kind="fail").op(2, "read", out=2).ops
    result = stale_reads(h)
    assert result.stale == [] and [op.output for op in result.unwritten] == [2]


def test_cas_writes_its_to_value(history):
    """An ok cas counts as a write of its to value."""
    h = history().op(1, "write", 1).op(1, "cas", [1, 5]).op(2, "read", out=1).op(2, "read", out=5).ops
    result = stale_reads(h)
    assert [s.read.output for s in result.stale] == [1]
    assert result.reads == 2 and result.fraction == 0.5


def test_stale_reads_are_counted_per_key(history):
    """Keys are judged separately and counted per key."""
    h = history().op(1, "write", 1, key="a").op(1, "write", 2, key="b").op(2, "read", out=None, key="b")
    h.op(2, "read", out=1, key="a")
    result = stale_reads(h.ops)
    assert result.by_key == {"b": 1} and json.loads(json.dumps(result.to_dict()))["stale"] == 1
    assert str(result) == "1 stale of 2 ok reads (50.0%), 0 of unwritten values"


def test_failed_reads_are_not_counted(history):
    """Only ok reads count."""
    h = history().op(1, "write", 1).op(2, "read", kind="fail").op(2, "read", kind="info").ops
    result = stale_reads(h)
    assert result.reads == 0 and result.fraction is None


def test_an_overwritten_write_is_not_lost(history):
    """A write followed by another acknowledged write is legitimately gone."""
    h = history().op(1, "write", 1).op(1, "write", 2).nemesis("heal").op(2, "read", out=2).ops
    result = lost_writes(h)
    assert result.acknowledged == 2 and result.lost == []


def test_an_acknowledged_write_missing_from_the_final_read_is_lost(history):
    """write 1 then write 2, both acknowledged; after heal the final read sees 1: write 2 is lost."""
    h = history().op(1, "write", 1).op(1, "write", 2).nemesis("partition").nemesis("heal").op(2, "read", out=1).ops
    result = lost_writes(h)
    assert [w.write.value for w in result.lost] == [2] and result.fraction == 0.5
    assert result.lost[0].final_read.output == 1


def test_the_final_read_is_the_last_one_after_the_last_fault(history):
    """Reads before the last nemesis op do not count; the last read after it does."""
    h = history().op(1, "write", 1).op(2, "read", out=None).nemesis("heal").op(2, "read", out=7).op(2, "read", out=1)
    assert lost_writes(h.ops).lost == []


def test_keys_with_no_final_read_are_unchecked(history):
    """A key written but never read after the last fault is reported unchecked."""
    h = history().op(1, "write", 1, key="a").op(2, "read", out=1, key="a").nemesis("heal")
    h.op(1, "write", 3, key="b").op(2, "read", out=3, key="b")
    result = lost_writes(h.ops)
    assert result.unchecked == ["a"] and result.acknowledged == 1 and result.lost == []


def test_writes_concurrent_with_the_final_read_are_not_judged(history):
    """A write still running when the final read began may come after it."""
    h = history().op(1, "write", 1).invoke(1, "write", 2).op(2, "read", out=1).ok(1).ops
    result = lost_writes(h)
    assert result.acknowledged == 1 and result.lost == []


def test_an_indeterminate_write_may_overwrite(history):
    """An info write of the final value may have landed after the acknowledged one."""
    h = history().op(1, "write", 1, kind="info").op(2, "write", 2).op(3, "read", out=1).ops
    assert lost_writes(h).lost == []


def test_a_lost_append_is_missing_from_the_final_string(history):
    """An acknowledged append whose text is absent from the final value is lost, unless a put overwrote it."""
    h = history().op(1, "append", "x").op(1, "append", "y").op(2, "get", out="x").ops
    assert [w.write.value for w in lost_writes(h, initial="").lost] == ["y"]
    h = history().op(1, "append", "x").op(1, "append", "y").op(1, "put", "z").op(2, "get", out="z").ops
    assert lost_writes(h, initial="").lost == []


def test_lost_writes_serialize(history):
    """to_dict and str give plain summaries."""
    h = history().op(1, "write", 1).op(1, "write", 2).op(2, "read", out=1).ops
    result = lost_writes(h)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["lost"] == 1 and data["lost_writes"][0]["write"]["value"] == 2
    assert str(result) == "1 lost of 2 acknowledged writes (50.0%), 0 keys unchecked"


@pytest.mark.parametrize("model", ["register", "cas_register"])
@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(1, 40), processes=st.integers(1, 5))
def test_linearizable_histories_have_no_stale_reads_or_lost_writes(simulated, model, seed, n_ops, processes):
    """Histories of a real sequential object show neither anomaly."""
    h = simulated(random.Random(seed), model, n_ops, processes)
    assert stale_reads(h).stale == [] and stale_reads(h).unwritten == []
    assert lost_writes(h).lost == []


@pytest.mark.parametrize("model", ["register", "cas_register"])
def test_every_stale_read_or_lost_write_means_not_linearizable(small_histories, model):
    """On random small histories, a reported anomaly always comes with a failed linearizability check."""
    rng = random.Random(f"anomalies-{model}")
    found = 0
    for _ in range(400):
        h = small_histories(rng.choice, model, max_ops=7)
        if stale_reads(h).stale or lost_writes(h).lost:
            found += 1
            assert linearizable(h, model=model).valid is False, h
    assert found >= 20
