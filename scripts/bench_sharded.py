"""Throughput of the sharded store (nodes/sharded.py), for scripts/bench.py.

    python scripts/bench_sharded.py          # prints the figures as JSON

``bench_sharded()`` runs closed-loop clients (each with one operation in
flight: 40% reads, 30% writes, 30% cas over a key space, sent to random
nodes) against a 5-node cluster, in two phases of the same run: steady
traffic, then a sixth node joining under that traffic. It reports client
operations per wall second and per virtual second, and for the join the keys
moved, how long the handoff took in virtual time and how the operations
issued meanwhile ended.
"""

from __future__ import annotations

import asyncio
import json
import time

import emulator as em
from nodes.sharded import ShardedKV


def _client_loop(sim: em.Simulation, client, keys: list[str], stop: list[bool]):
    rng = sim.rng(f"bench:{client.name}")

    async def loop():
        value = 0
        while not stop[0]:
            key, roll = rng.choice(keys), rng.random()
            value += 1
            f, arg = ("read", None) if roll < 0.4 else ("write", value) if roll < 0.7 else ("cas", [value - 1, value])
            try:
                await client.invoke(f, key=key, value=arg, dest=rng.choice(sim.servers), timeout=0.5)
            except (em.RPCError, em.Timeout):
                pass

    return loop()


def _completions(history, start: float, end: float) -> dict:
    """Outcomes of the client ops invoked in [start, end]; ``unavailable`` counts the fails with 11."""
    counts = {"ok": 0, "fail": 0, "info": 0, "unavailable": 0}
    invoked = {}
    for op in history:
        if op["process"] == "nemesis":
            continue
        if op["type"] == "invoke":
            invoked[op["process"]] = op["time"]
        elif start <= invoked.get(op["process"], -1.0) <= end:
            counts[op["type"]] += 1
            counts["unavailable"] += op["type"] == "fail" and op["error"][0] == 11
    return counts


def bench_sharded(clients: int = 10, keys: int = 200, virtual_seconds: float = 5.0, seed: int = 1) -> dict:
    """Measure a 5-node ShardedKV cluster under closed-loop load, then a join under that load.

    Args:
        clients: concurrent clients, one operation in flight each.
        keys: size of the key space.
        virtual_seconds: length of the steady phase (the join phase adds ~1 s).
        seed: the simulation seed.

    Returns:
        A dict of figures: ``ops``, ``wall_s``, ``cpu_s`` (process time: the
        wall figure on a machine shared with other work), ``virtual_s``,
        ``ops_per_wall_s``, ``ops_per_cpu_s``, ``ops_per_virtual_s`` (steady phase; ops are
        completed client operations, any outcome; fail means a definite
        answer such as 20 or 22), ``ok_fraction``, and ``join_*`` figures
        for the join phase.
    """
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.0005, 0.0015))
    for i in range(5):
        sim.add_node(f"n{i}", ShardedKV)
    workers = [sim.add_client(f"c{i}") for i in range(clients)]
    operator = sim.add_client("admin")
    names = [f"k{i}" for i in range(keys)]
    stop = [False]
    figures: dict = {"nodes": 5, "clients": clients, "keys": keys}

    tasks = [sim.loop.create_task(_client_loop(sim, c, names, stop)) for c in workers]
    wall, cpu = time.perf_counter(), time.process_time()
    sim.run(until=virtual_seconds)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    steady = _completions(sim.history, 0.0, sim.now)

    async def join():
        before = {n: set(sim.node(n).storage["data"]) for n in sim.servers}
        start = sim.now
        sim.add_node("n5", ShardedKV, contact="n0")
        await operator.rpc("n1", {"type": "join", "node": "n5"}, timeout=30)
        figures["join_virtual_s"] = round(sim.now - start, 4)
        figures["join_keys_moved"] = sum(len(before[n] - set(sim.node(n).storage["data"])) for n in before)
        figures["join_ops"] = _completions(sim.history, start, sim.now)
        await asyncio.sleep(0.5)
        stop[0] = True
        await asyncio.gather(*tasks)

    sim.run(join())
    ops = sum(steady.values())
    figures.update(
        ops=ops,
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        virtual_s=virtual_seconds,
        ops_per_wall_s=round(ops / wall),
        ops_per_cpu_s=round(ops / cpu),
        ops_per_virtual_s=round(ops / virtual_seconds),
        ok_fraction=round(steady["ok"] / ops, 3),
    )
    return figures


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help, and no stray arguments
    print(json.dumps(bench_sharded(), indent=2))
