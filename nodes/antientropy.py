"""Anti-entropy: two replicas find the keys they disagree on and swap only those.

Two ways to find them, both over the keys *both* replicas hold (the keys
whose preference list names both):

- ``merkle``: each side builds a hash tree over its keys (``BRANCHING``-ary,
  ``DEPTH`` levels below the root, a key in leaf ``key_hash(key) % leaves``).
  The initiator asks for the root's hash, then only for the children of
  subtrees that differ, level by level (``DEPTH + 1`` round trips at most),
  and finally swaps the versions of the keys in the differing leaves. In
  sync, one round trip of one hash; k differing keys cost about k leaves.
- ``digest``: the initiator sends a (key, version digest) pair for every key;
  the peer answers with its versions of the keys that differ and names those
  it wants back. Two round trips, but the first carries every key.

Merging is the store's (:func:`nodes.versions.reconcile`), so an exchange
never loses a version either side had: after it both hold the merge of the
two. ``AntiEntropy`` is a mixin for the node; its host provides the store
(see the class docstring). Everything here uses the simulation clock only.
"""

from __future__ import annotations

import collections
import hashlib
import json
from typing import TYPE_CHECKING, Any

from nodes.hashring import key_hash

if TYPE_CHECKING:
    from emulator import Node as _Host  # only ever mixed into a Node: type-check it as one
else:
    _Host = object

__all__ = ["BRANCHING", "DEPTH", "MODES", "AntiEntropy", "MerkleTree", "diff_digests"]

MODES = ("merkle", "digest")
BRANCHING = 4
DEPTH = 3


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _sort_key(key: Any) -> str:
    # Keys may mix ints and strings: order them by their JSON text.
    return json.dumps(key)


class MerkleTree:
    """A hash tree over ``{key: digest}``; an empty subtree hashes to ``""``.

    Args:
        digests: key -> digest of its versions on this replica.
        branching: children per inner node of the tree (``branching ** depth`` leaves).
        depth: levels below the root.
    """

    def __init__(self, digests: dict, branching: int = BRANCHING, depth: int = DEPTH):
        self.branching, self.depth = branching, depth
        self.leaves = branching**depth
        self.keys: list[list] = [[] for _ in range(self.leaves)]
        for key in sorted(digests, key=_sort_key):
            self.keys[key_hash(key) % self.leaves].append(key)
        leaf_hashes = [_hash(json.dumps([[k, digests[k]] for k in keys])) if keys else "" for keys in self.keys]
        self.levels = [leaf_hashes]
        while len(self.levels[0]) > 1:
            below = self.levels[0]
            self.levels.insert(0, [self._join(below[i : i + branching]) for i in range(0, len(below), branching)])

    @staticmethod
    def _join(children: list[str]) -> str:
        return _hash("|".join(children)) if any(children) else ""

    @property
    def root(self) -> str:
        return self.levels[0][0]

    def hashes(self, level: int, indices: list[int]) -> list[str]:
        """The hashes of nodes ``indices`` of ``level`` (0 is the root)."""
        return [self.levels[level][i] for i in indices]

    def children(self, indices: list[int]) -> list[int]:
        """The indices one level down of the children of ``indices``."""
        return [i * self.branching + j for i in indices for j in range(self.branching)]

    def keys_in(self, leaves: list[int]) -> list:
        """The keys in the given leaves."""
        return [key for leaf in leaves for key in self.keys[leaf]]


def diff_digests(mine: dict, theirs: dict) -> tuple[list, list]:
    """Compare two ``{key: digest}`` maps.

    Returns:
        ``(send, want)``: keys ``mine`` should send (they differ or the other
        side lacks them) and keys to ask for (the other side has, I lack).
    """
    send = [k for k in sorted(mine, key=_sort_key) if theirs.get(k) != mine[k]]
    want = [k for k in sorted(theirs, key=_sort_key) if k not in mine]
    return send, want


