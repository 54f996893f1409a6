"""Multi-primary: available on both sides, convergent under a hostile network, and each resolution's price."""

import asyncio
import collections

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import emulator as em
from emulator.check import linearizable
from nodes import crdt
from nodes.multiprimary import RESOLUTIONS, MultiPrimary, lost_for_good
from nodes.versions import descends
from tests.common.lb_harness import background
from tests.common.multiprimary_cluster import cluster, converged, states

SIDES = (["n0", "n1", "c0", "c1"], ["n2", "n3", "n4", "c2", "c3", "c4"])


def _op(resolution: str, i: int, key: str):
    """The i-th update of a workload for ``resolution``: (f, body fields)."""
    if resolution == "crdt":
        return {"type": "add", "key": key, "delta": 1} if i % 2 else {"type": "add", "key": key + "s", "element": i}
    return {"type": "write", "key": key, "value": i}


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_every_resolution_answers_on_both_sides_of_a_partition(resolution):
    """Partitioned 2 | 3 under a hostile network, every request to every node is answered at once, without error."""
    sim, clients, _ = cluster(seed=3, nodes=5, resolution=resolution)
    replies, waits = [], []

    async def side_traffic(client, node, start):
        for i in range(start, start + 40):
            t0 = sim.now
            body = _op(resolution, i, "k")
            replies.append(await client.rpc(node, body, timeout=1.0))
            replies.append(await client.rpc(node, {"type": "read", "key": body["key"]}, timeout=1.0))
            waits.append(sim.now - t0)
            await asyncio.sleep(0.01)

    async def run():
        sim.network.partition(*SIDES)
        await asyncio.gather(*(side_traffic(c, f"n{i}", 1000 * i) for i, c in enumerate(clients)))

    sim.run(run())
    assert len(replies) == 5 * 80 and all(r["type"] in ("write_ok", "add_ok", "read_ok") for r in replies)
    assert max(waits) < 0.015  # two client round trips (3 ms links): no node waited for a peer


def test_lww_keeps_one_of_two_concurrent_writes_and_reports_the_other():
    """Each side writes x during a partition; after the heal one value is left and the other is reported lost."""
    sim, clients, created = cluster(seed=1, nodes=4, resolution="lww", latency=em.Uniform(0.001, 0.003), loss=0.0)
    sim.network.partition(["n0", "n1", "c0", "c1"], ["n2", "n3", "c2", "c3"])

    async def run():
        await clients[0].rpc("n0", {"type": "write", "key": "x", "value": "left"})
        await clients[2].rpc("n2", {"type": "write", "key": "x", "value": "right"})
        await asyncio.sleep(1.0)
        sim.network.heal()
        await asyncio.sleep(2.0)
        return [await c.rpc(f"n{i}", {"type": "read", "key": "x"}) for i, c in enumerate(clients)]

    reads = sim.run(run(), until=10)
    assert {r["value"] for r in reads} == {"right"} and converged(sim)  # n2's clock read later: its stamp wins
    lost = [e["value"] for e in sim.events if e["what"] == "lww_lost"]
    assert lost and {(key, value) for key, _, value in lost} == {("x", "left")}
    final = states(sim)["n0"]["x"]
    assert [v["value"] for v in lost_for_good(final, [v for _, _, v in created])] == ["left"]


def test_a_later_write_that_saw_the_earlier_one_is_not_a_loss():
    """A write on a node that has the previous version supersedes it knowingly: nothing is reported."""
    sim, clients, created = cluster(seed=2, nodes=3, resolution="lww", latency=em.Uniform(0.001, 0.003), loss=0.0)

    async def run():
        await clients[0].rpc("n0", {"type": "write", "key": "x", "value": 1})
        await asyncio.sleep(0.5)
        await clients[1].rpc("n1", {"type": "write", "key": "x", "value": 2})
        await asyncio.sleep(1.0)

    sim.run(run(), until=5)
    assert not [e for e in sim.events if e["what"] == "lww_lost"]
    assert lost_for_good(states(sim)["n2"]["x"], [v for _, _, v in created]) == []


