"""Hinted handoff for the quorum store: a write an owner missed reaches it once it is back.

``HintedHandoff`` is a mixin for ``nodes.quorum.QuorumKV``. A *hint* says
"owner O lacks this node's copy of key k"; hints live in ``storage["hints"]``
(``{owner: [keys]}``) and survive a crash. Every ``handoff_interval`` a node
sends each owner it does not suspect its hinted keys (its whole copy of
each), and forgets a hint once the owner acknowledged and the copy did not
change meanwhile; a fallback that held a key only for a hint then drops it.

Hints come from two places: a fallback that stood in for an owner (sloppy
quorum, Dynamo's hinted handoff: the first N healthy nodes of the preference
list take the write, a stand-in with a hint naming the owner it replaces),
and the coordinator of a write, which stores a hint for every other owner
*before* the write leaves (so a crash in the middle keeps them) and drops
those of the owners that acknowledged once the write settles (Cassandra's
coordinator-side hints; Dynamo has only the first kind). Unlike Dynamo's
separate store of hinted replicas, a hint names a key, and what is handed
off is the holder's whole current copy of it, merged by the owner as any
replica write is: a copy that grew since the hint was taken goes along.

The host provides ``storage``, ``owners(key)``, ``_local``, ``_merge``,
``_items``, ``call``, ``suspected``, ``rpc_timeout``, ``handoff_interval``,
``stats``, ``_digests`` and ``_ensure_task``.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

from emulator import RPCError, Timeout

if TYPE_CHECKING:
    from nodes.quorum_fanout import FailureDetector as _Host  # mixed into a QuorumKV, beside a FailureDetector
    from nodes.quorum_fanout import Fanout
else:
    _Host = object

__all__ = ["HintedHandoff"]


class HintedHandoff(_Host):
    """Hints in storage, handed to their owners in the background (see the module docstring)."""

    if TYPE_CHECKING:  # what the host, a QuorumKV, provides
        rpc_timeout: float
        handoff_interval: float
        stats: collections.Counter
        _digests: dict

        def owners(self, key) -> list[str]: ...
        def _local(self, key) -> list[dict]: ...
        def _merge(self, key, incoming: list[dict], hint: str | None = None) -> None: ...
        def _items(self, keys: list) -> list[list]: ...

    def _hint_owners(self, key, version: dict) -> None:
        """Hold ``version`` here and a hint for every other owner, in storage, until it acknowledges."""
        self._merge(key, [version])
        for owner in self.owners(key):
            if owner != self.name:
                self._add_hint(owner, key)

    async def _forget_acked_hints(self, key, version: dict, fan: Fanout) -> None:
        """Once the write settled, drop the hints of owners that hold it, if nothing newer came here since."""
        await fan.settled
        if self._local(key) != [version]:
            return  # other versions here: the hints carry them too
        hints = self.storage["hints"]
        # An owner that answered holds the write, and a stand-in that answered for it holds a hint of its own
        # to hand it over; but when the stand-in was this node, that hint is the very one below: keep it.
        held = {hint or node for node, hint, _ in fan.replies if hint is None or node != self.name}
        for owner in sorted(held):
            if key in hints.get(owner, []):
                hints[owner].remove(key)
                if not hints[owner]:
                    del hints[owner]
        self.storage["hints"] = hints

    def _add_hint(self, owner: str, key) -> None:
        hints = self.storage["hints"]
        keys = hints.setdefault(owner, [])
        if key not in keys:
            keys.append(key)
            self.stats["hints_stored"] += 1
            self.storage["hints"] = hints  # a file storage saves on assignment
        self._ensure_task("handoff", self._handoff_loop)

    async def _handoff_loop(self) -> None:
        hints = self.storage["hints"]
        while hints:
            await asyncio.sleep(self.handoff_interval)
            for owner in sorted(hints):
                if not self.suspected(owner):
                    await self._hand_off(owner)

    async def _hand_off(self, owner: str) -> None:
        """Send ``owner`` its hinted keys; forget each hint whose data did not change meanwhile."""
        hints = self.storage["hints"]
        if not hints.get(owner):
            return  # forgotten meanwhile: the owner acknowledged the write it was for
        items = self._items(list(hints[owner]))
        try:
            await self.call(owner, {"type": "q_handoff", "items": items}, self.rpc_timeout)
        except (Timeout, RPCError):
            return
        for key, siblings in items:
            if self._local(key) == siblings and key in hints.get(owner, []):
                hints[owner].remove(key)
                self.stats["hints_delivered"] += 1
        if not hints.get(owner, True):
            del hints[owner]
        self.storage["hints"] = hints  # a file storage saves on assignment
        for key, _ in items:
            self._drop_stray(key)

    def _drop_stray(self, key) -> None:
        """A fallback forgets a key it does not own once no hint needs it."""
        if self.name not in self.owners(key) and not any(key in keys for keys in self.storage["hints"].values()):
            data = self.storage["data"]
            if data.pop(key, None) is not None:
                self.storage["data"] = data  # a file storage saves on assignment
            self._digests.pop(key, None)
