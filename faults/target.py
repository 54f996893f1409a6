"""What a fault policy drives: a ``FaultTarget``, a simulation or a real cluster alike.

The :class:`~faults.injector.Injector` and the nemeses touch the system under
test only through these two protocols, as nodes reach their network only
through ``emulator.node.Transport``. ``emulator.Simulation`` and
``emulator.transport.RealCluster`` both satisfy them with the same names and
arguments; they differ in what a change returns (``None`` in virtual time, a
future done when every node has applied it in real time), which a fault
policy does not wait for, and in ``partition``'s id (an ``int`` or an
awaitable ``int``), which it only hands back to ``heal``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from emulator.history import History

__all__ = ["FaultNetwork", "FaultTarget"]


class FaultNetwork(Protocol):
    """The link faults of a target: cuts by id, and each directed link's overrides."""

    def partition(self, *groups: Iterable[str]) -> int:
        """Drop traffic between the groups; returns the cut's id."""

    def partition_oneway(self, src_group: Iterable[str], dst_group: Iterable[str]) -> int:
        """Drop traffic from ``src_group`` to ``dst_group``; returns the cut's id."""

    def isolate(self, name: str) -> int:
        """Cut ``name`` off, both ways; returns the cut's id."""

    def heal(self, *cuts: int) -> object:
        """Lift the cuts with these ids (with none, every one)."""

    def cut(self, src: str, dst: str) -> bool:
        """Whether a cut drops traffic ``src -> dst`` now."""

    def overrides(self, src: str, dst: str) -> dict[str, Any]:
        """The settings the link ``src -> dst`` overrides now (``latency`` as a Distribution)."""

    def replace_link_oneway(
        self, src: str, dst: str, latency: Any = None, loss: Any = None, duplicate: Any = None, reorder: Any = None
    ) -> object:
        """Make the overrides of ``src -> dst`` exactly the settings given."""


@runtime_checkable
class FaultTarget(Protocol):
    """A system a fault policy can drive: its members, its clock, its history and its fault methods."""

    @property
    def network(self) -> FaultNetwork:
        """Its link faults."""

    @property
    def history(self) -> History:
        """Where the nemesis ops (and the clients' ops) are recorded."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop fault policies start their own tasks on (a flapping partition, say)."""

    @property
    def now(self) -> float:
        """Seconds since the start (virtual or wall-clock)."""

    @property
    def servers(self) -> list[str]:
        """The server names, sorted."""

    @property
    def nodes(self) -> list[str]:
        """Every node name, servers and clients, sorted."""

    def node(self, name: str) -> Any:
        """The live Node instance of ``name`` where it runs in this process, else None."""

    def alive(self, name: str) -> bool:
        """Whether ``name`` is running (not crashed)."""

    def rng(self, name: str) -> random.Random:
        """A seeded random stream, derived by name."""

    def record_nemesis(self, f: str, value: Any = None) -> dict[str, Any]:
        """Put a fault in the history as a ``nemesis`` op."""

    def crash(self, name: str) -> object:
        """Crash ``name`` (memory lost, storage kept)."""

    def restart(self, name: str) -> object:
        """Start a crashed ``name`` again."""

    def pause(self, name: str) -> object:
        """Freeze ``name``."""

    def resume(self, name: str) -> object:
        """Unfreeze ``name``."""

    def skew(self, name: str, offset: float = 0.0, drift: float = 0.0) -> object:
        """Make ``name``'s clock read true time + ``offset``, advancing at ``1 + drift``."""
