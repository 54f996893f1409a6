"""Benchmarks of the load balancer, the cache and the circuit breaker, for scripts/bench.py.

Each function builds a fixed-seed cluster, drives closed-loop clients for a
span of virtual time and returns a dict of measured figures: operations per
wall-clock second (the emulator's speed) and per virtual second (the modelled
system's throughput), plus what the protocol is about (per-backend shares,
hit rate, latency with and without a breaker). Run directly to print them all.
"""

from __future__ import annotations

import asyncio
import json
import time

import emulator as em
from emulator.check import latency
from nodes.balancer import Backend, LoadBalancer
from nodes.breaker import Caller
from nodes.cache import Cache
from nodes.kv import SingleKV

__all__ = ["bench_balancer", "bench_breaker", "bench_cache"]


def _closed_loop(sim, clients, until, make_op):
    """Each client invokes ``make_op(rng)`` -> (f, key, value, dest) back to back until virtual ``until``."""
    rng = sim.rng("bench")
    done = {"ok": 0, "failed": 0}

    async def worker(client):
        while sim.now < until:
            f, key, value, dest = make_op(rng)
            try:
                await client.invoke(f, key=key, value=value, dest=dest, timeout=1.0)
                done["ok"] += 1
            except (em.RPCError, em.Timeout):
                done["failed"] += 1

    async def main():
        await asyncio.gather(*(worker(c) for c in clients))

    started = time.perf_counter()  # wall-clock: this is a benchmark
    sim.run(main())
    return done, time.perf_counter() - started


def _rates(done: dict, wall: float, virtual: float) -> dict:
    ops = done["ok"] + done["failed"]
    return {
        "ops": ops,
        "ok": done["ok"],
        "wall_s": round(wall, 3),
        "virtual_s": round(virtual, 3),
        "ops_per_wall_s": round(ops / wall),
        "ops_per_virtual_s": round(ops / virtual, 1),
    }


def _p(percentiles) -> dict:
    return {
        k: (None if v is None else round(v * 1000, 3))
        for k, v in {"p50_ms": percentiles.p50, "p99_ms": percentiles.p99}.items()
    }


def bench_balancer(
    algorithm: str = "least-connections", clients: int = 32, seconds: float = 20.0, seed: int = 1
) -> dict:
    """Three backends (mean service 2, 5 and 10 ms, 8 workers each) behind one balancer, under closed-loop load."""
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.0005, 0.0015))
    names = ["b0", "b1", "b2"]
    for name, mean in zip(names, (0.002, 0.005, 0.010)):
        sim.add_node(name, Backend, service_time=em.Exponential(mean), concurrency=8, queue_limit=64)
    sim.add_node("lb", LoadBalancer, backends=names, algorithm=algorithm, health_interval=0.5)
    nodes = [sim.add_client(f"c{i}") for i in range(clients)]
    done, wall = _closed_loop(sim, nodes, seconds, lambda rng: ("request", rng.randrange(10_000), None, "lb"))
    shares = {b: m["sent"] for b, m in sim.node("lb").metrics().items()}
    return {
        "bench": "balancer",
        "algorithm": algorithm,
        "clients": clients,
        **_rates(done, wall, sim.now),
        "per_backend": shares,
        **_p(latency(sim.history.client_ops())["overall"]),
        "messages": sim.network.stats["delivered"],
    }


def bench_cache(policy: str = "write-through", clients: int = 16, seconds: float = 10.0, seed: int = 1) -> dict:
    """A cache of 100 entries over 1000 keys read 9:1 with a skewed (80/20) key choice, in front of one store."""
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.0005, 0.0015))
    store = sim.add_node("store", SingleKV, leader="store")
    store.storage["data"] = dict.fromkeys(range(1000), 0)  # every key exists: a miss is a fill, not an error
    sim.add_node("cache", Cache, store="store", capacity=100, ttl=5.0, policy=policy)
    nodes = [sim.add_client(f"c{i}") for i in range(clients)]

    def op(rng):
        key = rng.randrange(200) if rng.random() < 0.8 else rng.randrange(1000)
        if rng.random() < 0.9:
            return "read", key, None, "cache"
        return "write", key, rng.randrange(1_000_000), "cache"

    done, wall = _closed_loop(sim, nodes, seconds, op)
    stats = sim.node("cache").stats()
    return {
        "bench": "cache",
        "policy": policy,
        "clients": clients,
        **_rates(done, wall, sim.now),
        "hit_rate": round(stats["hit_rate"], 4),
        "evictions": stats["evictions"],
        **_p(latency(sim.history.client_ops())["overall"]),
    }


def bench_breaker(clients: int = 8, seed: int = 1) -> dict:
    """Callers of a store that is down from t=2 to t=7 of 10 s, with and without a breaker."""
    report = {"bench": "breaker", "clients": clients}
    for label, breaker in (("with_breaker", {"failure_threshold": 5, "reset_timeout": 1.0}), ("without", None)):
        sim = em.Simulation(seed=seed, latency=em.Constant(0.001))
        sim.add_node("store", SingleKV, leader="store")
        sim.add_node("caller", Caller, dependency="store", breaker=breaker, timeout=0.5)
        nodes = [sim.add_client(f"c{i}") for i in range(clients)]
        sim.loop.call_at(2.0, sim.crash, "store")
        sim.loop.call_at(7.0, sim.restart, "store")
        done, wall = _closed_loop(sim, nodes, 10.0, lambda rng: ("write", rng.randrange(10), 1, "caller"))
        ops = sim.history.client_ops()
        during = [(i, d) for i, d in sim.history.completions() if 2.5 <= i["time"] < 7.0 and d is not None]
        waits = [d["time"] - i["time"] for i, d in during]
        report[label] = {
            **_rates(done, wall, sim.now),
            "outage_mean_latency_ms": round(1000 * sum(waits) / len(waits), 3),
            "outage_calls": len(waits),
            **_p(latency(ops)["overall"]),
        }
    return report


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help, and no stray arguments
    for result in (
        bench_balancer(),
        bench_balancer("round-robin"),
        bench_cache("cache-aside"),
        bench_cache(),
        bench_cache("write-behind"),
        bench_breaker(),
    ):
        print(json.dumps(result))
