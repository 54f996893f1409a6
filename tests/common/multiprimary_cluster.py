"""A multi-primary cluster for tests: hostile links between servers, and a log of every version created.

Each client ``ci`` is bound to server ``ni`` over a link that duplicates and
reorders but does not lose (so a missing answer is the server's doing, not
the network's); the links between servers are ``HOSTILE``. ``LoggedPrimary``
appends ``(key, value, record)`` to a shared list each time a node creates a
version: the LWW version itself, or for siblings the new dot and the context
it superseded; a value versioned twice would mean a request applied twice.
"""

from __future__ import annotations

import emulator as em
from nodes import crdt
from nodes.multiprimary import MultiPrimary
from tests.common.hostile import HOSTILE

CLIENT_LINK = {"latency": em.Uniform(0.001, 0.003), "loss": 0.0, "duplicate": 0.3, "reorder": 0.5}


class LoggedPrimary(MultiPrimary):
    """A MultiPrimary that logs every version it creates into ``created`` (the test's own list)."""

    def __init__(self, created: list, **config):
        super().__init__(**config)
        self.created = created

    def _written(self, key, value, context):
        prior = self.data.get(key)
        state = super()._written(key, value, context)
        if self.resolution == "lww":
            self.created.append((key, value, state[0]))
        else:
            seen = context if context is not None else (prior or crdt.register())["clock"]
            self.created.append((key, value, {"dot": [self.name, state["clock"][self.name]], "context": seen}))
        return state


def cluster(seed: int, nodes: int = 3, resolution: str = "lww", anti_entropy: float = 0.2, **overrides):
    """(sim, clients, created): ``nodes`` LoggedPrimary servers and one bound client each."""
    sim = em.Simulation(seed=seed, **{**HOSTILE, **overrides})
    created: list = []
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        sim.add_node(name, LoggedPrimary, created=created, resolution=resolution, anti_entropy=anti_entropy)
    clients = [sim.add_client(f"c{i}") for i in range(nodes)]
    for name in names:
        for client in clients:
            sim.network.set_link(client.name, name, **CLIENT_LINK)
    return sim, clients, created


def states(sim: em.Simulation) -> dict:
    """server -> its data (key -> state)."""
    return {name: dict(sim.node(name).storage["data"]) for name in sim.servers}


def converged(sim: em.Simulation) -> bool:
    """Every server holds the same data."""
    found = list(states(sim).values())
    return all(s == found[0] for s in found)
