"""The quorum store: lin-kv through any node, quorum freshness, PBS, sloppy quorums, repair, versions."""

import asyncio
import math

import aiohttp
import pytest
from hypothesis import settings

import emulator as em
from emulator.check import availability, convergence, latency, linearizable, lost_writes, stale_reads
from emulator.transport import FileStorage, NodeHost
from nodes.quorum import QuorumKV
from nodes.registry import resolve
from nodes.versions import new_version
from tests.common.quorum_cluster import (
    as_register,
    attempt,
    owners,
    partitioned_workload,
    quorum_cluster,
    replicas_agree,
    stored,
    until,
)
from tests.common.quorum_machine import QuorumMachine
from tests.common.transport_http import envelope, post

# -- the lin-kv protocol -----------------------------------------------------------------------


def test_the_registry_name_quorum_is_this_store():
    """ "quorum" resolves to QuorumKV."""
    assert resolve("quorum") is QuorumKV


def test_every_node_serves_read_write_and_cas_with_maelstrom_errors():
    """Any node coordinates or forwards; a missing key is 20, a cas mismatch 22, both definite."""
    sim, (client,) = quorum_cluster(clients=1)

    async def main():
        with pytest.raises(em.RPCError) as missing:
            await client.invoke("read", key="k", dest="n4")
        values = []
        for i, node in enumerate(sim.servers):
            await client.invoke("write", key="k", value=i, dest=node)
            values.append((await client.invoke("read", key="k", dest=sim.servers[-1 - i]))["value"])
        await client.invoke("cas", key="k", value=[4, 9], dest="n2")
        with pytest.raises(em.RPCError) as mismatch:
            await client.invoke("cas", key="k", value=[4, 10], dest="n3")
        return missing.value, values, mismatch.value, (await client.invoke("read", key="k"))["value"]

    missing, values, mismatch, final = sim.run(main())
    assert (missing.code, missing.definite) == (20, True)
    assert values == [0, 1, 2, 3, 4]
    assert (mismatch.code, mismatch.definite) == (22, True)
    assert final == 9
    assert linearizable(as_register(sim.history), model="cas_register").valid


def test_requests_may_override_r_and_w_within_one_to_n():
    """With two of three owners down, r=1 and w=1 succeed, the defaults get 11, r=0 and r=4 get 12."""
    sim, (client,) = quorum_cluster(clients=1)
    down = owners(sim, "k")[1:]
    dest = owners(sim, "k")[0]

    async def main():
        await client.invoke("write", key="k", value=1, dest=dest)
        for node in down:
            sim.crash(node)
        outcomes = {}
        for label, extra in (
            ("default", {}),
            ("r=1", {"r": 1}),
            ("w=1", {"w": 1, "value": 2}),
            ("r=0", {"r": 0}),
            ("r=4", {"r": 4}),
            ("w=str", {"w": "2", "value": 3}),
        ):
            body = {"type": "write" if "value" in extra else "read", "key": "k", **extra}
            try:
                outcomes[label] = (await client.rpc(dest, body, timeout=2.0)).get("value", "ok")
            except em.RPCError as exc:
                outcomes[label] = exc.code
        return outcomes

    assert sim.run(main()) == {"default": 11, "r=1": 1, "w=1": "ok", "r=0": 12, "r=4": 12, "w=str": 12}


def test_a_key_that_is_not_a_string_or_int_is_malformed():
    """A list as key is error 12 (malformed), definite."""
    sim, (client,) = quorum_cluster(clients=1)
    with pytest.raises(em.RPCError) as error:
        sim.run(client.rpc("n0", {"type": "read", "key": [1, 2]}))
    assert (error.value.code, error.value.definite) == (12, True)


