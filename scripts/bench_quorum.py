"""Throughput of the quorum store on a 5-node cluster, per wall and per virtual second.

    python scripts/bench_quorum.py            # prints the figures as JSON
    python scripts/bench_quorum.py --quick

``bench_quorum`` is what scripts/bench.py calls. The workload: closed-loop
clients (each waits for its answer before the next op) on 5 nodes with N=3,
R=2, W=2, 1-3 ms links, 100 keys, 60% reads, 30% writes, 10% cas, each op
sent to a random node (so about 2 in 5 are forwarded to an owner). No
faults: this is the cost of the protocol plus the kernel.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import emulator as em
from nodes.quorum import QuorumKV

__all__ = ["bench_quorum"]


def bench_quorum(
    seconds_virtual: float = 20.0, clients: int = 10, nodes: int = 5, keys: int = 100, seed: int = 1, **config
) -> dict:
    """Run the workload for ``seconds_virtual`` and return the figures.

    Args:
        config: QuorumKV options (default n=3, r=2, w=2, LWW).

    Returns:
        ``{"ops", "ok", "ops_per_wall_second", "ops_per_virtual_second",
        "ops_per_cpu_second", "wall_seconds", "cpu_seconds", "virtual_seconds",
        "messages", "config"}``; CPU seconds tell a busy machine from a slow run.
    """
    config = {"n": 3, "r": 2, "w": 2, **config}
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.003))
    for i in range(nodes):
        sim.add_node(f"n{i}", QuorumKV, **config)
    workers = [sim.add_client(f"c{i}") for i in range(clients)]
    counts = {"ops": 0, "ok": 0}

    async def worker(client, rng):
        while sim.now < seconds_virtual:
            key, roll = f"k{rng.randrange(keys)}", rng.random()
            f, value = (
                ("read", None)
                if roll < 0.6
                else ("write", rng.randrange(5))
                if roll < 0.9
                else ("cas", [rng.randrange(5), rng.randrange(5)])
            )
            counts["ops"] += 1
            try:
                await client.invoke(f, key=key, value=value, timeout=1.0)
                counts["ok"] += 1
            except (em.RPCError, em.Timeout):
                pass

    async def main():
        await asyncio.gather(*(worker(c, sim.rng(c.name)) for c in workers))

    start, cpu_start = time.perf_counter(), time.process_time()  # wall-clock ok: this is the benchmark
    sim.run(main())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start  # wall-clock ok
    return {
        "ops": counts["ops"],
        "ok": counts["ok"],
        "ops_per_wall_second": counts["ops"] / wall,
        "ops_per_virtual_second": counts["ops"] / sim.now,
        "ops_per_cpu_second": counts["ops"] / cpu,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "virtual_seconds": sim.now,
        "messages": dict(sim.network.stats),
        "config": {"nodes": nodes, "clients": clients, "keys": keys, **config},
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 virtual seconds instead of 20")
    quick = parser.parse_args().quick
    print(json.dumps(bench_quorum(seconds_virtual=2.0 if quick else 20.0), indent=2, default=str))
