"""Cache: LRU and TTL on the virtual clock, the three write policies, hit rates, and lost writes."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

import emulator as em
from emulator.check import linearizable, lost_writes
from nodes.cache import LRU, POLICIES, Cache
from nodes.kv import SingleKV
from tests.common.hostile import SETTINGS as HOSTILE
from tests.common.hostile import make_calm, make_hostile
from tests.common.lb_harness import AppliedKV, LaggyKV, SimMachine, ops

LATENCY = 0.001


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


# -- the LRU --------------------------------------------------------------------------------


def test_the_least_recently_used_entry_is_evicted_first():
    """Capacity 2: after put a, put b, get a, put c, b is gone and a stays."""
    lru = LRU(2, None, Clock())
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert lru.get("b", None) is None and lru.get("a") == 1 and lru.get("c") == 3
    assert lru.evictions == 1


def test_an_entry_expires_ttl_seconds_after_it_was_put():
    """ttl=5: alive at t=4.999, gone at t=5, counted as an expiration."""
    clock = Clock()
    lru = LRU(10, 5.0, clock)
    lru.put("a", 1)
    clock.t = 4.999
    assert lru.get("a") == 1
    clock.t = 5.0
    assert lru.get("a", "gone") == "gone" and lru.expirations == 1


def test_capacity_zero_caches_nothing():
    """An LRU of capacity 0 never holds an entry."""
    lru = LRU(0, None, Clock())
    lru.put("a", 1)
    assert len(lru) == 0 and lru.get("a", None) is None


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(st.tuples(st.sampled_from(["put", "get", "delete", "tick"]), st.integers(0, 5)), max_size=60),
)
def test_the_lru_matches_a_reference_model(capacity, steps):
    """Property: after any puts, gets, deletes and clock ticks, the LRU holds what a list model holds."""
    clock = Clock()
    lru = LRU(capacity, 3.0, clock)
    model = []  # [key, value, expires], least recently used first
    for i, (op, key) in enumerate(steps):
        entry = next((e for e in model if e[0] == key), None)
        if op == "put":
            model = [e for e in model if e[0] != key] + [[key, i, clock.t + 3.0]]
            model = model[-capacity:]
            lru.put(key, i)
        elif op == "get":
            if entry is not None:
                model.remove(entry)
                if entry[2] > clock.t:
                    model.append(entry)
            live = entry is not None and entry[2] > clock.t
            assert lru.get(key, None) == (entry[1] if live else None)
        elif op == "delete":
            model = [e for e in model if e[0] != key]
            lru.delete(key)
        else:
            clock.t += key / 2
        assert lru.keys() == [e[0] for e in model]


# -- a cache in front of a store ------------------------------------------------------------------


def cache_sim(policy, seed=1, **config):
    """A store and a cache over it, with one client; returns (sim, client, applied-writes log)."""
    log = []
    sim = em.Simulation(seed=seed, latency=em.Constant(LATENCY), keep_trace=True)
    sim.add_node("store", AppliedKV, log=log)
    sim.add_node("cache", Cache, store="store", policy=policy, **{"timeout": 0.3, **config})
    return sim, sim.add_client("c0"), log


def test_a_second_read_is_a_hit_served_without_the_store():
    """After a miss fills the key, the store can be cut off and the read still answers, from the cache."""
    sim, client, _ = cache_sim("cache-aside")

    async def main():
        await client.invoke("write", key="k", value=1, dest="store")
        first = await client.invoke("read", key="k", dest="cache")
        sim.network.isolate("store")
        second = await client.invoke("read", key="k", dest="cache")
        return first["value"], second["value"]

    assert sim.run(main()) == (1, 1)
    stats = sim.node("cache").stats()
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (1, 1, 0.5)


async def test_the_stats_message_reports_hits_misses_and_the_hit_rate(sim):
    """{"type": "stats"} answers with the counters: 3 reads of one key are 1 miss and 2 hits."""
    sim.add_node("store", SingleKV, leader="store")
    sim.add_node("cache", Cache, store="store")
    client = sim.add_client("c0")
    await client.invoke("write", key=1, value="v", dest="cache")
    for _ in range(3):
        await client.invoke("read", key=1, dest="cache")
    stats = await client.rpc("cache", {"type": "stats"})
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (2, 1, 2 / 3)


def test_an_entry_older_than_ttl_is_read_again_from_the_store():
    """ttl=1: a value changed in the store behind the cache's back shows after 1 s, not before."""
    sim, client, _ = cache_sim("cache-aside", ttl=1.0)

    async def main():
        await client.invoke("write", key="k", value=1, dest="store")
        await client.invoke("read", key="k", dest="cache")
        await client.invoke("write", key="k", value=2, dest="store")
        early = (await client.invoke("read", key="k", dest="cache"))["value"]
        await asyncio.sleep(1.0)
        late = (await client.invoke("read", key="k", dest="cache"))["value"]
        return early, late

    assert sim.run(main()) == (1, 2)
    assert sim.node("cache").lru.expirations == 1


