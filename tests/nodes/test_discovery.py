"""Service discovery: TTL leases, cached lookups, and the AP and CP registries through a partition."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

import emulator as em
from nodes.discovery import Registry, Resolver, merge_records
from tests.common.discovery_nodes import Caller, LoggedInstance, Looker, missed
from tests.common.hostile import HOSTILE
from tests.common.lb_harness import SimMachine

REGISTRIES = ["r0", "r1", "r2"]
TTL, INTERVAL = 1.0, 0.25


def registry_cluster(sim, mode: str, hostile: bool = False):
    for name in REGISTRIES:
        sim.add_node(name, Registry, replicas=REGISTRIES, mode=mode, sync_interval=0.2, rpc_timeout=0.1)
    if hostile:
        for a in REGISTRIES:
            for b in REGISTRIES:
                if a < b:
                    sim.network.set_link(a, b, **HOSTILE)


def instance(sim, name: str, home: int, acks: dict):
    order = REGISTRIES[home:] + REGISTRIES[:home]
    acks[name] = []
    sim.add_node(
        name,
        LoggedInstance,
        acks=acks[name],
        service="users",
        registries=order,
        interval=INTERVAL,
        ttl=TTL,
        service_time=em.Constant(0.001),
    )


@pytest.mark.parametrize("mode", ["ap", "cp"])
def test_a_dead_instance_gets_traffic_until_its_lease_and_the_cache_run_out(mode):
    """Killed at 2 s: still listed for up to ttl, and sent traffic for up to ttl + cache_ttl, never later."""
    sim = em.Simulation(seed=1, latency=em.Uniform(0.001, 0.003))
    registry_cluster(sim, mode)
    acks: dict = {}
    for i in range(3):
        instance(sim, f"i{i}", i, acks)
    sent, seen = [], []
    sim.add_node("caller", Caller, service="users", registries=["r0", "r1"], cache_ttl=0.5, sent=sent)
    sim.add_node("looker", Looker, service="users", registry="r2", every=0.02, seen=seen)

    async def run():
        await asyncio.sleep(2.0)
        sim.crash("i1")
        await asyncio.sleep(3.0)

    sim.run(run())
    late = [t for t, target in sent if target == "i1" and t >= 2.0]
    listed = [answered for asked, answered, found in seen if asked >= 2.0 and "i1" in found]
    assert late and max(late) <= 2.0 + TTL + 0.5 + 0.01  # lease, then the cache
    assert listed and max(listed) <= 2.0 + TTL + 0.01
    assert max(late) > 2.0 + TTL - INTERVAL  # the cache really did carry it past the registry's view
    assert all(set(found) == {"i0", "i2"} for asked, _, found in seen if asked > 2.0 + TTL + 0.01)


def partition_run(mode: str, seed: int = 2):
    """r0 (+ i0, a looker) cut off from r1, r2 (+ i1, i2, a looker) from 1 s to 4 s.

    i3 joins at 2 s, i2 dies at 2.5 s.
    """
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.003))
    registry_cluster(sim, mode, hostile=True)
    acks: dict = {}
    for i in range(3):
        instance(sim, f"i{i}", i, acks)
    minority, majority = [], []
    sim.add_node("l0", Looker, service="users", registry="r0", every=0.05, seen=minority)
    sim.add_node("l1", Looker, service="users", registry="r1", every=0.05, seen=majority)

    async def run():
        await asyncio.sleep(1.0)
        cut = sim.network.partition(["r0", "i0", "l0"], ["r1", "r2", "i1", "i2", "l1"])
        await asyncio.sleep(1.0)
        instance(sim, "i3", 1, acks)
        sim.network.partition(["r0", "i0", "l0"], ["i3"])
        sim.network.heal(cut)
        sim.network.partition(["r0", "i0", "l0"], ["r1", "r2", "i1", "i2", "i3", "l1"])
        await asyncio.sleep(0.5)
        sim.crash("i2")
        await asyncio.sleep(1.5)

    sim.run(run())
    during = lambda seen: [s for s in seen if s[0] >= 1.0 and s[1] < 4.0]  # noqa: E731
    return during(minority), during(majority), acks


def test_the_ap_registry_answers_on_both_sides_and_the_cut_off_side_is_stale():
    """AP: every lookup answered on both sides; the minority's view misses live instances."""
    minority, majority, acks = partition_run("ap")
    assert minority and all(isinstance(found, list) for _, _, found in minority)
    assert majority and all(isinstance(found, list) for _, _, found in majority)
    stale = [(a, found) for a, b, found in minority if missed(found, a, b, acks, TTL)]
    assert len(stale) > len(minority) / 2  # i1 expired on r0 though alive; i3 never reached it
    assert any("i3" not in found for _, found in stale)


