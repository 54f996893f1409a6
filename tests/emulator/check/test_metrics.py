"""Tests of emulator/check/metrics.py: availability, latency, convergence, fault windows."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.check.metrics import answered_time, availability, convergence, fault_windows, latency, mean_fraction


def _timed(*ops):
    """Ops from (process, f, status, t_invoke, t_complete, extra) tuples, in time order."""
    events = []
    for process, f, status, start, end, extra in ops:
        base = {"process": process, "f": f, "value": None, **extra}
        events.append((start, {**base, "type": "invoke", "time": start}))
        if end is not None:
            events.append((end, {**base, "type": status, "time": end}))
    events.sort(key=lambda e: e[0])
    return [dict(op, index=i) for i, (_, op) in enumerate(events)]


def test_availability_is_the_ok_fraction_of_ops():
    """ok ops over all client ops; fail, info and never-completed count against."""
    h = _timed(
        (1, "read", "ok", 0, 1, {}),
        (2, "read", "fail", 0.5, 1, {}),
        (3, "write", "info", 2, 3, {}),
        (4, "write", None, 2.5, None, {}),
    )
    overall = availability(h)["overall"]
    assert (overall.ok, overall.total, overall.fraction) == (1, 4, 0.25)


def test_availability_per_window_buckets_by_invocation_time():
    """Windows cover the span of invocations, empty ones included."""
    h = _timed((1, "read", "ok", 0.1, 0.2, {}), (1, "read", "fail", 0.3, 0.4, {}), (1, "read", "ok", 2.5, 2.6, {}))
    windows = availability(h, window=1.0)["windows"]
    assert [(w.start, w.end, w.ok, w.total) for w in windows] == [(0, 1, 1, 2), (1, 2, 0, 0), (2, 3, 1, 1)]
    assert windows[1].fraction is None


def test_availability_per_side_uses_node_then_process():
    """An op belongs to the side holding its node, else the side holding its process."""
    h = _timed(
        (1, "read", "ok", 0, 1, {"node": "n1"}),
        (2, "read", "fail", 0, 1, {"node": "n3"}),
        (3, "read", "ok", 0, 1, {}),
        (4, "read", "ok", 0, 1, {}),
    )
    report = availability(h, sides={"majority": ["n1", "n2", 3], "minority": ["n3"]})
    assert report["sides"]["majority"].to_dict()["fraction"] == 1.0 and report["sides"]["majority"].total == 2
    assert report["sides"]["minority"].fraction == 0.0
    assert report["unassigned"].total == 1


def test_availability_during_an_interval():
    """Only ops invoked in [start, end) count."""
    h = _timed((1, "read", "ok", 0, 1, {}), (1, "read", "fail", 2, 3, {}), (1, "read", "ok", 4, 5, {}))
    rate = availability(h, during=(2, 4))["overall"]
    assert (rate.ok, rate.total, rate.start, rate.end) == (0, 1, 2, 4)


def _served_then_timing_out():
    """One client: answered every 50 ms for 5 s, then 0.5 s timeouts 50 ms apart until 10 s (the docstring's case)."""
    ops = [(1, "read", "ok", 0.05 * i, 0.05 * i + 0.001, {"node": "n1"}) for i in range(100)]
    start, process = 5.0, 2
    while start < 10.0:
        ops.append((process, "read", "info", start, start + 0.5, {"node": "n1"}))
        start, process = start + 0.55, process + 1
    return _timed(*ops)


def test_availability_per_window_does_not_flatter_a_client_that_times_out():
    """Served for half the run, then timing out: 91% by op count, 50% as the mean over 1 s windows."""
    report = availability(_served_then_timing_out(), window=1.0, during=(0.0, 10.0), sides={"a": ["n1"]})
    assert (report["overall"].ok, report["overall"].total) == (100, 110)
    assert round(report["overall"].fraction, 2) == 0.91
    assert mean_fraction(report["windows"]) == 0.5
    assert [w.fraction for w in report["side_windows"]["a"]] == [1.0] * 5 + [0.0] * 5


def test_answered_time_weighs_a_timeout_by_the_time_it_held_the_client():
    """The module doc's case: answered every 50 ms for 0.5 s, then one 0.5 s timeout: 50% of the time, 91% of ops."""
    ops = [(1, "read", "ok", 0.05 * i, 0.05 * i + 0.001, {"node": "n1"}) for i in range(10)]
    h = _timed(*ops, (2, "read", "info", 0.5, 1.0, {"node": "n1"}))
    share = answered_time(h, (0.0, 1.0), {"a": ["n1"]})["a"]
    assert share.answered == pytest.approx(0.5) and share.held == pytest.approx(1.0)
    assert share.to_dict()["fraction"] == pytest.approx(0.5)
    assert round(availability(h, during=(0.0, 1.0))["overall"].fraction, 2) == 0.91


def test_answered_time_counts_the_ops_invoked_in_the_span_and_holds_an_open_one_to_its_end():
    """An op invoked before the span holds none of it; one answered after the span holds to the next invocation;
    one never completed holds to the span's end; an op belongs to the client of its node, else of its process."""
    h = _timed(
        (1, "read", "info", 0.5, 1.5, {"node": "n1"}),  # invoked before the span: not counted
        (2, "read", "ok", 1.8, 2.2, {"node": "n1"}),  # answered after the span's end: held 1.8-2.5
        (3, "read", "fail", 2.5, 2.6, {"node": "n1"}),  # after the span: counted nowhere, ends the last op's hold
        (4, "write", "info", 1.2, None, {}),  # never completed, process 4: held 1.2-2.0
    )
    shares = answered_time(h, (1.0, 2.0), {"a": ["n1"], "b": [4], "c": ["n9"]})
    assert (shares["a"].answered, shares["a"].held) == pytest.approx((0.7, 0.7))
    assert (shares["b"].answered, shares["b"].held) == pytest.approx((0.0, 0.8))
    assert shares["c"].held == 0 and shares["c"].fraction is None


_STATUSES = [("ok", None), ("fail", [11, "unavailable"]), ("fail", [22, "precondition"]), ("info", None)]


@st.composite
def _sequential_clients(draw):
    """Two clients, each issuing ops one after another: think and wait times in whole milliseconds."""
    ops, process = [], 0
    for node in ("n1", "n2"):
        now = draw(st.integers(0, 50))
        for i in range(draw(st.integers(0, 8))):
            status, error = draw(st.sampled_from(_STATUSES))
            wait = draw(st.integers(1, 500))
            last = i == 7 or (draw(st.booleans()) and draw(st.booleans()))
            extra = {"node": node, **({"error": error} if error else {})}
            open_op = last and draw(st.booleans())
            ops.append((process, "read", status, now / 1000, None if open_op else (now + wait) / 1000, extra))
            process += 1
            if last:
                break
            now += wait + draw(st.integers(0, 100))
    return ops


def _answered_ms(ops, node, start_ms, end_ms):
    """(answered, held) milliseconds, swept tick by tick: at each ms the client is held by its latest invocation,
    until its last op completes (or the span ends, if that op never does), if that invocation lies in the span."""
    mine = [op for op in ops if op[5]["node"] == node]
    if not mine:
        return 0, 0
    last = mine[-1]
    stop = round(last[4] * 1000) if last[4] is not None else max(end_ms, round(last[3] * 1000))
    answered = held = 0
    for tick in range(round(mine[0][3] * 1000), stop):
        holder = [op for op in mine if round(op[3] * 1000) <= tick][-1]
        if start_ms <= round(holder[3] * 1000) < end_ms:
            held += 1
            done = holder[4] is not None  # never completed: never answered
            answered += done and (holder[2] == "ok" or (holder[2] == "fail" and holder[5]["error"][0] == 22))
    return answered, held


@settings(max_examples=150, deadline=None)
@given(ops=_sequential_clients(), span=st.tuples(st.integers(0, 2000), st.integers(1, 2000)))
def test_answered_time_is_the_time_swept_millisecond_by_millisecond(ops, span):
    """Per client, answered and held seconds equal a sweep over the client's timeline; every op answered scores 1,
    none answered 0; a client's share does not depend on the other client's ops."""
    start, end = span[0], span[0] + span[1]
    h = _timed(*ops)
    shares = answered_time(h, (start / 1000, end / 1000), {"a": ["n1"], "b": ["n2"]})
    for name, node in (("a", "n1"), ("b", "n2")):
        answered, held = _answered_ms(ops, node, start, end)
        assert shares[name].answered * 1000 == pytest.approx(answered, abs=1e-6)
        assert shares[name].held * 1000 == pytest.approx(held, abs=1e-6)
        alone = _timed(*(op for op in ops if op[5]["node"] == node))
        assert answered_time(alone, (start / 1000, end / 1000), {name: [node]})[name] == shares[name]
    for status, score in (("ok", 1.0), ("info", 0.0)):
        done = [(p, f, status, call, call + 0.001 if ret is None else ret, x) for p, f, _, call, ret, x in ops]
        share = answered_time(_timed(*done), (start / 1000, end / 1000), {"a": ["n1"]})["a"]
        assert share.fraction in (None, score)


def test_side_windows_share_one_grid_from_the_start_of_the_span():
    """Windows start at during's start and cover it whole; a side's empty window is left out of its mean."""
    h = _timed(
        (1, "read", "ok", 2.6, 2.7, {"node": "a"}),
        (2, "read", "fail", 3.7, 3.8, {"node": "b"}),
        (3, "read", "ok", 4.4, 4.5, {"node": "b"}),
    )
    report = availability(h, window=1.0, during=(2.5, 5.0), sides={"A": ["a"], "B": ["b"]})
    assert [(w.start, w.end) for w in report["windows"]] == [(2.5, 3.5), (3.5, 4.5), (4.5, 5.5)]
    assert [w.total for w in report["side_windows"]["A"]] == [1, 0, 0]
    assert [(w.ok, w.total) for w in report["side_windows"]["B"]] == [(0, 0), (1, 2), (0, 0)]
    assert mean_fraction(report["side_windows"]["A"]) == 1.0 and mean_fraction(report["side_windows"]["B"]) == 0.5
    assert mean_fraction(report["side_windows"]["A"][1:]) is None


def test_a_non_positive_window_is_rejected():
    """A zero window is a mistake, said so."""
    with pytest.raises(ValueError, match="window must be a positive number of seconds, got 0"):
        availability(_timed((1, "read", "ok", 0, 1, {})), window=0)


def test_latency_percentiles_use_nearest_rank():
    """p50/p90/p99/max of ok ops over 1..100 ms are 50, 90, 99, 100 ms."""
    ops = [(1, "read", "ok", 10.0 * i, 10.0 * i + (i + 1) / 1000, {}) for i in range(100)]
    ops.append((2, "write", "fail", 0, 5, {}))
    p = latency(_timed(*ops))["overall"]
    assert p.count == 100
    assert (p.p50, p.p90, p.p99, p.max) == pytest.approx((0.050, 0.090, 0.099, 0.100))


def test_latency_by_f_and_window():
    """Latency is also split per f and per window of invocation time."""
    h = _timed((1, "read", "ok", 0, 0.5, {}), (1, "write", "ok", 1, 1.2, {}), (1, "read", "ok", 3, 3.1, {}))
    report = latency(h, window=2)
    assert report["by_f"]["write"].max == pytest.approx(0.2) and report["by_f"]["read"].count == 2
    assert [w.count for w in report["windows"]] == [2, 1]
    assert json.dumps({k: v.to_dict() for k, v in report["by_f"].items()})


def test_latency_of_nothing_is_empty():
    """With no ok ops the percentiles are None."""
    p = latency(_timed((1, "read", "fail", 0, 1, {})))["overall"]
    assert p.count == 0 and p.p50 is None and p.max is None


def _read(process, key, out, start, end):
    return (process, "read", "ok", start, end, {"key": key, "value": out})


def _with_nemesis(ops, *faults):
    """Insert nemesis ops (f, time) into a timed history."""
    merged = ops + [{"process": "nemesis", "type": "info", "f": f, "time": t} for f, t in faults]
    merged.sort(key=lambda op: op["time"])
    return [dict(op, index=i) for i, op in enumerate(merged)]


def test_convergence_is_the_first_read_from_which_all_agree():
    """After heal at t=10, key a reads 1, 2, 2; b reads 5: converged at t=12 (the first agreeing read of a)."""
    h = _with_nemesis(
        _timed(
            _read(1, "a", 1, 11, 11.5),
            _read(1, "a", 2, 12, 12.5),
            _read(2, "b", 5, 10.5, 10.6),
            _read(1, "a", 2, 13, 13.5),
        ),
        ("partition", 5),
        ("heal", 10),
    )
    (c,) = convergence(h)
    assert c.heal.time == 10 and c.converged_at == 12 and c.time == pytest.approx(2)
    assert c.last_divergent_at == 11 and c.divergent_keys == ["a"] and c.keys == 2 and c.reads == 4
    assert json.loads(json.dumps(c.to_dict()))["heal"]["f"] == "heal"


def test_convergence_epochs_end_at_the_next_fault():
    """Reads after the next fault belong to no epoch; each heal gets its own result."""
    h = _with_nemesis(
        _timed(_read(1, "a", 1, 11, 11.5), _read(1, "a", 9, 21, 21.5), _read(1, "a", 3, 31, 31.5)),
        ("heal", 10),
        ("partition", 20),
        ("heal", 30),
    )
    first, second = convergence(h)
    assert (first.converged_at, first.reads, first.epoch_end) == (11, 1, 20)
    assert (second.converged_at, second.time, second.epoch_end) == (31, 1, None)


def test_convergence_without_reads_is_unknown():
    """A heal followed by no reads has no convergence time."""
    (c,) = convergence(_with_nemesis([], ("heal", 1)))
    assert c.converged_at is None and c.time is None and c.keys == 0


def test_fault_windows_pair_faults_with_heals():
    """Each fault opens a window the next heal closes; an unhealed one stays open."""
    h = _with_nemesis([], ("partition", 1), ("heal", 4), ("crash", 6), ("partition", 7), ("restart", 9), ("crash", 10))
    spans = [(w.start, w.end, w.f) for w in fault_windows(h)]
    assert spans == [(1, 4, "partition"), (6, 9, "crash"), (10, None, "crash")]


def test_fault_windows_last_while_any_bracketed_fault_is_active():
    """Overlapping start/stop brackets make one window; their kernel ops inside do not cut it short."""
    from emulator.check import fault_windows

    def nemesis(t, f, value=None):
        return {"process": "nemesis", "type": "info", "f": f, "value": value, "time": t}

    history = [
        nemesis(1.0, "start-partition", {"id": 1}),
        nemesis(1.0, "partition"),
        nemesis(2.0, "start-partition", {"id": 2}),
        nemesis(2.0, "partition"),
        nemesis(3.0, "heal", [1]),
        nemesis(3.0, "stop-partition", {"id": 1}),
        nemesis(5.0, "heal", [2]),
        nemesis(5.0, "stop-partition", {"id": 2}),
        nemesis(6.0, "crash", "n1"),
        nemesis(7.0, "restart", "n1"),
    ]
    assert [(w.start, w.end) for w in fault_windows(history)] == [(1.0, 5.0), (6.0, 7.0)]