@pytest.mark.parametrize(
    "policy, hit_after_write", [("cache-aside", False), ("write-through", True), ("write-behind", True)]
)
def test_a_read_after_a_write_sees_it_and_is_a_hit_only_if_the_policy_fills(policy, hit_after_write):
    """cache-aside drops the key on a write (next read misses); write-through and write-behind fill it."""
    sim, client, _ = cache_sim(policy)

    async def main():
        await client.invoke("write", key="k", value=7, dest="cache")
        return (await client.invoke("read", key="k", dest="cache"))["value"]

    assert sim.run(main()) == 7
    assert sim.node("cache").hits == int(hit_after_write)


@pytest.mark.parametrize("policy", POLICIES)
def test_cas_through_the_cache_follows_lin_kv(policy):
    """cas: ok when the value matches, 22 when it does not, 20 on a missing key, in every policy."""
    sim, client, _ = cache_sim(policy)

    async def main():
        await client.invoke("write", key="k", value=1, dest="cache")
        await client.invoke("cas", key="k", value=[1, 2], dest="cache")
        codes = []
        for key, value in (("k", [1, 3]), ("nope", [1, 3])):
            try:
                await client.invoke("cas", key=key, value=value, dest="cache")
            except em.RPCError as exc:
                codes.append(exc.code)
        return codes, (await client.invoke("read", key="k", dest="cache"))["value"]

    assert sim.run(main()) == ([22, 20], 2)


def test_write_behind_acknowledges_without_the_store_and_flushes_in_order_later():
    """With the store cut off, writes are acknowledged at once; after the heal they reach it in order."""
    sim, client, log = cache_sim("write-behind", flush_interval=0.05)

    async def main():
        sim.network.isolate("store")
        for value in range(5):
            start = sim.now
            await client.invoke("write", key="k", value=value, dest="cache")
            assert sim.now - start <= 2 * LATENCY + 1e-9
        assert log == [] and len(sim.node("cache").queue) == 5
        sim.network.heal()
        await asyncio.sleep(0.5)

    sim.run(main())
    assert log == [("k", v) for v in range(5)] and not sim.node("cache").queue


class _Recording(Cache):
    """A Cache that keeps each write request it receives (body, msg_id included) in ``received``."""

    def __init__(self, received: list, **config):
        super().__init__(**config)
        self.received = received

    async def handle_write(self, msg):
        self.received.append(dict(msg.body))
        return await super().handle_write(msg)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_late_copy_of_a_flushed_write_arriving_after_a_restart_changes_nothing(policy):
    """x=1 then x=2 reach the store; the cache restarts; a late network copy of "write x=1" arrives. Reads of x
    through the cache still give 2, and later writes still reach the store (the copy, refused by the store as
    older than x=2, must not hold up the write-behind queue forever)."""
    log, received = [], []
    sim = em.Simulation(seed=1, latency=em.Constant(LATENCY))
    sim.add_node("store", AppliedKV, log=log)
    sim.add_node("cache", _Recording, received=received, store="store", policy=policy, flush_interval=0.05, timeout=0.2)
    client = sim.add_client("c0")

    async def main():
        for value in (1, 2):
            await client.invoke("write", key="x", value=value, dest="cache")
        await asyncio.sleep(0.3)
        sim.crash("cache")
        sim.restart("cache")
        client.send("cache", received[0])  # the late copy of "write x=1", same sender and msg_id
        await asyncio.sleep(0.1)
        await client.invoke("write", key="y", value=5, dest="cache")
        await asyncio.sleep(1.0)
        return (await client.invoke("read", key="x", dest="cache"))["value"]

    assert sim.run(main()) == 2
    assert log == [("x", 1), ("x", 2), ("y", 5)] and not sim.node("cache").queue


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("f", ["read", "write", "cas"])
@pytest.mark.parametrize("key", [[1], {"a": 1}, None, 1.5])
def test_a_key_that_is_not_a_string_or_an_int_is_error_12_not_a_crash(policy, f, key):
    """The cache refuses a list, dict, missing or fractional key with 12, as the stores do; it records no error."""
    sim, client, _ = cache_sim(policy)
    body = {"read": {}, "write": {"value": 1}, "cas": {"from": 1, "to": 2}}[f]
    with pytest.raises(em.RPCError, match="a key must be a string or an int") as refused:
        sim.run(client.rpc("cache", {"type": f, "key": key, **body}))
    assert refused.value.code == 12 and sim.errors == []


