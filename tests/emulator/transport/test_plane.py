"""Tests of emulator/transport/plane.py: ``ControlPlane``, the members of a real cluster and its control calls."""

import pytest

import emulator as em
from emulator.transport import ControlError


@pytest.mark.asyncio
async def test_members_are_servers_and_clients_and_anything_else_is_named_as_unknown(cluster):
    control = cluster.control
    await cluster.add_client("c0")
    assert control.servers == ["n0", "n1", "n2"] and control.nodes == ["c0", "n0", "n1", "n2"]
    assert control.check("c0") == "c0" and control.check_server("n1") == "n1"
    with pytest.raises(em.ConfigError, match=r"unknown node 'n9'; known nodes: c0, n0, n1, n2"):
        control.check("n9")
    with pytest.raises(em.ConfigError, match="unknown node"):
        control.check(["n0"])
    with pytest.raises(em.ConfigError, match="'c0' is a client of this process; node faults apply to servers"):
        control.check_server("c0")


@pytest.mark.asyncio
async def test_a_broadcast_reaches_live_servers_and_clients_and_skips_crashed_ones(cluster):
    """pause n1 broadcast while n2 is down: n0 and the client have it, n2 was not called (no error)."""
    control = cluster.control
    await cluster.add_client("c0")
    await cluster.crash("n2")
    await control.broadcast("pause", {"name": "n1"})
    assert (await control.status("n0"))["faults"] == ["paused n1"]
    assert control.clients["c0"].faults.paused("n1") and control.errors == []
    assert [s["name"] for s in await control.statuses()] == ["n0", "n1"]


@pytest.mark.asyncio
async def test_a_failed_call_is_kept_in_errors_with_the_cluster_time_and_raised_to_whoever_awaits(cluster):
    await cluster._hosts["n1"].stop()
    future = cluster.control.broadcast("isolate", {"name": "n0"})
    await cluster.control.settle()
    with pytest.raises(ControlError, match="isolate failed on 1 node"):
        await future
    (error,) = cluster.control.errors
    assert error["what"] == "isolate" and 0 <= error["time"] <= cluster.now and cluster.errors is cluster.control.errors
