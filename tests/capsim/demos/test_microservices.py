"""capsim demo microservices: without breakers and deadlines the failure cascades; with them it stays contained."""

import json
from pathlib import Path

import pytest

from capsim.cli import main
from capsim.demos import microservices
from capsim.report import Run

README = Path(__file__).resolve().parents[3] / "README.md"

PLAN = microservices.Plan.quick(seed=1)
BARE, GUARDED = microservices.CONFIGS
FAULTS = microservices.PHASES[1:4]


@pytest.fixture(scope="module")
def plan(sizing):
    return sizing.plan(microservices.Plan)


@pytest.fixture(scope="module")
def report(plan):
    return microservices.report(plan)


@pytest.fixture(scope="module")
def rows(report):
    return {run.name: run.row for run in report.tables[0].runs}


def test_without_breakers_and_deadlines_every_fault_takes_the_catalog_down(rows):
    """The catalog never calls payments, yet in some second of every fault not one catalog request succeeds."""
    bare = rows[BARE]
    assert all(bare[f"worst_catalog_{phase}"] == 0 for phase in FAULTS[1:])
    assert bare["worst_catalog_payments down"] < 0.8 * bare["worst_catalog_before"]
    assert bare["gateway_peak_in_flight"] == microservices.SLOTS and bare["gateway_peak_queued"] > 100  # pool full
    assert bare["wasted"] > 100  # work done for clients that had given up


def test_with_them_the_failure_stays_where_it_is(report, rows, plan):
    """Payments down: every catalog request still succeeds, but for one still in flight when zone b is cut off (the
    test said every request invoked while payments was down, and at 9 of 40 seeds one sent to zone b in the last
    milliseconds before the cut failed: the next fault's loss, not payments'); no second of any fault loses the
    catalog entirely."""
    guarded, bare = rows[GUARDED], rows[BARE]
    start, cut = plan.spans["payments down"]
    run = next(run for run in report.tables[0].runs if run.name == GUARDED)
    catalog = [(i, d) for i, d in run.completed() if i["client"].startswith("catalog") and start <= i["time"] < cut]
    failed = [i["time"] for i, d in catalog if d["type"] != "ok"]
    assert catalog and all(t > cut - plan.client_timeout for t in failed)  # overlapping the zone cut
    assert guarded["ok_catalog_payments down"] == pytest.approx(1 - len(failed) / len(catalog))
    assert guarded["ok_orders_payments down"] == 0.0
    assert all(guarded[f"worst_catalog_{phase}"] > 0 for phase in FAULTS)
    assert all(
        guarded[f"ok_{route}_{phase}"] > bare[f"ok_{route}_{phase}"]
        for route in ("catalog", "orders")
        for phase in FAULTS[1:]
    )
    assert guarded["ok_all"] > bare["ok_all"] + 0.2
    assert guarded["gateway_peak_queued"] < bare["gateway_peak_queued"] / 5
    assert guarded["wasted"] == 0


def _guarded_queue_peaks_in_the_zone_cut_far_below_the_bare_one(rows, plan):
    """The README's claim: with breakers and deadlines the gateway's queue peaks while zone b is cut off (at the
    default sizes; at the --quick ones it barely forms, one request at some seeds, whenever), under a fifth of its
    peak without them. The test said under a tenth, which failed at 31 of seeds 1 to 200 (12.9% at worst)."""
    guarded, bare = rows[GUARDED], rows[BARE]
    assert guarded["gateway_peak_queued"] < bare["gateway_peak_queued"] / 5, plan.seed
    if plan == microservices.Plan(seed=plan.seed):
        assert guarded["gateway_peak_phase"] == "zone b cut off", plan.seed
    else:
        assert guarded["gateway_peak_phase"] == "zone b cut off" or guarded["gateway_peak_queued"] <= 2, plan.seed
    return guarded["gateway_peak_queued"] < bare["gateway_peak_queued"] / 10


def test_with_them_the_gateway_queue_peaks_in_the_zone_cut_far_below_the_peak_without(rows, plan, report):
    """Where and how high the queue peaks with breakers and deadlines, and the note says so."""
    _guarded_queue_peaks_in_the_zone_cut_far_below_the_bare_one(rows, plan)
    guarded, bare = rows[GUARDED], rows[BARE]
    assert bare["gateway_queued_by"]["payments down"] > 0  # the pile-up began while payments was down
    said = f"With them the gateway's queue peaked at {guarded['gateway_peak_queued']}, "
    assert said in report.tables[0].note and f"against {bare['gateway_peak_queued']} without." in report.tables[0].note


