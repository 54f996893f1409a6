"""A microservice: endpoints that call others, and what deadlines and breakers change when a dependency fails."""

import asyncio

import pytest

import emulator as em
from emulator.check import pair_ops
from nodes.discovery import Registry
from nodes.kv import SingleKV
from nodes.service import Service


def pair(seed=1, **settings):
    """front (2 workers) calls back (2 workers, 50 ms each) on /work; /alone calls nothing."""
    sim = em.Simulation(seed=seed, latency=em.Constant(0.001))
    sim.add_node("back", Service, service="back", endpoints={"/job": []}, service_time=em.Constant(0.05), concurrency=2)
    sim.add_node(
        "front",
        Service,
        service="front",
        services={"back": ["back"]},
        concurrency=2,
        queue_limit=50,
        service_time=em.Constant(0.001),
        endpoints={"/work": [{"service": "back", "path": "/job"}], "/alone": []},
        **settings,
    )
    return sim, sim.add_client("c0")


def fire(sim, client, body, n, gap=0.0):
    async def run():
        tasks = []
        for i in range(n):
            tasks.append(
                asyncio.ensure_future(_outcome(client.rpc("front", {"type": "request", **body, "id": i}, timeout=10)))
            )
            await asyncio.sleep(gap)
        return await asyncio.gather(*tasks)

    return sim.run(run())


async def _outcome(coro):
    try:
        return await coro
    except (em.RPCError, em.Timeout) as exc:
        return exc


def test_an_endpoint_makes_its_calls_and_answers():
    """/work calls back's /job; the answer names the instance."""
    sim, client = pair()
    (reply,) = fire(sim, client, {"path": "/work/1"}, 1)
    assert reply["backend"] == "front" and sim.node("back").stats["served"] == 1


def test_a_request_whose_deadline_ran_out_in_the_queue_is_dropped_without_work():
    """Ten 50 ms requests on two workers with a 0.1 s deadline: the late ones are refused unworked (definite 11)."""
    sim, client = pair()
    replies = fire(sim, client, {"path": "/work", "deadline": 0.1}, 10)
    expired = [r for r in replies if isinstance(r, em.RPCError) and "passed while the request queued" in r.text]
    assert len(expired) == sim.node("front").stats["expired"] >= 4 and all(r.definite for r in expired)
    assert sim.node("back").stats["served"] <= 10 - len(expired)
    assert all(isinstance(r, dict) or r.code in (0, 11) for r in replies)


def test_without_deadlines_every_queued_request_is_worked_on_however_late():
    """deadlines=False: the same ten requests all reach back, the last long after a 0.1 s caller gave up."""
    sim, client = pair(deadlines=False)
    replies = fire(sim, client, {"path": "/work", "deadline": 0.1}, 10)
    assert all(r["type"] == "request_ok" for r in replies) and sim.node("back").stats["served"] == 10
    assert max(sim.node("front").finished.values()) > 0.2


def test_a_call_is_capped_by_the_time_left_and_the_callee_sees_it():
    """A 0.02 s deadline on a 50 ms dependency: the call gives up at the deadline, not at call_timeout."""
    sim, client = pair(call_timeout=5.0)
    start = sim.now
    (reply,) = fire(sim, client, {"path": "/work", "deadline": 0.02}, 1)
    assert isinstance(reply, em.RPCError) and sim.now - start < 0.05


def test_a_breaker_makes_a_dead_dependency_fail_fast_and_frees_the_workers():
    """back crashed: with a breaker, calls soon fail at once, and /alone, sent meanwhile, is not stuck behind them."""
    outcomes = {}
    for breaker in (None, {"failure_threshold": 5, "reset_timeout": 10.0}):
        sim, client = pair(call_timeout=0.5, deadlines=False, breaker=breaker)
        sim.crash("back")
        other = sim.add_client("c1")

        async def alone():
            await asyncio.sleep(2.5)
            start = sim.now
            await other.rpc("front", {"type": "request", "path": "/alone"}, timeout=30)
            return sim.now - start

        waited = sim.loop.create_task(alone())
        replies = fire(sim, client, {"path": "/work"}, 60, gap=0.05)
        sim.run(waited)
        outcomes[breaker is None] = (replies, waited.result())
    (bare, bare_wait), (guarded, guarded_wait) = outcomes[True], outcomes[False]
    assert all(r.code == 0 for r in bare)
    assert sum(r.code == 11 and r.definite for r in guarded) >= 40
    assert bare_wait > 5.0 and guarded_wait < 0.1


