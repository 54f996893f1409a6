"""The sharded store: lin-kv through any node, CP per shard, handoffs that lose nothing."""

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import emulator as em
from emulator.check import linearizable
from faults import load_scenario, run_chaos
from nodes.hashring import HashRing
from nodes.registry import resolve
from nodes.sharded import ShardedKV
from tests.common.hostile import SETTINGS as HOSTILE
from tests.common.hostile import make_calm, make_hostile
from tests.common.quorum_cluster import attempt
from tests.common.sharded_cluster import (
    LATENCY,
    Workload,
    admin,
    assert_safe,
    build,
    final_reads,
    holders,
    misplaced,
    outcomes,
)

KEYS = [f"k{i}" for i in range(24)]
FIRST = [f"n{i}" for i in range(5)]


def test_the_registry_names_the_store():
    """'sharded-kv' resolves to ShardedKV."""
    assert resolve("sharded-kv") is ShardedKV


def test_any_node_serves_any_key_with_lin_kv_replies():
    """A write through one node is read through every node; cas and the errors 20 and 22 follow lin-kv."""
    sim, (client,) = build(seed=1, clients=1)

    async def workload():
        await client.invoke("write", key="a", value=1, dest="n0")
        reads = [(await client.invoke("read", key="a", dest=n))["value"] for n in FIRST]
        await client.invoke("cas", key="a", value=[1, 2], dest="n3")
        errors = []
        for f, key, value in (("cas", "a", [1, 3]), ("read", "nope", None), ("cas", "nope", [1, 2])):
            with pytest.raises(em.RPCError) as info:
                await client.invoke(f, key=key, value=value, dest="n4")
            errors.append((info.value.code, info.value.definite))
        return reads, errors, (await client.invoke("read", key="a", dest="n2"))["value"]

    reads, errors, final = sim.run(workload())
    assert reads == [1] * 5
    assert errors == [(22, True), (20, True), (20, True)]
    assert final == 2
    assert [op["type"] for op in sim.history if op["type"] != "invoke"].count("fail") == 3


def test_a_request_without_a_usable_key_is_malformed():
    """read with no key, or a list as key, answers 12 (definite) and crashes nothing."""
    sim, (client,) = build(seed=16, clients=1)

    async def workload():
        codes = []
        for body in ({"type": "read"}, {"type": "write", "key": [1], "value": 2}):
            with pytest.raises(em.RPCError, match="needs a key") as info:
                await client.rpc("n1", body)
            codes.append(info.value.code)
        return codes

    assert sim.run(workload()) == [12, 12]
    assert sim.errors == []


def test_each_key_is_stored_once_on_its_ring_owner():
    """After writes through random nodes, every key sits in the storage of its ring owner only."""
    sim, clients = build(seed=2)

    async def workload():
        for i, key in enumerate(KEYS):
            await clients[0].invoke("write", key=key, value=-i, dest=FIRST[i % 5])
        work = Workload(sim, clients, KEYS).start()
        await asyncio.sleep(0.3)
        await work.stop()

    sim.run(workload())
    assert sorted(holders(sim)) == sorted(KEYS)
    assert misplaced(sim, FIRST) == {}


def test_keys_of_a_cut_off_owner_are_unavailable_while_the_others_answer():
    """Isolating one owner mid-traffic: its keys get no answer at all, the other keys keep answering."""
    sim, clients = build(seed=3, clients=6)
    ring = HashRing(FIRST, vnodes=64)
    cut = [k for k in KEYS if ring.lookup(k) == "n2"]
    rest = [k for k in KEYS if k not in cut]

    async def workload():
        work = Workload(sim, clients, KEYS, dests=["n0", "n1", "n3", "n4"]).start()
        await asyncio.sleep(0.2)
        start = sim.now
        sim.network.isolate("n2")
        await asyncio.sleep(1.0)
        end = sim.now
        sim.network.heal()
        await asyncio.sleep(0.2)
        await work.stop()
        await final_reads(clients[0], KEYS, FIRST)
        return start, end

    start, end = sim.run(workload())
    on_cut, on_rest = outcomes(sim.history, start, end, cut), outcomes(sim.history, start, end, rest)
    numbers = f"n2's {len(cut)} keys: {dict(on_cut)}; the other {len(rest)} keys: {dict(on_rest)}"
    assert cut and on_cut["served"] == 0 and on_cut["refused"] > 0, numbers
    assert on_rest["refused"] == 0 and on_rest["served"] > 30, numbers
    assert_safe(sim.history, numbers + "\n")


