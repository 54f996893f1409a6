"""Named checks that need more than the history: replicas-agree reads each replica's own copy."""

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from faults import DIRECTIONS, SHAPES, cut, run_check, validate_check
from faults.chaos import replica_copies
from faults.partitions import min_servers
from faults.spec import ParamError
from nodes.quorum import QuorumKV
from tests.common.check_histories import race_the_checkers_clock
from tests.common.quorum_cluster import quorum_cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios"


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
    """Overlapping writes, then reads of 0 and of 1: no order explains both, and only a search of the writes'
    orders finds it (exponential without luck)."""
    ops = [{"process": p, "type": "invoke", "f": "write", "key": 1, "value": p} for p in range(writers)]
    ops += [{"process": p, "type": "ok", "f": "write", "key": 1, "value": p} for p in range(writers)]
    for process, seen in ((98, 0), (99, 1)):
        read = {"process": process, "f": "read", "key": 1}
        ops += [{**read, "type": "invoke", "value": None}, {**read, "type": "ok", "value": seen}]
    return ops


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


# -- availability's reach: judge the ops at nodes that can gather a quorum ---------------------------


class _Quiet(em.Node):
    """A server that does nothing: only its links matter here."""


def _cut_history(cuts, nodes, answered=False) -> list[dict]:
    """start-partition ops for ``cuts`` (faults.partitions.Cut) at t=1, then one read per node at t=2."""
    history = [
        {"process": "nemesis", "type": "info", "f": "start-partition", "value": {"id": i, **c.value()}, "time": 1.0}
        for i, c in enumerate(cuts, 1)
    ]
    for p, node in enumerate(nodes):
        invoke = {"process": p, "type": "invoke", "f": "read", "key": 0, "value": None, "time": 2.0, "node": node}
        done = {**invoke, "type": "ok", "value": 1} if answered else {**invoke, "type": "fail", "error": [11, "no"]}
        history += [invoke, {**done, "time": 2.01}]
    return history


@st.composite
def _cuts(draw):
    """Server names and one or two overlapping cuts of any shape and direction, partial groups included."""
    nodes = [f"n{i}" for i in range(draw(st.integers(2, 6)))]
    chosen = []
    for _ in range(draw(st.integers(1, 2))):
        shape = draw(st.sampled_from([s for s in SHAPES if s != "isolate-primary" and len(nodes) >= min_servers(s)]))
        direction = "both" if shape == "majorities-ring" else draw(st.sampled_from(DIRECTIONS))
        groups = None
        if shape == "groups":  # two disjoint groups, not necessarily every server: the others keep every link
            order = draw(st.permutations(nodes))
            k = draw(st.integers(1, len(nodes) - 1))
            groups = [order[:k], order[k : draw(st.integers(k + 1, len(nodes)))]]
        chosen.append(cut(shape, nodes, random.Random(draw(st.integers(0, 99))), direction, groups=groups))
    return nodes, chosen


@settings(max_examples=200, deadline=None)
@given(drawn=_cuts())
def test_reach_counts_the_servers_a_node_exchanges_messages_with_both_ways_as_the_kernel_cuts_them(drawn):
    """An op is set aside exactly when its node, under the cuts in force, has messages pass both ways with fewer
    than ``reach`` servers (itself included), asked of the kernel's own links after the cuts were made."""
    nodes, cuts = drawn
    sim = em.Simulation(seed=1)
    for name in nodes:
        sim.add_node(name, _Quiet)
    for c in cuts:
        c.apply(sim.network)
    both = {a: sum(1 for b in nodes if a == b or not (sim.network.cut(a, b) or sim.network.cut(b, a))) for a in nodes}
    history = _cut_history(cuts, nodes)
    for least in range(1, len(nodes) + 1):
        params = validate_check("availability", {"reach": least})
        result = run_check("availability", params, history, servers=nodes)
        judged = sorted(nodes[p] for p in range(len(nodes)) if both[nodes[p]] >= least)
        assert result.details["overall"]["total"] == len(judged), (least, both)
        assert result.details["set_aside"]["total"] == len(nodes) - len(judged)


