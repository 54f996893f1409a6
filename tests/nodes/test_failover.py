"""Failover: epochs, elections, pre-votes and lease promises (nodes/failover.py, via PrimaryReplica)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from nodes.replication import PrimaryReplica
from tests.common.replication_cluster import Cluster


def test_the_smallest_name_starts_as_primary_of_epoch_one():
    """Without any election, n0 leads epoch 1 and the others follow it within a heartbeat."""
    cluster = Cluster(seed=1)
    cluster.run_for(0.1)
    assert cluster.primaries() == [(1, "n0")]
    assert [(node.replog.epoch, node.primary) for node in cluster.live()] == [(1, "n0")] * 3


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_crashed_primary_is_replaced_by_the_most_up_to_date_replica(seed):
    """n1 misses writes while cut off; when n0 crashes only n2 (which has them) can win epoch 2."""
    cluster = Cluster(seed=seed, mode="semi-sync", acks=1)
    cluster.sim.network.partition(["n1"], ["n0", "n2", "c0", "c1", "c2"])
    cluster.start_workload(dests={"c0": "n0", "c1": "n0", "c2": "n2"})
    cluster.run_for(0.1)
    assert cluster.node("n2").replog.last_index > cluster.node("n1").replog.last_index
    cluster.sim.crash("n0")  # writes are in flight to it
    cluster.sim.network.heal()
    cluster.run_for(1.5)
    assert cluster.primaries() == [(cluster.node("n2").replog.epoch, "n2")]
    assert cluster.node("n1").primary == "n2"


def test_a_rejoining_isolated_replica_does_not_depose_a_healthy_primary():
    """Pre-votes keep an isolated node from inflating epochs: after heal n0 still leads epoch 1."""
    cluster = Cluster(seed=4)
    cluster.start_workload()
    cluster.sim.network.isolate("n2")
    cluster.run_for(3.0)
    cluster.sim.network.heal()
    cluster.run_for(1.0)
    assert cluster.primaries() == [(1, "n0")]
    assert cluster.node("n2").replog.epoch == 1
    assert not [event for event in cluster.events if event[2] in ("campaign", "deposed")]


def test_a_restarted_voter_honours_promises_it_may_have_made():
    """With fencing, a node refuses to vote for one lease after it boots; without, it votes at once."""
    for fencing, granted in ((True, False), (False, True)):
        cluster = Cluster(seed=5, fencing=fencing)
        cluster.run_for(0.2)
        cluster.sim.crash("n1")
        cluster.sim.restart("n1")

        async def ask():
            return await cluster.clients[0].rpc(
                "n1", {"type": "vote", "epoch": 7, "pre": False, "last_epoch": 9, "last_index": 99}
            )

        assert cluster.sim.run(ask())["granted"] is granted


def test_a_primary_with_a_valid_lease_refuses_to_vote():
    """A vote request of a higher epoch neither deposes nor wins over a primary whose lease holds."""
    cluster = Cluster(seed=6)
    cluster.run_for(0.2)

    async def ask():
        return await cluster.clients[0].rpc(
            "n0", {"type": "vote", "epoch": 5, "pre": False, "last_epoch": 9, "last_index": 99}
        )

    reply = cluster.sim.run(ask())
    assert (reply["granted"], reply["epoch"]) == (False, 1)
    assert cluster.primaries() == [(1, "n0")]


def test_an_isolated_primary_is_fenced_before_its_successor_is_elected():
    """The cut-off primary acknowledges nothing once a successor exists: its writes fail with 11."""
    cluster = Cluster(seed=7, mode="async")
    cluster.start_workload(dests={"c0": "n0", "c1": "n1", "c2": "n2"})
    cluster.run_for(0.3)
    cut = cluster.sim.now
    cluster.sim.network.partition(["n0", "c0"], ["n1", "n2", "c1", "c2"])
    cluster.run_for(1.5)
    cluster.stop_workload()
    elected = [t for t, _, epoch in cluster.elected() if epoch > 1]
    assert elected
    late = [
        op
        for op in cluster.sim.history
        if op.get("node") == "n0" and op["type"] == "ok" and op["f"] != "read" and op["time"] > min(elected)
    ]
    assert late == [], "a deposed primary acknowledged writes after its successor was elected"
    refused = [
        op
        for op in cluster.sim.history
        if op.get("node") == "n0" and op["type"] == "fail" and op["time"] > cut + cluster.node("n0").lease
    ]
    assert refused and all(op["error"][0] == 11 for op in refused)


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(st.integers(0, 63), st.sampled_from([0.05, 0.3, 0.8])), min_size=1, max_size=8),
)
def test_never_two_primaries_in_one_epoch(seed, cuts):
    """Under any sequence of random partitions and crashes, each epoch has at most one primary."""
    cluster = Cluster(seed=seed, n=5, clients=2)
    cluster.start_workload()
    for bits, pause in cuts:
        side = [name for i, name in enumerate(cluster.names) if bits >> i & 1]
        rest = [name for name in cluster.names if name not in side]
        cluster.sim.network.heal()
        if side and rest:
            cluster.sim.network.partition(side, rest)
        if bits >> 5 & 1:
            victim = cluster.names[bits % 5]
            (cluster.sim.restart if not cluster.sim.alive(victim) else cluster.sim.crash)(victim)
        cluster.run_for(pause)
    cluster.stop_workload()
    winners: dict[int, set] = {}
    for _, node, epoch in cluster.elected():
        winners.setdefault(epoch, set()).add(node)
    assert all(len(nodes) == 1 for nodes in winners.values()), winners


@pytest.mark.parametrize(
    "config, match",
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval must be a positive"),
        ({"election_timeout": "1s"}, "election_timeout must be a positive"),
        ({"heartbeat_interval": 0.5, "election_timeout": 0.3}, "shorter than election_timeout"),
        ({"heartbeat_interval": 0.25, "lease": 0.2}, "shorter than the lease"),
        ({"max_drift": 1.5}, "max_drift must be"),
        ({"fencing": "yes"}, "fencing must be True or False"),
        ({"on_event": 3}, "on_event must be callable"),
    ],
)
def test_failover_misconfiguration_is_refused(config, match):
    """Bad timing or fencing settings raise a ConfigError (a ValueError) saying what to use."""
    sim = em.Simulation(seed=1)
    with pytest.raises(ValueError, match=match):
        sim.add_node("n0", PrimaryReplica, **config)
