"""Versions of a value: last-writer-wins stamps, or vector clocks with siblings.

A *version* is a JSON dict ``{"value": v, "stamp": [time, node, seq]}``; under
vector clocks it also carries ``"clock": {node: counter}``. A replica keeps,
per key, a list of versions, its *siblings*, sorted by stamp:

- ``lww``: at most one version, the one with the greatest stamp. The stamp's
  time is the coordinator's clock, so a coordinator whose clock runs behind
  writes versions that lose to older ones: an acknowledged write can vanish
  (that is the price of needing no coordination to order writes).
- ``vector``: dotted version vectors (Preguiça et al. 2010). A version's
  *dot* is its coordinator and that coordinator's counter (the stamp's node
  and seq); its ``"context"`` is the clock the write superseded (what the
  writer had seen), and its ``"clock"`` the context plus its own dot. A
  version is dropped only when another's context covers its dot: writes
  ordered by causality (the writer saw the older version) replace it; writes
  that were concurrent are all kept as siblings, so nothing acknowledged is
  dropped by a clock, and a reader must choose. Two writes from the same
  context through the same coordinator are concurrent too: with a clock per
  server alone the second (``{n0: 2}``) would descend from the first
  (``{n0: 1}``) and drop it, though its writer never saw it.

``pick`` chooses deterministically among siblings: the greatest stamp. Every
function here is pure and takes or returns plain JSON values, so versions
travel in messages as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

__all__ = [
    "LWW",
    "MODES",
    "VECTOR",
    "descends",
    "digest",
    "merge_clocks",
    "new_version",
    "pick",
    "reconcile",
    "saw",
    "stamp_of",
]

LWW = "lww"
VECTOR = "vector"
MODES = (LWW, VECTOR)


def stamp_of(version: dict) -> tuple:
    """The version's total order key: (time, node, seq), compared left to right."""
    time, node, seq = version["stamp"]
    return (time, node, seq)


def descends(a: dict, b: dict) -> bool:
    """True when clock ``a`` has seen everything clock ``b`` has (a >= b pointwise)."""
    return all(a.get(node, 0) >= count for node, count in b.items())


def merge_clocks(versions: Iterable[dict]) -> dict:
    """The pointwise maximum of the versions' clocks: a context that has seen them all."""
    merged: dict[str, int] = {}
    for version in versions:
        for node, count in version.get("clock", {}).items():
            if count > merged.get(node, 0):
                merged[node] = count
    return dict(sorted(merged.items()))


def new_version(mode: str, value: Any, node: str, time: float, seq: int, context: dict | None = None) -> dict:
    """A version of ``value`` written by coordinator ``node`` at its clock ``time``.

    Args:
        mode: ``"lww"`` or ``"vector"``.
        value: the value written.
        node: the coordinator that writes it.
        time: the coordinator's clock reading when it writes (the stamp's first field).
        seq: the coordinator's own counter, strictly increasing across its writes
            (it breaks stamp ties and is the coordinator's clock entry).
        context: under vector clocks, the clock this write supersedes (what the
            writer had seen); the new clock is it with ``node``'s entry set to ``seq``.
    """
    version = {"value": value, "stamp": [time, node, seq]}
    if mode == VECTOR:
        clock = dict(context or {})
        version["context"] = dict(sorted(clock.items()))
        clock[node] = seq
        version["clock"] = dict(sorted(clock.items()))
    return version


def saw(a: dict, b: dict) -> bool:
    """True when version ``a``'s writer had seen version ``b``: ``a``'s context covers ``b``'s dot.

    A version without a ``"context"`` (written before dots) falls back to its clock.
    """
    _, node, seq = b["stamp"]
    return a.get("context", a["clock"]).get(node, 0) >= seq


def reconcile(mode: str, *sibling_lists: Iterable[dict]) -> list[dict]:
    """Merge sibling lists from several replicas into one, sorted by stamp.

    ``lww`` keeps the greatest stamp; ``vector`` keeps every version whose dot no
    other version's context covers (equal stamps are the same version: one is kept).
    """
    versions = [v for siblings in sibling_lists for v in siblings]
    if not versions:
        return []
    if mode == LWW:
        return [max(versions, key=stamp_of)]
    kept: list[dict] = []
    for version in sorted(versions, key=stamp_of, reverse=True):
        if any(other["stamp"] == version["stamp"] or saw(other, version) for other in kept):
            continue  # the same version (one dot, one write), or one its writer had seen
        kept = [other for other in kept if not saw(version, other)]
        kept.append(version)
    return sorted(kept, key=stamp_of)


def pick(siblings: list[dict]) -> dict:
    """The sibling a single-valued read returns: the one with the greatest stamp."""
    return max(siblings, key=stamp_of)


def digest(siblings: list[dict]) -> str:
    """A short stable hash of a sibling list, equal on two replicas exactly when they agree."""
    text = json.dumps(siblings, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