#: seeds at the default sizes where the test's 'under a tenth' failed (81 of 704 at seed 7)
OVER_A_TENTH = (7, 12, 19)


@pytest.mark.parametrize("seed", OVER_A_TENTH)
def test_the_queue_with_them_peaks_in_the_zone_cut_at_seeds_where_a_tenth_failed(seed):
    """At these seeds the zone cut's requests to zone b filled the pool sooner than at seed 1, and the queue grew
    longer before the first of them timed out; the peak is still in the zone cut and under a fifth."""
    plan = microservices.Plan(seed=seed)
    rows = {name: microservices.run_config(plan, name).row for name in microservices.CONFIGS}
    _guarded_queue_peaks_in_the_zone_cut_far_below_the_bare_one(rows, plan)


@pytest.mark.slow
@pytest.mark.parametrize("full", [False, True], ids=["quick", "full"])
def test_the_queue_with_them_peaks_in_the_zone_cut_under_a_fifth_at_every_seed(full):
    """Seeds 1 to 200: with breakers and deadlines the gateway's queue peaks under a fifth of its peak without, in
    the zone cut at the default sizes, and under a tenth at most seeds (the README's sentence)."""
    under_a_tenth = 0
    for seed in range(1, 201):
        plan = microservices.Plan(seed=seed) if full else microservices.Plan.quick(seed=seed)
        rows = {name: microservices.run_config(plan, name).row for name in microservices.CONFIGS}
        under_a_tenth += _guarded_queue_peaks_in_the_zone_cut_far_below_the_bare_one(rows, plan)
    assert under_a_tenth > 100
    said = " ".join(README.read_text(encoding="utf-8").split())
    assert "(42 against 651 here; under a fifth of it at every seed from 1 to 200, and under a tenth at most" in said


def test_both_are_healthy_before_and_after(rows):
    """Before the first fault and after the last, both configurations serve nearly everything."""
    for row in rows.values():
        assert row["ok_catalog_before"] == 1.0 and row["ok_orders_before"] > 0.9  # a few were in flight to payments
        assert row["ok_catalog_after"] == 1.0 and row["ok_orders_after"] == 1.0


def test_the_note_quotes_the_table(report, rows):
    """The paragraph under the table states the figures of the rows."""
    note = report.tables[0].note
    assert f"only {100 * rows[BARE]['ok_catalog_payments down']:.1f}% of catalog requests" in note
    assert f"finished {rows[BARE]['wasted']} requests after their client" in note


def test_the_same_seed_replays_the_same_run(report, plan):
    """Seeded: a configuration run again gives the same history and figures."""
    one = next(run for run in report.tables[0].runs if run.name == GUARDED)
    two = microservices.run_config(plan, GUARDED)
    assert one.history == two.history and one.row == two.row


def test_capsim_demo_microservices_json_and_out(capsys, tmp_path, monkeypatch, report):
    """--json prints both configurations' figures; --out writes the table, plots and page."""
    monkeypatch.setattr(microservices, "report", lambda plan: report)  # the CLI path, not a second run
    assert main(["demo", "microservices", "--quick", "--json", "--out", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["figures"]) == {BARE, GUARDED} and data["demo"] == "microservices"
    for name in ("index.html", "microservices.md", "microservices.json", "throughput.png", "latency.svg"):
        assert (tmp_path / name).exists(), name
    assert "cascading failure" in (tmp_path / "index.html").read_text()


@pytest.mark.parametrize("peak", [microservices.SLOTS, microservices.SLOTS - 3])
def test_the_note_says_every_gateway_slot_only_when_the_peak_filled_them(report, peak, plan):
    """'orders hold every gateway slot' was printed whatever the peak was; the orders' p99 and ok share back
    'fail fast' with figures."""
    runs = report.tables[0].runs
    bare = Run(runs[0].name, [], {**runs[0].row, "gateway_peak_in_flight": peak})
    note = microservices._note([bare, runs[1]], plan)
    assert ("orders hold every gateway slot" in note) == (peak == microservices.SLOTS)
    assert f"({peak} of {microservices.SLOTS}, with " in note
    guarded = runs[1].row
    assert f"fail fast (p99 {guarded['p99_orders_payments down_ms']:.1f} ms, " in note
