"""The smoke-test node (emulator.transport.diag.Echo): echo, ping, and a relay across the cluster."""

import pytest

import emulator as em
from emulator.transport.diag import Echo


def _cluster():
    sim = em.Simulation(seed=1, latency=em.Uniform(0.001, 0.003))
    for name in ("n0", "n1"):
        sim.add_node(name, Echo)
    return sim, sim.add_client("c0")


def test_echo_and_ping_answer_with_what_they_got():
    """echo -> echo_ok with the same value (any JSON); ping -> pong with the same n."""
    sim, client = _cluster()

    async def main():
        echoed = await client.rpc("n0", {"type": "echo", "echo": {"a": [1, "x", None]}}, timeout=1.0)
        ponged = await client.rpc("n1", {"type": "ping", "n": 41}, timeout=1.0)
        return echoed, ponged

    echoed, ponged = sim.run(main())
    assert (echoed["type"], echoed["echo"]) == ("echo_ok", {"a": [1, "x", None]})
    assert (ponged["type"], ponged["n"]) == ("pong", 41)


def test_relay_answers_what_the_other_node_answers():
    """relay to n1 through n0: the answer is n1's echo_ok, carried back by n0."""
    sim, client = _cluster()
    reply = sim.run(client.rpc("n0", {"type": "relay", "to": "n1", "echo": "hop"}, timeout=1.0))
    assert (reply["type"], reply["echo"], reply["in_reply_to"] is not None) == ("echo_ok", "hop", True)


def test_relay_to_a_node_that_is_down_returns_its_error_within_the_timeout():
    """relay to a crashed node: the client gets an indefinite error after the relay's timeout, not a hang."""
    sim, client = _cluster()
    sim.crash("n1")

    async def main():
        with pytest.raises((em.RPCError, em.Timeout)) as caught:
            await client.rpc("n0", {"type": "relay", "to": "n1", "echo": "x", "timeout": 0.2}, timeout=1.0)
        return caught.value, sim.now

    error, at = sim.run(main())
    assert not getattr(error, "definite", False)
    assert 0.2 <= at < 0.3, f"the relay's 0.2 s timeout, not the client's 1 s: answered at {at}"
