"""Clients: invoke sends lin-kv bodies and records Jepsen-style operations."""

import asyncio

import pytest

import emulator as em
from tests.common.nodes import Register, cluster


def kv(**kwargs):
    return cluster(n=2, factory=Register, **kwargs)


def ops(sim, process=None):
    return [
        (op["process"], op["type"], op["f"], op["key"], op["value"])
        for op in sim.history.client_ops()
        if process is None or op["process"] == process
    ]


def test_invoke_records_invoke_then_ok_with_the_value_read():
    """write then read: each op is an invoke and an ok, and the read's value is what it returned."""
    sim, (client,) = kv()

    async def main():
        await client.invoke("write", key="x", value=3, dest="n0")
        reply = await client.invoke("read", key="x", dest="n0")
        return reply["value"]

    assert sim.run(main()) == 3
    assert ops(sim) == [
        (0, "invoke", "write", "x", 3),
        (0, "ok", "write", "x", 3),
        (0, "invoke", "read", "x", None),
        (0, "ok", "read", "x", 3),
    ]
    times = [op["time"] for op in sim.history]
    assert times == sorted(times) and times[1] == 0.002
    assert [op["index"] for op in sim.history] == list(range(4))
    assert all(op["node"] == "n0" for op in sim.history)


def test_cas_sends_from_and_to_and_a_definite_error_is_a_fail():
    """cas carries from/to in the body; precondition-failed (22) is recorded as fail."""
    sim, (client,) = kv()

    async def main():
        await client.invoke("write", key="x", value=1, dest="n0")
        await client.invoke("cas", key="x", value=[1, 2], dest="n0")
        with pytest.raises(em.RPCError) as caught:
            await client.invoke("cas", key="x", value=[1, 5], dest="n0")
        return caught.value.code

    assert sim.run(main()) == 22
    assert ops(sim)[-2:] == [(0, "invoke", "cas", "x", [1, 5]), (0, "fail", "cas", "x", [1, 5])]
    assert sim.history[-1]["error"][0] == 22
    assert sim.node("n0").data == {"x": 2}


def test_a_timeout_is_info_and_retires_the_process():
    """An op that times out is info, and the client carries on as a fresh process."""
    sim, (c0, c1) = cluster(n=1, factory=Register, clients=2)

    async def main():
        sim.network.isolate("n0")
        with pytest.raises(em.Timeout):
            await c0.invoke("write", key="x", value=1, dest="n0", timeout=0.5)
        sim.network.heal()
        await c0.invoke("write", key="x", value=2, dest="n0")

    sim.run(main())
    assert [(p, t) for p, t, *_ in ops(sim)] == [(0, "invoke"), (0, "info"), (2, "invoke"), (2, "ok")]
    assert c0.process == 2 and c1.process == 1


def test_each_process_has_at_most_one_operation_in_flight():
    """Concurrent clients interleave, but no process ever has two ops open."""
    sim, clients = cluster(n=3, factory=Register, clients=4, latency=em.Uniform(0.001, 0.01), loss=0.2)

    async def worker(client, i):
        for j in range(20):
            try:
                await client.invoke("write", key="k", value=i * 100 + j, timeout=0.05)
            except em.EmulatorError:
                pass

    async def main():
        await asyncio.gather(*(worker(c, i) for i, c in enumerate(clients)))

    sim.run(main())
    open_ops = {}
    for op in sim.history.client_ops():
        if op["type"] == "invoke":
            assert op["process"] not in open_ops
            open_ops[op["process"]] = op
        else:
            assert open_ops.pop(op["process"])["value"] == op["value"]
    assert not open_ops
    assert any(op["type"] == "info" for op in sim.history)


def test_invoke_misuse_is_explained():
    """A cas without [from, to] and an empty op name raise ConfigError."""
    sim, (client,) = kv()

    async def main():
        with pytest.raises(em.ConfigError, match=r"cas takes value=\[from, to\]"):
            await client.invoke("cas", key="x", value=3)
        with pytest.raises(em.ConfigError, match="non-empty string"):
            await client.invoke("", key="x")

    sim.run(main())
    assert len(sim.history) == 0


def test_a_body_json_cannot_carry_is_refused_before_anything_is_recorded():
    """invoke with a set as its value: a MessageError, and no operation in the history or the trace.

    It was never sent, so it is not an indeterminate operation; and a set's
    repr, in the trace, would depend on PYTHONHASHSEED.
    """
    sim, (client,) = kv()
    count, process = sim.trace.count, client.process

    async def main():
        with pytest.raises(em.MessageError, match="which JSON cannot carry"):
            await client.invoke("write", key="x", value={"a", "b"}, dest="n0")
        with pytest.raises(em.MessageError, match="JSON cannot carry"):
            await client.invoke("read", key={"a"}, dest="n0")
        return client.process

    assert sim.run(main()) == process  # not retired either
    assert list(sim.history) == []
    sim.trace.digest()
    assert sim.trace.count == count


def test_invoke_without_dest_picks_a_server_with_the_client_s_rng():
    """With no dest, invoke spreads over the servers, reproducibly for a seed."""

    def destinations(seed):
        sim, (client,) = cluster(seed=seed, n=3, factory=Register)

        async def main():
            for i in range(30):
                await client.invoke("write", key="x", value=i)

        sim.run(main())
        return [op["node"] for op in sim.history if op["type"] == "invoke"]

    first = destinations(7)
    assert first == destinations(7) and set(first) == {"n0", "n1", "n2"}


def test_fields_add_to_the_body_but_may_not_override_the_operation():
    """invoke(fields=...) sends extra body fields; reserved ones are refused."""

    class Peek(em.Node):
        async def handle_read(self, msg):
            return {"type": "read_ok", "value": msg.body.get("r")}

    sim, (client,) = cluster(n=1, factory=Peek)

    async def main():
        reply = await client.invoke("read", key="x", dest="n0", fields={"r": 3})
        with pytest.raises(em.ConfigError, match=r"fields may not set \['key'\]"):
            await client.invoke("read", key="x", fields={"key": "y"})
        return reply["value"]

    assert sim.run(main()) == 3


def test_an_invoke_cancelled_midway_is_info_and_the_history_stays_checkable():
    """wait_for cancelling an invoke records info and retires the process, so checkers still read it."""
    from emulator.check import linearizable

    sim, (client,) = kv(latency=0.010)

    async def main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.invoke("write", key="x", value=1, dest="n0"), 0.005)
        await client.invoke("write", key="x", value=2, dest="n0")
        with pytest.raises(em.ConfigError, match="unknown node 'zz'"):
            await client.invoke("read", key="x", dest="zz")

    sim.run(main())
    assert [(p, t) for p, t, *_ in ops(sim)] == [
        (0, "invoke"),
        (0, "info"),
        (1, "invoke"),
        (1, "ok"),
        (1, "invoke"),
        (1, "info"),
    ]
    assert client.process == 2
    assert linearizable(sim.history, model="cas_register").valid is True


def test_invoke_outside_sim_run_says_to_use_sim_run_and_records_nothing():
    """client.invoke under asyncio.run: a ConfigError naming sim.run, and no half operation in the history."""
    sim, (client,) = kv()
    with pytest.raises(em.ConfigError, match=r"outside its simulation.*sim\.run\(workload\(\)\)"):
        asyncio.run(client.invoke("read", key="x", dest="n0"))
    assert list(sim.history) == []

    async def main():
        return await client.invoke("write", key="x", value=1, dest="n0")

    assert sim.run(main())["type"] == "write_ok"  # the client is unharmed
