"""Helpers for the sharded store's tests: a cluster, a workload in flight, admin calls, verdicts."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import emulator as em
from emulator.check import linearizable, lost_writes
from nodes.hashring import HashRing
from nodes.sharded import ShardedKV

LATENCY = em.Uniform(0.001, 0.003)


def build(seed: int, n: int = 5, clients: int = 3, **config):
    """A Simulation with ShardedKV servers n0..n{n-1} and clients c0..; returns (sim, [clients])."""
    sim = em.Simulation(seed=seed, latency=LATENCY)
    for i in range(n):
        sim.add_node(f"n{i}", ShardedKV, **config)
    return sim, [sim.add_client(f"c{i}") for i in range(clients)]


class Workload:
    """Clients that read, write and cas random keys through random servers until stopped.

    Every write and cas writes a value no other op writes, so the checkers can
    tell every write apart.
    """

    def __init__(self, sim: em.Simulation, clients, keys, timeout: float = 0.5, dests=None):
        self.sim, self.clients, self.keys, self.timeout = sim, clients, list(keys), timeout
        self.dests = dests  # the servers to send to; default: every server at the time
        self._values = itertools.count(1)
        self._tasks: list[asyncio.Task] = []
        self._stopped = False

    def start(self) -> Workload:
        """Start one task per client on the simulation's loop (they run as the simulation runs)."""
        self._tasks = [self.sim.loop.create_task(self._client(c)) for c in self.clients]
        return self

    async def stop(self) -> None:
        """Let each client finish its operation in flight, then end."""
        self._stopped = True
        await asyncio.gather(*self._tasks)

    async def _client(self, client) -> None:
        rng = self.sim.rng(f"workload:{client.name}")
        seen: dict = {}
        while not self._stopped:
            key = rng.choice(self.keys)
            f = rng.choices(["read", "write", "cas"], weights=[4, 3, 3])[0]
            value = None
            if f != "read":
                value = next(self._values)
                value = [seen.get(key, value - 1), value] if f == "cas" else value
            try:
                reply = await client.invoke(
                    f, key=key, value=value, dest=rng.choice(self.dests or self.sim.servers), timeout=self.timeout
                )
            except (em.RPCError, em.Timeout):
                continue
            seen[key] = reply["value"] if f == "read" else value if f == "write" else value[1]


async def admin(client, kind: str, node: str, dest: str, attempts: int = 400, timeout: float = 5.0) -> dict:
    """Send a join/leave to ``dest`` until it answers ok (11 and timeouts are retried)."""
    for _ in range(attempts):
        try:
            return await client.rpc(dest, {"type": kind, "node": node}, timeout=timeout)
        except em.Timeout:
            continue
        except em.RPCError as exc:
            if exc.code != 11:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError(f"{kind} {node} via {dest} did not complete in {attempts} attempts")


async def final_reads(client, keys, dests, attempts: int = 50) -> dict:
    """Read every key until it answers (ok or 20); the reads are recorded, after every fault."""
    values = {}
    for i, key in enumerate(keys):
        for attempt in range(attempts):
            try:
                values[key] = (await client.invoke("read", key=key, dest=dests[(i + attempt) % len(dests)]))["value"]
                break
            except em.RPCError as exc:
                if exc.code == 20:
                    break
            except em.Timeout:
                pass
        else:
            raise AssertionError(f"key {key!r} never answered a read after the faults ended")
    return values


def client_ops(history) -> list[dict]:
    return [op for op in history if op["process"] != "nemesis"]


def outcomes(history, start: float = 0.0, end: float = float("inf"), keys=None) -> Counter:
    """Outcomes of the client ops that ran inside [start, end] (invoked and completed), optionally for ``keys``.

    Counts ok, fail, info, ``fail:<code>``, and ``served`` (ok, or a definite
    answer about the value: 20 or 22) against ``refused`` (11, timeouts).
    """
    invoked = {}
    counts: Counter = Counter()
    for op in client_ops(history):
        if op["type"] == "invoke":
            invoked[op["process"]] = op
            continue
        call = invoked.pop(op["process"], None)
        if call is not None and start <= call["time"] and op["time"] <= end and (keys is None or op["key"] in keys):
            counts[op["type"]] += 1
            if op["type"] == "fail":
                counts[f"fail:{op['error'][0]}"] += 1
            served = op["type"] == "ok" or (op["type"] == "fail" and op["error"][0] in (20, 22))
            counts["served" if served else "refused"] += 1
    return counts


def judge(history) -> tuple:
    """(linearizability verdict with the cas_register model per key, lost-write report)."""
    return linearizable(history, model="cas_register", timeout=30), lost_writes(history)


def assert_safe(history, context: str = "") -> None:
    """Assert the store's guarantee on ``history``: linearizable per key, no acknowledged write lost."""
    verdict, lost = judge(history)
    assert verdict.valid is True, f"{context}not linearizable:\n{verdict}"
    assert not lost.lost, f"{context}{lost}: {[w.to_dict() for w in lost.lost[:3]]}"
    assert not lost.unchecked, f"{context}keys without a final read: {lost.unchecked}"


def holders(sim: em.Simulation) -> dict:
    """key -> sorted list of the live servers whose storage holds it."""
    found: dict = {}
    for name in sim.servers:
        node = sim.node(name)
        if node is not None:
            for key in node.storage["data"]:
                found.setdefault(key, []).append(name)
    return found


def misplaced(sim: em.Simulation, members, vnodes: int = 64) -> dict:
    """Keys not held by exactly their ring owner among ``members``: key -> holders."""
    ring = HashRing(members, vnodes=vnodes)
    return {k: h for k, h in holders(sim).items() if h != [ring.lookup(k)]}
