"""Small node classes the kernel tests share."""

import asyncio

import emulator as em


class Echo(em.Node):
    """Answers echo with what it got; counts boots in storage."""

    async def on_start(self):
        self.storage["boots"] = self.storage.get("boots", 0) + 1
        self.seen = []

    async def handle_echo(self, msg):
        self.seen.append(msg.body.get("echo"))
        return {"type": "echo_ok", "echo": msg.body.get("echo"), "boots": self.storage["boots"]}


class Register(em.Node):
    """A single-node register per key, speaking lin-kv: read, write, cas."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.data = {}

    async def handle_read(self, msg):
        if self.delay:
            await asyncio.sleep(self.delay)
        key = msg.body["key"]
        if key not in self.data:
            raise em.RPCError(20, f"key {key!r} does not exist")
        return {"type": "read_ok", "value": self.data[key]}

    async def handle_write(self, msg):
        if self.delay:
            await asyncio.sleep(self.delay)
        self.data[msg.body["key"]] = msg.body["value"]
        return {"type": "write_ok"}

    async def handle_cas(self, msg):
        key = msg.body["key"]
        if key not in self.data:
            raise em.RPCError(20, f"key {key!r} does not exist")
        if self.data[key] != msg.body["from"]:
            raise em.RPCError(22, f"expected {msg.body['from']!r}, found {self.data[key]!r}")
        self.data[key] = msg.body["to"]
        return {"type": "cas_ok"}


class Recorder(em.Node):
    """Keeps every message it receives, with the virtual time it arrived."""

    def __init__(self):
        self.got = []

    async def handle_note(self, msg):
        self.got.append((asyncio.get_running_loop().time(), msg.src, msg.body))


def cluster(seed=1, n=3, factory=Echo, clients=1, **sim_kwargs):
    """A Simulation with servers n0..n{n-1} and clients c0..; returns (sim, [clients])."""
    sim = em.Simulation(seed=seed, **sim_kwargs)
    for i in range(n):
        sim.add_node(f"n{i}", factory)
    return sim, [sim.add_client(f"c{i}") for i in range(clients)]
