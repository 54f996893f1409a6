"""scripts/wgl_reference.py, Porcupine's search as the benchmark runs it, agrees with capsim's checker."""

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from wgl_reference import reference_check, reference_search

from emulator.check import linearizable
from emulator.check.linearizable import prepare_partition
from emulator.check.models import get_model
from emulator.check.ops import by_key, pair_ops
from tests.common.check_histories import HistoryBuilder, small_history


def _reference(history, model):
    chosen = get_model(model)
    ops, _ = pair_ops(history)
    return reference_check({key: prepare_partition(chosen, group) for key, group in by_key(ops).items()}, chosen)


@pytest.mark.parametrize("model", ["register", "cas_register", "kv"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_reference_agrees_with_capsim_on_small_histories(model, data):
    """Random small histories with timeouts and failures: the same verdict from both searches."""
    history = small_history(lambda xs: data.draw(st.sampled_from(xs)), model)
    assert _reference(history, model)["valid"] is linearizable(history, model=model).valid


def test_the_reference_counts_its_configurations_and_stops_at_its_cap():
    """A stale read is refuted with a count; a cap too small for the search answers unknown."""
    h = HistoryBuilder().op(1, "write", 1).op(2, "write", 2).op(3, "read", out=1).ops
    result = _reference(h, "register")
    assert result["valid"] is False and result["explored"] >= 2 and result["steps"] >= result["explored"]
    chosen = get_model("register")
    ops, _ = pair_ops(h)
    assert reference_search(prepare_partition(chosen, ops), chosen.init, max_steps=1).valid is None
