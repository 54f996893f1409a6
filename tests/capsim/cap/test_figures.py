"""Every figure of the CAP table, recomputed here from the run's raw history by the words that define it.

Nothing here calls ``emulator.check``: the ops are paired from the raw dicts, each figure is computed
from its printed definition (``capsim cap --help``), and linearizability is decided by the memoised
reference search of ``tests.common.check_histories``, written apart from the checker.
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsim.cap import BUILTIN, Plan, run_config
from capsim.cap.metrics import measure
from tests.common.check_histories import search_reference

ANSWERS = (20, 21, 22)  # definite answers about the data: the store was there and said no


def paired(history):
    """Client ops from the raw dicts: f, key, value written, output, status, code, node, positions and times.

    A read answered 20 (no such key) read nothing: an ok read of None.
    """
    open_ops, ops = {}, []
    for pos, raw in enumerate(history):
        if raw["process"] == "nemesis":
            continue
        if raw["type"] == "invoke":
            open_ops[raw["process"]] = dict(raw, call=pos, call_time=raw["time"], ret=math.inf, ret_time=None)
            continue
        op = open_ops.pop(raw["process"])
        code = raw["error"][0] if raw.get("error") else None
        status = raw["type"]
        if op["f"] == "read" and status == "fail" and code == 20:
            status = "ok"
        op.update(status=status, code=code, out=raw.get("value"), ret=pos, ret_time=raw["time"])
        ops.append(op)
    ops += [dict(op, status="open", code=None, out=None) for op in open_ops.values()]
    return sorted(ops, key=lambda op: op["call"])


def heal_position(history):
    return max(pos for pos, raw in enumerate(history) if raw["process"] == "nemesis")


def written(op):
    """The value an op may have put (a write's, a cas's 'to'), or a sentinel when it puts none."""
    if op["status"] == "fail":
        return NOTHING
    if op["f"] == "write":
        return op["value"]
    if op["f"] == "cas":
        return op["value"][1]
    return NOTHING


NOTHING = object()


def answered(op):
    return op["status"] == "ok" or (op["status"] == "fail" and op["code"] in ANSWERS)


def availability(ops, nodes, span):
    """Per client (one per node): of the time its ops invoked in ``span`` held it, each from its invocation to the
    client's next (its last: to its completion, or the span's end), the share held by answered ops; then the mean
    over the clients that held any."""
    fractions = []
    for node in nodes:
        mine = [op for op in ops if op["node"] == node]
        answered_s = held_s = 0.0
        for i, op in enumerate(mine):
            if not span[0] <= op["call_time"] < span[1]:
                continue
            if i + 1 < len(mine):
                until = mine[i + 1]["call_time"]
            else:
                until = span[1] if op["ret_time"] is None else op["ret_time"]
            held_s += until - op["call_time"]
            answered_s += (until - op["call_time"]) * answered(op)
        if held_s > 0:
            fractions.append(answered_s / held_s)
    return sum(fractions) / len(fractions) if fractions else None


def could_follow(ops, value, write, reader):
    """Some op that may have put ``value`` can be ordered after ``write`` and before ``reader`` returned."""
    return latest_end(ops, value, reader) > write["call"]


def latest_end(ops, value, reader):
    """The latest completion (inf when indeterminate) of an op putting ``value`` invoked before ``reader`` returned."""
    return max((x["ret"] for x in ops if written(x) == value and x["call"] < reader["ret"]), default=-math.inf)


def stale(ops):
    """(stale, ok reads): a write of another value acknowledged before the read began, none of its value after it."""
    by_key = {}
    for op in ops:
        by_key.setdefault(op["key"], []).append(op)
    reads = [op for op in ops if op["f"] == "read" and op["status"] == "ok"]
    count = 0
    for read in reads:
        same = by_key[read["key"]]
        end = latest_end(same, read["out"], read)
        count += any(
            w["status"] == "ok"
            and w["ret"] < read["call"]
            and written(w) not in (NOTHING, read["out"])
            and not end > w["call"]
            for w in same
        )
    return count, len(reads)


def lost(ops, after):
    """(lost, checked): acked writes before the key's final read (invoked last after ``after``) missing from it."""
    lost_count = checked = 0
    for key in {op["key"] for op in ops}:
        same = [op for op in ops if op["key"] == key]
        finals = [op for op in same if op["f"] == "read" and op["status"] == "ok" and op["call"] > after]
        if not finals:
            continue
        final = max(finals, key=lambda op: op["call"])
        for w in same:
            if w["status"] == "ok" and written(w) is not NOTHING and w["ret"] < final["call"]:
                checked += 1
                lost_count += written(w) != final["out"] and not could_follow(same, final["out"], w, final)
    return lost_count, checked


