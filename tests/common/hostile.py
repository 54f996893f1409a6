"""The hostile network the catalogue's protocols are tested under: faults' preset, as Simulation arguments.

``faults.spec.HOSTILE`` is the project's one definition (loss, duplication,
reordering and heavy-tailed Pareto latency on every link, all at once);
``HOSTILE`` here is the same thing with its latency built, ready to pass to
``em.Simulation`` or ``sim.network.set_link``.
"""

from __future__ import annotations

import emulator as em
from faults.spec import HOSTILE as PRESET
from faults.spec import distribution

__all__ = ["HOSTILE", "hostile_sim"]

#: Simulation / set_link keyword arguments: the preset, latency built.
HOSTILE = {**PRESET, "latency": distribution(PRESET["latency"])}


def hostile_sim(seed: int, **overrides) -> em.Simulation:
    """A Simulation whose every link is hostile (``overrides`` replace single settings)."""
    return em.Simulation(seed=seed, **{**HOSTILE, **overrides})
