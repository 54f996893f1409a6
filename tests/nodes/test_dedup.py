"""Dedup: a request applied once answers its duplicates from a table that survives crashes, for a window."""

import pytest

import emulator as em
from nodes.dedup import Dedup, request_key


class Counter(em.Node):
    """Adds each request's delta once per request identity (window from config)."""

    def __init__(self, window: int = 100, by_id: bool = True):
        self.dedup = Dedup(self, window=window, by_id=by_id)

    async def handle_add(self, msg):
        done = self.dedup.seen(msg)
        if done is not None:
            return done
        self.storage["total"] = self.storage.get("total", 0) + msg.body["delta"]
        return self.dedup.remember(msg, {"type": "add_ok", "total": self.storage["total"]})


def counter(**config):
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("n0", Counter, **config)
    return sim, sim.add_client("c0")


def test_every_network_duplicate_is_answered_from_the_table():
    """duplicate=1.0: each add arrives twice and counts once; the table answered the copies."""
    sim, client = counter()
    sim.network.set_link("c0", "n0", duplicate=1.0)

    async def run():
        for _ in range(5):
            await client.rpc("n0", {"type": "add", "delta": 1})
        await client.rpc("n0", {"type": "add", "delta": 0})

    sim.run(run())
    sim.run(until=sim.now + 0.1)
    assert sim.node("n0").storage["total"] == 5 and sim.node("n0").dedup.duplicates >= 5


def test_a_retry_with_the_same_id_gets_the_first_answer_even_after_a_crash():
    """A client's id names the request across retries and restarts; by_id=False ignores it."""
    for by_id, expected in ((True, 3), (False, 6)):
        sim, client = counter(by_id=by_id)

        async def run():
            first = await client.rpc("n0", {"type": "add", "delta": 3, "id": "c0-1"})
            sim.crash("n0")
            sim.restart("n0")
            again = await client.rpc("n0", {"type": "add", "delta": 3, "id": "c0-1"})
            return first, again

        first, again = sim.run(run())
        assert sim.node("n0").storage["total"] == expected
        assert (again["total"] == first["total"]) == by_id


def test_a_duplicate_older_than_the_window_is_applied_again():
    """window=2: the third request pushes the first out, and its retry counts again."""
    sim, client = counter(window=2)

    async def run():
        for i in range(3):
            await client.rpc("n0", {"type": "add", "delta": 1, "id": i})
        await client.rpc("n0", {"type": "add", "delta": 1, "id": 2})  # still in the window
        await client.rpc("n0", {"type": "add", "delta": 1, "id": 0})  # forgotten

    sim.run(run())
    assert sim.node("n0").storage["total"] == 4


def test_request_keys_name_the_client_id_or_the_sender_and_msg_id():
    """An explicit id wins (unless by_id is off); otherwise sender and msg_id."""
    msg = em.Message("c0", "n0", {"type": "add", "id": "x", "msg_id": 7})
    assert request_key(msg) == 'id:"x"' and request_key(msg, by_id=False) == "msg:c0:7"


def test_a_window_below_one_is_refused():
    """The window is a count of requests, at least one."""
    sim = em.Simulation()
    with pytest.raises(em.ConfigError, match="dedup window must be an int >= 1"):
        sim.add_node("n0", Counter, window=0)
