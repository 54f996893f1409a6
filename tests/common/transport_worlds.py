"""Two worlds with one interface: the simulation, and real HTTP nodes on loopback.

A test body is ``async def body(world)``; ``world.run(body)`` runs it in
virtual time (``SimWorld``) or on a real loop against ``RealCluster.local``
(``HttpWorld``), and returns what it returns. Faults are awaited in both
worlds, so one body serves both.
"""

import asyncio

import emulator as em
from emulator.transport import RealCluster


class SimWorld:
    """The simulated network."""

    kind = "sim"

    def __init__(self, nodes: dict, clients: int = 1, seed: int = 1):
        self.sim = em.Simulation(seed=seed)
        for name, factory in sorted(nodes.items()):
            self.sim.add_node(name, factory)
        self.clients = [self.sim.add_client(f"c{i}") for i in range(clients)]

    def run(self, body):
        return self.sim.run(body(self))

    @property
    def history(self):
        return self.sim.history

    async def partition(self, *groups):
        self.sim.network.partition(*groups)

    async def partition_oneway(self, src, dst):
        self.sim.network.partition_oneway(src, dst)

    async def isolate(self, name):
        self.sim.network.isolate(name)

    async def heal(self):
        self.sim.network.heal()

    async def set_link_oneway(self, src, dst, **settings):
        self.sim.network.set_link_oneway(src, dst, **settings)

    async def crash(self, name):
        self.sim.crash(name)

    async def restart(self, name):
        self.sim.restart(name)


class HttpWorld:
    """The same nodes as aiohttp servers in this process, faults through their control endpoints."""

    kind = "http"

    def __init__(self, nodes: dict, clients: int = 1, seed: int = 1):
        self.nodes, self.n_clients, self.seed = nodes, clients, seed
        self.cluster: RealCluster | None = None
        self.clients: list = []

    def run(self, body):
        return asyncio.run(self._main(body))

    async def _main(self, body):
        self.cluster = await RealCluster.local(self.nodes, seed=self.seed)
        try:
            self.clients = [await self.cluster.add_client(f"c{i}") for i in range(self.n_clients)]
            return await body(self)
        finally:
            await self.cluster.close()

    @property
    def history(self):
        return self.cluster.history

    async def partition(self, *groups):
        await self.cluster.network.partition(*groups)

    async def partition_oneway(self, src, dst):
        await self.cluster.network.partition_oneway(src, dst)

    async def isolate(self, name):
        await self.cluster.network.isolate(name)

    async def heal(self):
        await self.cluster.network.heal()

    async def set_link_oneway(self, src, dst, **settings):
        await self.cluster.network.set_link_oneway(src, dst, **settings)

    async def crash(self, name):
        await self.cluster.crash(name)

    async def restart(self, name):
        await self.cluster.restart(name)


WORLDS = {"sim": SimWorld, "http": HttpWorld}


async def outcome(coro) -> str:
    """``"ok"`` or ``"error <code>"`` or ``"timeout"``: how an rpc ended, comparable across worlds."""
    try:
        await coro
    except em.Timeout:
        return "timeout"
    except em.RPCError as exc:
        return f"error {exc.code}"
    return "ok"


async def node_states(cluster):
    """Each node's own fault state on a real cluster, as its control endpoint reports it."""
    from emulator.transport import ControlClient

    return {
        name: await ControlClient(cluster.url(name), cluster.token, cluster._session).state()
        for name in cluster.servers
    }


async def relay_notes(client, name):
    """What relay ``name`` (tests.common.transport_nodes.Relay) has noted so far."""
    return (await client.rpc(name, {"type": "notes"}))["notes"]