def test_a_coordinator_outside_replicas_holds_no_copy_and_sends_to_every_replica_in_order():
    """replicas=[...]: the node outside them coordinates itself (no forward) and stores nothing; N covers them all."""
    sim = em.Simulation(seed=3, latency=em.Constant(0.001))
    for i in range(3):
        sim.add_node(f"n{i}", QuorumKV, n=3, r=2, w=3)
    sim.add_node("front", QuorumKV, n=3, r=2, w=3, replicas=["n2", "n0", "n1"])
    client = sim.add_client("c0")

    async def main():
        await client.rpc("front", {"type": "write", "key": "k", "value": 7})
        return await client.rpc("front", {"type": "read", "key": "k"})

    assert sim.run(main())["value"] == 7
    front = sim.node("front")
    assert front.owners("k") == ["n2", "n0", "n1"] and front.replica("k") == []
    assert (front.stats["forwarded"], front.stats["coordinated"]) == (0, 2)
    assert all(sim.node(f"n{i}").replica("k") == [7] for i in range(3))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"r": 4}, "r must be an int from 1 to n=3"),
        ({"n": 0}, "n must be an int >= 1"),
        ({"versioning": "hlc"}, "versioning must be one of 'lww', 'vector'"),
        ({"write_fanout": "exact", "sloppy": True}, "cannot be combined with sloppy"),
        ({"anti_entropy": -1}, "anti_entropy must be a positive number"),
        ({"anti_entropy_mode": "gossip"}, "anti_entropy_mode must be one of 'merkle', 'digest'"),
        ({"replicas": "n1"}, "replicas must be a non-empty list of server names"),
        ({"replicas": []}, "replicas must be a non-empty list of server names"),
    ],
)
def test_a_misconfiguration_says_what_to_change(config, message):
    """Bad options raise ConfigError (a ValueError) naming the option and its range."""
    sim = em.Simulation()
    with pytest.raises(ValueError, match=message):
        sim.add_node("n0", QuorumKV, **config)


@pytest.mark.parametrize(
    ("servers", "config", "message"),
    [
        (5, {"n": 9, "r": 7, "w": 7}, "n=9 copies of each key need 9 servers, but the cluster has 5"),
        (2, {"n": 3, "r": 1, "w": 1}, "lower n (and r and w) to at most 2, or add servers"),
        (4, {"n": 5, "r": 3, "w": 3, "replicas": ["n0", "n1"]}, "r=3, w=3 cannot be met: a key has 2 copies"),
        (3, {"n": 3, "r": 2, "w": 2}, None),
        (4, {"n": 5, "r": 2, "w": 2, "replicas": ["n0", "n1"]}, None),  # N covers the replicas: allowed
    ],
)
def test_an_n_r_or_w_the_cluster_cannot_hold_is_refused_as_the_node_starts(servers, config, message):
    """N above the servers (every key would have fewer owners than N), or R or W above the copies there are
    (nothing could ever be answered): the node refuses as it starts, when it knows its peers."""
    sim = em.Simulation(seed=1)
    for i in range(servers):
        sim.add_node(f"n{i}", QuorumKV, **config)
    sim.run(until=0.1)
    refused = [e for e in sim.errors if e.where == "on_start"]
    if message is None:
        assert not refused
    else:
        assert len(refused) == servers and all(message in str(e.exception) for e in refused)


def test_replica_data_and_the_write_counter_survive_crashes():
    """After every owner crashes and restarts, the value is still there and new stamps keep growing."""
    sim, (client,) = quorum_cluster(nodes=3, clients=1)

    async def main():
        await client.invoke("write", key="k", value="v", dest="n0")
        seq = sim.node("n0").storage["seq"]
        for node in sim.servers:
            sim.crash(node)
        for node in sim.servers:
            sim.restart(node)
        value = (await client.invoke("read", key="k", dest="n1"))["value"]
        await client.invoke("write", key="k", value="w", dest="n0")
        return value, seq, sim.node("n0").storage["seq"]

    value, before, after = sim.run(main())
    assert value == "v" and after > before


# -- freshness under partitions ----------------------------------------------------------------


async def test_a_strict_quorum_has_no_stale_reads_under_partitions(sim):
    """R=2, W=2, N=3, one writer per key, random partitions mid-request: zero stale reads."""
    sim, clients = quorum_cluster(sim=sim, clients=6)
    splits = await partitioned_workload(sim, clients, ["a", "b", "c"], stop=6.0)
    result = stale_reads(as_register(sim.history))
    rate = availability(sim.history)["overall"]
    assert result.reads >= 50, f"too few reads to judge: {result}"
    assert not result.stale, f"{result} over {splits} partitions; availability {rate.fraction:.2f}"


def test_a_late_duplicate_of_an_old_write_never_makes_a_new_version():
    """N=3 R=2 W=2: client requests arrive twice, some copies late; no read returns a value older than an ack.

    The bug: a late copy of write(v) was coordinated again, stamped with the
    coordinator's clock *now*, so v came back as the newest version after
    write(v + 1) was acknowledged; a read 0.05 s later returned v.
    """
    sim, (client, reader) = quorum_cluster(seed=1, nodes=3, clients=2)
    for server in sim.servers:
        sim.network.set_link_oneway("c0", server, duplicate=1.0, latency=em.Uniform(0.001, 1.0), fifo=False)

    async def work():
        for value in range(1, 40):
            await attempt(client, "write", "k", value, dest=sim.servers[value % 3], timeout=3.0)
            for _ in range(3):
                await asyncio.sleep(0.05)
                await attempt(reader, "read", "k", dest=sim.servers[(value + 1) % 3])

    sim.run(work())
    result = stale_reads(as_register(sim.history))
    assert result.reads > 100 and not result.stale, [s.to_dict() for s in result.stale[:2]]
    assert sum(n.storage["seq"] for n in map(sim.node, sim.servers)) == 39, "one version per write, not per copy"