def test_siblings_keep_both_concurrent_writes_and_a_write_with_the_context_merges_them():
    """Siblings: both sides' writes survive the heal; a write with the read's context replaces both."""
    sim, clients, _ = cluster(seed=1, nodes=4, resolution="siblings")
    sim.network.partition(["n0", "n1", "c0", "c1"], ["n2", "n3", "c2", "c3"])

    async def run():
        await clients[0].rpc("n0", {"type": "write", "key": "x", "value": "left"})
        await clients[2].rpc("n2", {"type": "write", "key": "x", "value": "right"})
        await asyncio.sleep(0.5)
        sim.network.heal()
        await asyncio.sleep(3.0)
        read = await clients[3].rpc("n3", {"type": "read", "key": "x"})
        await clients[3].rpc("n3", {"type": "write", "key": "x", "value": "both", "context": read["context"]})
        await asyncio.sleep(3.0)
        return read, [await c.rpc(f"n{i}", {"type": "read", "key": "x"}) for i, c in enumerate(clients)]

    read, after = sim.run(run(), until=20)
    assert sorted(read["values"]) == ["left", "right"] and read["siblings"] == 2
    assert all(r["values"] == ["both"] for r in after) and converged(sim)


def test_crdts_converge_with_no_loss_under_a_flapping_partition():
    """Counter increments and set adds on every node through a flapping partition: all of them, on every replica."""
    sim, clients, _ = cluster(seed=5, nodes=4, resolution="crdt")

    async def flap():
        for _ in range(6):
            sim.network.partition(["n0", "n1", "c0", "c1"], ["n2", "n3", "c2", "c3"])
            await asyncio.sleep(0.3)
            sim.network.heal()
            sim.network.partition(["n0", "n3", "c0", "c3"], ["n1", "n2", "c1", "c2"])
            await asyncio.sleep(0.2)
            sim.network.heal()

    async def adds(client, node, i):
        for j in range(30):
            await client.rpc(node, {"type": "add", "key": "hits", "delta": 1 + (i + j) % 3})
            await client.rpc(node, {"type": "add", "key": "seen", "element": f"{node}-{j}"})
            await asyncio.sleep(0.01)

    async def run():
        flapping = asyncio.ensure_future(flap())
        await asyncio.gather(*(adds(c, f"n{i}", i) for i, c in enumerate(clients)))
        await flapping
        await asyncio.sleep(4.0)
        return [
            (
                await c.rpc(f"n{i}", {"type": "read", "key": "hits"}),
                await c.rpc(f"n{i}", {"type": "read", "key": "seen"}),
            )
            for i, c in enumerate(clients)
        ]

    reads = sim.run(run(), until=30)
    expected = sum(1 + (i + j) % 3 for i in range(4) for j in range(30))
    assert all(hits["value"] == expected for hits, _ in reads)
    assert all(len(seen["value"]) == 120 for _, seen in reads) and converged(sim)


def test_a_late_duplicate_of_an_older_write_is_not_applied_again():
    """A duplicate of write x=1 arriving after write x=2 is answered from the dedup table; without it x ends 1."""
    outcomes = {}
    for cls in (MultiPrimary, _Forgetful):
        sim = em.Simulation(seed=0, latency=em.Constant(0.001))
        sim.add_node("n0", cls, anti_entropy=False)
        client = sim.add_client("c0")

        async def run():
            sim.network.set_link("c0", "n0", duplicate=1.0, reorder=1.0, latency=em.Uniform(0.001, 0.05))
            await client.rpc("n0", {"type": "write", "key": "x", "value": 1})
            sim.network.set_link("c0", "n0", duplicate=0.0, reorder=0.0, latency=em.Constant(0.001))
            await client.rpc("n0", {"type": "write", "key": "x", "value": 2})
            await asyncio.sleep(0.2)
            return (await client.rpc("n0", {"type": "read", "key": "x"}))["value"]

        outcomes[cls] = (sim.run(run()), sim.node("n0").dedup.duplicates)
    assert outcomes[MultiPrimary] == (2, 1)
    assert outcomes[_Forgetful][0] == 1  # the late duplicate, stamped anew, overwrote the later write


class _Forgetful(MultiPrimary):
    """A MultiPrimary without its dedup table: every delivery is applied."""

    def _once(self, msg, apply):
        return apply(msg.body)