def test_a_crashed_owner_keeps_its_keys_across_a_restart():
    """Crash an owner while ops are in flight: its keys get no answer, then answer with every acked write."""
    sim, clients = build(seed=4)
    owner = HashRing(FIRST, vnodes=64).lookup("k0")
    keys = [k for k in KEYS if HashRing(FIRST, vnodes=64).lookup(k) == owner]

    async def workload():
        work = Workload(sim, clients, KEYS).start()
        await asyncio.sleep(0.2)
        crashed = sim.now
        sim.crash(owner)
        await asyncio.sleep(0.8)
        restarted = sim.now
        sim.restart(owner)
        await asyncio.sleep(0.3)
        await work.stop()
        await final_reads(clients[0], KEYS, FIRST)
        return crashed, restarted

    crashed, restarted = sim.run(workload())
    down, back = outcomes(sim.history, crashed, restarted, keys), outcomes(sim.history, restarted, keys=keys)
    numbers = f"{owner}'s {len(keys)} keys while it was down: {dict(down)}; after its restart: {dict(back)}"
    assert down["served"] == 0 and down["refused"] > 0 and back["served"] > 0, numbers
    assert misplaced(sim, FIRST) == {}, numbers
    assert_safe(sim.history, numbers + "\n")


def test_a_request_is_forwarded_at_most_hops_times():
    """With hops=0 a node refuses (11, definite) a key it does not own instead of forwarding."""
    sim, (client,) = build(seed=5, clients=1, hops=0)
    ring = HashRing(FIRST, vnodes=64)
    key = next(k for k in KEYS if ring.lookup(k) != "n0")

    async def workload():
        with pytest.raises(em.RPCError, match="hops") as info:
            await client.invoke("write", key=key, value=1, dest="n0")
        return info.value

    error = sim.run(workload())
    assert (error.code, error.definite) == (11, True)


def test_join_and_leave_under_traffic_lose_no_acknowledged_write():
    """n5 joins and n1 leaves while 6 clients write, read and cas: linearizable, nothing lost, keys moved."""
    sim, clients = build(seed=6, clients=6)
    operator = sim.add_client("admin")
    keys = [f"k{i}" for i in range(48)]

    async def workload():
        work = Workload(sim, clients, keys).start()
        await asyncio.sleep(0.2)
        before = holders(sim)
        start = sim.now
        sim.add_node("n5", ShardedKV, contact="n3")
        await asyncio.gather(admin(operator, "join", "n5", "n4"), admin(operator, "leave", "n1", "n5"))
        end = sim.now
        await asyncio.sleep(0.2)
        await work.stop()
        await final_reads(clients[0], keys, sim.servers)
        return before, start, end

    before, start, end = sim.run(workload())
    after = holders(sim)
    moved = sorted(k for k in after if before.get(k) != after[k])
    during = outcomes(sim.history, start, end)
    numbers = f"{len(moved)} of {len(after)} keys moved in {end - start:.3f}s; ops during the move: {dict(during)}"
    members = ["n0", "n2", "n3", "n4", "n5"]
    assert all(sim.node(n).view()["active"]["members"] == members for n in sim.servers), numbers
    assert misplaced(sim, members) == {}, numbers
    assert {owner for k in moved for owner in after[k]} >= {"n5"} and "n1" not in str(after), numbers
    assert during["ok"] > 0 and len(moved) > 0, numbers
    assert_safe(sim.history, numbers + "\n")


async def _until_handoff(sim, node="n0", within=2.0):
    """Wait until ``node`` knows a next configuration (a handoff is under way)."""
    deadline = sim.now + within
    while sim.node(node).view()["next"] is None:
        assert sim.now < deadline, f"{node} saw no membership change within {within}s"
        await asyncio.sleep(0.0005)


def test_a_crash_of_an_old_owner_during_its_handoff_loses_nothing():
    """n2 crashes while handing keys to the joining n5; the join completes after its restart, nothing lost."""
    sim, clients = build(seed=7)
    operator = sim.add_client("admin")

    async def workload():
        work = Workload(sim, clients, KEYS).start()
        await asyncio.sleep(0.2)
        sim.add_node("n5", ShardedKV, contact="n0")
        join = asyncio.ensure_future(admin(operator, "join", "n5", "n1"))
        await _until_handoff(sim, "n2")
        sim.crash("n2")
        await asyncio.sleep(0.5)
        stuck = join.done()
        sim.restart("n2")
        reply = await join
        await asyncio.sleep(0.1)
        await work.stop()
        await final_reads(clients[0], KEYS, sim.servers)
        return stuck, reply

    stuck, reply = sim.run(workload())
    assert not stuck, "the change cannot complete while an old owner is down"
    assert reply["members"] == FIRST + ["n5"]
    assert misplaced(sim, reply["members"]) == {}
    assert_safe(sim.history)