def test_write_behind_refuses_writes_beyond_its_queue_limit():
    """queue_limit=3 with the store unreachable: the fourth write gets a definite error 11."""
    sim, client, _ = cache_sim("write-behind", queue_limit=3)

    async def main():
        sim.network.isolate("store")
        for value in range(3):
            await client.invoke("write", key="k", value=value, dest="cache")
        with pytest.raises(em.RPCError, match="queue full") as refused:
            await client.invoke("write", key="k", value=3, dest="cache")
        return refused.value

    error = sim.run(main())
    assert error.code == 11 and error.definite


# -- races between reads and writes ----------------------------------------------------------------


def race(policy, lags, script):
    """Run ``script(clients)`` against a cache over a LaggyKV; returns the linearizability verdict."""
    sim = em.Simulation(seed=1, latency=em.Constant(LATENCY))
    sim.add_node("store", LaggyKV, lags=lags)
    sim.add_node("cache", Cache, store="store", policy=policy)
    clients = [sim.add_client(f"c{i}") for i in range(2)]
    sim.run(script(sim, clients))
    return linearizable(sim.history.client_ops(), model="cas_register"), sim


@pytest.mark.parametrize("policy", ["cache-aside", "write-through"])
def test_a_read_that_raced_a_write_does_not_fill_the_cache_with_the_older_value(policy):
    """A miss reads v0, a write of v1 completes, then the read's late reply lands: later reads still see v1."""

    async def script(sim, clients):
        await clients[0].invoke("write", key="k", value=0, dest="store")
        slow_read = asyncio.ensure_future(clients[0].invoke("read", key="k", dest="cache"))
        await asyncio.sleep(0.01)
        await clients[1].invoke("write", key="k", value=1, dest="cache")
        await slow_read  # its reply, v0, arrives after the write finished
        return (await clients[1].invoke("read", key="k", dest="cache"))["value"]

    verdict, sim = race(policy, {"read": [0.05]}, script)
    assert verdict.valid, verdict
    assert sim.history[-1]["value"] == 1


def test_write_through_fills_only_when_no_other_write_raced():
    """Writes of 1 then 2 overlap and 1's ack comes last: the cache must not keep 1."""

    async def script(sim, clients):
        await clients[0].invoke("write", key="k", value=0, dest="cache")
        first = asyncio.ensure_future(clients[0].invoke("write", key="k", value=1, dest="cache"))
        await asyncio.sleep(0.01)
        await clients[1].invoke("write", key="k", value=2, dest="cache")
        await first
        return (await clients[1].invoke("read", key="k", dest="cache"))["value"]

    verdict, sim = race("write-through", {"write": [0.0, 0.05]}, script)
    assert verdict.valid, verdict
    assert sim.history[-1]["value"] == 2


# -- lost writes when the cache crashes ------------------------------------------------------------


def crash_cache_mid_writes(policy, seed=4, clients=4):
    """Client i writes unique values to key i through the cache; the cache crashes at t=1.0 mid-write.

    Each key starts with a write straight to the store; after the cache's
    restart each client reads its key back through it (the final reads).
    Returns (sim, applied log, the write-behind queue at the crash).
    """
    sim, _, log = cache_sim(policy, seed=seed, flush_interval=0.05)
    nodes = [sim.add_client(f"w{i}") for i in range(clients)]
    crashed = asyncio.Event()
    queued = []

    async def worker(i, client):
        await client.invoke("write", key=i, value=i * 10_000, dest="store")
        n = 0
        while not crashed.is_set():
            n += 1
            try:
                await client.invoke("write", key=i, value=i * 10_000 + n, dest="cache", timeout=0.5)
            except (em.RPCError, em.Timeout):
                pass
            await asyncio.sleep(0.02 * sim.rng("think").random())

    async def nemesis():
        await asyncio.sleep(1.0)
        queued.extend(sim.node("cache").queue)
        sim.crash("cache")
        crashed.set()
        await asyncio.sleep(0.6)  # every write still in flight has timed out by now
        sim.restart("cache")

    async def main():
        await asyncio.gather(nemesis(), *(worker(i, c) for i, c in enumerate(nodes)))
        for i, client in enumerate(nodes):
            await client.invoke("read", key=i, dest="cache")

    sim.run(main())
    return sim, log, queued


