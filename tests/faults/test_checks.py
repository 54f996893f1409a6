"""Named checks that need more than the history: replicas-agree reads each replica's own copy."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from faults import run_check, validate_check
from faults.chaos import replica_copies
from faults.spec import ParamError
from tests.common.check_histories import race_the_checkers_clock
from tests.common.quorum_cluster import quorum_cluster


def test_replicas_agree_fails_while_an_owner_missed_a_write_and_passes_once_it_has_it():
    """An owner cut off during a W=2 write holds nothing: replicas-agree fails; after anti-entropy it passes."""
    sim, (client,) = quorum_cluster(seed=1, nodes=3, clients=1, read_repair=False, anti_entropy=0.2)
    sim.network.isolate("n2")
    sim.run(client.invoke("write", key="k", value=1, dest="n0"))
    params = validate_check("replicas-agree", True)
    copies = replica_copies(sim, ["k"])
    assert copies == {"k": {"n0": [1], "n1": [1], "n2": []}}
    split = run_check("replicas-agree", params, sim.history, replicas=copies)
    assert split.passed is False and "0 of 1 keys" in split.summary and split.details["differ"]["k"]["n2"] == []
    sim.network.heal()
    sim.run(until=sim.now + 2.0)
    healed = run_check("replicas-agree", params, sim.history, replicas=replica_copies(sim, ["k"]))
    assert healed.passed is True and healed.summary == "1 of 1 keys alike on every live owner"


def test_replicas_agree_cannot_tell_without_replica_copies():
    """A protocol without replica(key) gives no copies: the verdict is unknown, which is not a pass."""
    sim = em.Simulation(seed=1)
    from nodes.kv import SingleKV

    sim.add_node("n0", SingleKV)
    assert replica_copies(sim, ["k"]) is None
    assert run_check("replicas-agree", {}, sim.history).passed is None


def test_lost_writes_with_no_final_read_to_check_against_is_unknown():
    """Found by a review: a write acknowledged and never read at the end passed ("0 lost of 0 acknowledged,
    1 keys unchecked"). Jepsen's set checker says unknown when the set was never read; so does this."""
    write = [
        {"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1, "time": 0.0},
        {"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1, "time": 0.1},
    ]
    unread = run_check("lost-writes", {"max": 0}, write)
    assert unread.passed is None and "no final read" in unread.summary
    read = [
        {"process": 1, "type": "invoke", "f": "read", "key": "k", "value": None, "time": 0.2},
        {"process": 1, "type": "ok", "f": "read", "key": "k", "value": 1, "time": 0.3},
    ]
    assert run_check("lost-writes", {"max": 0}, write + read).passed is True
    read[1]["value"] = 2
    assert run_check("lost-writes", {"max": 0}, write + read).passed is False


def test_convergence_with_a_value_that_changed_up_to_the_last_read_is_unknown():
    """Found by a review: reads flipping 1, 2, 1, 2 to the end passed `within = 5` ("settled 4 s after its heal"):
    the lone last read was counted settled. One read shows no agreement; two agreeing reads do."""
    ops = [
        {"process": 0, "type": "invoke", "f": "write", "key": 0, "value": 1, "time": 0.0},
        {"process": 0, "type": "ok", "f": "write", "key": 0, "value": 1, "time": 0.1},
        {"process": "nemesis", "type": "info", "f": "start-partition", "value": {"id": 1}, "time": 0.5},
        {"process": "nemesis", "type": "info", "f": "stop-partition", "value": {"id": 1}, "time": 1.0},
    ]
    for i, value in enumerate([1, 2, 1, 2, 1, 2]):
        ops += [
            {"process": 2, "type": "invoke", "f": "read", "key": 0, "value": None, "time": 1.5 + i / 2},
            {"process": 2, "type": "ok", "f": "read", "key": 0, "value": value, "time": 1.51 + i / 2},
        ]
    flipping = run_check("convergence", validate_check("convergence", {"within": 5.0}), ops)
    assert flipping.passed is None and "cannot tell they settled" in flipping.summary
    ops += [
        {"process": 2, "type": "invoke", "f": "read", "key": 0, "value": None, "time": 4.6},
        {"process": 2, "type": "ok", "f": "read", "key": 0, "value": 2, "time": 4.61},
    ]
    assert run_check("convergence", validate_check("convergence", {"within": 5.0}), ops).passed is True


# -- availability and latency: the table's "passes when", on any history --------------------------------

OUTCOMES = st.sampled_from(
    [("ok", None), ("fail", 20), ("fail", 21), ("fail", 22), ("fail", 11), ("info", None), ("pending", None)]
)
OPS = st.lists(
    st.tuples(st.sampled_from(["read", "write"]), OUTCOMES, st.sampled_from([0.0, 0.05, 0.2, 0.6])),
    min_size=1,
    max_size=30,
)


def _history(ops):
    """One op per process, invoked a second apart, each taking its time; 'pending' never completes."""
    history = []
    for i, (f, (kind, code), took) in enumerate(ops):
        invoke = {"process": i, "type": "invoke", "f": f, "key": 0, "value": None, "time": float(i)}
        history.append(invoke)
        if kind != "pending":
            done = {**invoke, "type": kind, "time": i + took}
            if code is not None:
                done["error"] = [code, "refused"]
            history.append(done)
    for index, op in enumerate(history):
        op["index"] = index
    return history


def _read_nil(f, kind, code):
    """A read answered 'no such key' read nothing: an ok read of nil, as in Jepsen."""
    return f == "read" and kind == "fail" and code == 20


@settings(max_examples=300, deadline=None)
@given(
    ops=OPS, answered=st.lists(st.sampled_from([11, 20, 21, 22]), unique=True), least=st.sampled_from([0.0, 0.5, 1.0])
)
def test_availability_counts_ok_and_the_failures_answered_names_and_no_others(ops, answered, least):
    """answered / invoked: ok ops (a read of no key among them) and fails whose code is in ``answered``, only."""
    history = _history(ops)
    result = run_check("availability", validate_check("availability", {"min": least, "answered": answered}), history)
    good = sum(
        1
        for f, (kind, code), _ in ops
        if kind == "ok" or _read_nil(f, kind, code) or (kind == "fail" and code in answered)
    )
    assert result.details["overall"]["total"] == len(ops) and result.details["overall"]["ok"] == good
    assert result.passed is (good / len(ops) >= least)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, bound=st.sampled_from([0.01, 0.1, 0.3, 1.0]))
def test_latency_max_bounds_every_ok_op_and_no_ok_op_is_unknown(ops, bound):
    """max = b passes iff no ok op took longer than b; without ok ops a bound is unknown (None), no bound passes."""
    history = _history(ops)
    took = [t for f, (kind, code), t in ops if kind == "ok" or _read_nil(f, kind, code)]
    result = run_check("latency", validate_check("latency", {"max": bound}), history)
    assert result.passed is (None if not took else max(took) <= bound)
    assert run_check("latency", validate_check("latency", {}), history).passed is True


def _hard_history(writers: int = 14) -> list[dict]:
    """Overlapping writes and a read of a value nobody wrote: exponential for the search without luck."""
    ops = [{"process": p, "type": "invoke", "f": "write", "key": 1, "value": p} for p in range(writers)]
    ops += [{"process": p, "type": "ok", "f": "write", "key": 1, "value": p} for p in range(writers)]
    read = {"process": 99, "f": "read", "key": 1}
    return ops + [{**read, "type": "invoke", "value": None}, {**read, "type": "ok", "value": "x"}]


def test_the_linearizable_check_is_cut_by_steps_by_default_so_a_seed_judges_the_same_anywhere(monkeypatch):
    """By default the search's budget is a count of steps, never the clock: with the checker's clock racing
    (an hour gone at every look) the verdict is the same; a scenario's steps and timeout are each honoured."""
    defaults = validate_check("linearizable", True)
    assert defaults["steps"] == 10_000_000 and defaults["timeout"] is None
    small = validate_check("linearizable", {"steps": 5_000})
    assert run_check("linearizable", small, _hard_history()).passed is None  # unknown does not pass
    assert run_check("linearizable", defaults, _hard_history(writers=8)).passed is False

    race_the_checkers_clock(monkeypatch)
    assert run_check("linearizable", defaults, _hard_history(writers=8)).passed is False
    timed = validate_check("linearizable", {"timeout": 10.0})
    assert run_check("linearizable", timed, _hard_history(writers=8)).passed is None  # the clock says time is up


@pytest.mark.parametrize("steps", [0, -1, 2.5, True, "many"])
def test_a_linearizable_step_budget_that_is_not_a_positive_whole_number_is_refused(steps):
    """A scenario's steps must be a whole number >= 1: a ParamError naming it, when the file is read."""
    with pytest.raises(ParamError, match=r"linearizable\.steps"):
        validate_check("linearizable", {"steps": steps})