def nearest_rank(values, percent):
    ordered = sorted(values)
    return ordered[math.ceil(percent / 100 * len(ordered)) - 1] if ordered else None


def convergence(ops, history):
    """(first read of every shared key's final run, last disagreeing read), in seconds after the heal."""
    heal = heal_position(history)
    heal_time = history[heal]["time"]
    settled, diverged = [], []
    for key in {op["key"] for op in ops if isinstance(op["key"], int)}:
        reads = [
            op for op in ops if op["key"] == key and op["f"] == "read" and op["status"] == "ok" and op["call"] > heal
        ]
        if not reads:
            continue
        final = reads[-1]["out"]
        run = len(reads)
        while run and reads[run - 1]["out"] == final:
            run -= 1
        settled.append(reads[run]["call_time"])
        if run:
            diverged.append(reads[run - 1]["call_time"])
    upper = max(settled) - heal_time if settled else None
    return upper, (max(diverged) - heal_time if diverged else None)


def linearizable(history):
    """Every key's sub-history has a linearizable order, by the reference search (a CAS register per key)."""
    keys = {raw["key"] for raw in history if raw["process"] != "nemesis"}
    return all(
        search_reference([raw for raw in history if raw["process"] != "nemesis" and raw["key"] == k], "cas_register")
        for k in keys
    )


def recomputed(history, plan):
    """The row's figures, each by its definition."""
    ops = paired(history)
    partition, traffic = (plan.partition_at, plan.heal_at), (0.0, plan.duration)
    phases = {"before": (0.0, plan.partition_at), "during": partition, "after": (plan.heal_at, plan.duration)}
    latency = {
        name: [
            1000 * (op["ret_time"] - op["call_time"])
            for op in ops
            if op["status"] == "ok" and lo <= op["call_time"] < hi
        ]
        for name, (lo, hi) in phases.items()
    }
    stale_count, reads = stale(ops)
    lost_count, checked = lost(ops, heal_position(history))
    upper, lower = convergence(ops, history)
    return {
        "availability": availability(ops, plan.servers, traffic),
        "availability_minority": availability(ops, plan.minority, partition),
        "availability_majority": availability(ops, plan.majority, partition),
        "stale_read_fraction": stale_count / reads if reads else None,
        "lost_writes": lost_count,
        "acknowledged_writes": checked,
        "p50_ms": {name: nearest_rank(values, 50) for name, values in latency.items()},
        "p99_ms": {name: nearest_rank(values, 99) for name, values in latency.items()},
        "convergence_s": upper,
        "diverged_s": lower,
        "after_fs": {
            op["f"] for op in ops if op["status"] == "ok" and phases["after"][0] <= op["call_time"] < plan.duration
        },
    }


