"""Helpers for the quorum store's tests: clusters, workloads, a nemesis, replica views."""

from __future__ import annotations

import asyncio

import emulator as em
from nodes.quorum import QuorumKV

LATENCY = em.Uniform(0.001, 0.005)


def quorum_cluster(seed: int = 1, nodes: int = 5, clients: int = 0, latency=LATENCY, sim=None, **config):
    """A Simulation with QuorumKV servers n0.. (config applied to each) and clients c0..

    Returns:
        ``(sim, [client, ...])``.
    """
    if sim is None:
        sim = em.Simulation(seed=seed, latency=latency)
    else:
        sim.network.set_defaults(latency=latency)
    for i in range(nodes):
        sim.add_node(f"n{i}", QuorumKV, **config)
    return sim, [sim.add_client(f"c{i}") for i in range(clients)]


async def attempt(client, f: str, key, value=None, dest=None, timeout: float = 2.0):
    """``client.invoke`` that returns the error instead of raising it."""
    try:
        return await client.invoke(f, key=key, value=value, dest=dest, timeout=timeout)
    except (em.RPCError, em.Timeout) as exc:
        return exc


def as_register(history) -> list[dict]:
    """The history with every read that failed with 20 (no such key) as an ok read of None.

    A missing key is the register's initial state, so the checkers can judge
    such reads too instead of dropping them as failed.
    """
    out = []
    for op in history:
        if op.get("f") == "read" and op.get("type") == "fail" and (op.get("error") or [None])[0] == 20:
            op = {**op, "type": "ok", "value": None}
            op.pop("error", None)
        out.append(op)
    return out


def stored(sim, key, nodes=None) -> dict:
    """Node -> the sibling values it holds for ``key`` (live nodes among ``nodes``, default all servers)."""
    out = {}
    for name in nodes or sim.servers:
        node = sim.node(name)
        if node is not None:
            out[name] = node.replica(key)
    return out


def owners(sim, key) -> list[str]:
    """The owners of ``key`` as the first live server computes them."""
    return next(sim.node(n) for n in sim.servers if sim.node(n) is not None).owners(key)


def replicas_agree(sim, keys) -> bool:
    """True when every owner of every key holds the same versions."""
    for key in keys:
        views = [sim.node(o).replica(key) for o in owners(sim, key)]
        if any(view != views[0] for view in views):
            return False
    return True


async def writer(client, key, stop: float, pause: float = 0.02, timeout: float = 1.0, dest_rng=None, nodes=None):
    """Write 1, 2, 3... to ``key`` one at a time until virtual time ``stop``; the only writer of ``key``."""
    loop = asyncio.get_running_loop()
    value = 0
    while loop.time() < stop:
        value += 1
        dest = dest_rng.choice(nodes) if dest_rng is not None else None
        await attempt(client, "write", key, value, dest=dest, timeout=timeout)
        await asyncio.sleep(pause)


async def reader(client, keys, stop: float, rng, pause: float = 0.01, timeout: float = 1.0, nodes=None):
    """Read random ``keys`` through random nodes (of ``nodes``) until virtual time ``stop``."""
    loop = asyncio.get_running_loop()
    while loop.time() < stop:
        dest = rng.choice(nodes) if nodes else None
        await attempt(client, "read", rng.choice(keys), dest=dest, timeout=timeout)
        await asyncio.sleep(pause)


async def partitioner(sim, stop: float, rng, hold=(0.2, 0.6), calm=(0.05, 0.3)) -> int:
    """Random splits of the servers, healed in between, until ``stop``; returns how many."""
    count = 0
    while sim.now < stop:
        servers = sim.servers
        rng.shuffle(servers)
        cut = rng.randrange(1, len(servers))
        sim.network.partition(servers[:cut], servers[cut:])
        count += 1
        await asyncio.sleep(rng.uniform(*hold))
        sim.network.heal()
        await asyncio.sleep(rng.uniform(*calm))
    return count


async def partitioned_workload(sim, clients, keys, stop: float, nemesis: bool = True) -> int:
    """One writer client per key, the other clients read, random partitions until ``stop``.

    Returns:
        How many partitions the nemesis made.
    """
    writers, readers = clients[: len(keys)], clients[len(keys) :]
    jobs = [writer(c, k, stop) for c, k in zip(writers, keys)]
    jobs += [reader(c, keys, stop, sim.rng(f"reader:{c.name}")) for c in readers]
    if nemesis:
        jobs.append(partitioner(sim, stop, sim.rng("nemesis")))
    results = await asyncio.gather(*jobs)
    return results[-1] if nemesis else 0


async def until(sim, predicate, limit: float, step: float = 0.01):
    """The virtual time at which ``predicate()`` first holds (polled every ``step``), or None."""
    end = sim.now + limit
    while sim.now < end:
        if predicate():
            return sim.now
        await asyncio.sleep(step)
    return None
