"""capsim demo scaling: throughput and p99 against backends; a backend's crash under each algorithm."""

import itertools
from dataclasses import replace

import pytest

from capsim.demos import scaling
from nodes.balancer import ALGORITHMS

PLAN = scaling.Plan.quick(seed=1)


@pytest.fixture(scope="module")
def plan(sizing):
    return sizing.plan(scaling.Plan)


@pytest.fixture(scope="module")
def report(plan):
    return scaling.report(plan)


@pytest.fixture(scope="module")
def sweep(report):
    return [run.row for run in report.tables[0].runs]


@pytest.fixture(scope="module")
def crashes(report):
    return {run.row["algorithm"]: run for run in report.tables[1].runs}


def test_throughput_rises_with_backends_then_saturates_at_the_load_that_arrived(sweep, report, plan):
    """Each backend adds its capacity until what arrives is served; beyond, throughput is what arrived: the Poisson
    arrivals' own rate, which is the offered rate only on average (seed 8 drew 324/s of a nominal 300: the test held
    throughput to 1.05 x 300, and the note said it 'stays at the offered 300/s')."""
    for row in sweep:
        assert row["arrived"] == pytest.approx(row["ops"] / plan.duration)
        assert row["throughput"] <= 1.05 * min(row["capacity"], row["arrived"])
    throughputs = [row["throughput"] for row in sweep]
    assert all(b >= 0.97 * a for a, b in itertools.pairwise(throughputs))
    assert throughputs[0] < 0.5 * throughputs[-1]
    saturated = [row for row in sweep if row["capacity"] > row["offered"]]
    assert saturated and all(row["throughput"] >= 0.95 * row["arrived"] for row in saturated)
    last = sweep[-1]
    assert f"throughput stays at the {last['arrived']:.0f}/s that arrived" in report.tables[0].note


def test_p99_falls_and_overload_refusals_vanish_as_backends_are_added(sweep, plan):
    """An overloaded backend refuses (error 11) and queues; with spare capacity p99 falls to the service time."""
    assert sweep[0]["overloaded"] > 0.5 and sweep[-1]["overloaded"] == 0
    assert sweep[-1]["p99_ms"] < 0.5 * sweep[0]["p99_ms"]
    assert sweep[-1]["p99_ms"] <= sweep[-2]["p99_ms"]
    assert sweep[-1]["p99_ms"] < 1000 * plan.service[1] + 10  # the slowest service time plus a little network


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_dead_backend_gets_no_traffic_past_the_health_check_bound(crashes, algorithm, plan):
    """From unhealthy * interval + timeout s after the crash no request goes to it; after the restart it is back."""
    run = crashes[algorithm]
    row = run.row
    assert row["ejected_s"] is not None and row["ejected_s"] <= plan.bound
    sent = [t for t, what, value in run.extra["journal"] if what == "forward" and value[0] == plan.victim]
    assert not [t for t in sent if plan.crash_at + plan.bound <= t < plan.restart_at]
    assert row["back_s"] is not None
    assert [t for t in sent if t >= plan.restart_at] and row["share_back"] > 0.15
    assert row["to_dead"] > 0


def test_requests_to_the_dead_backend_fail_indefinitely(crashes, plan):
    """A request sent to a backend that died ends as info: it may have run, so nobody may retry it blindly."""
    for run in crashes.values():
        # A request reaches the balancer a client-link latency after its invocation: allow 5 ms.
        unknown = [
            d
            for i, d in run.completed()
            if plan.crash_at - 0.005 <= i["time"] < plan.crash_at + plan.bound and d["type"] == "info"
        ]
        assert len(unknown) >= run.row["to_dead"] > 0
        assert all(d["error"][0] == 0 for d in unknown)


def test_adaptive_algorithms_send_fewer_requests_to_the_dead_backend(crashes):
    """Requests hanging on a dead backend make it look busy: least-connections and least-response-time avoid it."""
    blind = min(crashes[a].row["to_dead"] for a in ("round-robin", "weighted-round-robin", "consistent-hash"))
    for algorithm in ("least-connections", "least-response-time"):
        assert crashes[algorithm].row["to_dead"] < blind / 2


def test_weights_send_the_large_survivor_more_traffic_than_round_robin(crashes):
    """Round robin splits evenly over unequal survivors; weighted round robin gives the large one half."""
    even = crashes["round-robin"].row
    assert all(abs(even[f"share_{b}"] - 1 / 3) < 0.02 for b in ("b0", "b1", "b2"))
    weighted = crashes["weighted-round-robin"].row
    assert abs(weighted["share_b2"] - 0.5) < 0.02
    assert weighted["p99_during_ms"] < even["p99_during_ms"]


def test_the_printed_tables_explain_the_numbers(report, plan):
    """Both tables carry a paragraph that quotes their figures."""
    sweep, crash = report.tables
    first = sweep.runs[0].row
    assert f"One backend serves {first['throughput']:.0f} of the {first['arrived']:.0f} requests arriving" in sweep.note
    assert f"within the {plan.bound:g} s bound" in crash.note
    assert report.to_json()["tables"]["crash"][0]["config"] == "round robin"


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    """Seeded: the crash run replays exactly; a different seed draws different arrivals."""
    one, two = (scaling.crash_run(PLAN, "least-connections") for _ in range(2))
    assert one.row == two.row and one.history == two.history
    other = scaling.crash_run(replace(PLAN, seed=PLAN.seed + 1), "least-connections")
    assert other.history != one.history


@pytest.mark.parametrize("ejected", [None, "late", "in time"])
def test_the_crash_note_says_within_the_bound_only_when_every_algorithm_was(crashes, ejected, plan):
    """'within the B s bound' held whatever the runs did: a backend never taken out, or taken out late, now reads
    'NOT within'."""
    runs = list(crashes.values())
    late = {None: None, "late": plan.bound + 0.5, "in time": plan.bound - 0.01}[ejected]
    changed = [replace(runs[0], row={**runs[0].row, "ejected_s": late}), *runs[1:]]
    note = scaling._crash_note(changed, plan)
    assert (f"NOT within the {plan.bound:g} s bound" in note) == (ejected != "in time")


@pytest.mark.parametrize("refused", [0, 7])
def test_the_crash_note_says_the_small_backends_filled_up_only_when_they_refused(crashes, plan, refused):
    """'so the small backends filled up (0 refused, ...)': a backend fills up when its queue of ten is full and it
    refuses; with none refused (seed 1 on the --quick sizes) they only queued, which the even split's p99 shows."""
    runs = list(crashes.values())
    rr = next(run for run in runs if run.row["algorithm"] == "round-robin")
    changed = [replace(run, row={**run.row, "crash_overload": refused}) if run is rr else run for run in runs]
    note = scaling._crash_note(changed, plan)
    p99 = f"p99 {rr.row['p99_during_ms']:.0f} ms"
    assert (f"so the small backends filled up and refused {refused} requests ({p99})" in note) == (refused > 0)
    assert (f"so the small backends queued, refusing none ({p99})" in note) == (refused == 0)
