"""lin-kv (SingleKV) and the at-most-once machinery every key-value store shares (nodes/kv.py)."""

import asyncio

import pytest

import emulator as em
from emulator.check import linearizable
from nodes.kv import SingleKV, apply_once, forwarded, request_id, take_once


def lin_kv(seed=1, nodes=3, **network):
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.003), **network)
    for i in range(nodes):
        sim.add_node(f"n{i}", SingleKV)
    return sim, sim.add_client("c0")


async def attempt(client, f, key, value=None, dest=None, timeout=1.0):
    try:
        return await client.invoke(f, key=key, value=value, dest=dest, timeout=timeout)
    except (em.RPCError, em.Timeout) as exc:
        return exc


def test_a_duplicated_forwarded_cas_is_answered_by_the_copy_that_applied():
    """Every forward to the leader arrives twice and answers race back: each cas that took effect says cas_ok.

    The bug: the second copy found the value the first had written and
    answered 22 (precondition failed); when that answer arrived first, a cas
    that took effect was reported as a definite failure.
    """
    sim, client = lin_kv()
    sim.network.set_link_oneway("n1", "n0", duplicate=1.0)
    sim.network.set_link_oneway("n0", "n1", latency=em.Uniform(0.001, 0.02), fifo=False)

    async def work():
        await client.invoke("write", key="k", value=0, dest="n1")
        return [await attempt(client, "cas", "k", [i, i + 1], dest="n1") for i in range(40)]

    results = sim.run(work())
    assert all(isinstance(r, dict) and r["type"] == "cas_ok" for r in results), results
    assert sim.network.stats["duplicated"] >= 40
    assert sim.node("n0").storage["data"]["k"] == 40


def test_a_late_duplicate_of_an_old_write_never_overwrites_a_newer_one():
    """Client requests arrive twice, some copies late; every read returns the latest acknowledged write.

    The bug: a late copy of write(v) reached the leader after write(v + 1)
    was acknowledged and applied v again; a read then returned the old value.
    """
    sim, client = lin_kv(seed=3)
    for server in ("n1", "n2"):
        sim.network.set_link_oneway("c0", server, duplicate=1.0, latency=em.Uniform(0.001, 1.0), fifo=False)

    async def work():
        for value in range(1, 40):
            await attempt(client, "write", "k", value, dest=("n1", "n2")[value % 2], timeout=3.0)
            for _ in range(3):
                await asyncio.sleep(0.05)
                await attempt(client, "read", "k", dest="n0")

    sim.run(work())
    verdict = linearizable(sim.history, model="cas_register")
    assert verdict.valid is True, str(verdict)
    reads = [op["value"] for op in sim.history if op["f"] == "read" and op["type"] == "ok"]
    assert len(reads) > 100 and reads == sorted(reads)


def test_a_copy_gets_the_first_answer_and_an_older_request_is_dropped():
    """apply_once: a repeated id gets the same answer (error included); an older id from that client never applies."""
    data, applied = {"k": 1}, {}
    assert apply_once(data, applied, {"type": "cas", "key": "k", "from": 1, "to": 2}, ["c0", 5]) == {"type": "cas_ok"}
    assert apply_once(data, applied, {"type": "cas", "key": "k", "from": 1, "to": 2}, ["c0", 5]) == {"type": "cas_ok"}
    assert data == {"k": 2}
    assert apply_once(data, applied, {"type": "write", "key": "k", "value": 0}, ["c0", 4]) is None
    assert data == {"k": 2}
    for _ in range(2):
        with pytest.raises(em.RPCError) as caught:
            apply_once(data, applied, {"type": "cas", "key": "k", "from": 7, "to": 8}, ["c0", 6])
        assert caught.value.code == 22
    assert apply_once(data, applied, {"type": "write", "key": "k", "value": 9}, ["c1", 1]) == {"type": "write_ok"}
    assert data == {"k": 9} and applied["k"] == {
        "c0": [6, {"error": [22, applied["k"]["c0"][1]["error"][1]]}],
        "c1": [1, {"type": "write_ok"}],
    }


def test_a_forwarded_request_keeps_its_clients_id():
    """forwarded() drops the hop's msg_id and carries the client's [src, msg_id] as rid, hop after hop."""
    first = em.Message("c0", "n1", {"type": "write", "key": "k", "value": 1, "msg_id": 7})
    body = forwarded(first, hops=1)
    assert body == {"type": "write", "key": "k", "value": 1, "rid": ["c0", 7], "hops": 1}
    second = em.Message("n1", "n2", {**body, "msg_id": 3})
    assert request_id(second) == ["c0", 7] and forwarded(second)["rid"] == ["c0", 7]
    with pytest.raises(em.RPCError, match="rid must be"):
        request_id(em.Message("n1", "n2", {"type": "write", "rid": "c0-7"}))


def test_the_leader_and_its_request_ids_survive_a_crash():
    """A copy of a write that arrives after the leader restarts gets the first answer and does not apply again."""
    sim, client = lin_kv()

    async def work():
        await client.invoke("write", key="k", value=1, dest="n0")
        await client.invoke("write", key="k", value=2, dest="n0")

    sim.run(work())
    sim.crash("n0")
    sim.restart("n0")
    leader = sim.node("n0")
    assert leader.storage["applied"]["k"]["c0"][1] == {"type": "write_ok"}
    old = em.Message("c0", "n0", {"type": "write", "key": "k", "value": 1, "msg_id": 1})
    assert apply_once(leader.storage["data"], leader.storage["applied"], old.body, request_id(old)) is None
    assert leader.storage["data"]["k"] == 2
    assert SingleKV.leader_of(sim) == "n0"


