"""Tests of emulator/transport/network.py: ``RealNetwork``, the link faults of a real cluster.

The calls keep the simulated network's names and checks; each one records a
nemesis op, reaches every live node before its future is done, and leaves the
cluster's own copy of the fault state equal to every node's.
"""

import asyncio

import pytest

import emulator as em
from emulator.distributions import Constant, Uniform
from emulator.transport import ControlError
from emulator.transport.network import traffic
from tests.common.transport_worlds import node_states, outcome, relay_notes

NAMES = ["n0", "n1", "n2"]  # the conftest cluster's nodes


@pytest.mark.asyncio
async def test_faults_fired_without_waiting_apply_in_order_everywhere(cluster):
    """partition, heal, partition in quick succession, not awaited: every node ends with the last partition."""
    cluster.network.partition(["n0"], ["n1", "n2"])
    cluster.network.heal()
    cluster.network.partition_oneway(["n2"], ["n0"])
    await cluster.settle()
    states = await node_states(cluster)
    assert all(state == cluster.network.faults for state in states.values())
    assert cluster.network.faults["rules"] == [{"partition_oneway": {"src": ["n2"], "dst": ["n0"]}}]
    assert cluster.network.cut("n2", "n0") and not cluster.network.cut("n0", "n2")
    assert [op["f"] for op in cluster.history.nemesis_ops()] == ["partition", "heal", "partition-oneway"]


@pytest.mark.asyncio
async def test_hold_queues_messages_until_release(cluster):
    """Messages between held nodes wait at the sender and arrive, in order, after release."""
    c = await cluster.add_client("c0")
    await cluster.network.hold("n0", "n1")
    for text in ("a", "b"):
        await c.rpc("n0", {"type": "tell", "to": "n1", "text": text})
    await asyncio.sleep(0.05)
    assert await relay_notes(c, "n1") == []
    await cluster.network.release("n0", "n1")
    await asyncio.sleep(0.05)
    assert await relay_notes(c, "n1") == [["n0", "a"], ["n0", "b"]]


@pytest.mark.asyncio
async def test_duplicate_and_latency_apply_to_their_link(cluster):
    """duplicate=1 delivers each message twice; extra latency beyond an rpc's timeout makes it time out."""
    c = await cluster.add_client("c0")
    await cluster.network.set_link_oneway("n0", "n1", duplicate=1.0)
    await c.rpc("n0", {"type": "tell", "to": "n1", "text": "x"})
    await cluster.network.set_link("n0", "n2", latency=0.3)
    relay = await outcome(c.rpc("n0", {"type": "relay", "to": "n2", "timeout": 0.1}, timeout=2.0))
    await asyncio.sleep(0.05)
    assert await relay_notes(c, "n1") == [["n0", "x"], ["n0", "x"]] and relay == "error 0"
    await cluster.network.reset_link("n0", "n2")
    assert await outcome(c.rpc("n0", {"type": "relay", "to": "n2", "timeout": 0.5}, timeout=2.0)) == "ok"


@pytest.mark.asyncio
async def test_network_stats_add_up_over_nodes(cluster):
    """After some relays, the summed counters show the messages sent and delivered."""
    c = await cluster.add_client("c0")
    for name in NAMES:
        await c.rpc(name, {"type": "relay", "to": "n0", "timeout": 1.0})
    stats = await cluster.network.stats()
    assert stats["delivered"] >= 2 * len(NAMES) + 3 and stats["dropped"] == 0