def test_each_replica_answers_for_its_own_copy_without_a_quorum():
    """replica(key) and a replica_read message read one node's copy: owners hold the write, others nothing."""
    sim, (client,) = quorum_cluster(seed=3, nodes=5, clients=1)

    async def work():
        await client.invoke("write", key="k", value=7, dest="n0")
        await asyncio.sleep(0.1)
        return {name: (await client.rpc(name, {"type": "replica_read", "key": "k"}))["values"] for name in sim.servers}

    answers = sim.run(work())
    holders = owners(sim, "k")
    assert answers == {name: [7] if name in holders else [] for name in sim.servers}
    assert all(sim.node(name).replica("k") == answers[name] for name in sim.servers)


def test_a_copy_of_a_forwarded_write_is_coordinated_once():
    """A forward that arrives twice at the coordinator is coordinated once: one version, one answer."""
    sim, (client,) = quorum_cluster(seed=2, nodes=5, clients=1)
    key = next(k for k in (f"k{i}" for i in range(50)) if "n4" not in owners(sim, k))
    first = owners(sim, key)[0]
    sim.network.set_link_oneway("n4", first, duplicate=1.0, latency=em.Uniform(0.001, 0.05), fifo=False)

    async def work():
        for value in range(1, 11):
            await client.invoke("write", key=key, value=value, dest="n4")
        await asyncio.sleep(0.2)

    sim.run(work())
    assert sim.network.stats["duplicated"] >= 10
    assert sim.node(first).storage["seq"] == 10 and sim.node(first).stats["coordinated"] == 10


async def test_a_partial_quorum_serves_stale_reads_under_partitions(sim):
    """R=1, W=1, N=3 under the same workload: stale reads happen, and are counted."""
    sim, clients = quorum_cluster(sim=sim, clients=6, r=1, w=1)
    splits = await partitioned_workload(sim, clients, ["a", "b", "c"], stop=6.0)
    result = stale_reads(as_register(sim.history))
    assert result.stale, f"expected stale reads with R + W <= N: {result} over {splits} partitions"
    print(f"R=1 W=1 N=3: {result}")


@pytest.mark.parametrize(("n", "r", "w"), [(3, 1, 1), (5, 1, 2), (5, 2, 2), (5, 2, 3)])
def test_stale_reads_match_the_pbs_closed_form(n, r, w):
    """Writes to exactly W, reads from exactly R random owners: P(stale) = C(N-W, R) / C(N, R) within 4 SE."""
    sim, (client,) = quorum_cluster(
        seed=n * 100 + r * 10 + w,
        nodes=n,
        clients=1,
        n=n,
        r=r,
        w=w,
        write_fanout="exact",
        read_fanout="exact",
        read_repair=False,
    )
    trials = 1500

    async def main():
        await client.rpc("n0", {"type": "write", "key": "k", "value": 0, "w": n})
        for value in range(1, trials + 1):
            await client.invoke("write", key="k", value=value)
            await client.invoke("read", key="k")

    sim.run(main())
    result = stale_reads(sim.history)
    expected = math.comb(n - w, r) / math.comb(n, r)
    error = math.sqrt(expected * (1 - expected) / result.reads)
    assert result.reads == trials
    assert abs(result.fraction - expected) <= 4 * error, (
        f"N={n} R={r} W={w}: measured {result.fraction:.4f}, PBS {expected:.4f} +- {error:.4f} (1 SE)"
    )


def test_with_r_plus_w_above_n_exact_fanout_is_never_stale():
    """The control for PBS: N=3, R=2, W=2 sent to exactly W and R owners is never stale."""
    sim, (client,) = quorum_cluster(nodes=3, clients=1, write_fanout="exact", read_fanout="exact", read_repair=False)

    async def main():
        for value in range(300):
            await client.invoke("write", key="k", value=value)
            await client.invoke("read", key="k")

    sim.run(main())
    result = stale_reads(sim.history)
    assert result.reads == 300 and not result.stale, str(result)