def test_the_cp_registry_refuses_on_the_minority_and_never_misses_a_live_instance():
    """CP: the minority refuses every lookup (error 11); the majority's answers miss no acknowledged lease."""
    minority, majority, acks = partition_run("cp")
    assert minority and all(isinstance(found, em.RPCError) and found.code == 11 for _, _, found in minority)
    answered = [(a, b, found) for a, b, found in majority if isinstance(found, list)]
    assert len(answered) > 0.8 * len(majority)
    assert all(not missed(found, a, b, acks, TTL) for a, b, found in answered)
    assert any("i0" not in found for _, _, found in answered[-10:])  # i0 could not renew: gone, though alive


def test_a_late_duplicate_of_a_heartbeat_does_not_extend_the_lease():
    """The same beat taken twice keeps the expiry of its first arrival."""
    sim = em.Simulation(seed=1)
    sim.add_node("r0", Registry)
    client = sim.add_client("c0")
    beat = {"type": "heartbeat", "service": "users", "instance": "i0", "ttl": 1.0, "beat": 1}

    async def run():
        await client.rpc("r0", beat)
        await asyncio.sleep(0.6)
        await client.rpc("r0", beat)
        await asyncio.sleep(0.5)
        return await client.rpc("r0", {"type": "lookup", "service": "users"})

    assert sim.run(run())["instances"] == []


def test_the_resolver_caches_falls_back_to_its_last_answer_and_else_refuses():
    """A lookup within cache_ttl is not asked again; with every registry down the last answer is used, or error 11."""
    sim = em.Simulation(seed=1)
    sim.add_node("r0", Registry)
    node = sim.add_node("user", em.Node)
    client = sim.add_client("c0")

    async def run():
        await client.rpc("r0", {"type": "heartbeat", "service": "a", "instance": "x", "ttl": 9.0, "beat": 1})
        resolver = Resolver(node, ["r0"], cache_ttl=1.0)
        first = await resolver.lookup("a")
        second = await resolver.lookup("a")
        sim.crash("r0")
        await asyncio.sleep(1.5)
        third = await resolver.lookup("a")
        with pytest.raises(em.RPCError, match="no registry answered a lookup of 'b'"):
            await resolver.lookup("b")
        await asyncio.sleep(20.0)  # the lease (9 s) and the cache long gone: cut off, it still answers x
        fourth = await resolver.lookup("a")
        strict = Resolver(node, ["r0"], cache_ttl=1.0, stale_on_error=False)
        strict._cache = dict(resolver._cache)  # the same last answer, which it will not fall back on
        with pytest.raises(em.RPCError, match="no registry answered a lookup of 'a'"):
            await strict.lookup("a")
        return first, second, third + fourth, dict(resolver.stats)

    first, second, third, stats = sim.run(run())
    assert first == second == ["x"] and third == ["x", "x"] and stats == {"asked": 1, "cached": 1, "stale": 2}


def test_records_merge_by_beat_then_earliest_expiry():
    """A newer beat wins whatever its expiry, and of one beat the earlier expiry; the same in either order."""
    a = {"x": {"service": "s", "beat": 2, "expires": 1.0}, "y": {"service": "s", "beat": 1, "expires": 3.0}}
    b = {"x": {"service": "s", "beat": 1, "expires": 5.0}, "y": {"service": "s", "beat": 1, "expires": 2.0}}
    assert merge_records(a, b) == merge_records(b, a) == {"x": a["x"], "y": b["y"]}


@pytest.mark.parametrize(
    "config, match",
    [
        ({"mode": "raft"}, "mode must be 'ap'"),
        ({"replicas": "r0"}, "replicas must be a list"),
        ({"sync_interval": 0}, "sync_interval must be a positive"),
    ],
)
def test_bad_config_says_what_to_do(config, match):
    """A misconfigured registry fails at construction, naming the fix."""
    with pytest.raises(em.ConfigError, match=match):
        em.Simulation().add_node("r0", Registry, **config)


