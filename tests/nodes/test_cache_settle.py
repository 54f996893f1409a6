"""Cache: a write of unknown fate keeps its key uncached until the store settles it, so no fill goes stale."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from emulator.check import linearizable
from nodes.cache import Cache
from nodes.kv import SingleKV

THROUGH = ["cache-aside", "write-through"]
FAST = em.Constant(0.001)


def single(policy, timeout=1.0):
    """A lin-kv store n0 behind cache x0 (FIFO off on their link), and four clients."""
    sim = em.Simulation(seed=1, latency=FAST)
    sim.add_node("n0", SingleKV)
    sim.add_node("x0", Cache, store="n0", policy=policy, timeout=timeout)
    sim.network.set_link("x0", "n0", fifo=False)
    return sim, [sim.add_client(f"c{i}") for i in range(4)]


async def attempt(client, f, value=None, timeout=5.0, dest="x0"):
    """The op's reply value (None for a write), or the error's repr."""
    try:
        return (await client.invoke(f, key="k", value=value, dest=dest, timeout=timeout)).get("value")
    except (em.Timeout, em.RPCError) as exc:
        return repr(exc)


def slow(sim, src, dst, seconds, then=FAST):
    """Make the link src->dst take ``seconds`` for what is sent now, ``then`` again 10 ms later."""
    sim.network.set_link_oneway(src, dst, latency=em.Constant(seconds))

    async def restore():
        await asyncio.sleep(0.01)
        sim.network.set_link_oneway(src, dst, latency=then)

    return asyncio.ensure_future(restore())


@pytest.mark.parametrize("policy", THROUGH)
def test_a_read_of_the_store_before_a_timed_out_write_lands_does_not_fill_the_cache_after_it(policy):
    """The reviewer's history: w2 lands after the cache gave up on it; a read that saw 1 before must not cache 1.

    w1=1; a read fills 1; w2=2 takes 1.3 s to reach the store (the client
    gives up at 0.5 s, the cache at 1.0 s); r1 reads 1 at the store at 1.02
    but its reply takes 0.6 s; r2 at 1.35 reads 2; r1's late reply must not
    fill the cache with 1, so r3 at 1.67 reads 2. Before the fix r3 read 1.
    """
    sim, c = single(policy)

    async def main():
        await attempt(c[0], "write", 1)
        await attempt(c[0], "read")
        slow(sim, "x0", "n0", 1.3)  # the next write is sent slow, then the link is fast again
        w2 = await attempt(c[0], "write", 2, timeout=0.5)
        await asyncio.sleep(1.02 - sim.now)
        late = slow(sim, "n0", "x0", 0.6)
        r1 = asyncio.ensure_future(attempt(c[1], "read"))
        await late
        await asyncio.sleep(1.35 - sim.now)
        r2 = await attempt(c[2], "read")
        r1 = await r1
        await asyncio.sleep(0.05)
        return w2, r1, r2, await attempt(c[3], "read")

    w2, r1, r2, r3 = sim.run(main())
    assert w2.startswith("Timeout") and r1 in (1, 2) and (r2, r3) == (2, 2)
    verdict = linearizable(sim.history, model="cas-register")
    assert verdict.valid is True, verdict


@pytest.mark.parametrize("policy", THROUGH)
def test_a_timed_out_write_is_resent_with_its_request_id_until_the_store_answers_and_the_key_fills_after(policy):
    """The cache's copies of w2 are lost for 0.62 s; a read then must not fill; the resend at 0.9 s settles w2."""
    sim, c = single(policy, timeout=0.3)
    cache = sim.node("x0")

    async def main():
        await attempt(c[0], "write", 1)
        sim.network.set_link_oneway("x0", "n0", loss=1.0)
        w2 = await attempt(c[0], "write", 2, timeout=1.0)  # the cache gives up at 0.3 s: error 0 (indefinite)
        await asyncio.sleep(0.62 - sim.now)  # two resends lost too
        sim.network.set_link_oneway("x0", "n0", loss=0.0)
        pending = [b["value"] for b in cache.storage["unsettled"]["k"]]
        r1 = await attempt(c[1], "read")  # the store still has 1: no fill while w2's fate is unknown
        cached = cache.lru.get("k", None)
        await asyncio.sleep(1.0 - sim.now)  # the resend sent at 0.9 s was taken and answered
        return w2, pending, r1, cached, await attempt(c[1], "read"), await attempt(c[1], "read")

    w2, pending, r1, cached, r2, r3 = sim.run(main())
    assert w2.startswith("RPCError") and pending == [2] and r1 == 1 and cached is None
    assert (r2, r3) == (2, 2) and cache.storage["unsettled"] == {}
    assert cache.hits == 1  # r3: the key filled again once w2 settled
    assert sim.node("n0").storage["applied"]["k"]["c0"][1] == {"type": "write_ok"}


