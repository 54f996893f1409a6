"""capsim demo canary: a good canary keeps its share; bad ones are rolled back, their failures counted."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsim.cli import main
from capsim.demos import canary
from capsim.report import Run

PLAN = canary.Plan.quick(seed=1)
GOOD, BROKEN, THIRD, AB = canary.CONFIGS


@pytest.fixture(scope="module")
def report():
    return canary.report(PLAN)


@pytest.fixture(scope="module")
def rows(report):
    return {run.name: run.row for run in report.tables[0].runs}


def test_a_good_canary_keeps_its_share(rows):
    """About 10% of requests, no rollback, no errors."""
    good = rows[GOOD]
    assert 0.08 < good["share"] < 0.12 and good["rolled_back_at"] is None and good["client_errors"] == 0


def test_a_bad_canary_costs_its_verdict_and_then_nothing(rows):
    """Rolled back after min_requests outcomes: its failures are the verdict plus what was in flight; none after."""
    for name in (BROKEN, THIRD, AB):
        row = rows[name]
        assert row["rolled_back_at"] is not None and row["to_canary"] == 20 + row["in_flight_at_rollback"]
        assert row["client_errors"] == row["canary_failed"]  # every error clients saw came from the canary
    assert rows[BROKEN]["canary_failed"] == rows[BROKEN]["to_canary"]
    assert 0 < rows[THIRD]["canary_failed"] < rows[THIRD]["to_canary"]


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
