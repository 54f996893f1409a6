"""A 3-node cluster, a partition, a heal, and what each client saw.

Three replicas of a tiny key-value store that answers from its own copy and
copies every write to its peers in the background (an AP design: it always
answers, and may answer with old data). Two clients, one on each side of a
partition, write and read the same key. While the partition lasts each side
sees only its own writes; after the heal the replicas converge.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

import emulator as em
from capsim import output
from capsim.cap.metrics import silently_overwritten
from capsim.demos.common import Report, Table, emit, intro, write_report
from capsim.report import Run, Window
from capsim.report.tables import Column
from emulator import check

SIDE_A, SIDE_B = ["n0", "n1"], ["n2"]


class Replica(em.Node):
    """Answers from its own copy; gossips writes (last writer wins, by node clock)."""

    async def on_start(self) -> None:
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


def build(seed: int, **network) -> tuple[em.Simulation, dict[str, em.Client]]:
    """The three replicas and the two clients; ``network``: more ``Simulation`` settings (loss, duplicate, reorder)."""
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.005), **network)
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


def account(sim: em.Simulation) -> RichTable:
    """One row per operation: who, when, what, where, outcome, and the network's state then."""
    table = RichTable(title="What each client saw")
    for column in OPERATIONS:
        table.add_column(column.header)
    for row in _operations(sim):
        table.add_row(*(Text(column.cell(row)) for column in OPERATIONS))
    return table


def _yes(value) -> str:
    return "yes" if value else "no"


def _phase(sim: em.Simulation, t: float) -> str:
    faults = {op["f"]: op["time"] for op in sim.history.nemesis_ops()}
    if "partition" not in faults or t < faults["partition"]:
        return "healthy"
    return "partitioned" if "heal" not in faults or t < faults["heal"] else "healed"


def _reads(sim: em.Simulation, phase: str) -> dict:
    return {
        invoke["client"]: done["value"]
        for invoke, done in sim.history.completions()
        if done and done["type"] == "ok" and invoke["f"] == "read" and _phase(sim, invoke["time"]) == phase
    }


def _client(sim: em.Simulation, op) -> str:
    """The client that invoked a checker's op (its ``call`` is the invoke's position in the history)."""
    return sim.history[op.call]["client"]


def _verdicts(sim: em.Simulation) -> str:
    """What the run shows, each claim read off its history.

    Availability and disagreement during the partition, convergence after the heal, and what the
    stale-read, lost-write and linearizability checkers found.
    """
    history = list(sim.history)
    during, after = _reads(sim, "partitioned"), _reads(sim, "healed")
    cut = [done for invoke, done in sim.history.completions() if _phase(sim, invoke["time"]) == "partitioned"]
    ok = sum(done is not None and done["type"] == "ok" for done in cut)
    alice, bob = during.get("alice"), during.get("bob")
    first = f"During the partition alice read {alice!r} and bob read {bob!r}: " + (
        f"both sides stayed available ({ok} of {len(cut)} operations ok)"
        if ok == len(cut)
        else f"{len(cut) - ok} of {len(cut)} operations did not succeed"
    )
    first += ", and disagreed (AP)." if alice != bob else "."
    if len(after) < 2:
        silent = " and ".join(name for name in ("alice", "bob") if name not in after)
        second = f" After the heal {silent} got no answer: convergence is not shown."
    elif after["alice"] == after["bob"]:
        second = f" After the heal both read {after['alice']!r}: the replicas converged."
    else:
        second = (
            f" After the heal alice read {after.get('alice')!r} and bob {after.get('bob')!r}: "
            "the replicas did NOT converge."
        )
    stale = check.stale_reads(history).stale
    lost = check.lost_writes(history)
    linear = check.linearizable(history, model="register").valid
    found = [
        f"{_client(sim, s.read)} read {s.read.output!r} after {s.newer.value!r} was acknowledged to "
        f"{_client(sim, s.newer)}"
        for s in stale
    ]
    third = (
        f" Checked: {len(stale)} stale read(s)"
        + (f" ({'; '.join(found)})" if found else "")
        + (
            ", lost writes not checked (no read succeeded after the heal), "
            if lost.unchecked
            else f", {len(lost.lost)} of {lost.acknowledged} acknowledged writes lost, "
        )
        + {True: "linearizable", False: "NOT linearizable", None: "linearizability unknown"}[linear]
        + "."
    )
    overwritten = _overwritten(sim)
    if overwritten:  # acknowledged, and gone: what the lost-write check calls explained (a concurrent write won)
        third += " " + "; ".join(
            f"{_client(sim, op)}'s acknowledged write of {op.value!r} was silently overwritten: last writer wins "
            "kept a concurrent write from the other side, which never saw it"
            for op in overwritten
        )
        third += (
            f". Staying available cost {len(stale)} stale read(s) and {len(overwritten)} acknowledged write(s)"
            " discarded (the CAP table's 'silently overwritten'; not 'lost', which counts only writes no"
            " concurrent write explains)."
        )
    return first + second + third


def _overwritten(sim: em.Simulation) -> list:
    """The acknowledged partition writes last-writer-wins discarded for the other side's (capsim cap's metric)."""
    faults = {op["f"]: op["time"] for op in sim.history.nemesis_ops()}
    if "partition" not in faults:
        return []
    window = (faults["partition"], faults.get("heal", float("inf")))
    return silently_overwritten(list(sim.history), {"a": SIDE_A, "b": SIDE_B}, window)


