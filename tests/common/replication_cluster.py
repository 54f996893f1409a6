"""A primary-replica cluster under a running workload, for the replication tests.

``Cluster`` builds servers n0.. running ``PrimaryReplica`` and clients c0..,
runs a concurrent lin-kv workload in the background (so every fault lands
while operations are in flight), and offers the fault and inspection steps
the tests compose: ``run_for``, ``settle``, ``final_reads``, ``primaries``,
``discarded_writes``.
"""

from __future__ import annotations

import asyncio

import emulator as em
from nodes.replication import PrimaryReplica

__all__ = ["Cluster", "discarded_writes"]


class Cluster:
    """Servers n0..n{n-1}, clients c0..c{clients-1}, keys k0..k{keys-1}.

    Args:
        seed: the simulation seed.
        latency: the network default.
        **config: passed to every ``PrimaryReplica``.

    Attributes:
        events: ``(true time, node, what, value)`` for every protocol event.
    """

    def __init__(
        self,
        seed: int,
        n: int = 3,
        clients: int = 3,
        keys: int | list = 3,
        latency=em.Uniform(0.001, 0.003),  # noqa: B008 -- a distribution is an immutable value
        sim_options: dict | None = None,
        **config,
    ):
        self.sim = em.Simulation(seed=seed, latency=latency, **(sim_options or {}))
        self.names = [f"n{i}" for i in range(n)]
        self.events: list[tuple] = []
        for name in self.names:
            self.sim.add_node(name, PrimaryReplica, on_event=self._note, **config)
        self.clients = [self.sim.add_client(f"c{i}") for i in range(clients)]
        self.keys = list(keys) if isinstance(keys, (list, tuple)) else [f"k{i}" for i in range(keys)]
        self._running = False
        self._tasks: list[asyncio.Future] = []

    def _note(self, node: str, what: str, value) -> None:
        self.events.append((self.sim.now, node, what, value))

    # -- driving -------------------------------------------------------------------------------

    def start_workload(
        self,
        timeout: float = 0.5,
        think: float = 0.01,
        dests: dict | None = None,
        fs: dict | None = None,
        keys: dict | None = None,
    ) -> None:
        """Start one worker per client: random reads, writes of unique values (``"<client>-<n>"``) and cas.

        Args:
            dests: client name -> the server it always talks to. By default a client sticks to a
                random server and moves to another after a timeout or an 11, as real clients do.
            fs: client name -> the operations it picks from (default read, write, write, cas).
            keys: client name -> the keys it uses (default all of ``self.keys``).
        """
        self._running = True
        for client in self.clients:
            plan = (
                (dests or {}).get(client.name),
                (fs or {}).get(client.name, ("read", "write", "write", "cas")),
                (keys or {}).get(client.name, self.keys),
            )
            self._tasks.append(asyncio.ensure_future(self._worker(client, plan, timeout, think), loop=self.sim.loop))

    async def _worker(self, client, plan, timeout: float, think: float) -> None:
        fixed, fs, keys = plan
        rng = self.sim.rng(f"workload:{client.name}")
        dest = fixed or rng.choice(self.names)
        seen: dict[str, str] = {}
        count = 0
        while self._running:
            count += 1
            key, f = rng.choice(keys), rng.choice(fs)
            value = f"{client.name}-{count}"
            if f == "cas":
                value = [seen.get(key, "none"), value]
            try:
                reply = await client.invoke(
                    f, key=key, value=None if f == "read" else value, dest=dest, timeout=timeout
                )
                seen[key] = reply.get("value") if f == "read" else (value[1] if f == "cas" else value)
            except em.EmulatorError as exc:
                if exc.code not in (20, 22):
                    dest = fixed or rng.choice(self.names)
            await asyncio.sleep(rng.random() * think)

    def run_for(self, seconds: float) -> None:
        self.sim.run(until=self.sim.now + seconds)

    def stop_workload(self) -> None:
        """Let every in-flight operation finish, then stop the workers."""
        self._running = False
        self.sim.run(_gather(self._tasks))
        self._tasks = []

    def settle(self, seconds: float = 2.0) -> None:
        """Stop the workload, end every fault (clocks stay skewed) and give the cluster time to recover."""
        self.stop_workload()
        self.sim.network.heal()
        for name in self.names:
            if not self.sim.alive(name):
                self.sim.restart(name)
            else:
                self.sim.resume(name)
        self.run_for(seconds)

    def final_reads(self, attempts: int = 40) -> dict:
        """Read every key (retrying through every server) after the last fault; key -> value or None."""

        async def read_all():
            return {key: await self._read_until_ok(key, attempts) for key in self.keys}

        return self.sim.run(read_all())

    async def _read_until_ok(self, key: str, attempts: int):
        client = self.clients[0]
        for attempt in range(attempts):
            try:
                return (await client.invoke("read", key=key, dest=self.names[attempt % len(self.names)]))["value"]
            except em.RPCError as exc:
                if exc.code == 20:
                    return None
            except em.Timeout:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"no ok read of {key!r} in {attempts} attempts after the faults ended")

    # -- inspecting ------------------------------------------------------------------------------

    def node(self, name: str) -> PrimaryReplica | None:
        return self.sim.node(name)

    def live(self) -> list[PrimaryReplica]:
        return [self.sim.node(name) for name in self.names if self.sim.alive(name)]

    def primaries(self) -> list[tuple[int, str]]:
        """(epoch, name) of every live node that believes it is primary."""
        return sorted((node.replog.epoch, node.name) for node in self.live() if node.role == "primary")

    def elected(self) -> list[tuple[float, str, int]]:
        """(true time, node, epoch) of every election won."""
        return [(t, node, value) for t, node, what, value in self.events if what == "primary"]


def discarded_writes(before: list, after: list) -> set[tuple]:
    """(key, value) of the write entries of ``before`` that ``after`` (a later log) does not hold."""
    return {
        (op["key"], op["value"])
        for index, (epoch, op) in enumerate(before)
        if op["type"] == "write" and (index >= len(after) or after[index][0] != epoch)
    }


async def _gather(tasks):
    await asyncio.gather(*tasks)
