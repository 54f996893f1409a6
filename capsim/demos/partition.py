"""A 3-node cluster, a partition, a heal, and what each client saw.

Three replicas of a tiny key-value store that answers from its own copy and
copies every write to its peers in the background (an AP design: it always
answers, and may answer with old data). Two clients, one on each side of a
partition, write and read the same key. While the partition lasts each side
sees only its own writes; after the heal the replicas converge.
"""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.table import Table

import emulator as em

SIDE_A, SIDE_B = ["n0", "n1"], ["n2"]


class Replica(em.Node):
    """Answers from its own copy; gossips writes (last writer wins, by node clock)."""

    async def on_start(self):
        self.data: dict = dict(self.storage.get("data", {}))
        self.spawn(self.anti_entropy())

    def _merge(self, key, stamp, value) -> bool:
        current = self.data.get(key)
        if current is None or current[0] < stamp:
            self.data[key] = [stamp, value]
            self.storage["data"] = dict(self.data)
            return True
        return False

    async def anti_entropy(self):
        while True:
            await asyncio.sleep(0.5)
            for peer in self.peers:
                self.send(peer, {"type": "sync", "data": self.data})

    async def handle_sync(self, msg):
        for key, (stamp, value) in msg.body["data"].items():
            self._merge(key, stamp, value)

    async def handle_write(self, msg):
        stamp = [self.now(), self.name]
        self._merge(msg.body["key"], stamp, msg.body["value"])
        for peer in self.peers:
            self.send(peer, {"type": "sync", "data": {msg.body["key"]: [stamp, msg.body["value"]]}})
        return {"type": "write_ok"}

    async def handle_read(self, msg):
        entry = self.data.get(msg.body["key"])
        return {"type": "read_ok", "value": entry[1] if entry else None}


def build(seed: int) -> tuple[em.Simulation, dict[str, em.Client]]:
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.005))
    for name in SIDE_A + SIDE_B:
        sim.add_node(name, Replica)
    clients = {"alice": sim.add_client("alice"), "bob": sim.add_client("bob")}
    return sim, clients


async def scenario(sim: em.Simulation, clients: dict[str, em.Client]) -> None:
    alice, bob = clients["alice"], clients["bob"]

    async def step(client, f, node, value=None):
        try:
            await client.invoke(f, key="x", value=value, dest=node, timeout=0.5)
        except em.EmulatorError:
            pass  # recorded in the history as fail or info

    await step(alice, "write", "n0", "v1")
    await asyncio.sleep(0.1)
    await step(bob, "read", "n2")
    sim.network.partition(SIDE_A + ["alice"], SIDE_B + ["bob"])
    await step(alice, "write", "n1", "v2-alice")
    await step(bob, "write", "n2", "v2-bob")
    await asyncio.sleep(1.0)
    await step(alice, "read", "n0")
    await step(bob, "read", "n2")
    sim.network.heal()
    await asyncio.sleep(1.0)
    await step(alice, "read", "n1")
    await step(bob, "read", "n2")


def account(sim: em.Simulation) -> Table:
    """One row per operation: who, when, what, where, outcome, and the network's state then."""
    table = Table(title="What each client saw")
    for column in ("client", "invoked (s)", "op", "node", "result", "network"):
        table.add_column(column)
    for invoke, done in sim.history.completions():
        outcome = "no answer" if done is None else done["type"]
        if done is not None and done["type"] == "ok" and invoke["f"] == "read":
            outcome = f"ok, read {done['value']!r}"
        table.add_row(invoke["client"], f"{invoke['time']:.3f}", f"{invoke['f']} {invoke['key']}"
                      + (f" = {invoke['value']!r}" if invoke["f"] == "write" else ""),
                      invoke["node"], outcome, _phase(sim, invoke["time"]))
    return table


def _phase(sim: em.Simulation, t: float) -> str:
    faults = {op["f"]: op["time"] for op in sim.history.nemesis_ops()}
    if "partition" not in faults or t < faults["partition"]:
        return "healthy"
    return "partitioned" if "heal" not in faults or t < faults["heal"] else "healed"


def _reads(sim: em.Simulation, phase: str) -> dict:
    return {invoke["client"]: done["value"] for invoke, done in sim.history.completions()
            if done and done["type"] == "ok" and invoke["f"] == "read" and _phase(sim, invoke["time"]) == phase}


def main(seed: int = 1, console: Console | None = None) -> int:
    """Run the demo and print the account; returns 0."""
    console = console or Console()
    sim, clients = build(seed)
    sim.run(scenario(sim, clients))
    console.print(f"[bold]capsim demo: partition[/bold]  seed={seed}  nodes={', '.join(sim.servers)}")
    console.print(f"partition: {SIDE_A} + alice | {SIDE_B} + bob, then heal\n")
    console.print(account(sim))
    during, after = _reads(sim, "partitioned"), _reads(sim, "healed")
    console.print(f"\nDuring the partition alice read {during.get('alice')!r} and bob read {during.get('bob')!r}: "
                  "both sides stayed available, and disagreed (AP).")
    agree = len(set(map(repr, after.values()))) == 1
    console.print(f"After the heal both read {after.get('alice')!r}: the replicas "
                  f"{'converged' if agree else 'did NOT converge'} (last writer wins: one write was lost).")
    console.print(f"virtual time {sim.now:.3f} s, messages {sim.network.stats}, trace digest {sim.trace_digest()[:16]}")
    return 0