def test_state_and_the_dedup_table_survive_a_crash():
    """A restart keeps the data and remembers applied requests: a retry with the same id is not applied again."""
    sim = em.Simulation(seed=1)
    sim.add_node("n0", MultiPrimary, resolution="crdt", anti_entropy=False)
    client = sim.add_client("c0")

    async def run():
        await client.rpc("n0", {"type": "add", "key": "k", "delta": 5, "id": "c0-1"})
        sim.crash("n0")
        sim.restart("n0")
        await client.rpc("n0", {"type": "add", "key": "k", "delta": 5, "id": "c0-1"})
        return (await client.rpc("n0", {"type": "read", "key": "k"}))["value"]

    assert sim.run(run()) == 5


@pytest.mark.parametrize(
    "config, match",
    [
        ({"resolution": "merge"}, "resolution must be one of lww, siblings, crdt"),
        ({"anti_entropy": -1}, "anti_entropy must be a positive number"),
        ({"anti_entropy_mode": "gossip"}, "anti_entropy_mode must be one of"),
    ],
)
def test_bad_config_says_what_to_do(config, match):
    """A misconfigured store fails at construction with the fix in the message."""
    sim = em.Simulation()
    with pytest.raises(em.ConfigError, match=match):
        sim.add_node("n0", MultiPrimary, **config)


@pytest.mark.parametrize(
    "resolution, body, code",
    [
        ("crdt", {"type": "write", "key": "k", "value": 1}, 10),
        ("lww", {"type": "add", "key": "k", "delta": 1}, 10),
        ("crdt", {"type": "add", "key": "k"}, 12),
        ("lww", {"type": "read", "key": ["k"]}, 12),
        ("lww", {"type": "read", "key": "nope"}, 20),
    ],
)
def test_operations_a_resolution_does_not_have_are_definite_errors(resolution, body, code):
    """A crdt store has no write, an lww store no add; malformed keys and missing keys have their codes."""
    sim = em.Simulation()
    sim.add_node("n0", MultiPrimary, resolution=resolution, anti_entropy=False)
    client = sim.add_client("c0")
    with pytest.raises(em.RPCError) as caught:
        sim.run(client.rpc("n0", body))
    assert caught.value.code == code and caught.value.definite


def test_a_counter_key_refuses_set_operations():
    """A key's crdt type is fixed by its first update."""
    sim = em.Simulation()
    sim.add_node("n0", MultiPrimary, resolution="crdt", anti_entropy=False)
    client = sim.add_client("c0")

    async def run():
        await client.rpc("n0", {"type": "add", "key": "k", "delta": 1})
        await client.rpc("n0", {"type": "add", "key": "k", "element": "x"})

    with pytest.raises(em.RPCError, match="holds a counter: use add with a delta"):
        sim.run(run())


def test_a_key_created_as_a_counter_and_a_set_on_two_sides_keeps_the_counter_and_reports_the_conflict():
    """crdt's one loss: cut apart, n0 adds 3 to k (a counter) while n1 adds x to k (a set), both acknowledged;
    after the heal both hold the counter, the set's add is gone, and the merge says so (type_conflict)."""
    sim = em.Simulation(seed=1, latency=em.Uniform(0.001, 0.003))
    for name in ("n0", "n1"):
        sim.add_node(name, MultiPrimary, resolution="crdt", anti_entropy=0.1)
    client = sim.add_client("c0")

    async def run():
        sim.network.partition(["n0", "c0"], ["n1"])
        await client.rpc("n0", {"type": "add", "key": "k", "delta": 3})
        sim.network.heal()
        sim.network.partition(["n1", "c0"], ["n0"])
        await client.rpc("n1", {"type": "add", "key": "k", "element": "x"})
        sim.network.heal()
        await asyncio.sleep(1.0)
        return [(await client.rpc(n, {"type": "read", "key": "k"}))["value"] for n in ("n0", "n1")]

    assert sim.run(run(), until=5) == [3, 3]
    assert [e["value"] for e in sim.events if e["what"] == "type_conflict"] == [["k", "set", "counter"]]


def test_the_same_seed_gives_the_same_trace():
    """Determinism: one seed, one digest, under the hostile network."""
    digests = []
    for _ in range(2):
        sim, clients, _ = cluster(seed=9, nodes=3, resolution="siblings")

        async def run():
            for i in range(20):
                await clients[i % 3].rpc(f"n{i % 3}", {"type": "write", "key": "k", "value": i})

        sim.run(run(), until=3)
        digests.append(sim.trace_digest())
    assert digests[0] == digests[1]