@pytest.mark.asyncio
async def test_isolate_cuts_both_ways_and_heal_removes_every_cut(cluster):
    """isolate(n1) cuts n1 from everyone both ways, not the others from each other; heal restores all."""
    await cluster.network.isolate("n1")
    assert all(cluster.network.cut(a, b) for a, b in (("n1", "n0"), ("n0", "n1"), ("n2", "n1"), ("n1", "n2")))
    assert not cluster.network.cut("n0", "n2")
    c = await cluster.add_client("c0")
    assert await outcome(c.rpc("n0", {"type": "relay", "to": "n1", "timeout": 0.2}, timeout=2.0)) == "error 0"
    await cluster.network.heal()
    assert not any(cluster.network.cut(a, b) for a in NAMES for b in NAMES if a != b)
    assert await outcome(c.rpc("n0", {"type": "relay", "to": "n1", "timeout": 0.5}, timeout=2.0)) == "ok"
    assert [(op["f"], op["value"]) for op in cluster.history.nemesis_ops()] == [("isolate", "n1"), ("heal", None)]


@pytest.mark.asyncio
async def test_partitions_add_up_until_heal_and_are_recorded_sorted(cluster):
    """Two partitions both hold; the ops carry the groups sorted, as the simulation records them."""
    await cluster.network.partition(["n2", "n0"], ["n1"])
    await cluster.network.partition_oneway(["n2"], ["n0"])
    assert cluster.network.cut("n0", "n1") and cluster.network.cut("n1", "n2")
    assert cluster.network.cut("n2", "n0") and not cluster.network.cut("n0", "n2")
    assert [(op["f"], op["value"]) for op in cluster.history.nemesis_ops()] == [
        ("partition", [["n0", "n2"], ["n1"]]),
        ("partition-oneway", [["n2"], ["n0"]]),
    ]
    assert all(state == cluster.network.faults for state in (await node_states(cluster)).values())


@pytest.mark.asyncio
async def test_a_misuse_changes_nothing_anywhere(cluster):
    """Unknown names, a string for a group, a bad probability: ConfigError, no op, no node told."""
    before = cluster.network.faults
    with pytest.raises(em.ConfigError, match="unknown node 'n9'"):
        cluster.network.isolate("n9")
    with pytest.raises(em.ConfigError, match="write \\['n1'\\]"):
        cluster.network.partition_oneway("n1", ["n0"])
    with pytest.raises(em.ConfigError, match="probability"):
        cluster.network.replace_link_oneway("n0", "n1", duplicate=-0.5)
    with pytest.raises(em.ConfigError, match="unknown node 'nx'"):
        cluster.network.hold("n0", "nx")
    assert cluster.network.faults == before and cluster.history.nemesis_ops() == []
    assert all(state == before for state in (await node_states(cluster)).values())


@pytest.mark.asyncio
async def test_overrides_read_back_and_replace_keeps_only_what_is_given(cluster):
    """overrides() gives a link's settings as set (latency a Distribution); replace_link_oneway drops the rest."""
    await cluster.network.set_link_oneway("n0", "n1", latency=Uniform(0.01, 0.02), loss=0.25)
    overrides = cluster.network.overrides("n0", "n1")
    assert isinstance(overrides.pop("latency"), Uniform) and overrides == {"loss": 0.25}
    assert repr(cluster.network.overrides("n0", "n1")["latency"]) == repr(Uniform(0.01, 0.02))
    assert cluster.network.overrides("n1", "n0") == {}
    await cluster.network.replace_link_oneway("n0", "n1", duplicate=0.5)
    assert cluster.network.overrides("n0", "n1") == {"duplicate": 0.5}
    await cluster.network.replace_link_oneway("n0", "n1")
    assert cluster.network.overrides("n0", "n1") == {}
    assert all(state == cluster.network.faults for state in (await node_states(cluster)).values())


@pytest.mark.asyncio
async def test_set_defaults_reach_every_node_and_links_without_overrides(cluster):
    """New defaults are in every node's state; a link's own override still wins over them."""
    await cluster.network.set_link("n0", "n1", loss=0.0)
    await cluster.network.set_defaults(latency=0.3)
    states = await node_states(cluster)
    assert all(state["defaults"] == cluster.network.faults["defaults"] for state in states.values())
    assert cluster.network.overrides("n0", "n1") == {"loss": 0.0}
    c = await cluster.add_client("c0")
    assert await outcome(c.rpc("n0", {"type": "relay", "to": "n2", "timeout": 0.1}, timeout=2.0)) == "error 0"
    await cluster.network.set_defaults(latency=Constant(0.0))
    assert await outcome(c.rpc("n0", {"type": "relay", "to": "n2", "timeout": 0.5}, timeout=2.0)) == "ok"


