"""Kernel runs whose trace digests are pinned: a change to the kernel must not move them.

Each run exercises a different corner of the message path with
``trace_bodies`` on (and one with it off): FIFO links with a constant latency
(the inlined fast path), independent delays, the reordered share, loss and
duplication, every link fault (partition, one-way partition, isolation, heal by
id, hold and release, per-link overrides) and every node fault (crash with
messages in flight, restart, pause with timers and inbox held, resume, skew),
rpc timeouts, handler errors, unknown message types, protocol events, handlers
that sleep, periodic timers, and ``call_at`` in the past; and TCP between
hosts (bulk streams, echo over the network and over loopback, aiohttp with a
keep-alive connection) under the same faults, every segment in the digest.

Run as a script to print the digests as JSON (``python -m tests.common.golden``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import emulator as em
from tests.common import chaos_run
from tests.common import hosts as programs


class Ring(em.Node):
    """Heartbeats to the next node every period; counts what it hears."""

    def __init__(self, period: float = 0.1):
        self.period = period
        self.heard = 0

    async def on_start(self):
        names = sorted([self.name, *self.peers])
        self.next = names[(names.index(self.name) + 1) % len(names)]
        self.spawn(self.beat())

    async def beat(self):
        while True:
            await asyncio.sleep(self.period)
            self.send(self.next, {"type": "heartbeat", "from": self.name, "heard": self.heard})

    async def handle_heartbeat(self, msg):
        self.heard += 1


class Busy(em.Node):
    """A node with every kind of handler: quick, sleeping, failing, timing out, forwarding."""

    async def on_start(self):
        self.count = self.storage.get("count", 0)
        self.spawn(self.tick())

    async def tick(self):
        while True:
            await asyncio.sleep(0.013 + 0.01 * self.rng.random())
            self.count += 1
            if self.count % 7 == 0:
                self.event("tick", {"count": self.count})
            if self.peers:
                self.send(self.rng.choice(self.peers), {"type": "gossip", "count": self.count})

    async def handle_gossip(self, msg):
        self.count = max(self.count, msg.body["count"])

    async def handle_write(self, msg):
        await asyncio.sleep(0.002 * self.rng.random())
        self.storage["count"] = self.count
        return {"type": "write_ok", "count": self.count}

    async def handle_read(self, msg):
        return {"type": "read_ok", "value": self.count}

    async def handle_boom(self, msg):
        raise ValueError("boom")

    async def handle_slow(self, msg):
        try:
            async with asyncio.timeout(0.005):
                await asyncio.sleep(0.01)
        except TimeoutError:
            return {"type": "slow_timeout"}
        return {"type": "slow_ok"}

    async def handle_forward(self, msg):
        other = self.peers[0] if self.peers[0] != msg.src else self.peers[-1]
        try:
            reply = await self.rpc(other, {"type": "read"}, timeout=0.02)
        except em.Timeout:
            return {"type": "forward_timeout"}
        await asyncio.sleep(0)
        return {"type": "forward_ok", "value": reply["value"]}


def faults_run(seed: int, fifo: bool, bodies: bool = True, latency=None) -> str:
    """Every link and node fault on a small cluster of ``Busy`` nodes with clients."""
    sim = em.Simulation(
        seed=seed,
        latency=latency or em.Uniform(0.001, 0.004),
        loss=0.01,
        duplicate=0.03,
        reorder=0.2,
        fifo=fifo,
        trace_bodies=bodies,
    )
    names = [f"n{i}" for i in range(5)]
    for name in names:
        sim.add_node(name, Busy)
    clients = [sim.add_client(f"c{i}") for i in range(2)]
    sim.network.set_link("n0", "n1", latency=em.Constant(0.002), reorder=0.0)
    sim.network.set_link_oneway("n2", "n3", latency=em.LogNormal(0.002, 0.5), fifo=not fifo)
    rng = sim.rng("workload")

    async def worker(client):
        for i in range(40):
            f = rng.choice(["read", "write", "boom", "slow", "forward", "nosuch"])
            try:
                await client.invoke(f, key="k", value=i if f == "write" else None, timeout=0.05)
            except em.EmulatorError:
                pass
            await asyncio.sleep(rng.random() * 0.01)

    async def nemesis():
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() - 1.0, lambda: sim.record_nemesis("past"))
        await asyncio.sleep(0.05)
        cut = sim.network.partition(names[:2], names[2:])
        oneway = sim.network.partition_oneway(["n4"], ["n0", "n1"])
        await asyncio.sleep(0.05)
        sim.network.heal(cut)
        alone = sim.network.isolate("n2")
        sim.network.hold("n3", "n4")
        await asyncio.sleep(0.05)
        sim.network.heal(oneway, alone)
        sim.crash("n1")
        sim.pause("n0")
        sim.skew("n3", -0.1, 0.02)
        await asyncio.sleep(0.05)
        sim.network.release("n3", "n4")
        sim.resume("n0")
        sim.restart("n1")
        sim.network.reset_link("n0", "n1")
        await asyncio.sleep(0.05)
        sim.network.partition(["n0", "n2"], ["n1", "n3", "n4"])
        await asyncio.sleep(0.03)
        sim.network.heal()

    async def main():
        await asyncio.gather(nemesis(), *(worker(c) for c in clients))

    sim.run(main())
    sim.run(until=sim.now + 0.2)
    return sim.trace_digest()


def ring_run(nodes: int, seconds: float, bodies: bool) -> str:
    """The bench's heartbeat ring, with a crash and a restart midway."""
    sim = em.Simulation(seed=3, latency=em.Uniform(0.001, 0.003), trace_bodies=bodies)
    for i in range(nodes):
        sim.add_node(f"n{i:04d}", Ring)
    sim.run(until=seconds / 2)
    sim.crash("n0001")
    sim.pause("n0002")
    sim.run(until=seconds * 0.75)
    sim.restart("n0001")
    sim.resume("n0002")
    sim.run(until=seconds)
    return sim.trace_digest()


