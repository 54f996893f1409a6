"""Tests of capsim/demos/multiprimary.py: every resolution answers through a partition;
LWW loses updates, siblings and CRDTs do not.
"""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capsim.cli import main
from capsim.demos import multiprimary
from capsim.report import Run

PLAN = multiprimary.Plan.quick(seed=1)


@pytest.fixture(scope="module")
def plan(sizing):
    return sizing.plan(multiprimary.Plan)


@pytest.fixture(scope="module")
def report(plan):
    return multiprimary.report(plan)


@pytest.fixture(scope="module")
def rows(report):
    return {run.name: run.row for run in report.tables[0].runs}


def test_every_resolution_answers_everything_on_both_sides(rows):
    """100% of the requests made during the partition succeed, minority and majority alike."""
    assert all(row["ok_minority"] == 1.0 and row["ok_majority"] == 1.0 for row in rows.values())


def test_last_writer_wins_silently_loses_items_and_increments(rows):
    """LWW: acknowledged cart items and increments are missing once the replicas agree, and drops were reported."""
    lww = rows["lww"]
    assert lww["items_lost"] > 0.1 * lww["items"] and lww["visits_lost"] > 0.1 * lww["visits"]
    assert lww["lww_reported"] > 0 and lww["siblings"] == 1


def test_siblings_keep_every_item_but_cannot_merge_a_count(rows):
    """Siblings: no cart item is lost (the client unions the versions); increments are, merged by max."""
    siblings = rows["siblings"]
    assert siblings["items_lost"] == 0 and siblings["siblings"] >= 2 and siblings["visits_lost"] > 0


def test_crdts_lose_nothing(rows):
    """CRDTs: every acknowledged item and increment is in the converged state."""
    assert rows["crdt"]["items_lost"] == 0 and rows["crdt"]["visits_lost"] == 0


def test_the_replicas_converge_after_the_writes_stop(rows):
    """Anti-entropy brings every replica to the same state within a second of the last write."""
    assert all(row["converged_s"] is not None and row["converged_s"] < 1.0 for row in rows.values())


def test_the_same_seed_replays_the_same_run(rows, plan):
    """Seeded: a resolution run again gives the same figures."""
    assert multiprimary.run_config(plan, "siblings").row == rows["siblings"]


def test_capsim_demo_multi_primary_json(capsys, monkeypatch, report):
    """--json prints each resolution's figures."""
    monkeypatch.setattr(multiprimary, "report", lambda plan: report)  # the CLI path, not a second run
    assert main(["demo", "multi-primary", "--quick", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["figures"]) == {"lww", "siblings", "crdt"}


@given(st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6))
def test_the_note_gives_the_least_answered_share_of_either_side(shares):
    """'at least X on each side' is the minimum over both sides of every resolution (it took the minority's only)."""
    figures = {"items": 10, "items_lost": 0, "visits": 10, "visits_lost": 0, "siblings": 1}
    runs = [
        Run(name, [], {**figures, "ok_minority": shares[2 * i], "ok_majority": shares[2 * i + 1]})
        for i, name in enumerate(("lww", "siblings", "crdt"))
    ]
    least = min(shares)
    assert f"All three answered at least {100 * least:.1f}% of the requests on each side" in multiprimary._note(runs)