@pytest.mark.parametrize("policy", THROUGH)
def test_a_later_write_of_the_same_client_settles_an_older_one_the_store_will_now_drop(policy):
    """Every copy of c0's w2 reaches the store after c0's w3 was taken, so none is answered: w3's ack settles w2."""
    sim, c = single(policy, timeout=0.2)
    cache = sim.node("x0")

    async def main():
        await attempt(c[0], "write", 1)
        sim.network.set_link_oneway("x0", "n0", latency=em.Constant(10.0))
        await attempt(c[0], "write", 2, timeout=0.3)  # its first copy and its resends are all 10 s late
        sim.network.set_link_oneway("x0", "n0", latency=FAST)
        await attempt(c[0], "write", 3)
        unsettled = dict(cache.storage["unsettled"])
        return unsettled, await attempt(c[1], "read"), await attempt(c[1], "read")

    unsettled, r1, r2 = sim.run(main())
    assert unsettled == {} and (r1, r2) == (3, 3) and cache.hits == 1
    sim.run(until=sim.now + 12.0)
    assert sim.node("n0").storage["data"]["k"] == 3  # w2's late copies changed nothing


@pytest.mark.parametrize("policy", THROUGH)
def test_a_write_in_flight_when_the_cache_crashes_keeps_its_key_uncached_after_the_restart(policy):
    """w2 takes 1.3 s to the store; the cache crashes and restarts (its first resend lost); a read at 0.5 s sees 1.

    The restarted cache must not cache that 1: w2 lands at 1.3 s, and a read
    at 1.5 s must see 2. Before the fix the new incarnation knew nothing of
    w2, filled 1 and served it from then on.
    """
    sim, c = single(policy)

    async def main():
        await attempt(c[0], "write", 1)
        await attempt(c[0], "read")
        slow(sim, "x0", "n0", 1.3)  # the next write is sent slow, then the link is fast again
        w2 = asyncio.ensure_future(attempt(c[0], "write", 2, timeout=0.5))
        await asyncio.sleep(0.2)
        sim.crash("x0")
        sim.network.set_link_oneway("x0", "n0", loss=1.0)
        await asyncio.sleep(0.1)
        sim.restart("x0")  # it resends w2 at once (lost) and again 1 s later
        await asyncio.sleep(0.05)
        sim.network.set_link_oneway("x0", "n0", loss=0.0)
        await w2
        r1 = await attempt(c[1], "read")  # at ~0.5: the store still has 1
        await asyncio.sleep(1.5 - sim.now)
        return r1, await attempt(c[2], "read")

    assert sim.run(main()) == (1, 2)
    verdict = linearizable(sim.history, model="cas-register")
    assert verdict.valid is True, verdict
    cache = sim.node("x0")  # the restarted one: it resent w2 from storage until the store answered
    assert cache.storage["unsettled"] == {} and cache.hits == 0
    sim.run(attempt(c[2], "read"))
    assert cache.hits == 1


