"""Tests of capsim/demos/discovery.py: traffic to a dead instance until lease and cache run out;
AP stale on both sides, CP refuses.
"""

import json

import pytest

from capsim.cli import main
from capsim.demos import discovery

PLAN = discovery.Plan.quick(seed=1)


@pytest.fixture(scope="module")
def report():
    return discovery.report(PLAN)


@pytest.fixture(scope="module")
def rows(report):
    return {run.name: run.row for run in report.tables[0].runs}


def test_a_dead_instance_gets_traffic_for_no_longer_than_lease_plus_cache(rows):
    """Requests keep going to it after it dies, the last within ttl + cache_ttl."""
    for row in rows.values():
        assert row["to_dead"] > 0 and 0 < row["last_to_dead_s"] <= row["bound_s"] + 0.01


def test_ap_answers_everywhere_and_its_answers_go_stale(rows):
    """AP: all lookups answered on both sides during the cut, most missing a live instance."""
    ap = rows["ap"]
    assert ap["answered_minority"] == 1.0 == ap["answered_majority"]
    assert ap["stale_minority"] > 0.5 and ap["stale_majority"] > 0.5


def test_cp_refuses_on_the_minority_and_is_never_stale(rows):
    """CP: no lookup answered on the minority side; every majority answer lists every acknowledged lease."""
    cp = rows["cp"]
    assert cp["answered_minority"] == 0.0 and cp["stale_minority"] is None
    assert cp["answered_majority"] > 0.9 and cp["stale_majority"] == 0.0


def test_capsim_demo_discovery_json(capsys, monkeypatch, report):
    """--json prints both registries' figures."""
    monkeypatch.setattr(discovery, "report", lambda plan: report)  # the CLI path, not a second run
    assert main(["demo", "discovery", "--quick", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["figures"]) == {"ap", "cp"}