def test_traffic_sums_the_counters_and_counts_inbound_drops_as_dropped():
    """Drops at the receiver (per reason) add to the sender's drops; absent counters are zero."""
    statuses = [
        {"counters": {"sent": 5, "delivered": 4, "dropped": 1, "inbound_dropped": {"cut": 2, "paused": 1}}},
        {"counters": {"sent": 3, "duplicated": 2}},
        {"counters": {}},
    ]
    assert traffic(statuses) == {"sent": 8, "delivered": 4, "dropped": 4, "duplicated": 2}
    assert traffic([]) == {"sent": 0, "delivered": 0, "dropped": 0, "duplicated": 0}


# -- cut ids ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_cut_id_heals_exactly_its_own_cut_on_every_node(cluster):
    """Three cuts; heal(the middle one's id): the other two hold, on the cluster's copy and on every node."""
    first = cluster.network.partition(["n0"], ["n1", "n2"])
    second = cluster.network.isolate("n2")
    third = cluster.network.partition_oneway(["n1"], ["n0"])
    assert (first, second, third) == (1, 2, 3) and await second == 2
    await cluster.network.heal(second)
    await cluster.settle()
    assert cluster.network.cut("n0", "n1") and cluster.network.cut("n1", "n0")  # first and third stay
    assert not cluster.network.cut("n1", "n2") and not cluster.network.cut("n2", "n1")  # second's only link
    assert cluster.network.faults["cut_ids"] == [1, 3]
    assert all(state == cluster.network.faults for state in (await node_states(cluster)).values())
    heals = [op["value"] for op in cluster.history.nemesis_ops() if op["f"] == "heal"]
    assert heals == [[2]]


@pytest.mark.asyncio
async def test_ids_are_never_reused_and_a_restarted_node_gets_them(cluster):
    """After heal() the next cut gets a fresh id; a node restarted meanwhile files the cut under that id too."""
    cluster.network.partition(["n0"], ["n1"])
    cluster.network.heal()
    cluster.crash("n2")
    later = cluster.network.partition(["n1"], ["n2"])
    await cluster.restart("n2")
    await cluster.settle()
    assert later == 2 and (await node_states(cluster))["n2"]["cut_ids"] == [2]
    await cluster.network.heal(later)
    assert not cluster.network.cut("n1", "n2") and (await node_states(cluster))["n2"]["rules"] == []


@pytest.mark.asyncio
async def test_healing_an_unknown_cut_says_which_are_active_and_changes_nothing(cluster):
    """heal(id) of no active cut: the simulation's ConfigError, no op recorded, no node told."""
    cut = await cluster.network.partition(["n0"], ["n1"])
    before = cluster.network.faults
    with pytest.raises(em.ConfigError, match=r"heal\(7\): no such cut; the active ones are \[1\]"):
        cluster.network.heal(7, cut)
    assert cluster.network.faults == before and [op["f"] for op in cluster.history.nemesis_ops()] == ["partition"]
    assert all(state == before for state in (await node_states(cluster)).values())


@pytest.mark.asyncio
async def test_awaiting_a_cut_raises_when_a_node_did_not_apply_it(cluster):
    """A node that cannot be reached: the cut still has its id, and awaiting it raises the ControlError."""
    await cluster._hosts["n1"].stop()
    cut = cluster.network.isolate("n0")
    assert cut == 1
    with pytest.raises(ControlError, match="isolate failed on 1 node"):
        await cut
    assert cluster.errors and cluster.errors[0]["what"] == "isolate"