def pingpong_run(bodies: bool) -> str:
    """Constant-latency FIFO rpcs and one-way sends: the kernel's inlined fast path."""

    class Echo(em.Node):
        async def handle_echo(self, msg):
            self.send(msg.src, {"type": "note", "n": msg.body["value"]})
            return {"type": "echo_ok", "n": msg.body["value"]}

    sim = em.Simulation(seed=9, latency=em.Constant(0.001), trace_bodies=bodies)
    sim.add_node("n0", Echo)
    client = sim.add_client("c0")

    async def main():
        for i in range(200):
            await client.invoke("echo", value=i, dest="n0")

    sim.run(main())
    sim.run()
    return sim.trace_digest()


async def _streams(log: list) -> None:
    """Host program: bulk transfers to ``store``, then lines to ``echo`` and to its own echo over loopback."""
    asyncio.get_running_loop().create_task(programs.echo_server(7))
    for n in range(1, 10_000):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("store", 9000), 2)
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 3000)
            writer.write(bytes(range(256)) * (37 * n % 400 + 1))
            writer.write_eof()
            log.append(("store", await asyncio.wait_for(reader.read(), 5)))
            writer.close()
            for host in ("echo", "127.0.0.1"):
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, 7), 2)
                for i in range(3):
                    writer.write(b"line %d\n" % i)
                    log.append((host, await asyncio.wait_for(reader.readline(), 2)))
                writer.close()
        except (OSError, TimeoutError) as exc:
            log.append(("error", type(exc).__name__))
        await asyncio.sleep(0.05)


def hosts_run(seed: int, fifo: bool) -> str:
    """TCP between hosts (streams, aiohttp) under loss, duplication, reordering, partitions, crash and pause."""
    sim = em.Simulation(
        seed=seed,
        latency=em.Uniform(0.001, 0.004),
        loss=0.02,
        duplicate=0.03,
        reorder=0.2,
        fifo=fifo,
        trace_bodies=True,
    )
    log: list = []
    sim.add_host("web", programs.counter_app, port=8080, delay=0.01)
    sim.add_host("store", programs.digest_server, port=9000)
    sim.add_host("echo", programs.echo_server, port=7, events=log)
    sim.add_host("poller", programs.poller, url="http://web:8080/slow", log=log, every=0.05, timeout=0.5)
    sim.add_host("client", _streams, log=log)
    sim.run(until=1.0)
    cut = sim.network.partition(["client", "poller"], ["web", "store", "echo"])
    sim.run(until=5.0)  # past the client's 3 s user timeout
    sim.network.heal(cut)
    sim.run(until=6.0)
    sim.crash("store")
    sim.pause("web")
    sim.run(until=7.0)
    sim.restart("store")
    sim.resume("web")
    alone = sim.network.isolate("echo")
    sim.run(until=8.0)
    sim.network.heal(alone)
    sim.crash("web")  # the poller's keep-alive connection is reset
    sim.run(until=8.5)
    sim.restart("web")
    sim.run(until=10.0)
    digest = sim.trace_digest()
    sim.close()
    return digest


def digests() -> dict[str, str]:
    """Every pinned run's digest, by name."""
    out = {f"chaos_run-{seed}": chaos_run.run(seed) for seed in range(6)}
    for seed in range(3):
        out[f"faults-fifo-{seed}"] = faults_run(seed, fifo=True)
        out[f"faults-nofifo-{seed}"] = faults_run(seed, fifo=False)
    out["faults-types-only"] = faults_run(7, fifo=True, bodies=False)
    out["faults-constant"] = faults_run(8, fifo=True, latency=em.Constant(0.002))
    out["ring-bodies"] = ring_run(40, 3.0, bodies=True)
    out["ring-types"] = ring_run(40, 3.0, bodies=False)
    out["pingpong-bodies"] = pingpong_run(True)
    out["pingpong-types"] = pingpong_run(False)
    out["hosts-fifo"] = hosts_run(1, fifo=True)
    out["hosts-nofifo"] = hosts_run(2, fifo=False)
    return out


if __name__ == "__main__":
    json.dump(digests(), sys.stdout, indent=1, sort_keys=True)
    print()
