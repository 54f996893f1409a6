"""Tests of capsim/demos/gateway.py: per-replica limits multiply by the replicas;
a shared limit holds, and doubles when cut in two.
"""

import json

import pytest

from capsim.cli import main
from capsim.demos import gateway

PLAN = gateway.Plan.quick(seed=1)


@pytest.fixture(scope="module")
def plan(sizing):
    return sizing.plan(gateway.Plan)


@pytest.fixture(scope="module")
def report(plan):
    return gateway.report(plan)


@pytest.fixture(scope="module")
def rows(report):
    return {run.name: run.row for run in report.tables[0].runs}


def test_a_per_replica_limiter_grants_the_limit_once_per_replica(rows):
    """Three replicas, each alone: about three times the limit, connected or not."""
    for phase in ("connected_x", "partitioned_x"):
        assert 2.9 <= rows["local"][phase] <= 3.2


def test_a_shared_limiter_holds_the_limit_until_a_partition_splits_it(rows):
    """Shared: about the limit while the replicas talk; about twice it across a 1 | 2 partition."""
    assert 0.9 <= rows["shared"]["connected_x"] <= 1.2
    assert 1.8 <= rows["shared"]["partitioned_x"] <= 2.2


def test_requests_without_a_token_are_refused(rows):
    """Error 14 for every request that carries no token."""
    assert all(row["no_token_refused"] == 5 for row in rows.values())


def test_the_gateway_passes_what_is_left_of_a_requests_deadline_downstream(rows):
    """The docstring: the gateways 'pass each request's deadline downstream' (no run sent one, so nothing showed it):
    a request with a 0.5 s deadline reaches the service with a deadline of its own, the seconds left of it."""
    for row in rows.values():
        assert 0.49 < row["deadline_downstream"] <= row["deadline_sent"] == gateway.DEADLINE


def test_capsim_demo_gateway_json(capsys, monkeypatch, report):
    """--json prints both limiters' figures."""
    monkeypatch.setattr(gateway, "report", lambda plan: report)  # the CLI path, not a second run
    assert main(["demo", "gateway", "--quick", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["figures"]) == {"local", "shared"}
