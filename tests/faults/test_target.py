"""Tests of faults/target.py: the simulation and a real cluster are both fault targets, and nothing else is."""

import pytest

import emulator as em
from emulator.transport import RealCluster
from faults import Injector, Loss, Partition
from faults.target import FaultTarget
from nodes.kv import SingleKV


@pytest.mark.asyncio
async def test_a_simulation_and_a_real_cluster_are_fault_targets_with_the_same_network_calls():
    """Both pass the protocol; on both, partition gives an int id that heal takes, and overrides read back."""
    sim = em.Simulation(seed=1)
    for name in ("n0", "n1"):
        sim.add_node(name, SingleKV)
    cluster = await RealCluster.local({"n0": SingleKV, "n1": SingleKV})
    try:
        for target in (sim, cluster):
            assert isinstance(target, FaultTarget)
            cut = target.network.partition(["n0"], ["n1"])
            assert isinstance(cut, int) and target.network.cut("n0", "n1")
            target.network.heal(cut)
            target.network.replace_link_oneway("n0", "n1", loss=0.25)
            assert not target.network.cut("n0", "n1") and target.network.overrides("n0", "n1") == {"loss": 0.25}
        await cluster.settle()
        assert cluster.errors == []
    finally:
        await cluster.close()


def test_the_same_injector_runs_the_same_nemeses_on_a_simulation():
    """No subclass per target: start and stop a partition and a link fault through the protocol alone."""
    sim = em.Simulation(seed=1)
    for name in ("n0", "n1", "n2"):
        sim.add_node(name, SingleKV)
    injector = Injector(sim)
    cut, loss = injector.start(Partition(shape="halves")), injector.start(Loss(loss=0.5))
    assert any(sim.network.cut(a, b) for a in sim.servers for b in sim.servers)
    injector.stop(cut)
    injector.stop(loss)
    assert not any(sim.network.cut(a, b) for a in sim.servers for b in sim.servers)
    assert all(sim.network.overrides(a, b) == {} for a in sim.servers for b in sim.servers if a != b)


@pytest.mark.parametrize("thing", [object(), "n0", None])
def test_anything_else_is_not_a_fault_target(thing):
    assert not isinstance(thing, FaultTarget)