def test_a_partition_of_the_new_owner_during_handoff_refuses_moving_keys_then_completes():
    """n5 cut off mid-join: keys moving to it get no answer (11 or timeout); after heal the join completes."""
    sim, clients = build(seed=8, clients=4)
    operator = sim.add_client("admin")
    ring = HashRing(FIRST + ["n5"], vnodes=64)
    moving = [k for k in KEYS if ring.lookup(k) == "n5"]

    async def workload():
        work = Workload(sim, clients, KEYS).start()
        await asyncio.sleep(0.2)
        sim.add_node("n5", ShardedKV, contact="n0")
        join = asyncio.ensure_future(admin(operator, "join", "n5", "n2"))
        await _until_handoff(sim)
        start = sim.now
        sim.network.partition(["n5"], FIRST + [c.name for c in clients])
        await asyncio.sleep(0.6)
        end = sim.now
        sim.network.heal()
        reply = await join
        await asyncio.sleep(0.1)
        await work.stop()
        await final_reads(clients[0], KEYS, sim.servers)
        return start, end, reply

    start, end, reply = sim.run(workload())
    during = outcomes(sim.history, start, end, moving)
    numbers = f"{len(moving)} keys moving to n5; their ops while it was cut off: {dict(during)}"
    assert moving and during["served"] == 0 and during["refused"] > 0, numbers
    assert misplaced(sim, reply["members"]) == {}, numbers
    assert_safe(sim.history, numbers + "\n")


def test_keys_whose_batch_is_held_back_are_refused_by_both_owners():
    """n2's batch to the joining n5 is held: n2 (frozen) and n5 (not yet holding it) both answer 11; none is served."""
    sim, clients = build(seed=15, clients=4)
    operator = sim.add_client("admin")
    before, after = HashRing(FIRST, vnodes=64), HashRing(FIRST + ["n5"], vnodes=64)
    keys = [f"m{i}" for i in range(300)]
    moving = [k for k in keys if before.lookup(k) == "n2" and after.lookup(k) == "n5"][:6]

    async def workload():
        sim.add_node("n5", ShardedKV, contact="n0")
        work = Workload(sim, clients, moving, dests=["n2", "n5", "n0"]).start()
        await asyncio.sleep(0.1)
        sim.network.hold("n2", "n5")
        join = asyncio.ensure_future(admin(operator, "join", "n5", "n0"))
        await _until_handoff(sim, "n2")
        start = sim.now
        await asyncio.sleep(0.5)
        end = sim.now
        sim.network.release("n2", "n5")
        await join
        joined = sim.now
        await asyncio.sleep(0.3)
        await work.stop()
        await final_reads(clients[0], moving, ["n5"])
        return start, end, joined

    start, end, joined = sim.run(workload())
    held, later = outcomes(sim.history, start, end), outcomes(sim.history, joined)
    numbers = f"{len(moving)} keys moving n2 -> n5; ops while the batch was held: {dict(held)}; after: {dict(later)}"
    assert len(moving) == 6 and held["served"] == 0 and held["fail:11"] > 20, numbers
    assert later["served"] > 20 and later["refused"] == 0, numbers
    assert_safe(sim.history, numbers + "\n")


def test_a_second_change_during_a_change_is_refused_with_11():
    """A leave sent while a join is in progress gets 11 (definite); retried later, it succeeds."""
    sim, (client,) = build(seed=9, clients=1)

    async def workload():
        sim.add_node("n5", ShardedKV, contact="n0")
        join = asyncio.ensure_future(client.rpc("n0", {"type": "join", "node": "n5"}, timeout=5))
        await _until_handoff(sim)
        with pytest.raises(em.RPCError, match="in progress") as info:
            await client.rpc("n3", {"type": "leave", "node": "n4"}, timeout=5)
        await join
        return info.value, await admin(client, "leave", "n4", "n3")

    error, left = sim.run(workload())
    assert (error.code, error.definite) == (11, True)
    assert left["members"] == ["n0", "n1", "n2", "n3", "n5"] and left["epoch"] == 3


