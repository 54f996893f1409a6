"""PACELC sweep: PBS closed form, strict quorums never stale, t-visibility, latency costs."""

import math

import pytest

from capsim.cap.pacelc import Sweep, closed_form, measure_quorum, measure_replication

SWEEP = Sweep(seed=2, trials=500, waits_ms=(0, 2, 20))


@pytest.fixture(scope="module")
def partial():
    return measure_quorum(SWEEP, 3, 1, 1)


def test_partial_quorum_staleness_matches_the_pbs_closed_form(partial):
    """N=3 R=1 W=1 with exact fan-out: measured P(stale) within 4 standard errors of C(2,1)/C(3,1)."""
    expected = closed_form(3, 1, 1)
    error = math.sqrt(expected * (1 - expected) / SWEEP.trials)
    assert abs(partial["pbs_measured"] - expected) <= 4 * error, partial


def test_staleness_falls_with_time_since_the_write(partial):
    """t-visibility: a read 20 ms after the ack is staler than never, fresher than at once."""
    curve = partial["t_visibility"]
    assert curve[0] > curve[20] and curve[0] > 0.05, curve


def test_a_strict_quorum_is_never_stale_and_pays_in_latency(partial):
    """N=3 R=2 W=2: no stale read at any delay, and a higher p99 than R=W=1."""
    strict = measure_quorum(SWEEP, 3, 2, 2)
    assert strict["pbs_measured"] == 0 and all(p == 0 for p in strict["t_visibility"].values())
    assert strict["p99_ms"] > partial["p99_ms"]


def test_sync_replication_costs_write_latency():
    """Primary-replica: a sync write's p99 is above an async write's."""
    sweep = Sweep(seed=2, trials=200, waits_ms=(0,))
    assert measure_replication(sweep, "sync")["write_p99_ms"] > measure_replication(sweep, "async")["write_p99_ms"]