def report(sim: em.Simulation, seed: int) -> Report:
    """The run as a report: a summary (with the timeline) and one row per operation, for --json and --out."""
    during, after = _reads(sim, "partitioned"), _reads(sim, "healed")
    faults = {op["f"]: op["time"] for op in sim.history.nemesis_ops()}
    history = list(sim.history)
    summary = {
        "alice_read_during": during.get("alice"),
        "bob_read_during": during.get("bob"),
        "disagreed_during": during.get("alice") != during.get("bob"),
        "alice_read_after": after.get("alice"),
        "bob_read_after": after.get("bob"),
        "converged": after["alice"] == after["bob"] if len(after) == 2 else None,
        "unavailable_ops": sum(1 for _, done in sim.history.completions() if done is None or done["type"] != "ok"),
        "stale_reads": len(check.stale_reads(history).stale),
        "lost_writes": len(check.lost_writes(history).lost),
        "linearizable": check.linearizable(history, model="register").valid,
    }
    run = Run(
        "AP replicas",
        list(sim.history),
        summary,
        sides={"alice's side": ["alice"], "bob's side": ["bob"]},
        windows=[Window(faults["partition"], faults["heal"], "partition")],
    )
    operations = [Run(str(i + 1), [], row) for i, row in enumerate(_operations(sim))]
    meta = {
        "seed": seed,
        "nodes": ", ".join(sim.servers),
        "partition": f"{'+'.join(SIDE_A)}+alice | {'+'.join(SIDE_B)}+bob",
        "partition_at": round(faults["partition"], 3),
        "heal_at": round(faults["heal"], 3),
    }
    figures = {
        **summary,
        "virtual_time": sim.now,
        "messages": dict(sim.network.stats),
        "trace_digest": sim.trace_digest(),
    }
    return Report(
        "partition",
        "An AP store through a partition and a heal",
        intro(__doc__),
        [
            Table("summary", "What each side read", SUMMARY, [run], _verdicts(sim), transpose=True),
            Table("operations", "What each client saw", OPERATIONS, operations),
        ],
        meta,
        figures,
    )


SUMMARY = [
    Column("alice_read_during", "alice read during", repr, "alice read, partitioned"),
    Column("bob_read_during", "bob read during", repr, "bob read, partitioned"),
    Column("disagreed_during", "disagreed", _yes, "the sides disagreed"),
    Column("alice_read_after", "alice read after", repr, "alice read, healed"),
    Column("bob_read_after", "bob read after", repr, "bob read, healed"),
    Column("converged", "converged", lambda v: "not shown" if v is None else _yes(v), "converged after the heal"),
    Column("unavailable_ops", "not ok", str, "operations not ok"),
    Column("stale_reads", "stale reads", str, "reads that missed an acknowledged write"),
    Column("lost_writes", "lost writes", str, "acknowledged writes lost"),
    Column("linearizable", "linearizable", lambda v: {True: "yes", False: "no", None: "unknown"}[v], "linearizable"),
]
OPERATIONS = [
    Column("client", "client"),
    Column("invoked", "invoked (s)", lambda t: f"{t:.3f}"),
    Column("op", "op"),
    Column("node", "node"),
    Column("result", "result"),
    Column("network", "network"),
]


def _operations(sim: em.Simulation) -> list[dict]:
    """One row per operation: who, when, what, where, outcome, and the network's state then."""
    rows = []
    for invoke, done in sim.history.completions():
        outcome = "no answer" if done is None else done["type"]
        if done is not None and done["type"] == "ok" and invoke["f"] == "read":
            outcome = f"ok, read {done['value']!r}"
        rows.append(
            {
                "client": invoke["client"],
                "invoked": invoke["time"],
                "op": f"{invoke['f']} {invoke['key']}" + (f" = {invoke['value']!r}" if invoke["f"] == "write" else ""),
                "node": invoke["node"],
                "result": outcome,
                "network": _phase(sim, invoke["time"]),
            }
        )
    return rows


def main(
    seed: int = 1, console: Console | None = None, out: Path | None = None, as_json: bool = False, quick: bool = False
) -> int:
    """Run the demo and print the account (or JSON); write the report to ``out``; returns 0.

    ``quick`` changes nothing: the demo takes a fraction of a second already.
    """
    sim, clients = build(seed)
    sim.run(scenario(sim, clients))
    if as_json:
        return emit(report(sim, seed), console, as_json=True, out=out)
    console = console or output.console()
    console.print(f"[bold]capsim demo: partition[/bold]  seed={seed}  nodes={', '.join(sim.servers)}")
    console.print(f"partition: {SIDE_A} + alice | {SIDE_B} + bob, then heal\n", markup=False)
    console.print(account(sim))
    console.print("\n" + _verdicts(sim).replace(" After", "\nAfter").replace(" Checked:", "\nChecked:"), markup=False)
    console.print(f"virtual time {sim.now:.3f} s, messages {sim.network.stats}, trace digest {sim.trace_digest()[:16]}")
    if out is not None:
        console.print(f"report: {write_report(report(sim, seed), Path(out))}")
    return 0
