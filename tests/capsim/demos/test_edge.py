"""Tests of capsim/demos/edge.py: edges cut origin load, coalescing cuts its requests (its peak, usually),
stale-if-error keeps answering through an outage.
"""

import json

import pytest

from capsim.cli import main
from capsim.demos import edge

PLAN = edge.Plan.quick(seed=1)
DIRECT, TTL, COALESCE, STALE = edge.CONFIGS


@pytest.fixture(scope="module")
def plan(sizing):
    return sizing.plan(edge.Plan)


@pytest.fixture(scope="module")
def report(plan):
    return edge.report(plan)


@pytest.fixture(scope="module")
def rows(report):
    return {run.name: run.row for run in report.tables[0].runs}


def test_edges_answer_most_requests_and_cut_the_origin_load(rows):
    """A 1 s TTL over a skewed popularity: most requests answered at the edge;
    the origin serves fewer, far fewer at once."""
    assert rows[TTL]["hit_rate"] > 0.5 and rows[TTL]["origin_gets"] < rows[DIRECT]["origin_gets"]
    assert rows[TTL]["origin_peak"] < rows[DIRECT]["origin_peak"] / 3  # a quarter at seed 1, 34 of 124 at seed 26


def test_coalescing_sends_the_origin_fewer_requests(rows):
    """Misses that wait for one fetch: fewer origin requests than the same edges without. The peak is one burst's
    figure and not always lower (14 and 14 at seed 4; raised at seed 65, below), so the note says which it was."""
    assert rows[COALESCE]["coalesced"] > 0 and rows[TTL]["coalesced"] == 0
    assert rows[COALESCE]["origin_gets"] < rows[TTL]["origin_gets"]


def test_coalescing_can_raise_the_origin_s_peak_and_the_note_says_so():
    """The README says coalescing usually lowers the origin's peak, not always: at seed 65 it went from 19 to 21
    (18 to 23 at the quick sizes), and the note says 'raised'. The requests still went down."""
    runs = edge.report(edge.Plan(seed=65)).tables[0]
    rows = {run.name: run.row for run in runs.runs}
    assert (rows[TTL]["origin_peak"], rows[COALESCE]["origin_peak"]) == (19, 21)
    assert "coalescing raised the origin's peak from 19 to 21" in runs.note
    assert rows[COALESCE]["origin_gets"] < rows[TTL]["origin_gets"]


def test_only_stale_if_error_keeps_answering_through_the_outage(rows):
    """Origin down: nothing without an edge, little with a TTL alone, most with stale copies, which are older."""
    assert rows[DIRECT]["ok_down"] == 0.0 and rows[TTL]["ok_down"] < 0.3 and rows[STALE]["ok_down"] > 0.75
    assert rows[STALE]["stale"] > 0 and rows[STALE]["age_max"] > 1.0 and rows[STALE]["behind_max_down"] >= 2
    assert all(rows[n]["age_max"] <= 1.0 + 1e-9 for n in (TTL, COALESCE))  # within the TTL otherwise


def test_capsim_demo_edge_json(capsys, monkeypatch, report):
    """--json prints every configuration's figures."""
    monkeypatch.setattr(edge, "report", lambda plan: report)  # the CLI path, not a second run
    assert main(["demo", "edge", "--quick", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["figures"]) == set(edge.CONFIGS)


def test_the_note_says_what_the_figures_show_for_each_seed(report):
    """The note's verbs follow the figures: with seed 4 coalescing leaves the origin's peak where it was, and the
    note said 'cut the origin's peak from 14 to 14'; the outage figures are the ones in the table."""
    runs = report.tables[0]
    rows, note = {run.name: run.row for run in runs.runs}, runs.note
    before, after = rows[TTL]["origin_peak"], rows[COALESCE]["origin_peak"]
    assert (f"cut the origin's peak from {before} to {after}" in note) == (after < before)
    assert (f"left the origin's peak at {before}" in note) == (after == before)
    assert (f"raised the origin's peak from {before} to {after}" in note) == (after > before)
    assert f"cut the origin from {rows[DIRECT]['origin_gets']} to {rows[TTL]['origin_gets']} requests" in note
    ok_down = [f"{100 * rows[name]['ok_down']:.1f}%" for name in (TTL, COALESCE)]
    assert f"During the outage they answered {ok_down[0]} and {ok_down[1]}, only from copies" in note
    assert all(rows[name]["age_max"] <= edge.CONFIGS[name]["ttl"] + 1e-9 for name in (TTL, COALESCE))
