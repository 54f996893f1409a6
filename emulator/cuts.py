"""What the simulated network and the real transport share: cut rules and link probabilities.

A cut is one of three frozen rules, the same on both sides of the seam:

- :class:`Groups`: traffic between nodes on different sides is dropped; a
  node on no side keeps every link;
- :class:`OneWay`: traffic from a ``src`` node to a ``dst`` node is dropped;
- :class:`Isolate`: traffic to or from ``name`` is dropped.

Each answers ``blocks(src, dst)`` and has a JSON form, ``to_json()``: one
control action with its payload (``{"partition": {"groups": [...]}}``), which
``from_json`` reads back. Make them with :func:`partition`,
:func:`partition_oneway` and :func:`isolate`, which validate: the simulated
network, the real one, the hosts' ``LinkFaults`` and the partition nemesis
all go through them, each naming nodes its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from emulator.errors import ConfigError
from emulator.validate import is_number

__all__ = [
    "ACTIONS",
    "Cut",
    "GroupCheck",
    "Groups",
    "Isolate",
    "OneWay",
    "from_json",
    "isolate",
    "json_names",
    "partition",
    "partition_oneway",
    "probability",
]

#: Turns one group as given into its node names, or raises (each caller names nodes its own way).
GroupCheck = Callable[[object], Sequence[str]]

#: The action every kind of cut has in JSON (and on a host's control endpoint).
ACTIONS = ("partition", "partition_oneway", "isolate")


@dataclass(frozen=True)
class Groups:
    """Drop all traffic between nodes on different sides; a node on no side keeps every link."""

    groups: tuple[tuple[str, ...], ...]
    _side: dict[str, int] = field(init=False, repr=False, compare=False)

    action: ClassVar[str] = "partition"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_side", {name: i for i, group in enumerate(self.groups) for name in group})

    def blocks(self, src: str, dst: str) -> bool:
        """Whether this cut drops traffic ``src -> dst``."""
        a, b = self._side.get(src), self._side.get(dst)
        return a is not None and b is not None and a != b

    def to_json(self) -> dict[str, dict[str, object]]:
        return {self.action: {"groups": [list(g) for g in self.groups]}}


@dataclass(frozen=True)
class OneWay:
    """Drop traffic from any of ``src`` to any of ``dst``; the other way still flows."""

    src: tuple[str, ...]
    dst: tuple[str, ...]
    _from: frozenset[str] = field(init=False, repr=False, compare=False)
    _to: frozenset[str] = field(init=False, repr=False, compare=False)

    action: ClassVar[str] = "partition_oneway"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_from", frozenset(self.src))
        object.__setattr__(self, "_to", frozenset(self.dst))

    def blocks(self, src: str, dst: str) -> bool:
        """Whether this cut drops traffic ``src -> dst``."""
        return src in self._from and dst in self._to

    def to_json(self) -> dict[str, dict[str, object]]:
        return {self.action: {"src": list(self.src), "dst": list(self.dst)}}


@dataclass(frozen=True)
class Isolate:
    """Drop traffic to or from ``name``, both ways (nodes added later too)."""

    name: str

    action: ClassVar[str] = "isolate"

    def blocks(self, src: str, dst: str) -> bool:
        """Whether this cut drops traffic ``src -> dst``: exactly one end is the node."""
        return (src == self.name) != (dst == self.name)

    def to_json(self) -> dict[str, dict[str, object]]:
        return {self.action: {"name": self.name}}


Cut = Groups | OneWay | Isolate


def partition(groups: Iterable[object], check: GroupCheck, example: str) -> Groups:
    """The cut between ``groups``, each turned into names by ``check``.

    The one place partition groups are validated; ``check`` raises for a
    malformed group or an unknown node in the caller's own words, and
    ``example`` shows a valid call in the caller's syntax.

    Raises:
        ConfigError: fewer than two groups, or a node in two of them.
    """
    sides = [tuple(check(g)) for g in groups]
    if len(sides) < 2:
        raise ConfigError(f"partition needs at least two groups, e.g. {example}")
    seen: set[str] = set()
    for side in sides:
        for name in side:
            if name in seen:
                raise ConfigError(f"node {name!r} is in two groups of one partition")
            seen.add(name)
    return Groups(tuple(sides))


def partition_oneway(src: Iterable[str], dst: Iterable[str]) -> OneWay:
    """The cut of traffic from ``src`` to ``dst`` (names already checked; repeats dropped, order kept)."""
    return OneWay(tuple(dict.fromkeys(src)), tuple(dict.fromkeys(dst)))


def isolate(name: str) -> Isolate:
    """The cut of every link of ``name`` (already checked)."""
    return Isolate(name)


def from_json(action: str, payload: dict[str, object]) -> Cut:
    """The cut of one JSON control action (``partition``, ``partition_oneway`` or ``isolate``).

    Names are checked for shape only (a host does not know the cluster's
    members); a payload's other keys (a cut's ``id``, say) are the caller's.

    Raises:
        ConfigError: an unknown action or a malformed payload.
    """
    if action == "partition":
        groups = payload.get("groups")
        example = '{"groups": [["n1"], ["n2", "n3"]]}'
        if not isinstance(groups, list) or len(groups) < 2:  # before the groups' own checks, as ever
            raise ConfigError(f"partition needs at least two groups, e.g. {example}")
        return partition(groups, lambda group: json_names(group, "each group"), example)
    if action == "partition_oneway":
        return partition_oneway(json_names(payload.get("src"), "'src'"), json_names(payload.get("dst"), "'dst'"))
    if action == "isolate":
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"'name' must be a node name, got {name!r}")
        return isolate(name)
    raise ConfigError(f"unknown rule kind {action!r}")


def json_names(value: object, what: str) -> list[str]:
    """``value`` as a JSON list of non-empty node names, else a ConfigError naming it ``what``."""
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f'{what} must be a list of node names, e.g. ["n1", "n2"], got {value!r:.80}')
    return value


def probability(name: str, value: object) -> float:
    """``value`` as a probability in [0, 1] (booleans allowed), else a ConfigError naming ``name``."""
    if isinstance(value, bool):
        value = float(value)
    if not is_number(value, ge=0.0, le=1.0):
        raise ConfigError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return float(value)