def test_a_request_waits_for_the_fastest_r_or_w_of_n_not_for_all():
    """PACELC's EL: with one owner 30 ms away, R=W=2 ops take a few ms; an r=3 read waits for the far one."""
    sim, (client,) = quorum_cluster(nodes=3, clients=1, latency=em.Constant(0.001))
    for peer in ("n0", "n1", "c0"):
        sim.network.set_link("n2", peer, latency=em.Constant(0.03))

    async def main():
        for value in range(20):
            await client.invoke("write", key="k", value=value, dest="n0")
            await client.invoke("read", key="k", dest="n0")
        start = sim.now
        await client.rpc("n0", {"type": "read", "key": "k", "r": 3})
        return sim.now - start

    all_three = sim.run(main())
    slowest = latency(sim.history)["overall"].max
    assert slowest < 0.01 and all_three >= 0.06, f"R=W=2 max {slowest * 1000:.1f} ms, r=3 {all_three * 1000:.1f} ms"


# -- availability: strict refuses, sloppy serves ---------------------------------------------------

MAJORITY, MINORITY = ["n0", "n1", "n2"], ["n3", "n4"]
KEYS = [f"k{i}" for i in range(12)]


async def _side_workload(sim, clients, stop: float) -> float:
    """Partition 3|2; a client per side writes then reads each key through each node of its side, round after round.

    Returns:
        The time the third round ended on both sides (None if one side did
        not finish three): by then every node has tried (and, if cut off,
        suspected) each owner it would forward to.
    """

    async def side(client, nodes):
        loop, rounds, learned = asyncio.get_running_loop(), 0, None
        while loop.time() < stop:
            for key in KEYS:
                for node in nodes:
                    await attempt(client, "write", key, f"{client.name}@{loop.time():.3f}", dest=node)
                    await attempt(client, "read", key, dest=node)
            rounds += 1
            learned = loop.time() if rounds == 3 else learned
        return learned

    sim.network.partition(MAJORITY + ["c0"], MINORITY + ["c1"])
    learned = await asyncio.gather(side(clients[0], MAJORITY), side(clients[1], MINORITY))
    return None if None in learned else max(learned)


def _outcomes(history, side_nodes, keys_with_quorum, since):
    """{has quorum: [ok, total]} and the set of (type, code) of the failures, for ops invoked after ``since``."""
    counts = {True: [0, 0], False: [0, 0]}
    codes = set()
    invoked = {}
    for op in history:
        if op["process"] == "nemesis" or op.get("node") not in side_nodes:
            continue
        if op["type"] == "invoke":
            invoked[op["process"]] = op["time"]
            continue
        if invoked.get(op["process"], -1) < since:
            continue
        group = counts[op["key"] in keys_with_quorum]
        group[1] += 1
        if op["type"] == "ok":
            group[0] += 1
        else:
            codes.add((op["type"], (op.get("error") or [None])[0]))
    return counts, codes


def test_a_strict_quorum_refuses_with_11_where_a_side_lacks_a_quorum():
    """Split 3|2: each side serves exactly the keys with >= 2 owners on it; others fail with 11, definite."""
    sim, clients = quorum_cluster(seed=3, clients=2)
    learned = sim.run(_side_workload(sim, clients, stop=6.0))
    assert learned is not None and learned < 5.0, learned
    for side in (MAJORITY, MINORITY):
        served = [k for k in KEYS if sum(o in side for o in owners(sim, k)) >= 2]
        counts, codes = _outcomes(sim.history, side, served, since=learned)
        (ok_q, total_q), (ok_n, total_n) = counts[True], counts[False]
        assert total_q > 0 and total_n > 0, (side, served)
        assert ok_q == total_q and ok_n == 0, (
            f"side {side}: keys with a quorum {ok_q}/{total_q} ok, without {ok_n}/{total_n} ok"
        )
        assert codes == {("fail", 11)}, f"side {side}: refusals were {sorted(codes, key=str)}, not definite 11"
    report = availability(sim.history, sides={"majority": MAJORITY, "minority": MINORITY})
    print("strict availability per side:", {name: round(r.fraction, 3) for name, r in report["sides"].items()})


