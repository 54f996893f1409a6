"""capsim demo canary: a good canary keeps its share; bad ones are rolled back, their failures counted."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsim.cli import main
from capsim.demos import canary
from capsim.report import Run
from nodes.hashring import key_hash

PLAN = canary.Plan.quick(seed=1)
GOOD, BROKEN, THIRD, AB = canary.CONFIGS


@pytest.fixture(scope="module")
def plan(sizing):
    return sizing.plan(canary.Plan)


@pytest.fixture(scope="module")
def report(plan):
    return canary.report(plan)


@pytest.fixture(scope="module")
def rows(report):
    return {run.name: run.row for run in report.tables[0].runs}


def test_a_good_canary_keeps_its_share(rows):
    """10% of requests, up to the draw's own spread (four standard deviations of a binomial: seed 40 drew 7.5% of
    about 900, which a fixed 8-12% band called a failure), no rollback, no errors."""
    good = rows[GOOD]
    spread = 4 * math.sqrt(0.1 * 0.9 / good["requests"])
    assert abs(good["share"] - 0.1) < spread and good["rolled_back_at"] is None and good["client_errors"] == 0


def test_a_bad_canary_costs_its_verdict_and_then_nothing(rows):
    """Rolled back once min_requests (20) outcomes are in and enough of the last 20 failed: a canary that fails
    everything at the 20th outcome exactly, the subtler bug at the 20th or later (the test said exactly 20 for it
    too, and at seeds 8, 21, 23 and 38 its first 20 outcomes held too few failures); its cost is the requests judged
    plus those in flight at the verdict, and no error after."""
    for name in (BROKEN, THIRD, AB):
        row = rows[name]
        assert row["rolled_back_at"] is not None
        judged = row["to_canary"] - row["in_flight_at_rollback"]  # every canary request was sent before the rollback
        assert judged == 20 if canary.CONFIGS[name][0] == 1.0 else judged >= 20
        assert row["client_errors"] == row["canary_failed"]  # every error clients saw came from the canary
    assert rows[BROKEN]["canary_failed"] == rows[BROKEN]["to_canary"]
    assert 0 < rows[THIRD]["canary_failed"] < rows[THIRD]["to_canary"]


def test_split_by_client_every_failure_comes_from_a_client_assigned_to_the_canary(report):
    """The note: 'Split by client, the broken canary failed N requests, all from the clients assigned to it'; a
    client whose hash falls below the weight sees the canary, every other never does."""
    run = next(run for run in report.tables[0].runs if run.name == AB)
    weight = canary.CONFIGS[AB][1]["weight"]
    failed = [i["key"] for i, d in run.completed() if d["type"] != "ok"]
    assert len(failed) == run.row["canary_failed"] > 0
    assigned = {user for user in run.extra["users"].values() if key_hash(user) < weight * 2**32}
    assert assigned and {run.extra["users"][n] for n in failed} <= assigned
    assert f"failed {run.row['canary_failed']} requests, all from the clients assigned to it" in report.tables[0].note


def test_capsim_demo_canary_json(capsys, monkeypatch, report):
    """--json prints every configuration's figures."""
    monkeypatch.setattr(canary, "report", lambda plan: report)  # the CLI path, not a second run
    assert main(["demo", "canary", "--quick", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["figures"]) == set(canary.CONFIGS)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rolled=st.lists(st.one_of(st.none(), st.floats(0.1, 9.0)), min_size=4, max_size=4),
    others=st.lists(st.integers(0, 3), min_size=4, max_size=4),
)
def test_the_note_says_rolled_back_and_no_other_errors_only_when_the_figures_do(report, rolled, others):
    """'never rolled back' and 'clients saw no other errors' follow each configuration's figures; a canary that was
    never rolled back made the note raise (a None formatted as a time)."""
    runs = report.tables[0].runs
    rows = [
        {**run.row, "rolled_back_at": at, "client_errors": run.row["canary_failed"] + n}
        for run, at, n in zip(runs, rolled, others)
    ]
    note = canary._note([Run(run.name, [], row) for run, row in zip(runs, rows)])
    assert note.count("was never rolled back") == rolled.count(None)
    assert note.count("was rolled back ") == 4 - rolled.count(None)
    assert note.startswith(
        f"The good canary kept its {100 * rows[0]['share']:.1f}% share and " + canary._rolled(rows[0])
    )
    assert note.count("clients saw no other errors") == (others[0] == 0) + (others[1] == 0)