def assert_row_is_its_definition(row, history, plan):
    expected = recomputed(history, plan)
    for key in ("availability", "availability_minority", "availability_majority", "stale_read_fraction"):
        assert (row[key] is None) == (expected[key] is None), key
        if expected[key] is not None:
            assert math.isclose(row[key], expected[key], abs_tol=1e-12), (key, row[key], expected[key])
    for key in ("lost_writes", "acknowledged_writes"):
        assert row[key] == expected[key], (key, row[key], expected[key])
    for key in ("p50_ms", "p99_ms"):
        for phase, value in expected[key].items():
            got = row[key][phase]
            assert (got is None) == (value is None) and (value is None or abs(got - value) <= 1e-3), (key, phase)
    for key in ("convergence_s", "diverged_s"):
        assert (row[key] is None) == (expected[key] is None), key
        assert expected[key] is None or math.isclose(row[key], expected[key], abs_tol=1e-9), key
    assert expected["after_fs"] <= {"read"}, "after the heal the clients only read"
    assert_the_experiment_is_as_its_docstring_says(history)
    if row["linearizable"] is not None:  # None: the wall-clock budget ran out (said as 'unknown')
        assert row["linearizable"] == linearizable(history)


def assert_the_experiment_is_as_its_docstring_says(history):
    """Fresh keys are written once and never again; after the traffic, every key written is read (the final reads)."""
    ops = paired(history)
    fresh = [op["key"] for op in ops if op["f"] != "read" and not isinstance(op["key"], int)]
    assert len(fresh) == len(set(fresh)), "a fresh key written twice"
    heal = heal_position(history)
    read = {op["key"] for op in ops if op["f"] == "read" and op["status"] == "ok" and op["call"] > heal}
    assert {op["key"] for op in ops if op["f"] != "read"} <= read, "a key written was never read at the end"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), name=st.sampled_from(sorted(BUILTIN)), nodes=st.sampled_from([3, 5]))
def test_each_figure_of_a_run_is_what_its_definition_computes_from_the_raw_history(seed, name, nodes):
    """Availability, verdict, stale reads, lost writes, latency percentiles and convergence, recomputed here."""
    plan = Plan(seed=seed, nodes=nodes, duration=4.0, partition_at=1.0, heal_at=3.0, rate=40.0)
    run = run_config(BUILTIN[name], plan)
    assert_row_is_its_definition(run.row, run.history, plan)


def test_the_default_run_s_figures_are_their_definitions():
    """The default timeline (seed 1, 12 s) of cp, which refuses, and ap, which answers and is stale."""
    plan = Plan()
    for name in ("cp", "ap"):
        run = run_config(BUILTIN[name], plan)
        assert_row_is_its_definition(run.row, run.history, plan)


def op(process, f, key, value, node, start, end, status, error=None, out=None):
    """An invoke and its completion (raw dicts); a read's value is its output."""
    base = {"process": process, "f": f, "key": key, "node": node}
    done = {**base, "type": status, "value": out if f == "read" else value, "time": end}
    if error is not None:
        done["error"] = [error, "text"]
    return [(start, {**base, "type": "invoke", "value": None if f == "read" else value, "time": start}), (end, done)]


def test_availability_counts_refusals_timeouts_and_unanswered_ops_against_it_on_either_side():
    """Gilbert and Lynch with a deadline: 11 and a timeout are not responses; 22 and 20 are; the minority counts."""
    plan = Plan(duration=4.0, partition_at=1.0, heal_at=3.0)
    events = [
        *op(0, "read", 0, None, "n0", 1.1, 1.2, "fail", 11),  # a refusal
        *op(0, "write", 0, 5, "n0", 1.3, 1.8, "info"),  # a timeout
        *op(0, "cas", 0, [1, 2], "n0", 1.9, 1.95, "fail", 22),  # an answer: precondition failed
        *op(0, "read", 0, None, "n0", 2.0, 2.1, "fail", 20),  # an answer: no such key
        *op(2, "read", 0, None, "n2", 1.1, 1.2, "ok", out=None),
        *op(2, "write", 0, 6, "n2", 2.1, 2.2, "fail", 11),
    ]
    history = [raw for _, raw in sorted(events, key=lambda e: e[0])]
    nemesis = [
        {"process": "nemesis", "type": "info", "f": f, "value": None, "time": t}
        for f, t in (("partition", 1.0), ("heal", 3.0))
    ]
    history = [nemesis[0], *history, nemesis[1]]
    sides = {"minority": plan.minority + plan.client_side(plan.minority), "majority": plan.majority}
    row, _ = measure(history, plan, sides)
    # n0's ops hold 1.1-1.3 (refused), 1.3-1.9 (timed out), 1.9-2.0 and 2.0-2.1 (answered): 0.2 of 1.0 s
    assert row["availability_minority"] == pytest.approx(0.2)
    # n2's: 1.1-2.1 answered, 2.1-2.2 refused
    assert row["availability_majority"] == pytest.approx(1.0 / 1.1)
    assert row["availability_minority_ops"] == 2 / 4


