"""The fault record: nemesis ops in the history and the trace, and fault spans read back from them."""

import json

from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from emulator import check
from faults.record import COMMON_KINDS, HEALS, KINDS, CutSpan, FaultSpan, fault_spans, record


def _sim(seed=1):
    sim = em.Simulation(seed=seed)
    sim.add_node("n0", em.Node)
    return sim


def test_record_appends_a_nemesis_info_op_and_returns_it():
    """record(sim, f, value) puts {"process": "nemesis", "type": "info", f, value, time} in the history."""
    sim = _sim()
    sim.run(until=1.5)
    op = record(sim, "start-crash", {"id": 1, "nodes": ["n0"]})
    assert list(sim.history)[-1] == op
    assert (op["process"], op["type"], op["f"], op["value"], op["time"]) == (
        "nemesis",
        "info",
        "start-crash",
        {"id": 1, "nodes": ["n0"]},
        1.5,
    )


def test_a_recorded_value_is_part_of_the_trace_digest():
    """Two runs that differ only in a recorded value have different digests; the same value, the same digest."""
    digests = []
    for nodes in (["n0"], ["n0"], ["n1"]):
        sim = _sim()
        record(sim, "start-crash", {"id": 1, "nodes": nodes})
        digests.append(sim.trace_digest())
    assert digests[0] == digests[1] != digests[2]


def test_kinds_heals_and_common_kinds_agree():
    """HEALS holds the kernel's repairs and stop-<kind> for every kind; COMMON_KINDS is KINDS without membership."""
    assert {"heal", "restart", "resume", "release"} <= set(HEALS)
    assert {f"stop-{kind}" for kind in KINDS} <= set(HEALS)
    assert not any(h.startswith("start-") for h in HEALS)
    assert tuple(k for k in KINDS if k != "membership") == COMMON_KINDS and "membership" in KINDS


def test_heals_close_the_fault_windows_of_a_recorded_history():
    """check.fault_windows(heals=HEALS) closes a window at each stop-<kind> of a bracketed fault."""
    sim = _sim()
    for i, kind in enumerate(KINDS, start=1):
        sim.run(until=float(i))
        record(sim, f"start-{kind}", {"id": i})
        sim.run(until=i + 0.5)
        record(sim, f"stop-{kind}", {"id": i})
    windows = check.fault_windows(list(sim.history), heals=HEALS)
    assert [(w.start, w.end) for w in windows] == [(float(i), i + 0.5) for i in range(1, len(KINDS) + 1)]


def test_a_span_contains_its_start_but_not_its_stop():
    """contains() is the half-open [start, stop); an open span contains everything after its start."""
    span = FaultSpan(1, "crash", 2.0, 3.0, {})
    assert [span.contains(t) for t in (1.999, 2.0, 2.5, 3.0)] == [False, True, True, False]
    assert FaultSpan(2, "crash", 2.0, None, {}).contains(1e9)


def test_sides_are_a_partitions_groups_and_empty_otherwise():
    """sides gives a copy of value['sides']; a crash or a ring has none."""
    value = {"id": 1, "sides": {"minority": ["n0"], "majority": ["n1", "n2"]}}
    span = FaultSpan(1, "partition", 0.0, None, value)
    span.sides["extra"] = []
    assert span.sides == {"minority": ["n0"], "majority": ["n1", "n2"]}
    assert FaultSpan(2, "crash", 0.0, None, {"nodes": ["n0"]}).sides == {}
    assert FaultSpan(3, "partition", 0.0, None, {"sides": {}}).sides == {}


def test_a_span_round_trips_through_to_dict_and_json():
    """to_dict() is plain JSON data that rebuilds the same span, its cuts included."""
    sides = {"left": ["n0"], "right": ["n1"]}
    cuts = [CutSpan(1.0, 1.5, sides, {"n0": ["n1"]}), CutSpan(2.0, None, {"a": ["n1"], "b": ["n0"]}, {})]
    span = FaultSpan(4, "partition", 1.0, 2.5, {"id": 4, "sides": sides}, cuts)
    again = FaultSpan(**json.loads(json.dumps(span.to_dict())))
    assert again == span and all(isinstance(piece, CutSpan) for piece in again.cuts)


# -- fault_spans over generated histories -------------------------------------------------------------

# A fault: its kind, when it starts, how long it lasts (None: still active at the end).
faults_strategy = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 50), st.one_of(st.none(), st.integers(0, 20))),
    max_size=8,
)


def _history(faults):
    """A time-ordered history: each fault's start/stop ops, kernel ops and client ops around them."""
    events = []
    for ident, (kind, start, length) in enumerate(faults, start=1):
        events.append(
            (start, 0, ident, {"process": "nemesis", "type": "info", "f": f"start-{kind}", "value": {"id": ident}})
        )
        events.append((start, 1, ident, {"process": "nemesis", "type": "info", "f": kind, "value": ["n0", "n1"]}))
        if length is not None:
            events.append(
                (start + length, 2, ident, {"process": "nemesis", "type": "info", "f": "heal", "value": None})
            )
            stop = {"process": "nemesis", "type": "info", "f": f"stop-{kind}", "value": {"id": ident}}
            events.append((start + length, 3, ident, stop))
        events.append((start, 4, ident, {"process": 0, "type": "invoke", "f": "read", "value": {"id": ident}}))
        events.append(
            (start, 5, ident, {"process": "nemesis", "type": "info", "f": "start-unknown", "value": {"id": ident}})
        )
    history = []
    for time, _, _, op in sorted(events, key=lambda e: e[:3]):
        history.append({**op, "time": float(time)})
    return history


