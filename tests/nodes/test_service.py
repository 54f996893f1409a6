"""A microservice: endpoints that call others, and what deadlines and breakers change when a dependency fails."""

import asyncio

import pytest

import emulator as em
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