# -- under faults ------------------------------------------------------------------------------

SERVERS = ["n0", "n1", "n2"]


class MultiPrimaryUnderFaults(RuleBasedStateMachine):
    """Updates on every node while the hostile network partitions, crashes, pauses them and jumps their clocks.

    Invariants: a request to a node that stayed up and unpaused is answered
    without error; no value is ever versioned twice (at most once); after
    everything heals, every replica holds the same state, and:
    lww, the winner is a written value and every other write is either seen
    by it or lost (and each loss was reported); siblings, exactly the writes no
    other write superseded; crdt, the counter is the sum of the acknowledged
    deltas plus some of the indefinite ones, and every element added is present.
    """

    @initialize(seed=st.integers(0, 2**16), resolution=st.sampled_from(RESOLUTIONS))
    def build(self, seed, resolution):
        self.resolution = resolution
        self.sim, self.clients, self.created = cluster(seed=seed, nodes=3, resolution=resolution)
        self.tasks, self.sent, self.down = [], [], collections.defaultdict(list)  # node -> [(start, end)]
        self.values = 0
        self.cut = False

    def _faulted(self, node, start, end) -> bool:
        return any(s <= end and (e is None or e >= start) for s, e in self.down[node])

    @rule(i=st.integers(0, 2), key=st.sampled_from(["a", "b"]), n=st.integers(1, 4))
    def update(self, i, key, n):
        client, node = self.clients[i], SERVERS[i]
        for _ in range(n):
            self.values += 1
            body = _op(self.resolution, self.values, key)
            if self.resolution == "crdt" and "delta" in body:
                body["delta"] = self.values
            self.tasks.append((node, self.sim.now, body, background(self.sim, client.rpc(node, body, timeout=1.0))))
        self.sim.run(until=self.sim.now + 0.01)

    @rule(shape=st.sampled_from([(["n0"], ["n1", "n2"]), (["n0", "n1"], ["n2"]), (["n1"], ["n0", "n2"])]))
    def partition(self, shape):
        left, right = shape
        self.sim.network.partition(left + [f"c{s[1]}" for s in left], right + [f"c{s[1]}" for s in right])

    @rule()
    def heal(self):
        self.sim.network.heal()

    @rule(node=st.sampled_from(SERVERS))
    def crash(self, node):
        if self.sim.alive(node):
            self.sim.crash(node)
            self.down[node].append((self.sim.now, None))

    @rule(node=st.sampled_from(SERVERS))
    def restart(self, node):
        if not self.sim.alive(node):
            self.sim.restart(node)
            self.down[node][-1] = (self.down[node][-1][0], self.sim.now)

    @rule(node=st.sampled_from(SERVERS), pause=st.floats(0.05, 0.5))
    def pause(self, node, pause):
        if self.sim.alive(node):
            self.sim.pause(node)
            start = self.sim.now
            self.sim.run(until=start + pause)
            self.sim.resume(node)
            self.down[node].append((start, self.sim.now))

    @rule(node=st.sampled_from(SERVERS), offset=st.sampled_from([-5.0, -0.05, 0.05, 5.0]))
    def skew(self, node, offset):
        """A clock jump: under lww a write's stamp may now fall below an older one's."""
        self.sim.skew(node, offset)

    @rule(dt=st.sampled_from([0.01, 0.1, 0.5]))
    def wait(self, dt):
        self.sim.run(until=self.sim.now + dt)

    @invariant()
    def answered_unless_its_node_was_down(self):
        for node, start, body, task in self.tasks:
            if not task.done():
                continue
            result = task.result()
            if isinstance(result, (em.Timeout, em.RPCError)):
                assert self._faulted(node, start, self.sim.now), (node, start, body, result)

    @invariant()
    def no_value_is_versioned_twice(self):
        values = [(key, value) for key, value, _ in self.created]
        assert len(values) == len(set(values))

    def teardown(self):
        if not hasattr(self, "sim"):
            return
        self.sim.network.heal()
        for node in SERVERS:
            if not self.sim.alive(node):
                self.sim.restart(node)
        self.sim.run(until=self.sim.now + 6.0)
        assert converged(self.sim), states(self.sim)
        getattr(self, f"_final_{self.resolution}")(states(self.sim)["n0"])

    def _outcomes(self):
        ok = [body for _, _, body, task in self.tasks if task.done() and isinstance(task.result(), dict)]
        unsure = [body for _, _, body, task in self.tasks if not task.done() or not isinstance(task.result(), dict)]
        return ok, unsure

    def _final_lww(self, data):
        reported = {tuple(e["value"][1]) for e in self.sim.events if e["what"] == "lww_lost"}
        for key, state in data.items():
            winner = state[0]
            versions = [v for k, _, v in self.created if k == key]
            assert winner["value"] in [v["value"] for v in versions]
            for version in lost_for_good(state, versions):
                assert tuple(version["stamp"]) in reported

    def _final_siblings(self, data):
        for key, state in data.items():
            contexts = [r["context"] for k, _, r in self.created if k == key]
            survivors = sorted(
                v
                for k, v, r in self.created
                if k == key and not any(descends(c, {r["dot"][0]: r["dot"][1]}) for c in contexts)
            )
            assert sorted(crdt.register_values(state)) == survivors

    def _final_crdt(self, data):
        ok, unsure = self._outcomes()
        for key in ("a", "b"):
            total = crdt.counter_value(data[key]) if key in data else 0
            sure = sum(b["delta"] for b in ok if b["key"] == key and "delta" in b)
            maybe = sum(b["delta"] for b in unsure if b["key"] == key and "delta" in b)
            assert sure <= total <= sure + maybe
            added = {b["element"] for b in ok if b["key"] == key + "s"}
            assert added <= set(crdt.orset_value(data[key + "s"]) if key + "s" in data else [])