def acknowledged_through_cache(sim):
    return {
        (inv["key"], inv["value"])
        for inv, done in ops(sim.history, f="write", node="cache")
        if done is not None and done["type"] == "ok"
    }


def test_write_behind_loses_exactly_the_queued_writes_and_the_checker_reports_exactly_those():
    """The lost-writes checker names exactly the acknowledged writes the store never got, all queued at the crash."""
    sim, log, queued = crash_cache_mid_writes("write-behind")
    never_applied = acknowledged_through_cache(sim) - set(log)
    report = lost_writes(sim.history.client_ops())
    reported = {(lost.write.key, lost.write.value) for lost in report.lost}
    assert len(reported) >= 4 and reported == never_applied
    assert never_applied <= {(w.key, w.value) for w in queued}
    assert report.unchecked == []


@pytest.mark.parametrize("policy", ["write-through", "cache-aside"])
def test_write_through_and_cache_aside_lose_no_acknowledged_write(policy):
    """The same crash mid-writes: the checker finds no lost write among the acknowledged ones."""
    sim, log, _ = crash_cache_mid_writes(policy)
    report = lost_writes(sim.history.client_ops())
    assert report.acknowledged > 100 and report.lost == [] and report.unchecked == []
    assert acknowledged_through_cache(sim) <= set(log)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("seed", [0, 1])
def test_every_policy_stays_linearizable_on_a_hostile_network(policy, seed):
    """30% duplicates, reordering, Pareto latency, no FIFO, client links too: still linearizable through the cache.

    The bug: each copy of a client's write went on to the store as a new
    request, so a late copy wrote an old value over a newer one.
    """
    from faults import Network

    sim = em.Simulation(seed=seed, **Network.preset("hostile", duplicate=0.3, fifo=False).kwargs())
    sim.add_node("store", SingleKV, leader="store")
    sim.add_node("cache", Cache, store="store", policy=policy, capacity=2, ttl=0.5, flush_interval=0.05, timeout=0.3)
    clients = [sim.add_client(f"c{i}") for i in range(3)]
    values = iter(range(1, 10**6))

    async def client_ops(client):
        rng, seen = sim.rng(client.name), {}
        for _ in range(30):
            f, key = rng.choice(["read", "write", "cas"]), rng.randrange(2)
            value = None if f == "read" else next(values)
            value = [seen.get(key, 0), value] if f == "cas" else value
            try:
                reply = await client.invoke(f, key=key, value=value, dest="cache", timeout=0.5)
                seen[key] = reply.get("value") if f == "read" else (value[1] if f == "cas" else value)
            except (em.RPCError, em.Timeout):
                pass
            await asyncio.sleep(rng.uniform(0, 0.03))

    async def main():
        await asyncio.gather(*(client_ops(c) for c in clients))

    sim.run(main())
    assert sim.network.stats["duplicated"] > 50
    verdict = linearizable(sim.history, model="cas_register", timeout=10)
    assert verdict.valid is True, verdict


def test_the_same_seed_gives_the_same_trace():
    """Two write-behind crash runs with seed 6 have one digest."""
    first = crash_cache_mid_writes("write-behind", seed=6)[0].trace_digest()
    assert first == crash_cache_mid_writes("write-behind", seed=6)[0].trace_digest()


@pytest.mark.parametrize(
    "config, match",
    [
        ({"store": ""}, "store must be"),
        ({"store": []}, "store must be"),
        ({"policy": "write-around"}, "unknown policy"),
        ({"capacity": -1}, "capacity"),
        ({"ttl": 0}, "ttl"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"queue_limit": 0}, "queue_limit"),
        ({"flush_batch": 0}, "flush_batch"),
    ],
)
def test_bad_config_says_what_to_do(sim, config, match):
    """Each misconfiguration raises a ConfigError naming the parameter."""
    with pytest.raises(em.ConfigError, match=match):
        sim.add_node("cache", Cache, **{"store": "n0", **config})


