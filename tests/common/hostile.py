"""The hostile network the catalogue's protocols are tested under: faults' preset, as Simulation arguments.

``faults.spec.HOSTILE`` is the project's one definition (loss, duplication,
reordering and heavy-tailed Pareto latency on every link, all at once);
``HOSTILE`` here is the same thing with its latency built, ready to pass to
``em.Simulation`` or ``sim.network.set_link``. For the protocols' state
machines: ``SETTINGS`` draws a rule's argument (the preset, or drawn
settings), ``make_hostile`` turns every link hostile mid-run and
``make_calm`` turns it back before the final checks.
"""

from __future__ import annotations

from hypothesis import strategies as st

import emulator as em
from faults.scenario import Network
from faults.spec import HOSTILE as PRESET
from faults.spec import distribution
from faults.strategies import hostile_settings

__all__ = ["HOSTILE", "SETTINGS", "hostile_sim", "make_calm", "make_hostile"]

#: Simulation / set_link keyword arguments: the preset, latency built.
HOSTILE = {**PRESET, "latency": distribution(PRESET["latency"])}

#: A state machine rule's argument: the preset (simplest, what shrinking goes toward) or drawn settings.
SETTINGS = st.just({}) | hostile_settings()


def hostile_sim(seed: int, **overrides) -> em.Simulation:
    """A Simulation whose every link is hostile (``overrides`` replace single settings)."""
    return em.Simulation(seed=seed, **{**HOSTILE, **overrides})


def make_hostile(sim: em.Simulation, settings: dict) -> None:
    """Every link's defaults become hostile: ``settings`` over the preset (faults.spec.HOSTILE)."""
    sim.network.set_defaults(**Network.preset("hostile", **settings).kwargs())


def make_calm(sim: em.Simulation, latency, reorder: float = 0.0) -> None:
    """Every link's defaults back to ``latency`` (and ``reorder``), nothing lost or duplicated, FIFO."""
    sim.network.set_defaults(latency=latency, loss=0.0, duplicate=0.0, reorder=float(reorder), fifo=True)