class CPRegistryUnderFaults(SimMachine):
    """A CP registry under a hostile network, partitions of its replicas and crashes of them and of instances.

    Invariant: no lookup answer ever misses an instance whose acknowledged
    heartbeat keeps it alive past the answer. After a heal, every live
    instance is listed again within a few heartbeats (by the lookups the
    hostile network lets through).
    """

    clients = 0

    def build(self, sim):
        registry_cluster(sim, "cp", hostile=True)
        self.acks, self.seen = {}, []
        for i in range(3):
            instance(sim, f"i{i}", i, self.acks)
        for i, registry in enumerate(REGISTRIES):
            sim.add_node(f"l{i}", Looker, service="users", registry=registry, every=0.05, seen=self.seen)

    @rule(
        shape=st.sampled_from([(["r0"], ["r1", "r2"]), (["r0", "r1"], ["r2"]), (["r1"], ["r0", "r2"])]),
        instances=st.sampled_from([["i0"], ["i1"], ["i2"], ["i0", "i2"]]),
    )
    def partition(self, shape, instances):
        left, _right = shape
        looker = [f"l{r[1]}" for r in left]
        self.sim.network.partition(
            left + instances + looker, [n for n in self.sim.nodes if n not in left + instances + looker]
        )

    @rule()
    def heal(self):
        self.sim.network.heal()

    @rule(node=st.sampled_from(REGISTRIES + ["i0", "i1", "i2"]))
    def crash_or_restart(self, node):
        if self.sim.alive(node):
            self.sim.crash(node)
        else:
            self.sim.restart(node)

    @rule(dt=st.sampled_from([0.1, 0.4, 1.2]))
    def wait(self, dt):
        self.advance(dt)

    @invariant()
    def no_acknowledged_lease_is_missed(self):
        for asked, answered, found in self.seen:
            if isinstance(found, list):
                assert not missed(found, asked, answered, self.acks, TTL), (asked, answered, found)

    def teardown(self):
        if not hasattr(self, "sim"):
            return
        self.sim.network.heal()
        for node in self.sim.servers:
            if not self.sim.alive(node):
                self.sim.restart(node)
        self.advance(2.0)
        recent = [found for asked, _, found in self.seen if asked >= self.sim.now - 0.5]
        answered = [found for found in recent if isinstance(found, list)]
        assert len(answered) > len(recent) / 2 and all(found == ["i0", "i1", "i2"] for found in answered), recent


TestCPRegistryUnderFaults = CPRegistryUnderFaults.TestCase
TestCPRegistryUnderFaults.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)


# -- the lease bound under a hostile network ---------------------------------------------------


class FirstTakes(Registry):
    """A Registry that notes in ``taken`` the first time any replica took each (instance, beat)."""

    def __init__(self, taken: dict, **config):
        super().__init__(**config)
        self.taken = taken

    async def handle_heartbeat(self, msg):
        self.taken.setdefault((msg.body["instance"], msg.body["beat"]), self.now())
        return await super().handle_heartbeat(msg)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    mode=st.sampled_from(["ap", "cp"]),
    cuts=st.lists(st.tuples(st.sampled_from(REGISTRIES), st.sampled_from([0.1, 0.3, 0.6])), max_size=4),
)
def test_a_dead_instance_is_listed_at_most_ttl_after_its_last_beat_was_first_taken(seed, mode, cuts):
    """Property: hostile links everywhere (heartbeats lost, duplicated, retried elsewhere, late), replicas cut off in
    turn: once the instance is dead, no replica lists it later than ttl after some replica first took its last beat
    (a retry or duplicate taken elsewhere, later, extends nothing)."""
    sim = em.Simulation(seed=seed, **HOSTILE)
    taken: dict = {}
    for name in REGISTRIES:
        sim.add_node(name, FirstTakes, taken=taken, replicas=REGISTRIES, mode=mode, sync_interval=0.2, rpc_timeout=0.1)
    instance(sim, "i0", 0, {})
    seen: list = []
    for i, registry in enumerate(REGISTRIES):
        sim.add_node(f"l{i}", Looker, service="users", registry=registry, every=0.02, seen=seen)

    async def run():
        await asyncio.sleep(0.5)
        for registry, hold in cuts:
            sim.network.partition_oneway([registry], [n for n in sim.nodes if n != registry])
            await asyncio.sleep(hold)
            sim.network.heal()
        sim.crash("i0")
        await asyncio.sleep(TTL + 1.5)

    sim.run(run())
    last = max(beat for instance_, beat in taken if instance_ == "i0")
    bound = taken[("i0", last)] + TTL
    late = [(asked, found) for asked, _, found in seen if asked > bound and isinstance(found, list) and "i0" in found]
    assert not late, (bound, late[:3])
