"""Tests of capsim/demos/edge.py: edges cut origin load, coalescing cuts its requests (its peak, usually),
stale-if-error keeps answering through an outage.
"""

import json
import re
from pathlib import Path

import pytest

from capsim.cli import main
from capsim.demos import edge

PLAN = edge.Plan.quick(seed=1)
README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
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


def test_edges_answer_most_requests_and_cut_the_origin_load(rows, report, plan):
    """A 1 s TTL over a skewed popularity: most requests answered at the edge;
    the origin serves fewer, far fewer at once."""
    assert rows[TTL]["hit_rate"] > 0.5 and rows[TTL]["origin_gets"] < rows[DIRECT]["origin_gets"]
    _peak_under_a_third_unless_congested({run.name: run for run in report.tables[0].runs}, plan)


def _failed_with_the_origin_up(run, plan) -> int:
    """Requests that failed though invoked while the origin was up, and not in the second before it went down."""
    return sum(
        1 for i, d in run.completed() if d["type"] != "ok" and not plan.down[0] - 1.0 <= i["time"] < plan.down[1]
    )


def _peak_under_a_third_unless_congested(runs: dict, plan) -> bool:
    """The README: edges cut the origin's peak to under a third but at a few seeds, where without coalescing the
    origin fell behind (fetches timed out though it was up) and stayed at up to about half its peak without edges.
    The test said 'under a third' (a quarter at seed 1, 34 of 124 at seed 26); seeds 25 and 158 broke it. Returns
    whether the peak was under a third."""
    direct, ttl = runs[DIRECT].row["origin_peak"], runs[TTL].row["origin_peak"]
    assert ttl < 0.55 * direct, plan.seed
    if ttl < direct / 3:
        return True
    assert _failed_with_the_origin_up(runs[TTL], plan) > 0, plan.seed
    return False


@pytest.mark.parametrize("seed", [25, 158])
def test_at_seeds_where_edges_alone_left_the_origin_congested_its_fetches_timed_out_while_it_was_up(seed):
    """The two of seeds 1 to 200 (default sizes) where the peak with edges and no coalescing was over a third of
    the peak without edges: 78 from the start at seed 25, 111 from the restart at seed 158, of 209."""
    plan = edge.Plan(seed=seed)
    _peak_under_a_third_unless_congested({name: edge.run_config(plan, name) for name in (DIRECT, TTL)}, plan)


@pytest.mark.slow
@pytest.mark.parametrize("full", [False, True], ids=["quick", "full"])
def test_edges_cut_the_origins_peak_to_under_a_third_at_the_seeds_the_readme_says(full):
    """Seeds 1 to 200: the peak is under a third of the peak without edges, or the origin fell behind (fetches
    timed out while it was up) and stayed under about half; under a third, at the default sizes, as often as the
    README says."""
    under = 0
    for seed in range(1, 201):
        plan = edge.Plan(seed=seed) if full else edge.Plan.quick(seed=seed)
        under += _peak_under_a_third_unless_congested(
            {name: edge.run_config(plan, name) for name in (DIRECT, TTL)}, plan
        )
    said = re.search(r"its peak to under a third at (\d+) of seeds 1 to 200", " ".join(README.split()))
    assert said and (under == int(said[1]) or not full), (under, said[0] if said else None)


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
    assert f"cut the most at once from {rows[DIRECT]['origin_peak']} to {rows[TTL]['origin_peak']};" in note
    ok_down = [f"{100 * rows[name]['ok_down']:.1f}%" for name in (TTL, COALESCE)]
    assert f"During the outage they answered {ok_down[0]} and {ok_down[1]}, only from copies" in note
    assert all(rows[name]["age_max"] <= edge.CONFIGS[name]["ttl"] + 1e-9 for name in (TTL, COALESCE))