def test_services_find_each_other_through_the_registry():
    """With registries, front looks back up and back heartbeats itself in."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("r0", Registry)
    sim.add_node("store", SingleKV, leader="store")
    sim.add_node(
        "back", Service, service="back", registries=["r0"], endpoints={"/job": [{"node": "store", "op": "write"}]}
    )
    sim.add_node(
        "front", Service, service="front", registries=["r0"], endpoints={"/work": [{"service": "back", "path": "/job"}]}
    )
    client = sim.add_client("c0")

    async def run():
        await asyncio.sleep(0.2)
        await client.rpc("front", {"type": "request", "path": "/work", "key": "k", "id": 7})
        return await client.rpc("store", {"type": "read", "key": "k"})

    assert sim.run(run(), until=3)["value"] == 7


@pytest.mark.parametrize(
    "endpoints, match",
    [
        ({}, "endpoints must map path prefixes"),
        ({"work": []}, "a path prefix"),
        ({"/w": [{"service": "x"}]}, "a call is"),
        ({"/w": [{"node": "x", "op": "cas"}]}, "a call is"),
    ],
)
def test_bad_endpoints_say_what_to_do(endpoints, match):
    """A malformed endpoint table fails at construction."""
    with pytest.raises(em.ConfigError, match=match):
        em.Simulation().add_node("s", Service, service="s", endpoints=endpoints)


@pytest.mark.parametrize("limit", ["own work", "time on the wire"])
def test_what_a_deadline_does_not_cover(limit):
    """The docstring's limits: a request's own work runs to its end, and the budget counts from its arrival.

    Either way the worker finishes after the caller gave up, by at most the work left or the one-way delay.
    """
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    slow_work, wire = (0.3, 0.001) if limit == "own work" else (0.001, 0.2)
    sim.add_node("back", Service, service="back", endpoints={"/job": []}, service_time=em.Constant(0.15))
    sim.add_node(
        "front",
        Service,
        service="front",
        services={"back": ["back"]},
        service_time=em.Constant(slow_work),
        endpoints={"/work": [{"service": "back", "path": "/job"}] if limit != "own work" else []},
    )
    client = sim.add_client("c0")
    sim.network.set_link("c0", "front", latency=em.Constant(wire))
    deadline = 0.25

    async def run():
        try:
            await client.rpc(
                "front", {"type": "request", "path": "/work", "id": 1, "deadline": deadline}, timeout=deadline
            )
        except em.Timeout:
            pass
        await asyncio.sleep(1.0)

    sim.run(run())
    finished = sim.node("front").finished[1]
    assert deadline < finished <= deadline + (slow_work if limit == "own work" else wire) + 0.01, finished


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_registry_lookup_counts_against_the_callers_deadline(seed):
    """Found by a review: the lookup of a callee (0.2 s per unreachable registry replica, then the stale answer)
    was not taken off the time left, so with the registry cut off a worker waited 1.11 s on a 0.5 s deadline."""
    from nodes.discovery import Instance

    sim = em.Simulation(seed=seed, latency=em.Constant(0.001))
    for registry in ("r0", "r1", "r2"):
        sim.add_node(registry, Registry, replicas=["r0", "r1", "r2"], mode="ap")
    sim.add_node("back", Instance, service="back", registries=["r0"], interval=0.25, ttl=1.0, service_time=10.0)
    endpoints = {"/x": [{"service": "back", "path": "/y"}]}
    sim.add_node(
        "front", Service, service="front", endpoints=endpoints, registries=["r0", "r1", "r2"], service_time=0.001
    )
    client = sim.add_client("c")
    request = {"type": "request", "path": "/x", "deadline": 0.5}

    async def run():
        await asyncio.sleep(1.0)
        with pytest.raises(em.Timeout):  # the front looks back up (and caches it); back hangs
            await client.rpc("front", request, timeout=0.5)
        for registry in ("r0", "r1", "r2"):
            sim.network.partition(["front"], [registry])
        await asyncio.sleep(1.5)  # the cached answer is older than its cache_ttl: the next call looks up again
        sent = sim.now
        with pytest.raises((em.Timeout, em.RPCError)):
            await client.rpc("front", request, timeout=0.5)
        while sim.node("front").busy:
            await asyncio.sleep(0.001)
        return sim.now - sent

    assert sim.run(run(), until=10) <= 0.5 + 0.002 + 0.001  # the deadline, a round trip, one step


def test_a_request_that_failed_after_a_call_took_effect_fails_indefinitely():
    """Found by a review: once orders' breaker on its dead cache opened, each order charged payments and then
    answered 11, definite: the client recorded `fail` (did not happen) for orders that had been charged. A
    request that made no such call (a read of the cache) still fails definitely."""
    from nodes.gateway import Gateway

    sim = em.Simulation(seed=1, latency=em.Uniform(0.001, 0.003))
    sim.add_node("cache", SingleKV)
    sim.add_node("payments", Service, service="payments", endpoints={"/charge": []}, service_time=0.002)
    calls = [{"service": "payments", "path": "/charge"}, {"node": "cache", "op": "write"}]
    sim.add_node(
        "orders",
        Service,
        service="orders",
        endpoints={"/orders": calls, "/lookup": [{"node": "cache", "op": "read"}]},
        services={"payments": ["payments"]},
        call_timeout=0.3,
        breaker={"failure_threshold": 3, "reset_timeout": 5.0},
        service_time=0.002,
    )
    sim.add_node("gw", Gateway, routes={"/orders": "orders", "/lookup": "orders"}, services={"orders": ["orders"]})
    client = sim.add_client("c")

    async def run():
        sim.crash("cache")
        for n in range(20):
            for key, path in ((f"order{n}", "/orders"), (f"lookup{n}", "/lookup")):
                try:
                    await client.invoke("request", key=key, dest="gw", timeout=1.5, fields={"path": path, "id": key})
                except (em.RPCError, em.Timeout):
                    pass
            await asyncio.sleep(0.05)

    sim.run(run())
    assert len(sim.node("payments").finished) == 20  # every order was charged, and every one failed at the cache
    ops, _ = pair_ops(list(sim.history))
    done = {op.key: (op.status, (op.error or [None])[0]) for op in ops}
    orders = [done[f"order{n}"] for n in range(20)]
    assert all(kind == "info" for kind, _ in orders), orders
    assert [code for _, code in orders[-10:]] == [13] * 10  # breaker open: 11 from the cache call, passed on as 13
    assert [done[f"lookup{n}"] for n in range(10, 20)] == [("fail", 11)] * 10  # nothing happened: definite
