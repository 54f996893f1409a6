"""Tests of emulator/check/results.py: a verdict's data."""

import json

from emulator.check.linearizable import linearizable
from emulator.check.results import VerdictData


def _stale(history):
    """write 1 acknowledged, then a read of nothing: the read cannot follow the write."""
    return history().op(1, "write", 1, key="k").op(2, "read", out=None, key="k").ops


def test_a_definite_violation_outranks_unknown(history):
    """One False partition makes the verdict False even when another ran out of time."""
    verdict = linearizable(_stale(history), model="register")
    verdict.partitions[0].valid = None
    assert type(verdict)(verdict.model, verdict.partitions, verdict.ops, [], True, 0.0).valid is None
    verdict.partitions.append(linearizable(_stale(history), model="register").partitions[0])
    assert type(verdict)(verdict.model, verdict.partitions, verdict.ops, [], True, 0.0).valid is False


def test_partition_results_report_the_linearization(history):
    """A valid partition's order is a full linearization of its required ops, in op ids."""
    h = history().invoke(1, "write", 1).invoke(2, "read").ok(2, None).ok(1).ops
    (part,) = linearizable(h, model="register").partitions
    assert part.valid is True and part.order == [1, 0] and part.state == 1 and part.explored >= 2


def test_the_data_serializes_without_the_explanation(history):
    """VerdictData.to_dict is plain JSON data; the words are the Verdict's to add."""
    verdict = linearizable(_stale(history), model="register")
    data = VerdictData(verdict.model, verdict.partitions, verdict.ops, [], True, 0.5).to_dict()
    assert json.loads(json.dumps(data)) == {k: v for k, v in verdict.to_dict().items() if k != "explanation"} | {
        "elapsed": 0.5
    }