def test_a_leaving_node_hands_over_every_key():
    """After n0 (the leader) leaves, it holds nothing and every key reads its last value through it."""
    sim, (client,) = build(seed=10, clients=1)

    async def workload():
        for i, key in enumerate(KEYS):
            await client.invoke("write", key=key, value=i, dest=FIRST[i % 5])
        reply = await admin(client, "leave", "n0", "n0")
        return reply, await final_reads(client, KEYS, ["n0"])

    reply, values = sim.run(workload())
    assert reply["members"] == FIRST[1:]
    assert sim.node("n0").storage["data"] == {}
    assert values == {key: i for i, key in enumerate(KEYS)}


def test_membership_misuse_is_refused_with_a_definite_error():
    """join without a node, join of an unknown node, and leaving the last member answer 12."""
    sim, (client,) = build(seed=11, n=1, clients=1)

    async def workload():
        errors = []
        for body in ({"type": "join"}, {"type": "join", "node": "ghost"}, {"type": "leave", "node": "n0"}):
            with pytest.raises(em.RPCError) as info:
                await client.rpc("n0", body, timeout=2)
            errors.append((info.value.code, info.value.text.split(" ")[0]))
        return errors

    errors = sim.run(workload())
    assert [code for code, _ in errors] == [12, 12, 12], errors
    assert sim.errors == []