def test_a_sloppy_quorum_serves_both_sides_then_converges_after_the_heal():
    """Split 3|2, sloppy quorum + hinted handoff: both sides >= 90% ok; owners and reads agree <= 1 s after the heal."""
    sim, clients = quorum_cluster(seed=3, clients=2, sloppy=True, hinted_handoff=True)
    sim.run(_side_workload(sim, clients, stop=4.0))
    report = availability(sim.history, sides={"majority": MAJORITY, "minority": MINORITY})
    fractions = {name: round(rate.fraction, 3) for name, rate in report["sides"].items()}
    assert min(fractions.values()) >= 0.9, f"availability per side during the partition: {fractions}"
    stale = stale_reads(as_register(sim.history))
    assert stale.stale, f"each side missed the other's writes, yet: {stale}"
    sim.network.heal()
    healed = sim.now

    async def read_everything(client, stop):
        while sim.now < stop:
            for key in KEYS:
                await attempt(client, "read", key, dest=sim.rng("after").choice(sim.servers))

    async def after_heal():
        return await asyncio.gather(
            until(sim, lambda: replicas_agree(sim, KEYS), limit=2.0), read_everything(clients[0], healed + 2.0)
        )

    agreed, _ = sim.run(after_heal())
    settled = convergence(sim.history)[-1]
    assert agreed is not None, {k: stored(sim, k) for k in KEYS}
    assert agreed - healed <= 1.0 and settled.time is not None and settled.time <= 1.0, (
        f"owners agreed {agreed - healed:.3f}s, reads settled {settled.time}s after the heal"
    )
    print(
        f"sloppy availability {fractions}, {stale}; owners agree {agreed - healed:.3f}s and reads settle "
        f"{settled.time:.3f}s after the heal"
    )


# -- read repair, anti-entropy ----------------------------------------------------------------


def test_read_repair_brings_a_stale_owner_up_to_date():
    """An owner isolated during a write is repaired by the next read that hears from it."""
    sim, (client,) = quorum_cluster(nodes=3, clients=1)

    async def main():
        sim.network.isolate("n2")
        await client.invoke("write", key="k", value="new", dest="n0")
        sim.network.heal()
        before = stored(sim, "k")["n2"]
        await client.invoke("read", key="k", dest="n2")
        return before, await until(sim, lambda: stored(sim, "k")["n2"] == ["new"], limit=0.5)

    before, repaired = sim.run(main())
    assert before == [] and repaired is not None
    assert sim.node("n2").stats["read_repairs"] >= 1


def _anti_entropy_run(mode, interval: float | bool, keys: int = 120):
    """Write ``keys`` keys, cutting n2 off during the 20th-last; heal; return (sim, heal time, converged time)."""
    sim, (client,) = quorum_cluster(
        seed=7, nodes=3, clients=1, read_repair=False, anti_entropy=interval, anti_entropy_mode=mode
    )
    names = [f"k{i}" for i in range(keys)]

    async def main():
        for i, key in enumerate(names):
            write = asyncio.ensure_future(attempt(client, "write", key, i, dest="n0"))
            if i == keys - 20:
                await asyncio.sleep(0.001)
                sim.network.isolate("n2")  # mid-request: this write and the next 19 miss n2
            await write
        sim.network.heal()
        healed = sim.now
        for node in sim.servers:
            sim.node(node).stats.clear()
        return healed, await until(sim, lambda: replicas_agree(sim, names), limit=5.0)

    healed, converged = sim.run(main())
    return sim, healed, converged


@pytest.mark.parametrize("mode", ["merkle", "digest"])
def test_anti_entropy_converges_every_replica_after_a_heal(mode):
    """n2 missed 20 of 120 writes; with a round every 0.5 s all replicas agree within two rounds of the heal."""
    sim, healed, converged = _anti_entropy_run(mode, 0.5)
    assert converged is not None and converged - healed <= 1.0, f"{mode}: converged at {converged}, healed {healed}"
    sent = sum(sim.node(n).stats["ae_keys_sent"] for n in sim.servers)
    assert sent < 120, f"{mode}: {sent} keys shipped to repair 20"
    print(f"{mode}: converged {converged - healed:.3f}s after heal, {sent} keys shipped")


def test_without_anti_entropy_or_repair_a_replica_stays_behind():
    """The control: no anti-entropy, no read repair, no hints: n2 still lacks the writes 5 s after the heal."""
    _, _, converged = _anti_entropy_run("merkle", False)
    assert converged is None


# -- versions: LWW and vector clocks ------------------------------------------------------------


def _skewed_writes(versioning):
    """n0's clock is 5 s behind; write 1 through n1, then 2 through n0; read through n2."""
    sim, (client,) = quorum_cluster(nodes=3, clients=1, w=3, versioning=versioning)
    sim.skew("n0", -5.0)

    async def main():
        await client.invoke("write", key="k", value=1, dest="n1")
        await client.invoke("write", key="k", value=2, dest="n0")
        return await client.invoke("read", key="k", dest="n2")

    return sim, sim.run(main())


