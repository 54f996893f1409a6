"""capsim demo microservices: without breakers and deadlines the failure cascades; with them it stays contained."""

import json

import pytest

from capsim.cli import main
from capsim.demos import microservices
from capsim.report import Run

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
    assert guarded["gateway_peak_queued"] < bare["gateway_peak_queued"] / 10
    assert guarded["wasted"] == 0


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
