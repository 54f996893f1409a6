"""The membership nemesis: sharded-kv servers join and leave under traffic, retried while the cluster refuses."""

import pytest

from faults import Cluster, Injector, Membership, ParamError, Phase, Scenario, Schedule, Workload, run_chaos
from faults.checks import validate_check
from faults.membership import pending
from faults.scenario import Network
from tests.common.faults_nodes import pingers

MEMBERS = ["n0", "n1", "n2"]


def scenario(schedule, seed_phase=6.0, settle=4.0, heal=True, **workload):
    options = {"clients": 4, "rate": 60, "keys": 6, "timeout": 0.5, "final_reads": True, **workload}
    return Scenario(
        Cluster("sharded-kv", nodes=5, config={"members": MEMBERS}),
        Workload(**options),
        [Phase("changes", seed_phase, schedule), Phase("settle", settle, heal=heal)],
        checks={n: validate_check(n, {}) for n in ("linearizable", "lost-writes", "node-errors")},
    )


def views(sim):
    return {n: sim.node(n).view()["active"]["members"] for n in sim.servers if sim.alive(n)}


def test_a_spare_joins_and_leaves_again_while_the_store_stays_linearizable():
    """Two membership steps: each joins a spare (n3 or n4) and undoes it at its stop; nothing lost, all agree."""
    result = run_chaos(scenario(Schedule().add(0.5, "membership", 2.0).add(3.0, "membership", 2.0)), seed=1)
    assert result.passed, [c.summary for c in result.failed]
    starts = [op["value"] for op in result.history.nemesis_ops() if op["f"] == "start-membership"]
    stops = [op["value"] for op in result.history.nemesis_ops() if op["f"] == "stop-membership"]
    assert [s["change"] for s in starts] == ["join", "join"] and all(s["node"] in ("n3", "n4") for s in starts)
    assert [s["undo"] for s in stops] == ["leave", "leave"]
    assert set(map(tuple, views(result.sim).values())) == {tuple(MEMBERS)}
    assert result.sim.node("n0").view()["active"]["epoch"] == 5


def test_a_change_waits_out_a_partition_by_retrying_then_completes():
    """A member cut off when the join starts: the join waits (11, timeouts) and completes after the heal."""
    schedule = Schedule().add(0.5, "partition", 1.5, shape="groups", groups=[["n2"], ["n0", "n1", "n3", "n4"]])
    schedule.add(0.6, "membership", None, change="join", node="n3")  # open-ended: the join stays
    result = run_chaos(scenario(schedule, seed_phase=4.0, heal=False), seed=2, keep_trace=True)
    assert result.passed, [c.summary for c in result.failed]
    joins = [r for r in result.sim.trace.records() if r["kind"] == "deliver" and r["src"] == "nemesis-admin"]
    answers = [r for r in result.sim.trace.records() if r["kind"] == "deliver" and r["dest"] == "nemesis-admin"]
    assert len(joins) > 1 and answers[-1]["type"] == "join_ok" and answers[-1]["time"] > 2.0
    assert result.sim.node("n3").view()["active"]["members"] == ["n0", "n1", "n2", "n3"]
    assert all(v == ["n0", "n1", "n2", "n3"] for v in views(result.sim).values())


def test_leave_when_every_server_is_a_member_then_join_back():
    """With no spare, a member other than the leader n0 leaves, and rejoins at the stop."""
    sc = scenario(Schedule().add(0.5, "membership", 2.0), seed_phase=4.0)
    sc.cluster.config = {}
    result = run_chaos(sc, seed=3)
    assert result.passed, [c.summary for c in result.failed]
    (start,) = [op["value"] for op in result.history.nemesis_ops() if op["f"] == "start-membership"]
    assert start["change"] == "leave" and start["node"] != "n0" and start["members"] == sorted(start["members"])
    assert all(len(v) == 5 for v in views(result.sim).values())


def test_membership_needs_a_protocol_with_views_and_checks_its_parameters():
    """Pingers have no view(): a ParamError at start; bad change/node values are refused when built."""
    sim, _ = pingers(3)
    with pytest.raises(ParamError, match="sharded-kv"):
        Injector(sim).start(Membership())
    with pytest.raises(ParamError, match="'join', 'leave'"):
        Membership(change="split")
    with pytest.raises(ParamError, match="server"):
        Membership(node="")


def overlapping(seed_phase: float = 3.0) -> Schedule:
    """Four membership nemeses 20 ms apart, each on for 0.15 s, every 0.25 s: changes and undos overlap."""
    schedule = Schedule()
    at = 0.3
    while at < seed_phase - 0.5:
        for k in range(4):
            schedule.add(at + 0.02 * k, "membership", 0.15)
        at += 0.25
    return schedule


@pytest.mark.parametrize("seed", range(1, 25))
def test_overlapping_changes_from_the_one_admin_client_are_all_undone_under_a_hostile_network(seed):
    """The module doc: when a nemesis stops, its change is undone; with several at once, one change at a time.

    Every nemesis here stops, so after the settle phase the cluster is back to
    its first members, on every live server, whatever the interleaving of
    changes and undos, duplicated and reordered messages and lost answers.
    """
    sc = scenario(overlapping(), seed_phase=3.0, settle=30.0, rate=5)  # the settle outlasts the undos' retries
    sc.network = Network.preset("hostile")
    result = run_chaos(sc, seed=seed)
    starts = [op["value"] for op in result.history.nemesis_ops() if op["f"] == "start-membership"]
    assert len(starts) >= 16 and sum(s["change"] is not None for s in starts) >= 4
    sim = result.sim
    assert pending(sim) == 0
    newest = max((sim.node(n).view()["active"] for n in sim.servers), key=lambda active: active["epoch"])
    assert newest["members"] == MEMBERS, starts
    assert all(sim.node(n).view()["active"] == newest for n in MEMBERS)  # a server that left may lag: not these