TestMultiPrimaryUnderFaults = MultiPrimaryUnderFaults.TestCase
TestMultiPrimaryUnderFaults.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


@pytest.mark.slow
class TestMultiPrimaryUnderFaultsSoak(MultiPrimaryUnderFaults.TestCase):
    """The same machine, longer: run with -m slow."""

    settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_a_heal_the_replicas_converge_within_n_minus_one_anti_entropy_intervals(seed):
    """Five replicas, anti_entropy 0.2 s, a reliable network: equal within 4 * 0.2 s (plus round trips) of the heal."""
    sim, clients, _ = cluster(
        seed=seed,
        nodes=5,
        resolution="siblings",
        latency=em.Uniform(0.001, 0.003),
        loss=0.0,
        duplicate=0.0,
        reorder=0.0,
    )
    heal_at, agreed = [], []

    async def run():
        sim.network.partition(["n0", "n1", "c0", "c1"], ["n2", "n3", "n4", "c2", "c3", "c4"])
        for i in range(30):
            await clients[i % 5].rpc(f"n{i % 5}", {"type": "write", "key": f"k{i % 4}", "value": i})
        sim.network.heal()
        heal_at.append(sim.now)
        while not converged(sim):
            await asyncio.sleep(0.005)
        agreed.append(sim.now)

    sim.run(run(), until=10)
    assert agreed and agreed[0] - heal_at[0] <= 4 * 0.2 + 0.05


# -- one replica is one register: linearizable, definite failures included ----------------------


