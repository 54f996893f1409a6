"""A seeded run with traffic and every kind of fault; prints one digest per seed.

Run as a script (``python chaos_run.py 1 2 3``) so tests can compare digests
across processes with different PYTHONHASHSEED values.
"""

import asyncio
import sys

import emulator as em


class Store(em.Node):
    """A toy replicated register: writes are gossiped to peers, reads are local."""

    async def on_start(self):
        self.data = dict(self.storage.get("data", {}))
        self.spawn(self.gossip())

    async def gossip(self):
        while True:
            await asyncio.sleep(0.05 + 0.05 * self.rng.random())
            if self.data:
                self.send(self.rng.choice(self.peers), {"type": "sync", "data": self.data})

    async def handle_sync(self, msg):
        for key, (stamp, value) in msg.body["data"].items():
            if key not in self.data or self.data[key][0] < stamp:
                self.data[key] = [stamp, value]

    async def handle_write(self, msg):
        self.data[msg.body["key"]] = [self.now(), msg.body["value"]]
        self.storage["data"] = dict(self.data)
        return {"type": "write_ok"}

    async def handle_read(self, msg):
        entry = self.data.get(msg.body["key"])
        return {"type": "read_ok", "value": entry[1] if entry else None}


def run(seed: int) -> str:
    sim = em.Simulation(
        seed=seed, latency=em.Exponential(0.003), loss=0.02, duplicate=0.02, reorder=0.1, trace_bodies=True
    )
    names = [f"n{i}" for i in range(5)]
    for name in names:
        sim.add_node(name, Store)
    clients = [sim.add_client(f"c{i}") for i in range(3)]
    rng = sim.rng("workload")

    async def worker(client):
        for i in range(60):
            f = rng.choice(["read", "write"])
            try:
                await client.invoke(f, key=rng.choice("abc"), value=i if f == "write" else None, timeout=0.1)
            except em.EmulatorError:
                pass
            await asyncio.sleep(rng.random() * 0.02)

    async def nemesis():
        await asyncio.sleep(0.3)
        sim.network.partition(names[:2], names[2:])
        await asyncio.sleep(0.3)
        sim.network.heal()
        sim.crash("n3")
        sim.skew("n1", 0.2, 0.05)
        await asyncio.sleep(0.2)
        sim.restart("n3")
        sim.pause("n4")
        await asyncio.sleep(0.1)
        sim.resume("n4")

    async def main():
        await asyncio.gather(nemesis(), *(worker(c) for c in clients))

    sim.run(main())
    sim.run(until=sim.now + 1.0)
    return sim.trace_digest()


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, run(int(arg)))
