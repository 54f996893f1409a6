"""The CAP table's figures, each against its definition: availability per client in time, silently overwritten."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsim.cap import BUILTIN, Plan, run_config
from capsim.cap.metrics import measure, silently_overwritten
from emulator.check import pair_ops

SIDES = {"minority": ["n0", "n1"], "majority": ["n2", "n3", "n4"]}
PARTITION = (3.0, 8.0)


def history(*ops):
    """Op dicts from (f, key, value, node, start, end, status) tuples, each on its own process, in time order."""
    events = []
    for process, (f, key, value, node, start, end, status) in enumerate(ops):
        base = {"process": process, "f": f, "key": key, "node": node}
        events.append((start, {**base, "type": "invoke", "value": None if f == "read" else value, "time": start}))
        events.append((end, {**base, "type": status, "value": value, "time": end}))
    events.sort(key=lambda e: e[0])
    return [op for _, op in events]


def test_the_last_write_of_the_losing_side_is_silently_overwritten():
    """Both sides write k in the partition; the majority's value wins: only the minority's last write counts."""
    h = history(
        ("write", "k", 1, "n0", 3.1, 3.11, "ok"),
        ("write", "k", 2, "n0", 3.5, 3.51, "ok"),
        ("write", "k", 3, "n2", 4.0, 4.01, "ok"),
        ("read", "k", 3, "n2", 9.0, 9.01, "ok"),
    )
    found = silently_overwritten(h, SIDES, PARTITION)
    assert [op.value for op in found] == [2]


def test_the_winner_may_be_either_side_and_cas_counts():
    """When the minority's value wins, the majority's last acknowledged write or cas is the one discarded."""
    h = history(
        ("cas", "k", [0, 5], "n3", 3.2, 3.21, "ok"),
        ("write", "k", 7, "n1", 6.0, 6.01, "ok"),
        ("read", "k", 7, "n4", 9.0, 9.01, "ok"),
    )
    assert [op.value for op in silently_overwritten(h, SIDES, PARTITION)] == [[0, 5]]


@pytest.mark.parametrize(
    "ops",
    [
        # an overwrite by the same side is an ordinary overwrite
        [
            ("write", "k", 1, "n2", 3.1, 3.11, "ok"),
            ("write", "k", 2, "n3", 3.5, 3.51, "ok"),
            ("read", "k", 2, "n2", 9.0, 9.01, "ok"),
        ],
        # the final value is from before the partition: a rollback, not an overwrite by a concurrent write
        [
            ("write", "k", 1, "n2", 1.0, 1.01, "ok"),
            ("write", "k", 2, "n0", 3.5, 3.51, "ok"),
            ("read", "k", 1, "n2", 9.0, 9.01, "ok"),
        ],
        # a write that failed (definitely not applied) is not an acknowledged write
        [
            ("write", "k", 1, "n0", 3.1, 3.11, "fail"),
            ("write", "k", 2, "n2", 3.5, 3.51, "ok"),
            ("read", "k", 2, "n2", 9.0, 9.01, "ok"),
        ],
        # writes outside the partition are not concurrent across it
        [
            ("write", "k", 1, "n0", 8.5, 8.51, "ok"),
            ("write", "k", 2, "n2", 3.5, 3.51, "ok"),
            ("read", "k", 2, "n2", 9.0, 9.01, "ok"),
        ],
    ],
)
def test_what_is_not_silently_overwritten(ops):
    """Own-side overwrites, rollbacks, failed writes and writes outside the partition do not count."""
    assert silently_overwritten(history(*ops), SIDES, PARTITION) == []


@pytest.fixture(scope="module")
def runs():
    plan = Plan(seed=3, duration=9.0, partition_at=2.0, heal_at=6.0)
    return plan, {name: run_config(BUILTIN[name], plan) for name in ("cp", "ap", "sync")}


def _by_hand(run, plan, nodes, span):
    """Availability by its definition, computed here: per client (node), the share of the time its ops invoked in
    ``span`` held it (each to the client's next invocation, its last to its completion) that answered ops held;
    then the mean over the clients."""
    ops, _ = pair_ops(run.history)
    fractions = []
    for node in nodes:
        mine = [op for op in ops if op.node == node]
        held = answered = 0.0
        for i, op in enumerate(mine):
            if span[0] <= op.call_time < span[1]:
                until = mine[i + 1].call_time if i + 1 < len(mine) else (op.ret_time or span[1])
                held += until - op.call_time
                answered += (until - op.call_time) * _answered(op)
        if held:
            fractions.append(answered / held)
    return sum(fractions) / len(fractions)


def test_availability_figures_follow_their_definition(runs):
    """Per side and whole run alike: per client, the share of its time answered, then the mean over the clients."""
    plan, results = runs
    for run in results.values():
        for side, nodes in (("minority", plan.minority), ("majority", plan.majority)):
            expected = _by_hand(run, plan, nodes, (plan.partition_at, plan.heal_at))
            assert run.row[f"availability_{side}"] == pytest.approx(expected)
        assert run.row["availability"] == pytest.approx(_by_hand(run, plan, plan.servers, (0.0, plan.duration)))


def _client(node, start, end, every, status, length):
    """One client's ops on ``node`` from ``start`` to ``end``, one invoked every ``every`` s, each taking
    ``length`` s and ending ``status`` (an info is a timeout: a new process for the next op)."""
    ops, t = [], start
    while t < end - 1e-9:
        ops.append(("read", "k", None, node, t, t + length, status))
        t += every
    return ops


def _raw(*clients):
    """Op dicts of several clients' ops, each op on a process of its own, in time order."""
    return history(*(op for client in clients for op in client))


def test_a_side_s_availability_is_per_client_not_pooled_over_its_clients():
    """Minority: n0 answered every 50 ms, n1 waiting out 0.5 s timeouts. Per client, 100% and 0%: 50%. Pooled,
    n0's 100 ops a window outweigh n1's two (the figure printed 98% for a client answered 0 of 2 in a window)."""
    plan = Plan(duration=9.0, partition_at=3.0, heal_at=8.0)
    h = _raw(
        _client("n0", 3.0, 8.0, 0.05, "ok", 0.002),
        _client("n1", 3.0, 8.0, 0.5, "info", 0.5),
        _client("n2", 3.0, 8.0, 0.05, "ok", 0.002),
    )
    row, _ = measure(h, plan, SIDES)
    assert row["availability_minority"] == pytest.approx(0.5)
    assert row["availability_minority_ops"] == pytest.approx(100 / 110)  # the op-weighted figure, kept in the JSON
    assert row["availability_majority"] == pytest.approx(1.0)


def test_an_op_invoked_in_the_partition_and_answered_after_the_heal_counts_as_answered():
    """Within its timeout, an answer after the heal is an answer: the op invoked at 7.8 s holds 7.8-8.3 s, answered."""
    plan = Plan(duration=9.0, partition_at=3.0, heal_at=8.0)
    h = history(
        ("write", "k", 1, "n2", 3.0, 3.5, "info"),
        ("write", "k", 2, "n2", 3.6, 4.1, "info"),
        ("write", "k", 3, "n2", 7.8, 8.1, "ok"),
        ("read", "k", 3, "n2", 8.3, 8.31, "ok"),
    )
    row, _ = measure(h, plan, SIDES)
    assert row["availability_majority"] == pytest.approx(0.5 / 5.3)


@st.composite
def _one_side_run(draw):
    """Up to five clients' ops over 0-4 s, each client sequential, with any outcome."""
    ops = []
    for node in ("n0", "n1", "n2", "n3", "n4"):
        t = draw(st.integers(0, 400)) / 100
        for _ in range(draw(st.integers(0, 6))):
            length = draw(st.integers(1, 60)) / 100
            ops.append(("read", "k", None, node, t, t + length, draw(st.sampled_from(["ok", "info", "fail"]))))
            t += length + draw(st.integers(0, 30)) / 100
    return ops


@settings(max_examples=100, deadline=None)
@given(_one_side_run())
def test_the_side_figure_of_a_run_with_one_side_is_the_whole_run_figure(ops):
    """With every server on one side and the partition spanning the run, the side's figure is the whole run's."""
    plan = Plan(duration=4.0, partition_at=0.0, heal_at=4.0)
    row, _ = measure(history(*ops), plan, {"minority": [], "majority": plan.servers})
    assert row["availability_minority"] is None
    assert row["availability_majority"] == row["availability"]


def test_cp_whole_run_availability_counts_the_minority_s_silence_in_time_not_ops(runs):
    """cp serves nothing on 2 of 5 clients for 4 of 9 s: at most 1 - (2/5)(4/9) = 82.2%, where ops give ~93%."""
    plan, results = runs
    cp = results["cp"].row
    ceiling = 1 - (len(plan.minority) / plan.nodes) * (plan.heal_at - plan.partition_at) / plan.duration
    assert cp["availability_minority"] == 0.0
    assert ceiling - 0.08 < cp["availability"] <= ceiling + 1e-9
    assert cp["availability_ops"] > 0.9  # what op-weighting would have claimed


def _answered(op):
    return op.status == "ok" or (op.status == "fail" and op.error and op.error[0] in (20, 21, 22))


def _partition_ops(run, plan, nodes):
    ops, _ = pair_ops(run.history)
    return [op for op in ops if op.node in nodes and plan.partition_at <= op.call_time < plan.heal_at]


def test_a_refused_client_issues_fewer_operations(runs):
    """cp during the partition: a minority client, waiting for refusals and timeouts, issues under half as many ops."""
    plan, results = runs
    minority = len(_partition_ops(results["cp"], plan, plan.minority)) / len(plan.minority)
    majority = len(_partition_ops(results["cp"], plan, plan.majority)) / len(plan.majority)
    assert minority < majority / 2


def test_ap_s_minority_misses_only_first_contacts_across_the_cut(runs):
    """ap's unanswered minority ops are client timeouts (info), at most one per minority node and unreachable peer."""
    plan, results = runs
    missed = [op for op in _partition_ops(results["ap"], plan, plan.minority) if not _answered(op)]
    assert all(op.status == "info" for op in missed)
    assert len(missed) <= len(plan.minority) * len(plan.majority)


def test_sync_serves_reads_on_the_minority_and_almost_nothing_on_the_majority(runs):
    """sync: the old primary answers reads only; the majority answers only ops sent within a timeout of the heal."""
    plan, results = runs
    minority = [op for op in _partition_ops(results["sync"], plan, plan.minority) if _answered(op)]
    assert minority and all(op.f == "read" for op in minority)
    majority = [op for op in _partition_ops(results["sync"], plan, plan.majority) if _answered(op)]
    assert all(op.call_time >= plan.heal_at - plan.timeout and op.ret_time > plan.heal_at for op in majority)
    assert results["sync"].row["availability_majority"] < 0.15 < results["sync"].row["availability_minority"]


def test_sync_s_minority_refuses_writes_after_a_wait_that_holds_most_of_its_time(runs):
    """README: sync's minority reads 'served in milliseconds', its writes 'refused, each after a wait', 'those
    waits hold most of its clients' time': under half its time answered though half its ops are served reads."""
    plan, results = runs
    ops = _partition_ops(results["sync"], plan, plan.minority)
    reads = [op.ret_time - op.call_time for op in ops if _answered(op)]
    refused = [op.ret_time - op.call_time for op in ops if op.f != "read" and op.status == "fail"]
    assert reads and refused and max(reads) < 0.05 < min(refused)
    assert results["sync"].row["availability_minority"] < 0.5 <= results["sync"].row["availability_minority_ops"]


def test_ap_discards_concurrent_writes_and_cp_does_not(runs):
    """The 'silently overwritten' figure shows ap's claim: both sides wrote the shared keys, one side lost."""
    _, results = runs
    assert results["ap"].row["silently_overwritten"] >= 1
    assert results["cp"].row["silently_overwritten"] == 0


def _brute_force(ops, side_of, final):
    """The most acknowledged writes any execution consistent with real time could have discarded.

    Per key and losing side: try every order of the side's writes (ok or info) that keeps real-time order
    (an ok write that returned before another was invoked comes first); the side's last write was discarded
    if it was acknowledged and the key ended with a value of the other side.
    """
    winner = next((op for op in ops if op.value == final), None)
    if winner is None:
        return 0
    total = 0
    for side in sorted(set(side_of.values()) - {side_of[winner.node]}):
        mine = [op for op in ops if side_of[op.node] == side]
        best = 0
        for order in itertools.permutations(mine):
            if order and all(
                not (b.status == "ok" and b.ret < a.call) for i, a in enumerate(order) for b in order[i + 1 :]
            ):
                best = max(best, int(order[-1].status == "ok"))
        total += best
    return total


@st.composite
def _concurrent_writes(draw):
    """One key written 1-5 times during the partition by both sides, often concurrently, then read once."""
    n = draw(st.integers(1, 5))
    rows = []
    for value in range(1, n + 1):
        start = draw(st.sampled_from([3.1, 3.2, 3.3, 3.4]))
        length = draw(st.sampled_from([0.01, 0.15, 0.3]))
        node = draw(st.sampled_from(["n0", "n1", "n2", "n3"]))
        status = draw(st.sampled_from(["ok", "ok", "info"]))
        rows.append(("write", "k", value, node, start, start + length, status))
    final = draw(st.integers(0, n))  # 0: a value from before the partition
    rows.append(("read", "k", final, "n4", 9.0, 9.01, "ok"))
    return rows


@settings(max_examples=300, deadline=None)
@given(_concurrent_writes())
def test_concurrent_last_writes_of_a_side_count_once(rows):
    """Concurrent last writes of one side: only one of them can have been the side's value, so one counts at most."""
    h = history(*rows)
    found = silently_overwritten(h, SIDES, PARTITION)
    ops, _ = pair_ops(h)
    side_of = {node: side for side, nodes in SIDES.items() for node in nodes}
    writes = [op for op in ops if op.f == "write"]
    final = next(op.output for op in ops if op.f == "read")
    assert len(found) == _brute_force(writes, side_of, final)
    assert all(op.status == "ok" and op.value != final for op in found)


def test_two_concurrent_acknowledged_writes_of_the_losing_side_are_one_discard():
    """n0 and n1 write k at once (both ok), the majority's write wins: one of the two was the side's value, not both."""
    h = history(
        ("write", "k", 1, "n0", 3.1, 3.3, "ok"),
        ("write", "k", 2, "n1", 3.2, 3.4, "ok"),
        ("write", "k", 3, "n2", 4.0, 4.01, "ok"),
        ("read", "k", 3, "n2", 9.0, 9.01, "ok"),
    )
    assert len(silently_overwritten(h, SIDES, PARTITION)) == 1
