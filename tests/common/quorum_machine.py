"""A hypothesis state machine that interleaves faults with in-flight quorum-store operations.

Rules start operations without waiting for them (each client has at most
one in flight), partition, heal, crash and restart nodes, make the network
hostile (duplication, reordering, loss, latency spikes on every link), and
let virtual time pass in small steps, so faults land while requests are on
the wire.
One client writes each key (1, 2, 3, ...), so there are never concurrent
writers to a key; two more clients read. Subclasses set ``CONFIG`` (the
QuorumKV options) and ``FRESH`` (whether to assert no stale reads after
every step). At the end every fault is undone, the store is given
``SETTLE`` virtual seconds, and then: every owner of every key holds the
same versions, and no acknowledged write is missing from a final read.

The simulation seed is fixed (``SEED``): the rules alone decide the run, so
a failing example replays exactly and shrinks well. Clocks are not skewed:
the store's freshness guarantee assumes synchronized clocks (see
nodes/quorum.py), and a test of its own shows what skew does.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from emulator.check import lost_writes, stale_reads
from tests.common.hostile import SETTINGS, make_calm, make_hostile
from tests.common.quorum_cluster import LATENCY, as_register, attempt, quorum_cluster, replicas_agree, stored

SERVERS = [f"n{i}" for i in range(5)]
KEYS = ["a", "b"]
READERS = [f"c{len(KEYS) + i}" for i in range(2)]


class QuorumMachine(RuleBasedStateMachine):
    """Operations and faults on a 5-node QuorumKV cluster (see the module docstring)."""

    CONFIG: ClassVar[dict] = {}
    FRESH = False
    SETTLE = 3.0
    SEED = 0

    def __init__(self):
        super().__init__()
        self.sim = None

    @initialize()
    def build(self):
        self.sim, clients = quorum_cluster(
            seed=self.SEED, nodes=len(SERVERS), clients=len(KEYS) + len(READERS), **self.CONFIG
        )
        self.clients = {c.name: c for c in clients}
        self.writer_of = {key: f"c{i}" for i, key in enumerate(KEYS)}
        self.next_value = dict.fromkeys(KEYS, 0)
        self.busy: dict[str, asyncio.Task] = {}
        self.crashed: list[str] = []

    def _start(self, client: str, coro) -> None:
        task = self.busy.get(client)
        if task is not None and not task.done():
            coro.close()
            return
        self.busy[client] = self.sim.loop.create_task(coro)

    def _advance(self, seconds: float) -> None:
        self.sim.run(until=self.sim.now + seconds)

    @rule(key=st.sampled_from(KEYS), dest=st.sampled_from(SERVERS), dt=st.floats(0, 0.15))
    def write(self, key, dest, dt):
        client = self.writer_of[key]
        if self.busy.get(client) is None or self.busy[client].done():
            self.next_value[key] += 1
        self._start(client, attempt(self.clients[client], "write", key, self.next_value[key], dest=dest, timeout=1.0))
        self._advance(dt)

    @rule(
        reader=st.sampled_from(READERS), key=st.sampled_from(KEYS), dest=st.sampled_from(SERVERS), dt=st.floats(0, 0.15)
    )
    def read(self, reader, key, dest, dt):
        self._start(reader, attempt(self.clients[reader], "read", key, dest=dest, timeout=1.0))
        self._advance(dt)

    @rule(order=st.permutations(SERVERS), cut=st.integers(1, len(SERVERS) - 1))
    def partition(self, order, cut):
        self.sim.network.partition(order[:cut], order[cut:])

    @rule()
    def heal(self):
        self.sim.network.heal()

    @rule(settings=SETTINGS)
    def hostile(self, settings):
        make_hostile(self.sim, settings)

    @precondition(lambda self: len(self.crashed) < 2)
    @rule(node=st.sampled_from(SERVERS))
    def crash(self, node):
        if node not in self.crashed:
            self.sim.crash(node)
            self.crashed.append(node)

    @precondition(lambda self: self.crashed)
    @rule(data=st.data())
    def restart(self, data):
        node = data.draw(st.sampled_from(self.crashed))
        self.crashed.remove(node)
        self.sim.restart(node)

    @rule(dt=st.floats(0.01, 0.5))
    def wait(self, dt):
        self._advance(dt)

    @invariant()
    def no_stale_reads(self):
        if self.FRESH and self.sim is not None:
            result = stale_reads(as_register(self.sim.history))
            assert not result.stale, f"{result}: {[s.to_dict() for s in result.stale[:3]]}"

    @invariant()
    def no_node_errors(self):
        if self.sim is not None:
            assert not self.sim.errors, "\n".join(e.traceback for e in self.sim.errors)

    def teardown(self):
        if self.sim is None:
            return
        try:
            self._settle_and_check()
        finally:
            self.sim.close()  # cancels the periodic tasks and runs their cleanup before the loop closes

    def _settle_and_check(self) -> None:
        sim = self.sim
        sim.network.heal()
        make_calm(sim, LATENCY)
        for node in list(self.crashed):
            sim.restart(node)
        self._advance(self.SETTLE)
        assert replicas_agree(sim, KEYS), {key: stored(sim, key) for key in KEYS}
        final = self.clients[READERS[0]]

        async def final_reads():
            for key in KEYS:
                await attempt(final, "read", key, dest=SERVERS[0], timeout=2.0)

        sim.run(final_reads())
        result = lost_writes(as_register(sim.history))
        assert not result.lost, f"{result}: {[w.to_dict() for w in result.lost[:3]]}"
