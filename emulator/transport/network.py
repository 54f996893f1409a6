"""The link faults of a real cluster, with the simulated network's names: ``RealNetwork``.

``cluster.network.partition(["n1"], ["n2", "n3"])`` validates at once (a
misuse raises here, as in the simulation), records a ``nemesis`` op, and
sends the change to every live node's control endpoint through the
cluster's :class:`~emulator.transport.plane.ControlPlane`. It returns the
cut's id, as the simulation does, for ``heal(id)``; the id is also
awaitable, done when every node has applied the cut. The other methods
return a future done when every node has applied the change. The cluster
keeps its own copy of the fault state, so ``cut`` answers without asking
the nodes and a restarted node can be given the whole state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable
from typing import Any

from emulator.errors import ConfigError
from emulator.transport.control import link_settings
from emulator.transport.links import LinkFaults
from emulator.transport.plane import ControlPlane, Fault
from emulator.transport.wire import JsonObject, Latency, distribution_from_json

__all__ = ["CutId", "RealNetwork", "traffic"]


class CutId(int):
    """The id of a cut on a real cluster: an ``int`` for ``heal(id)``, and awaitable until every node has it.

    ``await`` gives the id back (or raises the ControlError of a node that failed to apply it).
    """

    applied: asyncio.Future[Any]

    def __new__(cls, value: int, applied: asyncio.Future[Any]) -> CutId:
        cut = super().__new__(cls, value)
        cut.applied = applied
        return cut

    def __await__(self) -> Generator[Any, None, int]:
        yield from self.applied.__await__()
        return int(self)


class RealNetwork:
    """The link faults of a ``RealCluster``, with ``sim.network``'s names.

    Args:
        control: the cluster's control plane (its members, and the calls that reach them).
        faults: the cluster's own copy of the fault state.
    """

    def __init__(self, control: ControlPlane, faults: LinkFaults):
        self._control = control
        self._faults = faults

    def partition(self, *groups: Iterable[str]) -> CutId:
        """Drop all traffic between the groups; partitions add up until ``heal()``. Returns the cut's id."""
        sides = [self._group(g) for g in groups]
        return self._cut("partition", {"groups": sides}, "partition", [sorted(s) for s in sides])

    def partition_oneway(self, src_group: Iterable[str], dst_group: Iterable[str]) -> CutId:
        """Drop traffic from ``src_group`` to ``dst_group``; the other way still flows. Returns its id."""
        src, dst = self._group(src_group), self._group(dst_group)
        return self._cut("partition_oneway", {"src": src, "dst": dst}, "partition-oneway", [sorted(src), sorted(dst)])

    def isolate(self, name: str) -> CutId:
        """Cut ``name`` off from every other node, both ways. Returns its id."""
        return self._cut("isolate", {"name": self._control.check(name)}, "isolate", name)

    def heal(self, *cuts: int) -> Fault:
        """Remove the cuts with these ids; with none, every partition and isolation.

        Raises:
            ConfigError: an id that is not an active cut's (nothing changes).
        """
        if cuts:
            return self._change("heal", {"cuts": [int(c) for c in cuts]}, "heal", [int(c) for c in cuts])
        return self._change("heal", {}, "heal", None)

    def hold(self, a: str, b: str) -> Fault:
        """Queue the messages between a and b (at their senders) until ``release``."""
        pair = {"a": self._control.check(a), "b": self._control.check(b)}
        return self._change("hold", pair, "hold", [a, b])

    def release(self, a: str, b: str) -> Fault:
        """Send the messages held between a and b, in order."""
        pair = {"a": self._control.check(a), "b": self._control.check(b)}
        return self._change("release", pair, "release", [a, b])

    def set_link(
        self,
        a: str,
        b: str,
        latency: Latency | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: float | None = None,
    ) -> Fault:
        """Override a->b and b->a: extra latency (added to the real one), loss, duplicate, reorder."""
        first = self.set_link_oneway(a, b, latency, loss, duplicate, reorder)
        second = self.set_link_oneway(b, a, latency, loss, duplicate, reorder)
        return self._control.joined([first, second], "set_link")

    def set_link_oneway(
        self,
        src: str,
        dst: str,
        latency: Latency | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: float | None = None,
    ) -> Fault:
        """Override the link src->dst only."""
        payload = {
            "src": self._control.check(src),
            "dst": self._control.check(dst),
            **link_settings(latency, loss, duplicate, reorder),
        }
        return self._change("link", payload)

    def replace_link_oneway(
        self,
        src: str,
        dst: str,
        latency: Latency | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: float | None = None,
    ) -> Fault:
        """Make the overrides of src->dst exactly the settings given (the others back to the defaults)."""
        payload = {"src": self._control.check(src), "dst": self._control.check(dst)}
        settings = link_settings(latency, loss, duplicate, reorder)
        LinkFaults().apply("link", {**payload, **settings})  # validates: a misuse raises before the reset
        futures = [self._change("reset_link", payload)]
        if settings:
            futures.append(self._change("link", {**payload, **settings}))
        return self._control.joined(futures, "link")

    def overrides(self, src: str, dst: str) -> JsonObject:
        """The settings src->dst overrides (``latency`` as a Distribution), as the cluster has set them."""
        pair = (self._control.check(src), self._control.check(dst))
        for link in self._faults.to_json()["links"]:
            if (link["src"], link["dst"]) == pair:
                return {
                    k: distribution_from_json(v) if k == "latency" else v
                    for k, v in link.items()
                    if k not in ("src", "dst")
                }
        return {}

    def reset_link(self, a: str, b: str) -> Fault:
        """Drop the overrides of a->b and b->a."""
        futures = [
            self._change("reset_link", {"src": s, "dst": d})
            for s, d in ((self._control.check(a), self._control.check(b)), (b, a))
        ]
        return self._control.joined(futures, "reset_link")

    def set_defaults(
        self,
        latency: Latency | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: float | None = None,
    ) -> Fault:
        """Change the settings of every link that does not override them."""
        return self._change("defaults", link_settings(latency, loss, duplicate, reorder))

    def cut(self, src: str, dst: str) -> bool:
        """Whether traffic src->dst is dropped by a partition now (as the cluster has been told)."""
        return self._faults.blocked(self._control.check(src), self._control.check(dst))

    @property
    def faults(self) -> JsonObject:
        """The current fault state as JSON (what a restarted node is given)."""
        return self._faults.to_json()

    async def stats(self) -> dict[str, int]:
        """Counts summed over the live nodes: sent, delivered, dropped, duplicated."""
        return traffic(await self._control.statuses())

    def _group(self, group: Iterable[str]) -> list[str]:
        if isinstance(group, str):
            raise ConfigError(f"a group is a list of node names, got the string {group!r}; write [{group!r}]")
        return [self._control.check(name) for name in group]

    def _cut(self, action: str, payload: JsonObject, f: str, value: object) -> CutId:
        cut = self._faults.next_cut
        return CutId(cut, self._change(action, {**payload, "id": cut}, f, value))

    def _change(self, action: str, payload: JsonObject, f: str | None = None, value: object = None) -> Fault:
        self._faults.apply(action, payload)  # validates: a misuse raises here, before any node hears of it
        if f is not None:
            self._control.record(f, value)
        return self._control.broadcast(action, payload)


def traffic(statuses: list[JsonObject]) -> dict[str, int]:
    """sent, delivered, dropped and duplicated summed over nodes' ``/status`` answers."""
    totals = {"sent": 0, "delivered": 0, "dropped": 0, "duplicated": 0}
    for status in statuses:
        counters = status["counters"]
        totals["sent"] += counters.get("sent", 0)
        totals["delivered"] += counters.get("delivered", 0)
        totals["duplicated"] += counters.get("duplicated", 0)
        totals["dropped"] += counters.get("dropped", 0) + sum(counters.get("inbound_dropped", {}).values())
    return totals