class AntiEntropy(_Host):
    """Anti-entropy exchange handlers and the initiator's round, mixed into a node.

    The host class provides:

    - ``_shared_digests(peer) -> {key: digest}``: local keys ``peer`` also replicates;
    - ``_items(keys) -> [[key, siblings], ...]``: local versions of ``keys``;
    - ``_absorb(items)``: merge such items into the local store;
    - ``rpc_timeout`` (seconds) and a ``stats`` dict of counters.
    """

    if TYPE_CHECKING:  # what the host provides (see above)
        rpc_timeout: float
        stats: collections.Counter

        def _shared_digests(self, peer: str) -> dict: ...
        def _items(self, keys: list) -> list[list]: ...
        def _absorb(self, items: list) -> None: ...

    async def anti_entropy_round(self, peer: str, mode: str = "merkle") -> int:
        """Reconcile the keys shared with ``peer``; return how many keys this side sent.

        Raises:
            emulator.Timeout, emulator.RPCError: the peer did not answer; nothing
                is half-applied (each message carries whole versions, merged on arrival).
        """
        self.stats["ae_rounds"] += 1
        if mode == "digest":
            return await self._digest_round(peer)
        return await self._merkle_round(peer)

    async def _merkle_round(self, peer: str) -> int:
        tree = MerkleTree(self._shared_digests(peer))
        level, indices = 0, [0]
        while True:
            reply = await self.rpc(
                peer, {"type": "ae_hashes", "level": level, "indices": indices}, timeout=self.rpc_timeout
            )
            differing = [i for i, h in zip(indices, reply["hashes"]) if tree.levels[level][i] != h]
            if not differing:
                return 0
            if level == tree.depth:
                break
            level, indices = level + 1, tree.children(differing)
        items = self._items(tree.keys_in(differing))
        self.stats["ae_keys_sent"] += len(items)
        reply = await self.rpc(peer, {"type": "ae_sync", "leaves": differing, "items": items}, timeout=self.rpc_timeout)
        self._absorb(reply["items"])
        return len(items)

    async def _digest_round(self, peer: str) -> int:
        mine = self._shared_digests(peer)
        digest = [[k, d] for k, d in mine.items()]
        reply = await self.rpc(peer, {"type": "ae_digest", "digest": digest}, timeout=self.rpc_timeout)
        self._absorb(reply["items"])
        items = self._items(reply["want"])
        self.stats["ae_keys_sent"] += len(items)
        if items:
            await self.rpc(peer, {"type": "ae_push", "items": items}, timeout=self.rpc_timeout)
        return len(items)

    async def handle_ae_hashes(self, msg):
        tree = MerkleTree(self._shared_digests(msg.src))
        return {"type": "ae_hashes_ok", "hashes": tree.hashes(msg.body["level"], msg.body["indices"])}

    async def handle_ae_sync(self, msg):
        sent = {key: siblings for key, siblings in _pairs(msg.body["items"])}
        self._absorb(msg.body["items"])
        tree = MerkleTree(self._shared_digests(msg.src))
        keys = [k for k in tree.keys_in(msg.body["leaves"]) if k not in sent or self._items([k])[0][1] != sent[k]]
        items = self._items(keys)
        self.stats["ae_keys_sent"] += len(items)
        return {"type": "ae_sync_ok", "items": items}

    async def handle_ae_digest(self, msg):
        theirs = dict(_pairs(msg.body["digest"]))
        send, want = diff_digests(self._shared_digests(msg.src), theirs)
        # A key both hold but differently: they send theirs too, so I ask for it.
        want += [k for k in send if k in theirs]
        items = self._items(send)
        self.stats["ae_keys_sent"] += len(items)
        return {"type": "ae_digest_ok", "items": items, "want": want}

    async def handle_ae_push(self, msg):
        self._absorb(msg.body["items"])
        return {"type": "ae_push_ok"}


def _pairs(items: list) -> list[tuple]:
    # JSON lists of [key, x]; a key that is not hashable would be a protocol bug.
    return [(key, value) for key, value in items]