@pytest.mark.parametrize(
    "config, match",
    [
        ({"members": ["n0"], "contact": "n0"}, "not both"),
        ({"members": "n0"}, "list of node names"),
        ({"vnodes": 0}, "vnodes"),
        ({"hops": -1}, "hops"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_configuration_is_refused(config, match):
    """Misconfigured nodes raise ConfigError saying what is wrong."""
    sim = em.Simulation(seed=0)
    with pytest.raises(em.ConfigError, match=match):
        sim.add_node("n0", ShardedKV, **config)


def test_a_node_added_at_run_time_routes_before_it_joins():
    """A node given contact= learns the configuration and forwards requests; it owns nothing until it joins."""
    sim, (client,) = build(seed=12, clients=1)

    async def workload():
        await client.invoke("write", key="a", value=7, dest="n1")
        sim.add_node("n5", ShardedKV, contact="n1")
        await asyncio.sleep(0.05)
        return (await client.invoke("read", key="a", dest="n5"))["value"]

    assert sim.run(workload()) == 7
    assert sim.node("n5").view()["active"]["members"] == FIRST
    assert sim.node("n5").storage["data"] == {}


def _moving_run(seed):
    sim, clients = build(seed=seed)
    operator = sim.add_client("admin")

    async def workload():
        work = Workload(sim, clients, KEYS).start()
        await asyncio.sleep(0.1)
        sim.add_node("n5", ShardedKV, contact="n0")
        await admin(operator, "join", "n5", "n3")
        await work.stop()

    sim.run(workload())
    return sim.trace_digest(), len(sim.history)


def test_the_same_seed_gives_the_same_run():
    """Two runs of a join under traffic with one seed have equal trace digests; another seed differs."""
    assert _moving_run(13) == _moving_run(13)
    assert _moving_run(13)[0] != _moving_run(14)[0]


class ShardedUnderFaults(RuleBasedStateMachine):
    """Faults and membership changes interleaved with traffic; the store stays linearizable and loses nothing."""

    @initialize(seed=st.integers(0, 2**32 - 1))
    def start(self, seed):
        self.sim, clients = build(seed=seed, n=4, clients=3)
        self.operator = self.sim.add_client("admin")
        self.work = Workload(self.sim, clients, KEYS[:12], timeout=0.3).start()
        self.members = FIRST[:4]
        self.added = 0
        self.changes = {}
        self._advance(0.05)

    def _advance(self, seconds):
        self.sim.run(until=self.sim.now + seconds)

    def _admin(self, kind, node, dest):
        task = self.sim.loop.create_task(admin(self.operator, kind, node, dest, timeout=2.0))
        self.changes[node] = task

    @rule(seconds=st.floats(0.001, 0.15))
    def run_traffic(self, seconds):
        self._advance(seconds)

    @rule(data=st.data())
    def partition(self, data):
        servers = self.sim.servers
        side = data.draw(st.lists(st.sampled_from(servers), min_size=1, max_size=len(servers) - 1, unique=True))
        self.sim.network.partition(side, [n for n in servers if n not in side])
        self._advance(0.02)

    @rule()
    def heal(self):
        self.sim.network.heal()
        self._advance(0.01)

    @rule(settings=HOSTILE)
    def hostile(self, settings):
        make_hostile(self.sim, settings)
        self._advance(0.02)

    @rule(data=st.data())
    def crash(self, data):
        self.sim.crash(data.draw(st.sampled_from(self.sim.servers)))
        self._advance(0.02)

    @rule()
    def restart_all(self):
        for name in self.sim.servers:
            if not self.sim.alive(name):
                self.sim.restart(name)
        self._advance(0.01)

    @rule(data=st.data())
    def join(self, data):
        name = f"x{self.added}"
        self.added += 1
        self.sim.add_node(name, ShardedKV, contact=data.draw(st.sampled_from(self.members)))
        self.members = self.members + [name]
        self._admin("join", name, data.draw(st.sampled_from(self.sim.servers)))
        self._advance(0.005)

    def _may_leave(self):
        # A node leaves after its join completed, or the two could apply in either
        # order; and two members whose joins completed always stay.
        return [m for m in self.members if m not in self.changes or self.changes[m].done()]

    @precondition(lambda self: len(self._may_leave()) > 2)
    @rule(data=st.data())
    def leave(self, data):
        name = data.draw(st.sampled_from(self._may_leave()))
        self.members = [m for m in self.members if m != name]
        self._admin("leave", name, data.draw(st.sampled_from(self.sim.servers)))
        self._advance(0.005)

    @invariant()
    def linearizable_so_far(self):
        verdict = linearizable(self.sim.history, model="cas_register", timeout=30)
        assert verdict.valid is True, str(verdict)

    def teardown(self):
        """Heal and restart everything: every change completes, then the final reads judge the history."""
        if not hasattr(self, "work"):
            return
        sim = self.sim
        sim.network.heal()
        make_calm(sim, LATENCY)
        for name in sim.servers:
            if not sim.alive(name):
                sim.restart(name)

        async def settle():
            await asyncio.gather(*self.changes.values())
            await self.work.stop()
            await final_reads(self.work.clients[0], self.work.keys, sorted(self.members))

        sim.run(settle(), until=sim.now + 60)
        views = {n: sim.node(n).view()["active"]["members"] for n in sorted(self.members)}
        assert all(v == sorted(self.members) for v in views.values()), views
        assert misplaced(sim, self.members) == {}
        assert_safe(sim.history)


TestShardedUnderFaults = ShardedUnderFaults.TestCase
TestShardedUnderFaults.settings = settings(
    max_examples=20, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.slow
class TestShardedUnderFaultsLong(ShardedUnderFaults.TestCase):
    """The same machine, many more and longer schedules (run with -m slow)."""

    settings = settings(
        max_examples=300, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


def test_a_late_duplicate_of_an_old_write_never_overwrites_a_newer_one():
    """Client requests arrive twice, some copies late, through non-owners: reads never go back to an older value."""
    sim, (client, reader) = build(seed=3, n=3, clients=2)
    for server in sim.servers:
        sim.network.set_link_oneway("c0", server, duplicate=1.0, latency=em.Uniform(0.001, 1.0), fifo=False)

    async def work():
        for value in range(1, 40):
            await attempt(client, "write", "k", value, dest=sim.servers[value % 3], timeout=3.0)
            for _ in range(3):
                await asyncio.sleep(0.05)
                await attempt(reader, "read", "k", dest=sim.servers[(value + 1) % 3])

    sim.run(work())
    verdict = linearizable(sim.history, model="cas_register")
    assert verdict.valid is True, str(verdict)
    reads = [op["value"] for op in sim.history if op["f"] == "read" and op["type"] == "ok"]
    assert len(reads) > 60 and reads == sorted(reads)


def test_a_replayed_old_write_changes_nothing_even_after_its_key_moved():
    """A copy of an old write that reaches the key's new owner after a join is dropped: the record moved too."""
    sim, (client,) = build(seed=4, n=3, clients=1)
    operator = sim.add_client("admin")
    key = next(k for k in KEYS if HashRing(FIRST[:3] + ["n5"], vnodes=64).lookup(k) == "n5")

    owner = HashRing(FIRST[:3], vnodes=64).lookup(key)

    async def work():
        await client.invoke("write", key=key, value=1, dest="n0")
        old_id = sim.node(owner).storage["requests"][key]["c0"][0]  # the request id the owner recorded
        await client.invoke("write", key=key, value=2, dest="n0")
        sim.add_node("n5", ShardedKV, contact="n0")
        await admin(operator, "join", "n5", "n1")
        client.send("n1", {"type": "write", "key": key, "value": 1, "msg_id": old_id})
        await asyncio.sleep(0.1)
        return (await client.invoke("read", key=key, dest="n2"))["value"]

    assert sim.run(work()) == 2
    assert sim.node("n5").storage["data"][key] == 2 and "c0" in sim.node("n5").storage["requests"][key]
    assert ShardedKV.leader_of(sim) == "n0"


def test_leader_of_follows_the_configuration_when_its_leader_leaves():
    """The configuration leader is its smallest member: n0, then n1 once n0 has left."""
    from nodes import leader_of

    sim, _ = build(seed=5, n=3, clients=0)
    operator = sim.add_client("admin")
    sim.run(until=0.1)
    assert leader_of(sim) == "n0"
    sim.run(admin(operator, "leave", "n0", "n2"))
    assert leader_of(sim) == ShardedKV.leader_of(sim) == "n1"


def _member(sim, node):
    """Whether ``node`` is in the newest configuration any live server holds."""
    live = [sim.node(n) for n in sim.servers if sim.alive(n)]
    best = max((server.view()["active"] for server in live), key=lambda c: c["epoch"])
    return node in best["members"]


def test_a_join_given_up_on_never_takes_effect_after_the_clients_later_leave():
    """A join on the wire when its client times out, then a leave answered ok: the late join is dropped, not applied."""
    sim, (client,) = build(seed=21, n=3, clients=1)

    async def work():
        sim.add_node("n5", ShardedKV, contact="n1")
        await asyncio.sleep(0.05)
        sim.network.hold("c0", "n0")  # the join is on the wire to the leader
        with pytest.raises(em.Timeout):
            await client.rpc("n0", {"type": "join", "node": "n5"}, timeout=0.5)
        left = await client.rpc("n1", {"type": "leave", "node": "n5"}, timeout=5)
        sim.network.release("c0", "n0")
        await asyncio.sleep(5.0)
        return left

    left = sim.run(work())
    assert left["type"] == "leave_ok" and "n5" not in left["members"]
    assert not _member(sim, "n5"), "the client's last answered change was a leave, yet n5 joined"


def test_a_join_superseded_while_its_node_is_probed_is_not_begun():
    """The leader is still probing n5 for a join its client gave up on when the client's leave is answered: the
    probe's late success does not begin the join."""
    sim, (client,) = build(seed=22, n=3, clients=1, members=FIRST[:3])
    sim.add_node("n5", ShardedKV, contact="n1")

    async def work():
        await asyncio.sleep(0.05)
        sim.network.hold("n0", "n5")  # the probe waits on the wire
        with pytest.raises(em.Timeout):
            await client.rpc("n0", {"type": "join", "node": "n5"}, timeout=0.2)
        left = await client.rpc("n1", {"type": "leave", "node": "n5"}, timeout=5)
        sim.network.release("n0", "n5")  # inside the probe's timeout: it succeeds
        await asyncio.sleep(5.0)
        return left

    assert sim.run(work())["type"] == "leave_ok"
    assert not _member(sim, "n5")
    assert sim.node("n0").view()["next"] is None


def test_a_later_leader_drops_a_change_its_client_gave_up_on():
    """c0's join of n5 waits on the wire to n1, c0 times out and its leave is answered by n0; n0 then leaves,
    making n1 the leader, and the late join reaches n1: the record in the configuration makes n1 drop it."""
    sim, (client, other) = build(seed=24, n=3, clients=2, members=FIRST[:3])
    sim.add_node("n5", ShardedKV, contact="n1")

    async def work():
        await asyncio.sleep(0.05)
        sim.network.hold("c0", "n1")
        with pytest.raises(em.Timeout):
            await client.rpc("n1", {"type": "join", "node": "n5"}, timeout=0.2)
        await client.rpc("n0", {"type": "leave", "node": "n5"}, timeout=5)
        await admin(other, "leave", "n0", "n2")
        await asyncio.sleep(0.5)
        leader = ShardedKV.leader_of(sim)
        sim.network.release("c0", "n1")
        await asyncio.sleep(5.0)
        return leader

    assert sim.run(work()) == "n1"
    assert not _member(sim, "n5")


def test_a_join_its_client_gave_up_on_may_still_complete():
    """A timeout is indeterminate: a join stalled by a crashed member times out at its client, then completes
    when the member is back, with no further request."""
    sim, (client,) = build(seed=23, n=3, clients=1, members=FIRST[:3])
    sim.add_node("n5", ShardedKV, contact="n1")

    async def work():
        await asyncio.sleep(0.05)
        join = asyncio.ensure_future(client.rpc("n0", {"type": "join", "node": "n5"}, timeout=1.0))
        await _until_handoff(sim, "n2")
        sim.crash("n2")
        with pytest.raises(em.Timeout):
            await join
        stalled = _member(sim, "n5")
        sim.restart("n2")
        await asyncio.sleep(5.0)
        return stalled

    assert sim.run(work()) is False
    assert _member(sim, "n5")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), loss=st.sampled_from([0.3, 0.5, 0.7]))
def test_every_copy_of_a_duplicated_join_gets_the_answer_the_cluster_shows(seed, loss):
    """A join whose request arrives twice while the probe of the joining node is lossy: a definite
    refusal means n5 never joins, join_ok means it did."""
    sim, (client,) = build(seed=seed, n=3, clients=1, members=FIRST[:3])
    sim.add_node("n5", ShardedKV, contact="n1")
    sim.network.set_link_oneway("c0", "n0", duplicate=1.0, fifo=False)
    sim.network.set_link("n0", "n5", loss=loss)

    async def work():
        await asyncio.sleep(0.05)
        try:
            reply = await client.rpc("n0", {"type": "join", "node": "n5"}, timeout=20)
            outcome = reply["type"]
        except em.RPCError as exc:
            outcome = "definite" if exc.definite else "indefinite"
        except em.Timeout:
            outcome = "indefinite"
        sim.network.heal()
        sim.network.set_link("n0", "n5", loss=0.0)
        await asyncio.sleep(10.0)
        return outcome

    outcome = sim.run(work())
    if outcome == "join_ok":
        assert _member(sim, "n5")
    elif outcome == "definite":
        assert not _member(sim, "n5"), "the client was told the join did not happen, yet n5 is a member"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["join", "leave"]),
            st.sampled_from(["n0", "n1", "n2", "n5"]),
            st.sampled_from(["none", "hold", "crash-leader", "isolate-leader"]),
        ),
        min_size=1,
        max_size=6,
    ),
    last=st.sampled_from(["join", "leave"]),
)
def test_the_clients_last_answered_change_is_what_the_cluster_keeps(seed, steps, last):
    """One client joins and leaves n5 under a hostile network (duplication, reordering), held links, crashes and
    isolation of the leader, giving up on each change after 0.3 s; its last change, retried until answered, is
    what the cluster holds once every fault is over and every late copy, held ones included, has arrived."""
    sim, (client,) = build(seed=seed, n=3, clients=1, members=FIRST[:3])
    sim.add_node("n5", ShardedKV, contact="n1")
    make_hostile(sim, {})
    held = []

    async def work():
        await asyncio.sleep(0.05)
        for kind, dest, fault in steps:
            leader = ShardedKV.leader_of(sim)
            if fault == "hold" and dest != "n1" and dest not in held:  # n1 stays open for the last change
                sim.network.hold("c0", dest)
                held.append(dest)
            elif fault == "crash-leader" and leader != "n5":
                sim.crash(leader)
            elif fault == "isolate-leader":
                sim.network.isolate(leader)
            try:
                await client.rpc(dest, {"type": kind, "node": "n5"}, timeout=0.3)
            except (em.RPCError, em.Timeout):
                pass
            await asyncio.sleep(0.05)
            sim.network.heal()
            for name in sim.servers:
                if not sim.alive(name):
                    sim.restart(name)
        reply = await admin(client, last, "n5", "n1", timeout=3.0)
        for dest in held:  # the changes given up on arrive now, late
            sim.network.release("c0", dest)
        make_calm(sim, LATENCY)
        await asyncio.sleep(15.0)
        return reply

    reply = sim.run(work(), until=600)
    assert ("n5" in reply["members"]) == (last == "join")
    assert _member(sim, "n5") == (last == "join"), f"the client's last answer was {reply}, the cluster disagrees"