@given(faults_strategy)
def test_fault_spans_pairs_every_start_with_its_own_stop_by_id(faults):
    """One span per start-<kind>, stopped by the stop with its id (None if none), even when faults overlap."""
    spans = fault_spans(_history(faults))
    expected = []
    for i, (kind, start, length) in enumerate(faults, start=1):
        stop = None if length is None else float(start + length)
        cuts = [CutSpan(float(start), stop, {}, {})] if kind == "partition" else []  # a steady partition: one cut
        expected.append(FaultSpan(i, kind, float(start), stop, {"id": i}, cuts))
    assert spans == sorted(expected, key=lambda s: (s.start, s.id))


@given(faults_strategy, st.sampled_from(KINDS))
def test_fault_spans_of_one_kind_are_the_spans_of_that_kind(faults, kind):
    """kind= filters: the same spans as without it, of that kind only, in the same order."""
    history = _history(faults)
    assert fault_spans(history, kind) == [s for s in fault_spans(history) if s.kind == kind]


def test_fault_spans_reads_a_simulations_history():
    """Ops recorded with record() in a run come back as spans with their virtual times."""
    sim = _sim()
    sim.run(until=1.0)
    record(sim, "start-partition", {"id": 1, "sides": {"left": ["n0"], "right": []}})
    sim.run(until=4.0)
    record(sim, "stop-partition", {"id": 1})
    record(sim, "start-pause", {"id": 2, "nodes": ["n0"]})
    (partition, pause) = fault_spans(sim.history)
    assert (partition.kind, partition.start, partition.stop, partition.sides["left"]) == ("partition", 1.0, 4.0, ["n0"])
    assert (pause.kind, pause.start, pause.stop) == ("pause", 4.0, None)


# -- a flapping partition's cuts -----------------------------------------------------------------------


def _nemesis(time, f, value):
    return {"process": "nemesis", "type": "info", "f": f, "value": value, "time": float(time)}


def _sides(n):
    return {"isolated": [f"n{n}"], "rest": [f"n{i}" for i in range(3) if i != n]}


# A flapping partition's life: after its first cut, each step a heal or a re-cut (of node n) some time later;
# the history may end with it stopped or still going.
flaps = st.tuples(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 2)), max_size=10),
    st.one_of(st.none(), st.integers(1, 5)),
)


def _flapping_history(steps, stop_after):
    """start-partition at 0, then heal-partition/cut-partition in turn (with a steady partition overlapping it)."""
    history = [_nemesis(0, "start-partition", {"id": 1, "sides": _sides(0), "grudge": {"n0": ["n1"]}, "flap": [1, 5]})]
    history.append(_nemesis(0, "start-partition", {"id": 2, "sides": _sides(1), "grudge": {}}))
    time, expected = 0, [CutSpan(0.0, None, _sides(0), {"n0": ["n1"]})]
    for number, (gap, node) in enumerate(steps):
        time += gap
        if number % 2 == 0:
            history.append(_nemesis(time, "heal-partition", {"id": 1}))
            history.append(_nemesis(time, "heal", [number]))  # the kernel's heal of the cut's ids
            expected[-1].stop = float(time)
        else:
            history.append(_nemesis(time, "cut-partition", {"id": 1, "sides": _sides(node), "grudge": {}}))
            history.append(_nemesis(time, "partition", [[f"n{node}"], ["rest"]]))
            expected.append(CutSpan(float(time), None, _sides(node), {}))
        history.append({"process": 0, "type": "invoke", "f": "read", "value": None, "time": float(time)})
    if stop_after is not None:
        time += stop_after
        history.append(_nemesis(time, "stop-partition", {"id": 1}))
        if expected[-1].stop is None:
            expected[-1].stop = float(time)
        # after its stop, nothing of id 1 counts
        history.append(_nemesis(time + 1, "cut-partition", {"id": 1, "sides": _sides(2), "grudge": {}}))
    return history, expected


@given(flaps)
def test_a_flapping_partition_has_one_cut_span_per_cut_from_its_cut_to_its_heal(flap):
    """Each cut of a flapping partition is its own CutSpan, with its own sides; a stop ends the one in place."""
    history, expected = _flapping_history(*flap)
    flapping, steady = fault_spans(history, "partition")
    assert flapping.cuts == expected
    assert steady.cuts == [CutSpan(0.0, None, _sides(1), {})]  # the other partition's ops are not its own
    times = [t for piece in flapping.cuts for t in (piece.start, piece.stop) if t is not None]
    assert times == sorted(times) and all(flapping.contains(piece.start) for piece in flapping.cuts)


def test_a_cut_span_contains_its_start_but_not_its_heal():
    """CutSpan.contains is the half-open [start, stop), as FaultSpan's."""
    piece = CutSpan(1.0, 2.0, _sides(0), {})
    assert [piece.contains(t) for t in (0.5, 1.0, 1.5, 2.0)] == [False, True, True, False]
    assert CutSpan(1.0, None, {}, {}).contains(1e9)