def test_lww_loses_an_acknowledged_write_from_a_slow_clock():
    """Under LWW the later write, stamped 5 s in the past by a slow clock, is lost."""
    sim, reply = _skewed_writes("lww")
    assert reply["value"] == 1
    assert len(lost_writes(sim.history).lost) == 1


def test_vector_clocks_keep_the_causally_later_write_despite_the_slow_clock():
    """Under vector clocks the second write descends from the first and wins; nothing is lost."""
    sim, reply = _skewed_writes("vector")
    assert (reply["value"], reply["siblings"]) == (2, 1)
    assert not lost_writes(sim.history).lost


def _concurrent_writes(versioning):
    sim, (client,) = quorum_cluster(nodes=3, clients=1, r=1, w=1, versioning=versioning)

    async def main():
        sim.network.partition(["n0"], ["n1", "n2"])
        await client.invoke("write", key="k", value="x", dest="n0")
        await client.invoke("write", key="k", value="y", dest="n1")
        sim.network.heal()
        return await client.rpc("n2", {"type": "read", "key": "k", "r": 3})

    return sim, sim.run(main())


def test_vector_clocks_keep_concurrent_writes_as_siblings_until_a_write_supersedes_them():
    """Writes on two sides of a partition become two siblings; a write from the read's context replaces both."""
    sim, reply = _concurrent_writes("vector")
    assert (reply["value"], reply["siblings"], reply["values"]) == ("y", 2, ["x", "y"])
    c = sim.add_client("c9")

    async def resolve_then_read():
        await c.rpc("n0", {"type": "write", "key": "k", "value": "z", "context": reply["context"]})
        return await c.rpc("n1", {"type": "read", "key": "k", "r": 3})

    after = sim.run(resolve_then_read())
    assert (after["value"], after["siblings"]) == ("z", 1)


def test_vector_clocks_keep_two_writes_from_one_context_through_one_coordinator():
    """Two clients read the same context and each write from it through n0: neither saw the other, both stay.

    With a clock per server the second write's clock ({n0: 2}) descended from the first's ({n0: 1}), so the
    first, acknowledged, was dropped; a version's dot (n0, seq) is superseded only by a context that covers it.
    """
    sim, (a, b, c) = quorum_cluster(nodes=3, clients=3, latency=em.Constant(0.001), n=3, r=2, w=2, versioning="vector")

    async def main():
        await a.rpc("n0", {"type": "write", "key": "k", "value": "v0"})
        context = (await a.rpc("n0", {"type": "read", "key": "k"}))["context"]
        await a.rpc("n0", {"type": "write", "key": "k", "value": "x", "context": context})
        await b.rpc("n0", {"type": "write", "key": "k", "value": "y", "context": context})
        both = await c.rpc("n1", {"type": "read", "key": "k", "r": 3})
        await c.rpc("n2", {"type": "write", "key": "k", "value": "z", "context": both["context"]})
        return both, await c.rpc("n1", {"type": "read", "key": "k", "r": 3})

    both, after = sim.run(main())
    assert (both["siblings"], sorted(both["values"])) == (2, ["x", "y"])
    assert (after["value"], after["siblings"]) == ("z", 1)  # a write that saw both supersedes both


def test_a_write_from_a_context_drops_only_the_versions_its_reader_saw():
    """A replica that learns a coordinator's later dot learns its earlier versions too, so a context never covers
    a version its reader did not see (a replica that missed v1 but got v2 would otherwise hand out {n0: 2})."""
    sim, (a, b, c) = quorum_cluster(nodes=3, clients=3, latency=em.Constant(0.001), n=3, r=2, w=2, versioning="vector")

    async def main():
        cut = sim.network.partition_oneway(["n0"], ["n2"])
        await a.rpc("n0", {"type": "write", "key": "k", "value": "v1", "context": {}})  # on n0 and n1 only
        sim.network.heal(cut)
        await b.rpc("n0", {"type": "write", "key": "k", "value": "v2", "context": {}, "w": 3})
        seen = await c.rpc("n2", {"type": "read", "key": "k", "r": 1})
        await c.rpc("n2", {"type": "write", "key": "k", "value": "v3", "context": seen["context"], "w": 3})
        return seen, await c.rpc("n1", {"type": "read", "key": "k", "r": 3})

    seen, final = sim.run(main())
    read = set(seen.get("values", [seen["value"]]))
    assert {"v1", "v2"} - read <= set(final.get("values", [final["value"]]))


def test_lww_keeps_one_of_two_concurrent_writes():
    """The same two writes under LWW: one survives, the other is gone from every replica."""
    sim, reply = _concurrent_writes("lww")
    assert reply["value"] == "y" and "siblings" not in reply
    sim.run(until=sim.now + 0.5)
    assert all(values == ["y"] for values in stored(sim, "k").values())


