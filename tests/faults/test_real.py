"""Tests of faults/real.py: run_real on a RealCluster of hosts in this process, in real time.

``capsim chaos --real`` is tested in tests/capsim/commands/test_chaos.py.
"""

import pytest

import emulator as em
from emulator.transport import RealCluster
from faults import (
    Cluster,
    Injector,
    Phase,
    Scenario,
    Schedule,
    Workload,
    run_chaos,
    validate_check,
)
from faults.real import run_real
from nodes.kv import SingleKV

# -- in process: run_real on a RealCluster of hosts --------------------------------------------


def _small(schedule: Schedule, duration: float = 2.0) -> Scenario:
    return Scenario(
        Cluster("lin-kv", 3),
        Workload(clients=3, rate=40, keys=2, timeout=0.25, duration=duration),
        [Phase("main", duration, schedule)],
        checks={"linearizable": validate_check("linearizable", {})},
        seed=9,
    )


@pytest.mark.asyncio
async def test_a_real_run_makes_the_simulations_choices_for_its_seed():
    """Same seed: the same partition sides and, per client, the same operations on the same nodes as in virtual time."""
    scenario = _small(Schedule().add(0.5, "partition", 1.0, shape="halves"))
    simulated = run_chaos(scenario)
    cluster = await RealCluster.local({name: SingleKV for name in scenario.cluster.names}, seed=scenario.seed)
    try:
        real = await run_real(scenario, cluster)
    finally:
        await cluster.close()

    def sides(result):
        return [entry["value"]["sides"] for entry in result.injector.log]

    def choices(result, client):
        return [
            (op["f"], op["key"], op["node"])
            for op in result.history.client_ops()
            if op["type"] == "invoke" and op["client"] == client
        ]

    assert sides(real) == sides(simulated) and real.passed
    for client in ("c0", "c1", "c2"):
        ours, theirs = choices(real, client), choices(simulated, client)
        assert len(ours) > 5 and ours[: min(len(ours), len(theirs))] == theirs[: min(len(ours), len(theirs))]


@pytest.mark.asyncio
async def test_a_link_fault_on_a_real_cluster_restores_the_links_it_found():
    """Loss over a user's latency override: while on, both apply; stopped, exactly the user's override remains."""
    cluster = await RealCluster.local({name: SingleKV for name in ("n0", "n1", "n2")}, seed=1)
    try:
        await cluster.network.set_link_oneway("n0", "n1", latency=0.005)
        injector = Injector(cluster)
        loss = injector.start("loss", loss=0.5, links=[["n0", "n1"]])
        await cluster.settle()
        during = cluster.network.overrides("n0", "n1"), cluster.network.overrides("n1", "n0")
        on_node = (await cluster.status("n0"))["faults"]
        injector.stop(loss)
        await cluster.settle()
        after = cluster.network.overrides("n0", "n1"), cluster.network.overrides("n1", "n0")
        on_node_after = (await cluster.status("n0"))["faults"]
    finally:
        await cluster.close()
    assert (during[0]["loss"], during[0]["latency"].value, during[1]) == (0.5, 0.005, {"loss": 0.5})
    assert (set(after[0]), after[0]["latency"].value, after[1]) == ({"latency"}, 0.005, {})
    assert any("n0->n1" in line and "loss" in line for line in on_node)
    assert not any("loss" in line for line in on_node_after) and any("n0->n1" in line for line in on_node_after)


@pytest.mark.asyncio
async def test_run_real_refuses_a_cluster_that_is_not_the_scenarios():
    """Servers named otherwise than the scenario's n0.. are a ConfigError that says what to start."""
    cluster = await RealCluster.local({"a": SingleKV, "b": SingleKV, "c": SingleKV})
    try:
        with pytest.raises(em.ConfigError, match="servers are n0, n1, n2"):
            await run_real(_small(Schedule()), cluster)
    finally:
        await cluster.close()


@pytest.mark.asyncio
async def test_the_hostile_nemesis_applies_to_a_real_cluster_and_stops_cleanly():
    """hostile on real hosts: every server and client link gets the four settings, and the stop removes them."""
    cluster = await RealCluster.local({name: SingleKV for name in ("n0", "n1", "n2")}, seed=1)
    try:
        await cluster.add_client("c0")
        injector = Injector(cluster)
        hostile = injector.start("hostile")
        await cluster.settle()
        during = [cluster.network.overrides(a, b) for a, b in (("n0", "n1"), ("c0", "n2"), ("n2", "c0"))]
        injector.stop(hostile)
        await cluster.settle()
        after = [cluster.network.overrides(a, b) for a, b in (("n0", "n1"), ("c0", "n2"))]
    finally:
        await cluster.close()
    for overrides in during:
        assert (overrides["loss"], overrides["duplicate"], overrides["reorder"]) == (0.02, 0.1, 0.2)
        assert isinstance(overrides["latency"], em.Pareto)
    assert after == [{}, {}]