def _moving_key(old: list[str], new: list[str]) -> int:
    return next(k for k in range(100) if HashRing(old, vnodes=64).lookup(k) != HashRing(new, vnodes=64).lookup(k))


def test_a_copy_of_a_write_refused_while_its_key_moved_is_refused_again_after_the_move():
    """A write the old owner refuses (11, moving) after its batch left never takes effect: its late copy gets 11 too.

    The old owner's refusal is in its record alone (the batch left before it); the copy arrives once the move is
    complete, so without that record the old owner would forward it to the new owner, which would apply it.
    """
    old, new = ["n0", "n1", "n2"], ["n0", "n1", "n2", "n3"]
    key = _moving_key(old, new)
    source, dest = HashRing(old, vnodes=64).lookup(key), HashRing(new, vnodes=64).lookup(key)
    sim = em.Simulation(seed=2, latency=em.Constant(0.001))
    for name in new:
        sim.add_node(name, ShardedKV, members=old)
    writer, reader, operator = sim.add_client("c0"), sim.add_client("c1"), sim.add_client("admin")

    async def work():
        await writer.invoke("write", key=key, value=1, dest=source)
        sim.network.set_link_oneway(source, dest, latency=em.Constant(0.3))  # the batch is slow: the move lasts
        join = asyncio.ensure_future(admin(operator, "join", dest, "n0"))
        while sim.node(source).storage.get("next") is None:
            await asyncio.sleep(0.0002)
        sim.network.set_link_oneway("c0", source, latency=em.Uniform(0.001, 1.0), duplicate=1.0, fifo=False)
        refused = asyncio.ensure_future(attempt(writer, "write", key, 2, dest=source, timeout=1.0))
        await asyncio.sleep(0.0011)
        sim.network.set_link_oneway("c0", source, latency=em.Constant(0.001), duplicate=0.0, fifo=True)
        first = await refused
        sim.network.set_link_oneway(source, dest, latency=em.Constant(0.001))
        await join
        await asyncio.sleep(1.2)  # the copy arrives at the old owner meanwhile
        return first, (await reader.invoke("read", key=key, dest=dest))["value"]

    first, value = sim.run(work())
    assert isinstance(first, em.RPCError) and first.code == 11 and "moving" in str(first)
    assert value == 1 and sim.node(source).storage["requests"][key]["c0"][1]["error"][0] == 11
    verdict = linearizable(sim.history, model="cas_register")
    assert verdict.valid is True, str(verdict)