@pytest.mark.parametrize("policy", THROUGH)
def test_a_write_sent_without_a_msg_id_gets_a_request_id_of_the_cache_and_is_resent_until_taken(policy):
    """A fire-and-forget write, its first copy to the store lost: the cache resends it under its own id, once."""
    sim, c = single(policy, timeout=0.3)

    async def main():
        await attempt(c[0], "write", 1)
        sim.network.set_link_oneway("x0", "n0", loss=1.0)
        c[0].send("x0", {"type": "write", "key": "k", "value": 5})
        await asyncio.sleep(0.1)
        sim.network.set_link_oneway("x0", "n0", loss=0.0)
        await asyncio.sleep(0.5)  # the resend at 0.3 s was taken
        return await attempt(c[1], "read")

    assert sim.run(main()) == 5
    assert sim.node("n0").storage["applied"]["k"]["x0"] == [1, {"type": "write_ok"}]
    assert sim.node("x0").storage["unsettled"] == {}


LINKS = (("x0", "n0"), ("n0", "x0"), ("client", "x0"), ("x0", "client"))
DELAYS = [0.001, 0.001, 0.002, 0.003, 0.01, 0.05, 0.15, 0.4, 0.8, 1.3]


class Scripted(em.Distribution):
    """The latencies of one link direction, message by message, in the order drawn (then again from the start)."""

    def __init__(self, delays):
        self.delays, self.at = delays, 0

    def sample(self, rng):
        delay = self.delays[self.at % len(self.delays)]
        self.at += 1
        return delay

    @property
    def mean(self):
        return sum(self.delays) / len(self.delays)


@st.composite
def worlds(draw):
    """A seed, a cache timeout, a duplicate rate, each message's latency on each link direction, each client's ops.

    The latencies are drawn message by message (most a few milliseconds,
    some past the cache's timeout), so Hypothesis picks which write lands
    after the cache gave up on it and which read reply a newer one
    overtakes: the shape of a stale fill.
    """
    delays = st.lists(st.sampled_from(DELAYS), min_size=1, max_size=40)
    ops = st.lists(st.sampled_from(["read", "read", "write", "cas"]), min_size=10, max_size=30)
    return {
        "seed": draw(st.integers(0, 2**16)),
        "timeout": draw(st.sampled_from([0.2, 0.3, 0.5])),
        "duplicate": draw(st.sampled_from([0.0, 0.1, 0.3])),
        "latency": {link: draw(delays) for link in LINKS},
        "ops": draw(st.lists(ops, min_size=3, max_size=5)),
    }


def run_world(policy, world):
    """Run ``world`` through one cache over SingleKV; returns the simulation."""
    sim = em.Simulation(seed=world["seed"], latency=FAST, duplicate=world["duplicate"], reorder=True)
    sim.add_node("n0", SingleKV)
    sim.add_node("x0", Cache, store="n0", policy=policy, timeout=world["timeout"])
    clients = [sim.add_client(f"c{i}") for i in range(len(world["ops"]))]
    observer = sim.add_client("o")  # reads the store itself: a stale cached value shows against it
    for (src, dst), delays in world["latency"].items():
        for c in clients:
            a, b = (c.name if src == "client" else src), (c.name if dst == "client" else dst)
            sim.network.set_link_oneway(a, b, latency=Scripted(delays))
    values = iter(range(1, 10**6))

    async def client_ops(client, fs, dest="x0"):
        rng, seen = sim.rng(client.name), 0
        for f in fs:
            value = None if f == "read" else next(values)
            value = [seen, value] if f == "cas" else value
            try:
                reply = await client.invoke(f, key="k", value=value, dest=dest, timeout=1.0)
                seen = reply.get("value") if f == "read" else (value[1] if f == "cas" else value)
            except (em.RPCError, em.Timeout):
                pass
            await asyncio.sleep(rng.uniform(0, 0.05))

    async def main():
        await asyncio.gather(
            *(client_ops(c, fs) for c, fs in zip(clients, world["ops"])),
            client_ops(observer, ["read"] * 60, dest="n0"),
        )

    sim.run(main())
    return sim


@pytest.mark.parametrize("policy", THROUGH)
@settings(max_examples=60, deadline=None)
@given(world=worlds())
def test_through_one_cache_the_history_is_linearizable_whatever_the_links_delay_reorder_or_duplicate(policy, world):
    """Random latency spikes on both links, reordering, duplicates, random reads, writes and cas: linearizable."""
    sim = run_world(policy, world)
    verdict = linearizable(sim.history, model="cas-register", timeout=20)
    assert verdict.valid is True, verdict
