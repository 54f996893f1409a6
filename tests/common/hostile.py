"""The hostile network the catalogue's protocols are tested under, defined once.

Duplication, reordering, loss and heavy-tailed latency, all at once, on every
link. ``LogNormal(0.002, 1.3)`` has a median of 2 ms, a p99 of about 40 ms
and a p99.9 of about 110 ms: most messages are quick and a few are very late,
which is what makes duplicates arrive after later requests and replies
overtake each other.

Until faults/ ships its own "hostile network" preset (issue 9) this module
is the one place that says what hostile means; switch ``HOSTILE`` to the
preset when it lands, and every test using it follows.
"""

from __future__ import annotations

import emulator as em

__all__ = ["HOSTILE", "CALM", "hostile_sim", "spread"]

#: Simulation keyword arguments: the network at its worst short of a partition.
HOSTILE = {"latency": em.LogNormal(0.002, 1.3), "loss": 0.05, "duplicate": 0.25, "reorder": 0.4}

#: A quiet network for the parts of a test that measure a bound, not survive a storm.
CALM = {"latency": em.Uniform(0.001, 0.003)}


def hostile_sim(seed: int, **overrides) -> em.Simulation:
    """A Simulation whose every link is hostile (``overrides`` replace single settings)."""
    return em.Simulation(seed=seed, **{**HOSTILE, **overrides})


def spread(sim: em.Simulation, links: list[tuple[str, str]], **settings) -> None:
    """Give each (a, b) link, both directions, these settings (e.g. a calm client link)."""
    for a, b in links:
        sim.network.set_link(a, b, **settings)
