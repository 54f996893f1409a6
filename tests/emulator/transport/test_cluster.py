"""Tests of emulator/transport/cluster.py: the simulation's fault API on real nodes (in process)."""

import asyncio

import pytest

import emulator as em
from emulator.check import linearizable
from emulator.transport import ControlError, RealCluster
from nodes.kv import SingleKV
from tests.common.transport_nodes import Relay
from tests.common.transport_worlds import node_states, outcome, relay_notes

NAMES = ["n0", "n1", "n2"]  # the conftest cluster's nodes


@pytest.mark.asyncio
async def test_a_misuse_raises_at_the_call(cluster):
    """Unknown names, a string for a group, restarting a live node: ConfigError before any node hears of it."""
    with pytest.raises(em.ConfigError, match="unknown node 'n9'"):
        cluster.network.partition(["n0"], ["n9"])
    with pytest.raises(em.ConfigError, match="write \\['n0'\\]"):
        cluster.network.partition("n0", ["n1"])
    with pytest.raises(em.ConfigError, match="crash it before restarting"):
        cluster.restart("n1")
    with pytest.raises(em.ConfigError, match="probability"):
        cluster.network.set_link("n0", "n1", loss=3)
    await cluster.add_client("c0")
    with pytest.raises(em.ConfigError, match="node faults apply to servers"):
        cluster.crash("c0")
    assert cluster.history.nemesis_ops() == [] and set((await node_states(cluster))["n0"]["rules"]) == set()


@pytest.mark.asyncio
async def test_a_restarted_node_gets_the_current_faults(cluster):
    """A node down while a partition was made learns it when restarted."""
    await cluster.crash("n1")
    assert not cluster.alive("n1")
    await cluster.network.partition(["n0"], ["n1", "n2"])
    await cluster.restart("n1")
    assert (await node_states(cluster))["n1"]["rules"] == [{"partition": {"groups": [["n0"], ["n1", "n2"]]}}]
    c = await cluster.add_client("c0")
    relay = {"type": "relay", "to": "n0", "timeout": 0.2}
    assert await outcome(c.rpc("n1", relay, timeout=2.0)) == "error 0"
    assert [op["f"] for op in cluster.history.nemesis_ops()] == ["crash", "partition", "restart"]


@pytest.mark.asyncio
async def test_a_failed_control_call_is_reported(cluster):
    """A node that stopped behind the cluster's back makes the fault's future raise and lands in errors."""
    await cluster._hosts["n2"].stop()
    with pytest.raises(ControlError, match="failed on 1 node"):
        await cluster.network.isolate("n0")
    assert cluster.errors and cluster.errors[0]["what"] == "isolate"


@pytest.mark.asyncio
async def test_a_soft_pause_holds_traffic_until_resume(cluster):
    """An in-process pause holds the node's inbox: a note sent meanwhile arrives after resume."""
    c = await cluster.add_client("c0")
    await cluster.pause("n1")
    await c.rpc("n0", {"type": "tell", "to": "n1", "text": "later"})
    assert await outcome(c.rpc("n1", {"type": "notes"}, timeout=0.1)) == "timeout"
    await cluster.resume("n1")
    await asyncio.sleep(0.05)
    assert await relay_notes(c, "n1") == [["n0", "later"]]


@pytest.mark.asyncio
async def test_clients_record_a_checkable_history_with_wall_times():
    """Concurrent clients against real SingleKV nodes record increasing times and a linearizable history."""
    real = await RealCluster.local({name: SingleKV for name in NAMES})
    try:
        clients = [await real.add_client(f"c{i}") for i in range(3)]

        async def work(client, i):
            for j in range(10):
                await client.invoke("write", key="k", value=10 * i + j)
                await client.invoke("read", key="k")

        await asyncio.gather(*(work(c, i) for i, c in enumerate(clients)))
    finally:
        await real.close()
    times = [op["time"] for op in real.history]
    assert len(times) == 120 and times == sorted(times) and times[0] >= 0
    assert linearizable(list(real.history), model="register").valid is True


@pytest.mark.asyncio
async def test_batches_over_the_body_limit_are_split_and_oversized_messages_dropped():
    """A burst bigger than the peers' body limit still arrives, in order; one message over the limit is dropped."""
    real = await RealCluster.local({"n0": Relay, "n1": Relay}, max_body=2048)
    try:
        for i in range(100):
            real.node("n0").send("n1", {"type": "note", "text": f"{i:03d}" + "x" * 40})
        real.node("n0").send("n1", {"type": "note", "text": "y" * 4000})
        for _ in range(200):
            notes = real.node("n1").notes
            drops = dict(real._hosts["n0"].transport.drops)
            if len(notes) >= 100 and drops:
                break
            await asyncio.sleep(0.01)
    finally:
        await real.close()
    assert [int(text[:3]) for _, text in notes] == list(range(100))
    assert drops == {"too-large": 1}