# -- what a quorum store gives up: linearizability ------------------------------------------------


def test_a_strict_quorum_is_not_linearizable_a_read_can_see_a_write_a_later_read_misses():
    """R=W=2: a write in flight reaches one replica; a read sees it, a later read does not (no stale read)."""
    sim, (writer, reader) = quorum_cluster(nodes=3, clients=2, latency=em.Constant(0.001))

    async def main():
        await writer.invoke("write", key="k", value=1, dest="n0")
        sim.network.partition(["n0"], ["n1", "n2"])
        in_flight = asyncio.ensure_future(attempt(writer, "write", "k", 2, dest="n0"))
        await asyncio.sleep(0.01)
        sim.network.heal()
        sim.network.partition(["n0", "n1"], ["n2"])
        first = (await reader.invoke("read", key="k", dest="n1"))["value"]
        sim.network.heal()
        sim.network.partition(["n0"], ["n1", "n2"])
        second = (await reader.invoke("read", key="k", dest="n2"))["value"]
        await in_flight
        return first, second

    assert sim.run(main()) == (2, 1)
    assert linearizable(sim.history, model="register").valid is False
    assert not stale_reads(sim.history).stale


def test_cas_is_not_linearizable_two_coordinators_can_both_swap():
    """cas(0->1) through n0 and cas(0->2) through n1 at once both succeed: a read then a write."""
    sim, (a, b) = quorum_cluster(nodes=3, clients=2, latency=em.Constant(0.001))

    async def main():
        await a.invoke("write", key="k", value=0, dest="n0")
        return await asyncio.gather(
            attempt(a, "cas", "k", [0, 1], dest="n0"), attempt(b, "cas", "k", [0, 2], dest="n1")
        )

    replies = sim.run(main())
    assert all(reply["type"] == "cas_ok" for reply in replies)
    assert linearizable(sim.history, model="cas_register").valid is False


# -- determinism ---------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_trace():
    """A sloppy, hinted, anti-entropic cluster under partitions replays bit for bit."""

    def run():
        sim, clients = quorum_cluster(seed=11, clients=4, sloppy=True, hinted_handoff=True, anti_entropy=0.2)
        sim.run(partitioned_workload(sim, clients, ["a", "b"], stop=2.0))
        return sim.trace_digest(), len(sim.history)

    assert run() == run()


# -- state machines: faults interleaved with operations ---------------------------------------------

MACHINE = settings(max_examples=40, stateful_step_count=40, deadline=None)


class StrictQuorumMachine(QuorumMachine):
    """Strict quorum with hints and anti-entropy: never stale; converges and loses nothing after heal."""

    CONFIG = dict(n=3, r=2, w=2, hinted_handoff=True, anti_entropy=0.25)
    FRESH = True


class VectorQuorumMachine(QuorumMachine):
    """The same guarantees under vector clocks."""

    CONFIG = dict(n=3, r=2, w=2, versioning="vector", hinted_handoff=True, anti_entropy=0.25)
    FRESH = True


class SloppyQuorumMachine(QuorumMachine):
    """Sloppy quorum: may be stale, but converges and loses no acknowledged write after the heal."""

    CONFIG = dict(n=3, r=2, w=2, sloppy=True, hinted_handoff=True, anti_entropy=0.25)


TestStrictQuorumMachine = StrictQuorumMachine.TestCase
TestStrictQuorumMachine.settings = MACHINE
TestVectorQuorumMachine = VectorQuorumMachine.TestCase
TestVectorQuorumMachine.settings = MACHINE
TestSloppyQuorumMachine = SloppyQuorumMachine.TestCase
TestSloppyQuorumMachine.settings = MACHINE


def test_the_docstring_calls_the_strict_quorum_pc_ec():
    """A strict quorum waits for R or W replicas even with no partition: latency paid for consistency (PC/EC)."""
    import nodes.quorum

    assert "PC/EC strict" in nodes.quorum.__doc__ and "PC/EL strict" not in nodes.quorum.__doc__


