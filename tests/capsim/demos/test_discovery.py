"""Tests of capsim/demos/discovery.py: traffic to a dead instance until lease and cache run out;
AP stale on both sides, CP refuses.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsim.cli import main
from capsim.demos import discovery
from capsim.report import Run

PLAN = discovery.Plan.quick(seed=1)


@pytest.fixture(scope="module")
def plan(sizing):
    return sizing.plan(discovery.Plan)


@pytest.fixture(scope="module")
def report(plan):
    return discovery.report(plan)


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


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minority=st.floats(0.0, 1.0), majority=st.floats(0.0, 1.0), late=st.floats(0.0, 1.0))
def test_the_note_says_every_lookup_and_at_most_only_when_the_figures_do(rows, minority, majority, late):
    """'answered every lookup on both sides' only when both shares are 100%; 'at most B s' only when the last
    request to the dead instance came within B of its death, for both registries."""
    ap = {**rows["ap"], "answered_minority": minority, "answered_majority": majority}
    cp = {**rows["cp"], "last_to_dead_s": rows["cp"]["bound_s"] * (0.5 + late)}
    note = discovery._note([Run("ap", [], ap), Run("cp", [], cp)])
    assert ("answered every lookup on both sides" in note) == (minority == majority == 1.0)
    within = ap["last_to_dead_s"] <= ap["bound_s"] + 0.01 and cp["last_to_dead_s"] <= cp["bound_s"] + 0.01
    assert (f"(at most {ap['bound_s']:g} s)" in note) == within


def _answers(run, side, start, end):
    """The instance lists a side's lookups got, asked in ``[start, end)`` and answered before ``end``."""
    return [found for asked, answered, found in run.extra["seen"][side] if start <= asked and answered < end and
            isinstance(found, list)]  # fmt: skip


def test_cut_off_instances_drop_out_and_the_minority_never_learns_of_the_newcomer(report, plan):
    """The docstring and the note: i0, alive but able to reach only the minority, drops out of the majority's answers
    within a lease of the cut, from the CP registry (the note says so for it) and the AP one (it 'lets the other
    side's live instances expire'); the AP minority never lists i3, which registered on the other side. Each was
    printed or stated with no figure behind it."""
    runs = {run.name: run for run in report.tables[0].runs}
    start, end = plan.cut
    for mode in ("ap", "cp"):
        assert any("i0" in found for found in _answers(runs[mode], "majority", 0.0, start))
        after = _answers(runs[mode], "majority", start + discovery.TTL, end)
        assert after and not any("i0" in found for found in after), mode
    minority = _answers(runs["ap"], "minority", plan.join_at, end)
    assert minority and not any("i3" in found for found in minority)
    assert any("i3" in found for found in _answers(runs["ap"], "majority", plan.join_at, end))
    assert "i0, alive but able to reach only the minority, dropped out of its answers" in report.tables[0].note