def test_reach_set_aside_ops_are_reported_and_without_reach_every_op_is_judged():
    """isolate-one of five, R = W = 2: the lone node's op is set aside and named in the summary, the others judged;
    without ``reach`` the same history is judged whole, as before."""
    nodes = [f"n{i}" for i in range(5)]
    lone = cut("groups", nodes, random.Random(0), groups=[["n1"], ["n0", "n2", "n3", "n4"]])
    history = _cut_history([lone], nodes, answered=True)
    history[-1] = {**history[-1], "type": "fail", "error": [11, "n4 believes only 1 reachable"]}
    history[4] = {**history[4], "type": "fail", "error": [11, "n1 believes only 1 reachable"]}  # n1's completion
    judged = run_check("availability", validate_check("availability", {"min": 0.75, "reach": 2}), history)
    assert judged.passed is True and judged.details["set_aside"] == {
        "reach": 2,
        "ok": 0,
        "total": 1,
        "start": None,
        "end": None,
        "fraction": 0.0,
    }
    assert judged.summary == (
        "75.0% answered (3 of 4) at nodes reaching 2 or more servers, >= 75.0%; "
        "1 sent to nodes reaching fewer, not judged (0 answered)"
    )
    whole = run_check("availability", validate_check("availability", {"min": 0.75}), history)
    assert whole.passed is False and whole.details["overall"]["total"] == 5 and "set_aside" not in whole.details


@pytest.mark.parametrize("reach", [0, -1, 2.5, True, "two"])
def test_an_availability_reach_that_is_not_a_whole_number_of_servers_is_refused(reach):
    """reach counts servers, the node itself included: a ParamError naming it unless a whole number >= 1."""
    with pytest.raises(ParamError, match=r"availability\.reach"):
        validate_check("availability", {"reach": reach})


def test_the_sloppy_scenario_judges_availability_where_r_and_w_are_reachable_and_seed_5_passes():
    """quorum-sloppy-partitions failed seed 5 (91.5% < 95%): of 990 ops in its partitions phase, 74 went to a node
    cut off alone (isolate-one, 3.1 s of n1 and 3.7 s of n4), which with R = W = 2 refuses every one with 11, as
    nodes.quorum says. Its check now judges the nodes that reach max(R, W) servers, 98.9% answered, and reports the
    lone nodes' ops apart: exactly the isolated sides' ops, none answered."""
    from faults import load_scenario, run_chaos

    scenario = load_scenario(EXAMPLES / "quorum-sloppy-partitions.toml")
    config = scenario.cluster.config
    (phase,) = [p for p in scenario.phases if p.name == "partitions"]
    assert phase.checks["availability"]["reach"] == max(config["r"], config["w"]) and config["sloppy"]
    result = run_chaos(scenario, seed=5)
    (check,) = [c for c in result.checks if c.name == "availability" and c.phase == "partitions"]
    lone = [side for cut_ in check.details["partitions"] for name, side in cut_["sides"].items() if name == "isolated"]
    assert check.passed and check.details["overall"]["total"] == 916 and check.details["overall"]["ok"] == 906
    assert check.details["set_aside"]["total"] == sum(side["total"] for side in lone) == 74
    assert check.details["set_aside"]["ok"] == sum(side["ok"] for side in lone) == 0
    assert result.passed


def test_the_sloppy_scenario_reports_the_half_second_after_the_heal_and_judges_the_rest_whole():
    """Seed 109 failed its settle phase (97.6% < 99%): n4, cut off alone until the heal at 20 s, refused with 11
    until its next probe (probe_interval 0.25 s) cleared its suspicions, and so did n4 for requests forwarded to
    it. The scenario now reports that first half second (rejoin) and asks every later request to be answered."""
    from faults import load_scenario, run_chaos

    scenario = load_scenario(EXAMPLES / "quorum-sloppy-partitions.toml")
    result = run_chaos(scenario, seed=109)
    checks = {c.phase: c for c in result.checks if c.name == "availability"}
    rejoin, settle = checks["rejoin"].details["overall"], checks["settle"].details["overall"]
    assert rejoin["ok"] < rejoin["total"] and checks["rejoin"].passed  # reported, not judged
    assert settle["ok"] == settle["total"] > 0 and checks["settle"].passed
    heal = 20.0
    inv, missed = {}, []
    for op in result.history:
        if op["process"] == "nemesis":
            continue
        if op["type"] == "invoke":
            inv[op["process"]] = op
        elif inv[op["process"]]["time"] >= heal and op["type"] != "ok" and (op.get("error") or [0])[0] != 20:
            missed.append((inv[op["process"]]["time"] - heal, op["type"], op["error"][0]))
    probe = QuorumKV(**scenario.cluster.config).probe_interval
    assert missed and all(took < probe and kind == "fail" and code == 11 for took, kind, code in missed), missed