# -- on the real transport ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_replica_write_is_on_disk_before_it_is_acknowledged_with_a_file_storage(tmp_path):
    """With a data directory a q_put is saved by the time the node answers it: a SIGKILL then cannot lose it."""
    host = await NodeHost(
        "n1", QuorumKV, {"n": 3}, peers={"n2": "http://127.0.0.1:9", "n3": "http://127.0.0.1:9"}, data_dir=tmp_path
    ).start()
    try:
        version = new_version("lww", "v", "n2", 1.0, 1)
        body = {"type": "q_put", "key": "k", "siblings": [version]}
        async with aiohttp.ClientSession() as http:
            status, _ = await post(http, host.url + "/msg", envelope(body, src="c9", dest="n1"))
            async with asyncio.timeout(5.0):
                while host.node.replica("k") != ["v"]:
                    await asyncio.sleep(0.005)
        on_disk = FileStorage(tmp_path / "n1.storage")  # what a restarted process would load
        assert status == 202 and on_disk["data"] == {"k": [version]}
    finally:
        await host.stop()


@pytest.mark.parametrize("r, w, answered", [(1, 1, True), (2, 2, False), (1, 2, False)])
def test_a_sloppy_quorum_answers_on_a_side_only_if_it_has_max_r_w_nodes(r, w, answered):
    """Sloppy is available on every side with at least max(R, W) nodes: a node cut off alone answers only if R = W = 1.

    Once its failure detector suspects the others, a lone n0 with W = 2 refuses every write with 11, definite.
    """
    sim, clients = quorum_cluster(seed=5, nodes=4, clients=1, n=3, r=r, w=w, sloppy=True, hinted_handoff=True)

    async def run():
        sim.network.partition(["n0", "c0"], ["n1", "n2", "n3"])
        for i in range(3):  # the first requests across the cut time out and teach n0 whom to suspect
            await attempt(clients[0], "write", f"k{i}", i, dest="n0")
        return [await attempt(clients[0], f, f"k{i}", i, dest="n0") for i in range(8) for f in ("write", "read")]

    outcomes = sim.run(run())
    if answered:
        assert all(isinstance(o, dict) for o in outcomes), outcomes
    else:
        writes = outcomes[::2]
        assert all(isinstance(o, em.RPCError) and o.code == 11 and o.definite for o in writes), writes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_node_cut_off_alone_answers_again_once_a_probe_after_the_heal_has_cleared_its_suspicions(seed):
    """The README's 'once a probe after a heal has answered': a lone n0 (R = W = 2) that suspects every peer still
    refuses with 11 at the heal, and answers every request from one probe interval (plus a round trip) later."""
    sim, (client,) = quorum_cluster(seed=seed, nodes=5, clients=1, n=3, r=2, w=2, sloppy=True, hinted_handoff=True)
    probe = sim.node("n0").probe_interval

    async def run():
        cut = sim.network.partition(["n0"], ["n1", "n2", "n3", "n4"])
        for i in range(3):  # first contacts across the cut: n0 learns whom to suspect
            await attempt(client, "write", f"k{i}", i, dest="n0")
        assert sim.node("n0").suspects == ["n1", "n2", "n3", "n4"]
        sim.network.heal(cut)
        at_heal = await attempt(client, "write", "k0", "at-heal", dest="n0")
        await asyncio.sleep(probe + 0.02)
        later = [await attempt(client, f, f"k{i % 4}", i, dest="n0") for i in range(10) for f in ("write", "read")]
        return at_heal, later

    at_heal, later = sim.run(run())
    assert isinstance(at_heal, em.RPCError) and at_heal.code == 11 and at_heal.definite, at_heal
    assert all(isinstance(o, dict) for o in later), [o for o in later if not isinstance(o, dict)][:3]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_sloppy_side_of_two_answers_with_r_and_w_two_on_a_network_that_duplicates_and_reorders(seed):
    """The positive side of the claim for a side of several nodes: five nodes, N3 R2 W2, cut 2 | 3, the links
    duplicating and reordering 30%: once the first requests across the cut have taught the side whom to suspect,
    every write and read sent to it is answered (the first contacts cost a timeout each, as the README says)."""
    sim, clients = quorum_cluster(seed=seed, nodes=5, clients=2, n=3, r=2, w=2, sloppy=True, hinted_handoff=True)
    sim.network.set_defaults(duplicate=0.3, reorder=0.3)
    side = ["n0", "n1"]

    async def run():
        sim.network.partition([*side, "c0"], ["n2", "n3", "n4", "c1"])
        for i in range(6):  # first contacts across the cut
            for dest in side:
                await attempt(clients[0], "write", f"w{i}", i, dest=dest, timeout=0.5)
        return [
            await attempt(clients[0], f, f"k{i % 10}", i, dest=side[i % 2], timeout=0.5)
            for i in range(40)
            for f in ("write", "read")
        ]

    outcomes = sim.run(run())
    assert all(isinstance(o, dict) for o in outcomes), [o for o in outcomes if not isinstance(o, dict)][:3]