# -- the guarantees under random faults ----------------------------------------------------------------


def written(f, value):
    """The value a write or cas op puts in its key (a cas writes its ``to``)."""
    return value[1] if f == "cas" else value


class CacheUnderFaults(SimMachine):
    """Reads, writes and cas through a cache while it and its store crash, restart, are cut off, heal.

    Guarantees checked: with cache-aside and write-through the history stays
    linearizable and no acknowledged write is ever lost; with write-behind the
    history is linearizable up to the first crash of the cache, every lost
    write the checker finds is an acknowledged write the store never applied,
    and once all is healed the queue drains (no write holds it up forever).
    """

    clients = 3
    latency = em.Uniform(0.0005, 0.003)
    reorder = 0.5  # replies overtake each other: a read's reply may land after a later write's

    @initialize(seed=st.integers(0, 2**32 - 1), policy=st.sampled_from(POLICIES))
    def setup(self, seed, policy):
        self.begin(seed, policy=policy)

    def build(self, sim, policy):
        self.policy = policy
        self.log = []
        self.values = 0
        sim.add_node("store", AppliedKV, log=self.log)
        sim.add_node(
            "cache", Cache, store="store", policy=policy, capacity=2, ttl=0.5, flush_interval=0.05, timeout=0.2
        )

    def random_op(self, rng):
        self.values += 1  # unique write values, so a lost write is unambiguous
        f, key = rng.choice(["read", "write", "cas"]), rng.randrange(3)
        value = {"read": None, "write": self.values, "cas": [rng.randrange(self.values), self.values]}[f]
        return f, key, value, "cache"

    @rule(dt=st.sampled_from([0.002, 0.02, 0.1, 0.3]))
    def wait(self, dt):
        """Time passes under load: each idle client keeps reading, writing and cas-ing."""
        self.advance_under_load(dt, self.random_op, step=0.01)

    @rule(node=st.sampled_from(["cache", "store"]))
    def crash(self, node):
        if self.sim.alive(node):
            self.sim.crash(node)

    @rule(node=st.sampled_from(["cache", "store"]))
    def restart(self, node):
        if not self.sim.alive(node):
            self.sim.restart(node)

    @rule()
    def isolate_store(self):
        self.sim.network.isolate("store")

    @rule(settings=HOSTILE)
    def hostile(self, settings):
        make_hostile(self.sim, settings)

    @rule()
    def heal(self):
        self.sim.network.heal()

    @precondition(lambda self: any(op["f"] == "write" for op in self.sim.history.client_ops()))
    @rule()
    def recover_and_read_back(self):
        """Heal and restart all, let write-behind flush, read every key: then judge lost writes."""
        self.settle()
        self.sim.network.heal()
        make_calm(self.sim, self.latency, self.reorder)
        for node in ("store", "cache"):
            if not self.sim.alive(node):
                self.sim.restart(node)
        self.advance(0.5)
        for key in range(3):
            self.start("read", key, dest="cache")
        self.settle()
        report = lost_writes(self.sim.history.client_ops())
        lost = {(w.write.key, written(w.write.f, w.write.value)) for w in report.lost}
        if self.policy == "write-behind":
            acked = {
                (inv["key"], written(inv["f"], inv["value"]))
                for inv, done in ops(self.sim.history)
                if inv["f"] != "read" and done is not None and done["type"] == "ok"
            }
            assert lost <= acked - set(self.log), report
            assert not self.sim.node("cache").queue, f"the flush is stuck: {list(self.sim.node('cache').queue)[:3]}"
        else:
            assert not lost, report

    @invariant()
    def linearizable_while_the_policy_promises_it(self):
        history = list(self.sim.history)
        if self.policy == "write-behind":  # a crash of the cache loses writes, by design: judge up to it
            crash = [
                i
                for i, op in enumerate(history)
                if op["process"] == "nemesis" and op["value"] == "cache" and op["f"] == "crash"
            ]
            history = history[: crash[0]] if crash else history
        verdict = linearizable(history, model="cas_register")
        assert verdict.valid, verdict


TestCacheUnderFaults = CacheUnderFaults.TestCase
TestCacheUnderFaults.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


@pytest.mark.slow
class TestCacheUnderFaultsSoak(CacheUnderFaults.TestCase):
    """The same machine, longer: run with -m slow."""

    settings = settings(max_examples=500, stateful_step_count=40, deadline=None)