def test_not_linearizable_k_counts_the_failing_key_s_ops_outside_the_longest_linearizable_prefix():
    """NO (k ops): k is what the longest linearizable prefix leaves out of the keys found failing (reference search).

    Key 0: write 1, read 1, then a read of nothing (stale in every order), a write 2 and a read 2: the longest
    prefix is the first two, so k = 3, though the last two are fine on their own. Key 1 is linearizable: not counted.
    """
    from tests.common.check_histories import longest_prefix

    plan = Plan(duration=4.0, partition_at=1.0, heal_at=3.0)
    events = [
        *op(0, "write", 0, 1, "n2", 0.1, 0.2, "ok"),
        *op(0, "read", 0, None, "n2", 0.3, 0.4, "ok", out=1),
        *op(1, "read", 0, None, "n3", 0.5, 0.6, "fail", 20),
        *op(0, "write", 0, 2, "n2", 0.7, 0.8, "ok"),
        *op(1, "read", 0, None, "n3", 0.9, 0.95, "ok", out=2),
        *op(2, "write", 1, 7, "n4", 0.1, 0.5, "ok"),
        *op(3, "read", 1, None, "n4", 0.2, 0.3, "ok", out=7),
    ]
    history = [raw for _, raw in sorted(events, key=lambda e: e[0])]
    history += [
        {"process": "nemesis", "type": "info", "f": f, "value": None, "time": t}
        for f, t in (("partition", 1.0), ("heal", 3.0))
    ]
    row, _ = measure(history, plan, {"minority": plan.minority, "majority": plan.majority})
    key0 = [raw for raw in history if raw.get("key") == 0]
    assert (
        row["linearizable"] is False
        and not linearizable(key0)
        and linearizable([r for r in history if r.get("key") == 1])
    )
    assert row["unordered"] == 5 - longest_prefix(key0, "cas_register") == 3


def test_a_key_no_read_reached_after_the_heal_is_named_not_counted_as_checked():
    """Key 1's write was acknowledged but nothing read key 1 after the heal: 'k of n' leaves it out and says so."""
    plan = Plan(duration=4.0, partition_at=1.0, heal_at=3.0)
    events = [
        *op(0, "write", 0, 1, "n2", 0.1, 0.2, "ok"),
        *op(0, "write", 1, 2, "n2", 0.3, 0.4, "ok"),
        *op(1, "read", 1, None, "n3", 0.5, 0.6, "ok", out=2),
        *op(1, "read", 0, None, "n3", 3.5, 3.6, "ok", out=1),
    ]
    nemesis = [
        {"process": "nemesis", "type": "info", "f": f, "value": None, "time": t}
        for f, t in (("partition", 1.0), ("heal", 3.0))
    ]
    history = [raw for _, raw in sorted([*events, *((n["time"], n) for n in nemesis)], key=lambda e: e[0])]
    row, _ = measure(history, plan, {"minority": plan.minority, "majority": plan.majority})
    assert (row["lost_writes"], row["acknowledged_writes"], row["unread_keys"]) == (0, 1, 1)