_CHURN = """
name = "sharded churn on a duplicating network"
checks = ["linearizable", "lost-writes", "node-errors"]
[cluster]
protocol = "sharded-kv"
nodes = 5
config = {{ members = ["n0", "n1", "n2"] }}
[network]
latency = {{ pareto = [{scale}, 1.0, 1.0] }}
duplicate = {duplicate}
{order}
[workload]
clients = 5
rate = {rate}
keys = 6
timeout = {timeout}
final_reads = true
[[phases]]
name = "changes"
duration = 20.0
[phases.faults]
kinds = {{ membership = 1 }}
interval = 0.5
duration = [0.3, 1.5]
[[phases]]
name = "settle"
duration = 4.0
heal = true
"""
#: heavy-tailed latency with many copies (the reviewer's sharded-dup3), and shorter delays with reordering (dup2)
_SLOW = {"scale": 0.02, "duplicate": 0.8, "order": "fifo = false", "rate": 60, "timeout": 3.0}
_FAST = {"scale": 0.005, "duplicate": 0.6, "order": "reorder = 0.5", "rate": 100, "timeout": 1.5}


def _churn(tmp_path, params: dict, seed: int):
    path = tmp_path / f"churn-{seed}.toml"
    path.write_text(_CHURN.format(**params))
    result = run_chaos(load_scenario(path), seed=seed)
    assert result.passed, [c.summary for c in result.failed]
    assert any(op["f"] == "start-membership" for op in result.history.nemesis_ops())


@pytest.mark.parametrize(("params", "seed"), [(_SLOW, 8), (_FAST, 14), (_FAST, 27), (_FAST, 57)])
def test_membership_churn_with_duplicates_and_heavy_latency_stays_linearizable(tmp_path, params, seed):
    """The seeds where a refused write's late copy once took effect: the membership nemesis, copies, long delays."""
    _churn(tmp_path, params, seed)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), fast=st.booleans())
def test_membership_churn_with_duplicates_holds_for_any_seed(tmp_path, seed, fast):
    """Joins and leaves under duplication and heavy-tailed latency: linearizable, nothing lost, any seed."""
    _churn(tmp_path, _FAST if fast else _SLOW, seed)
