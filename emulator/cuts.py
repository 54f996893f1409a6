"""What the simulated network and the real transport share: cut rules and link probabilities.

A cut is a tuple, the same on both sides of the seam:

- ``("groups", {name: side, ...}, ...)``: traffic between nodes on different
  sides is dropped; a node on no side keeps every link;
- ``("oneway", {src names}, {dst names})``: traffic from a src to a dst is dropped;
- ``("isolate", name)``: traffic to or from ``name`` is dropped.
"""

from __future__ import annotations

import math

from emulator.errors import ConfigError

__all__ = ["blocks", "probability"]


def blocks(rule: tuple, src: str, dst: str) -> bool:
    """Whether the cut ``rule`` drops traffic ``src -> dst``."""
    kind = rule[0]
    if kind == "groups":
        a, b = rule[1].get(src), rule[1].get(dst)
        return a is not None and b is not None and a != b
    if kind == "oneway":
        return src in rule[1] and dst in rule[2]
    return (src == rule[1]) != (dst == rule[1])  # isolate: exactly one end is the node


def probability(name: str, value) -> float:
    """``value`` as a probability in [0, 1] (booleans allowed), else a ConfigError naming ``name``."""
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return float(value)