def _one_replica_history(seed: int, duplicate: float, reorder: float, loss: float, crash: bool) -> list:
    """Three clients write, cas and read two keys on one LWW replica over a hostile client link (n0 may crash)."""
    sim = em.Simulation(
        seed=seed,
        latency=em.Pareto(0.001, 1.3, 0.3),
        duplicate=duplicate,
        reorder=reorder,
        loss=loss,
        fifo=False,
    )
    sim.add_node("n0", MultiPrimary, resolution="lww", anti_entropy=False)
    clients = [sim.add_client(f"c{i}") for i in range(3)]
    values = iter(range(1, 10**6))

    async def client(c):
        rng = sim.rng(f"test:{c.name}")
        for _ in range(25):
            f, key = rng.choice(("read", "write", "cas", "cas")), rng.choice("ab")
            value = None if f == "read" else next(values)
            if f == "cas":
                value = [rng.randint(0, 3), value % 4]  # small values, so cas often finds what it expects
            elif f == "write":
                value %= 4
            try:
                await c.invoke(f, key=key, value=value, dest="n0", timeout=0.3)
            except (em.RPCError, em.Timeout):
                pass

    async def faults():
        if crash:
            await asyncio.sleep(0.2)
            sim.crash("n0")
            await asyncio.sleep(0.1)
            sim.restart("n0")

    async def run():
        await asyncio.gather(faults(), *(client(c) for c in clients))
        await asyncio.sleep(1.0)  # the last late copies land (and must change nothing)
        sim.network.set_defaults(loss=0.0, duplicate=0.0)
        for key in "ab":
            try:
                await clients[0].invoke("read", key=key, dest="n0", timeout=5.0)
            except (em.RPCError, em.Timeout):
                pass

    sim.run(run())
    return [  # a read that found no key read the register's initial None
        {**op, "type": "ok", "value": None}
        if op.get("f") == "read" and op.get("type") == "fail" and op["error"][0] == 20
        else op
        for op in sim.history
    ]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    duplicate=st.floats(0.0, 0.6),
    reorder=st.floats(0.0, 0.6),
    loss=st.floats(0.0, 0.1),
    crash=st.booleans(),
)
@example(seed=0, duplicate=0.59375, reorder=0.0, loss=0.0, crash=False)  # a late copy of a refused cas applied
def test_one_replica_is_linearizable_whatever_the_client_links_do(seed, duplicate, reorder, loss, crash):
    """At most once, failures too: a copy of a cas refused with 22 (or 20) never applies later, when it would match."""
    verdict = linearizable(_one_replica_history(seed, duplicate, reorder, loss, crash), "cas_register", timeout=30)
    assert verdict.valid is True, verdict.summary()


def test_a_retried_cas_refused_once_is_refused_again_even_when_it_would_now_match():
    """A retry (same "id") of a cas answered 22 gets 22 again, and x keeps the value written in between."""
    sim = em.Simulation(seed=0)
    sim.add_node("n0", MultiPrimary, resolution="lww", anti_entropy=False)
    client = sim.add_client("c0")
    cas = {"type": "cas", "key": "x", "from": 1, "to": 5, "id": "c0-cas"}

    async def run():
        await client.rpc("n0", {"type": "write", "key": "x", "value": 2})
        codes = []
        for write in (1, None):
            try:
                await client.rpc("n0", cas)
            except em.RPCError as exc:
                codes.append(exc.code)
            if write is not None:
                await client.rpc("n0", {"type": "write", "key": "x", "value": write})
        return codes, (await client.rpc("n0", {"type": "read", "key": "x"}))["value"]

    assert sim.run(run()) == ([22, 22], 1)


def test_a_retry_sent_to_another_replica_is_a_new_update_there():
    """The dedup tables are per replica (as the docstring says): an add retried elsewhere with its id counts twice."""
    sim = em.Simulation(seed=0)
    for name in ("n0", "n1"):
        sim.add_node(name, MultiPrimary, resolution="crdt", anti_entropy=0.1)
    client = sim.add_client("c0")

    async def run():
        for node in ("n0", "n0", "n1"):
            await client.rpc(node, {"type": "add", "key": "k", "delta": 1, "id": "c0-1"})
        await asyncio.sleep(0.5)
        return [(await client.rpc(n, {"type": "read", "key": "k"}))["value"] for n in ("n0", "n1")]

    assert sim.run(run(), until=5) == [2, 2]


def test_under_lww_a_write_that_saw_the_last_one_wins_even_from_a_slow_clock():
    """n1's clock runs 5 s behind: its write of x=2, made after it had x=1 from n0, still wins, and no loss is
    reported (it superseded x=1 knowingly); without the bump its stamp was below x=1's and it was dropped."""
    sim = em.Simulation(seed=2, latency=em.Uniform(0.001, 0.003))
    for name in ("n0", "n1"):
        sim.add_node(name, MultiPrimary, resolution="lww", anti_entropy=0.1)
    sim.skew("n1", -5.0)
    client = sim.add_client("c0")

    async def run():
        await client.rpc("n0", {"type": "write", "key": "x", "value": 1})
        await asyncio.sleep(0.5)
        assert (await client.rpc("n1", {"type": "read", "key": "x"}))["value"] == 1
        await client.rpc("n1", {"type": "write", "key": "x", "value": 2})
        await asyncio.sleep(0.5)
        return [(await client.rpc(n, {"type": "read", "key": "x"}))["value"] for n in ("n0", "n1")]

    assert sim.run(run(), until=5) == [2, 2]
    assert not [e for e in sim.events if e["what"] == "lww_lost"]