def test_leader_of_names_the_configured_leader_and_refuses_a_protocol_without_one():
    """nodes.leader_of: lin-kv's leader (default the first server, or leader=); a quorum store has none."""
    from nodes import QuorumKV, leader_of

    sim, _ = lin_kv()
    assert leader_of(sim) == "n0"
    other = em.Simulation(seed=1)
    for i in range(3):
        other.add_node(f"n{i}", SingleKV, leader="n2")
    assert leader_of(other) == "n2"
    quorum = em.Simulation(seed=1)
    quorum.add_node("n0", QuorumKV)
    with pytest.raises(ValueError, match="QuorumKV has no leader"):
        leader_of(quorum)


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["lin-kv", "sharded-kv"])
async def test_writes_and_request_ids_survive_a_restart_on_file_storage(tmp_path, protocol):
    """On real hosts with file storage (saved on assignment), data and request records outlive a crash."""
    from emulator.transport import RealCluster
    from nodes import resolve

    cluster = await RealCluster.local({f"n{i}": resolve(protocol) for i in range(3)}, seed=1, data_dir=tmp_path)
    try:
        client = await cluster.add_client("c0")
        for value in (1, 2, 3):
            await client.invoke("write", key="k", value=value, dest="n1", timeout=2.0)
        for name in cluster.servers:
            cluster.crash(name)
            await cluster.restart(name)
        await cluster.settle()
        assert (await client.invoke("read", key="k", dest="n2", timeout=2.0))["value"] == 3
    finally:
        await cluster.close()
    saved = [path.read_text() for path in sorted(tmp_path.glob("*.storage"))]
    assert any("'c0'" in text and "'k': 3" in text for text in saved), saved


@pytest.mark.parametrize(
    "proxy,config",
    [
        ("nodes.breaker:Caller", {"dependency": "store"}),
        ("nodes.balancer:LoadBalancer", {"backends": ["store"], "health_interval": None}),
    ],
)
def test_a_proxy_passes_the_clients_request_id_so_the_store_applies_each_write_once(proxy, config):
    """Through a breaker caller or a load balancer, duplicated client writes still apply once at the store."""
    from nodes import resolve

    sim = em.Simulation(seed=2, latency=em.Uniform(0.001, 0.003))
    sim.add_node("store", SingleKV, leader="store")
    sim.add_node("proxy", resolve(proxy), **config)
    client = sim.add_client("c0")
    sim.network.set_link_oneway("c0", "proxy", duplicate=1.0, latency=em.Uniform(0.001, 0.3), fifo=False)

    async def work():
        for value in range(1, 20):
            await attempt(client, "write", "k", value, dest="proxy", timeout=2.0)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)

    sim.run(work())
    assert sim.node("store").storage["data"]["k"] == 19
    assert sim.node("store").storage["applied"]["k"] == {
        "c0": [sim.node("store").storage["applied"]["k"]["c0"][0], {"type": "write_ok"}]
    }


def test_an_older_request_finishing_late_keeps_the_newer_requests_record():
    """take_once: request 1 still running when request 2 of its client is taken and answered; when 1 ends, a copy
    of 2 gets 2's answer, not a second run (the record must not go back to 1)."""
    storage = {"requests": {}}
    runs = []

    async def scenario():
        gate = asyncio.Event()

        async def slow():
            runs.append(1)
            await gate.wait()
            return {"type": "first_ok"}

        async def fast():
            runs.append(2)
            return {"type": "second_ok"}

        first = asyncio.ensure_future(take_once(storage, "requests", "k", ["c0", 1], slow))
        await asyncio.sleep(0)
        second = await take_once(storage, "requests", "k", ["c0", 2], fast)
        gate.set()
        await first
        copy = await take_once(storage, "requests", "k", ["c0", 2], fast)
        late = await take_once(storage, "requests", "k", ["c0", 1], slow)
        return second, copy, late

    second, copy, late = asyncio.run(scenario())
    assert runs == [1, 2], "a copy of request 2 ran again after request 1 ended"
    assert second == copy == {"type": "second_ok"} and late is None


@pytest.mark.parametrize("key", [[1], {"a": 1}])
@pytest.mark.parametrize("kind", ["read", "write", "cas"])
def test_a_key_that_is_a_list_or_an_object_is_a_definite_malformed_request(kind, key):
    """Error 12, definite, naming what a key may be: not a crash of the node (13, indefinite)."""
    sim = em.Simulation(seed=1)
    for name in ("n0", "n1"):
        sim.add_node(name, SingleKV)
    client = sim.add_client("c")
    errors = []

    async def main():
        for node in ("n0", "n1"):  # the leader itself, and a node that forwards to it
            try:
                await client.rpc(node, {"type": kind, "key": key, "value": 1, "from": 1, "to": 2})
            except em.RPCError as exc:
                errors.append(exc)

    sim.run(main())
    assert [(e.code, e.definite) for e in errors] == [(12, True), (12, True)]
    assert "a key is a string, number, boolean or null" in str(errors[0])
    assert not sim.errors


def test_a_leader_that_is_no_server_is_refused_as_the_nodes_start():
    """leader = "n99" was found at the first request forwarded to it, with the kernel's advice to add the node;
    each node now refuses it in on_start, naming the servers (capsim chaos reports it as a config error)."""
    sim = em.Simulation(seed=1)
    for i in range(3):
        sim.add_node(f"n{i}", SingleKV, leader="n99")
    sim.run(until=0.0)
    assert {e.node for e in sim.errors} == {"n0", "n1", "n2"} and all(e.where == "on_start" for e in sim.errors)
    assert "leader 'n99' is not a server of this cluster (its servers: n0, n1, n2)" in str(sim.errors[0].exception)
