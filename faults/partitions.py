"""Partition shapes: which server links to cut, as Jepsen's and TigerBeetle's nemeses do.

Each shape picks its groups with the given random stream and returns a
:class:`Cut`: named ``sides``, the ``grudge`` (each node -> the nodes it
cannot hear from, Jepsen's term) and the kernel calls that make it.

- ``halves``: a random split into a minority and a majority (Jepsen's
  ``partition-random-halves``).
- ``isolate-one``: one random node against the rest.
- ``majorities-ring``: every node still hears a majority, and no two nodes
  hear the same one (Jepsen's ``partition-majorities-ring``). Built from
  windows of a shuffled ring, each node at the centre of its window; with an
  even window (3 nodes) some links are cut one way only, as in Jepsen.
- ``bridge``: two halves that cannot talk, joined by one node that talks to
  both (Jepsen's ``bridge``).
- ``isolate-primary``: the node a callback names as the current primary,
  against the rest.
- ``groups``: explicit groups, in order.

``direction`` makes any shape with sides one-way: ``"both"`` (default) cuts
both ways, ``"out"`` drops only traffic *from* the first side (minority,
isolated node, primary, left half, group0) to the other sides, ``"in"`` only
traffic *to* it. Only servers are cut: clients keep reaching every node, so
per-side availability can be measured.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from emulator import cuts as rules
from emulator.errors import ConfigError
from faults.spec import ParamError, check_choice

__all__ = ["DIRECTIONS", "SHAPES", "Cut", "cut", "min_servers"]

SHAPES = ("halves", "isolate-one", "majorities-ring", "bridge", "isolate-primary", "groups")
DIRECTIONS = ("both", "out", "in")
_MIN_NODES = {"halves": 2, "isolate-one": 2, "majorities-ring": 3, "bridge": 3, "isolate-primary": 2, "groups": 2}


def min_servers(shape: str) -> int:
    """The fewest servers ``shape`` can split (every side non-empty)."""
    return _MIN_NODES[shape]


@dataclass
class Cut:
    """A partition ready to apply: its sides, its grudge, and the kernel calls that make it."""

    shape: str
    direction: str
    sides: dict[str, list[str]]
    calls: list[tuple[str, tuple]] = field(default_factory=list)

    @property
    def grudge(self) -> dict[str, list[str]]:
        """Each node that loses traffic -> the nodes it cannot hear from, sorted."""
        deaf: dict[str, set] = {}
        for method, groups in self.calls:
            if method == "partition":
                for i, dst_group in enumerate(groups):
                    for j, src_group in enumerate(groups):
                        if i != j:
                            for dst in dst_group:
                                deaf.setdefault(dst, set()).update(src_group)
            else:
                src_group, dst_group = groups
                for dst in dst_group:
                    deaf.setdefault(dst, set()).update(src_group)
        return {node: sorted(deaf[node]) for node in sorted(deaf)}

    def apply(self, network) -> list:
        """Make the cut with the kernel's partition calls; returns what they return (the cuts' ids)."""
        return [getattr(network, method)(*groups) for method, groups in self.calls]

    def value(self) -> dict:
        """What ``start-partition`` records (see :mod:`faults.record`)."""
        return {"shape": self.shape, "direction": self.direction, "sides": self.sides, "grudge": self.grudge}


def cut(
    shape: str,
    nodes: list[str],
    rng: random.Random,
    direction: str = "both",
    primary: str | None = None,
    groups: list[list[str]] | None = None,
) -> Cut:
    """Pick a partition of ``nodes`` of the given shape.

    Args:
        shape: one of :data:`SHAPES`.
        nodes: the server names to split (any order; sorted before shuffling).
        rng: where the random choices come from.
        direction: one of :data:`DIRECTIONS`; ``majorities-ring`` takes only ``"both"``.
        primary: the node ``isolate-primary`` cuts off.
        groups: the groups of the ``groups`` shape.

    Raises:
        ParamError: an unknown shape or direction, too few nodes, or a
            missing primary or groups.
    """
    check_choice("shape", shape, SHAPES)
    check_choice("direction", direction, DIRECTIONS)
    nodes = sorted(nodes)
    if len(nodes) < _MIN_NODES[shape]:
        raise ParamError(
            "shape", shape, f"a shape that fits {len(nodes)} node(s); {shape} needs at least {_MIN_NODES[shape]}"
        )
    if shape == "majorities-ring":
        if direction != "both":
            raise ParamError("direction", direction, "'both' for majorities-ring, whose cuts are set by the ring")
        return _ring(nodes, rng)
    sides = _sides(shape, nodes, rng, primary, groups)
    return Cut(shape, direction, sides, _calls(list(sides.values()), shape, direction))


def _sides(shape, nodes, rng, primary, groups) -> dict[str, list[str]]:
    if shape == "halves":
        shuffled = _shuffled(nodes, rng)
        k = len(nodes) // 2
        return {"minority": sorted(shuffled[:k]), "majority": sorted(shuffled[k:])}
    if shape == "isolate-one":
        chosen = rng.choice(nodes)
        return {"isolated": [chosen], "rest": [n for n in nodes if n != chosen]}
    if shape == "bridge":
        shuffled = _shuffled(nodes, rng)
        k = len(nodes) // 2
        return {"left": sorted(shuffled[:k]), "right": sorted(shuffled[k + 1 :]), "bridge": [shuffled[k]]}
    if shape == "isolate-primary":
        if primary not in nodes:
            raise ParamError(
                "primary",
                primary,
                f"the name of a server node ({', '.join(nodes)}); isolate-primary needs a callback naming the primary",
            )
        return {"primary": [primary], "rest": [n for n in nodes if n != primary]}
    return _explicit(groups, nodes)


def _explicit(groups, nodes) -> dict[str, list[str]]:
    """The sides of the ``groups`` shape, built by the kernel's one validating constructor."""
    if (
        not isinstance(groups, (list, tuple))
        or len(groups) < 2
        or not all(isinstance(g, (list, tuple)) and g for g in groups)
    ):
        raise ParamError("groups", groups, "two or more non-empty lists of node names, e.g. [['n0'], ['n1', 'n2']]")
    not_servers = ParamError("groups", groups, f"distinct server names from {', '.join(nodes)}")

    def server_names(group: object) -> list[str]:
        if not isinstance(group, (list, tuple)) or any(name not in nodes for name in group):
            raise not_servers
        return list(group)

    try:
        sides = rules.partition(groups, server_names, "[['n0'], ['n1', 'n2']]").groups
    except ConfigError:  # a node in two groups (or not_servers itself)
        raise not_servers from None
    return {f"group{i}": sorted(side) for i, side in enumerate(sides)}


def _calls(sides: list[list[str]], shape: str, direction: str) -> list[tuple[str, tuple]]:
    """The kernel calls for a shape with sides; a bridge node is in no group, so it keeps every link."""
    groups = sides[:2] if shape == "bridge" else sides
    if direction == "both":
        return [("partition", tuple(groups))]
    first = groups[0]
    rest = sorted(n for group in groups[1:] for n in group)
    return [("partition_oneway", (first, rest) if direction == "out" else (rest, first))]


def _ring(nodes: list[str], rng: random.Random) -> Cut:
    ring = _shuffled(nodes, rng)
    n, window = len(ring), len(ring) // 2 + 1
    calls = []
    for start in range(n):
        view = [ring[(start + i) % n] for i in range(window)]
        centre = view[window // 2]
        deaf = sorted(set(nodes) - set(view))
        if deaf:
            calls.append(("partition_oneway", (deaf, [centre])))
    calls.sort(key=lambda call: call[1][1])
    return Cut("majorities-ring", "both", {}, calls)


def _shuffled(nodes: list[str], rng: random.Random) -> list[str]:
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    return shuffled
