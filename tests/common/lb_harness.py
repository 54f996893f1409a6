"""Helpers for the breaker, balancer and cache tests.

``background`` runs a client operation as a task that records its outcome
instead of raising; ``AppliedKV`` is a lin-kv store that logs every write it
applies; ``SimMachine`` is a hypothesis state machine over a Simulation whose
rules start operations in the background, so faults land while they are in flight.
"""

from __future__ import annotations

import asyncio
import math

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize

import emulator as em
from nodes.kv import SingleKV, recall, request_id


async def _outcome(coro):
    try:
        return await coro
    except (em.RPCError, em.Timeout) as exc:
        return exc


def background(sim: em.Simulation, coro) -> asyncio.Task:
    """Run ``coro`` in ``sim`` as a task; its result is the reply or the RPCError/Timeout raised."""
    return sim.loop.create_task(_outcome(coro))


def ops(history, f=None, node=None) -> list[tuple[dict, dict | None]]:
    """(invoke, completion) pairs of client ops, filtered by ``f`` and ``node``."""
    return [
        (inv, done)
        for inv, done in history.completions()
        if (f is None or inv["f"] == f) and (node is None or inv.get("node") == node)
    ]


class AppliedKV(SingleKV):
    """A one-node lin-kv store that appends ``(key, value)`` to ``log`` for each write or cas it applies.

    ``log`` is the test's own list, passed as config: it outlives crashes of the store.
    """

    def __init__(self, log: list):
        super().__init__(leader=self.name)
        self.applied = log

    async def _serve(self, msg):
        body = msg.body
        rid = request_id(msg)
        # A copy of a request taken before (answered from the table, or an older one answered nothing) is not applied.
        fresh = rid is None or recall(self.storage.get("applied", {}), body.get("key"), rid) is None
        reply = await super()._serve(msg)
        if body["type"] in ("write", "cas") and fresh:
            self.applied.append((body.get("key"), body.get("value") if body["type"] == "write" else body.get("to")))
        return reply


class LaggyKV(SingleKV):
    """A one-node lin-kv store that applies each op at once but may answer it late.

    ``lags`` maps an op type to the reply delays of its next requests, in
    order (``{"read": [0.05]}``: the first read answers 50 ms after it read).
    """

    def __init__(self, lags: dict):
        super().__init__(leader=self.name)
        self.lags = {kind: list(delays) for kind, delays in lags.items()}

    async def _serve(self, msg):
        reply = await super()._serve(msg)
        delays = self.lags.get(msg.body["type"])
        if delays:
            await asyncio.sleep(delays.pop(0))
        return reply


class SimMachine(RuleBasedStateMachine):
    """A state machine over one Simulation: build it in ``build``; rules run ops in the background.

    Subclasses define ``build(sim)`` (add the nodes) and rules; ``start``
    begins an op on an idle client, ``advance`` moves virtual time on.
    """

    clients = 3
    latency = em.Constant(0.001)
    reorder = False
    keep_trace = False

    @initialize(seed=st.integers(0, 2**32 - 1))
    def setup(self, seed):
        self.begin(seed)

    def begin(self, seed: int, **variant) -> None:
        """Build the simulation (a subclass's own ``@initialize`` may call this with its variant)."""
        self.sim = em.Simulation(seed=seed, latency=self.latency, reorder=self.reorder, keep_trace=self.keep_trace)
        self.build(self.sim, **variant)
        self.client_nodes = [self.sim.add_client(f"c{i}") for i in range(self.clients)]
        self.tasks: dict[str, asyncio.Task] = {}

    def build(self, sim: em.Simulation, **variant) -> None:
        raise NotImplementedError

    def idle(self) -> list[em.Client]:
        return [c for c in self.client_nodes if c.name not in self.tasks or self.tasks[c.name].done()]

    def start(self, f: str, key=None, value=None, dest: str | None = None, timeout: float = 1.0):
        """Invoke ``f`` from an idle client in the background (no-op when all are busy)."""
        idle = self.idle()
        if idle:
            client = idle[0]
            self.tasks[client.name] = background(self.sim, client.invoke(f, key, value, dest=dest, timeout=timeout))

    def advance(self, seconds: float) -> None:
        self.sim.run(until=self.sim.now + seconds)

    def advance_under_load(self, seconds: float, op, step: float = 0.01) -> None:
        """Advance ``seconds``, every ``step`` giving each idle client a new op ``op(rng)`` -> (f, key, value, dest)."""
        rng = self.sim.rng("load")
        end = self.sim.now + seconds
        for _ in range(max(1, math.ceil(seconds / step - 1e-9))):
            for _ in self.idle():
                self.start(*op(rng))
            self.sim.run(until=min(self.sim.now + step, end))

    def settle(self, limit: float = 30.0) -> None:
        """Run until every background op has completed (ops carry timeouts, so they do)."""
        pending = [t for t in self.tasks.values() if not t.done()]
        if pending:
            self.sim.run(asyncio.wait(pending), until=self.sim.now + limit)

    def teardown(self):
        sim = getattr(self, "sim", None)
        if sim is not None:
            self.settle()  # let every op finish, so no coroutine is left unawaited
            sim.close()  # cancels what is left and runs its cleanup, as asyncio.run does


__all__ = ["AppliedKV", "LaggyKV", "SimMachine", "background", "ops"]
