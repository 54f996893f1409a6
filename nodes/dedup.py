"""At-most-once application of requests that a duplicate could apply twice.

A network that duplicates delivers the same request twice, with the same
sender and the same ``msg_id``; a client that retries after a timeout sends
the same operation again with a new ``msg_id``. ``Dedup`` remembers the reply
to each request it applied, keyed by the request's ``"id"`` when the client
gave one (so a retry, even through another path, is recognised) and by
``(sender, msg_id)`` otherwise (so a network duplicate is). A request seen
before gets the remembered reply and is not applied again.

The table lives in the node's ``storage``, so it survives a crash: a request
applied just before a crash is not applied again when its duplicate arrives
after the restart. It keeps the last ``window`` requests; a duplicate older
than that is applied again (say so where it matters).
"""

from __future__ import annotations

import json

from emulator import ConfigError, Message, Node
from emulator.validate import is_int

__all__ = ["Dedup", "request_key"]


def request_key(msg: Message, by_id: bool = True) -> str:
    """The identity of a request: its client-given ``"id"`` (unless ``by_id`` is False), else sender and ``msg_id``."""
    given = msg.body.get("id") if by_id else None
    if given is not None:
        return "id:" + json.dumps(given, sort_keys=True)
    return f"msg:{msg.src}:{msg.body.get('msg_id')}"


class Dedup:
    """The replies of the last ``window`` requests a node applied, in its storage.

    Args:
        node: the node whose storage holds the table.
        slot: the storage key of the table.
        window: requests remembered; the oldest is forgotten first.
        by_id: key by the body's ``"id"`` when it has one; False keys every
            request by sender and ``msg_id`` (network duplicates only).
    """

    def __init__(self, node: Node, slot: str = "dedup", window: int = 100_000, by_id: bool = True):
        if not is_int(window, ge=1):
            raise ConfigError(f"a dedup window must be an int >= 1 (requests remembered), got {window!r}")
        self.node, self.slot, self.window, self.by_id = node, slot, window, by_id
        #: duplicates answered from the table instead of being applied again
        self.duplicates = 0

    @property
    def _table(self) -> dict:
        table = self.node.storage.get(self.slot)
        if table is None:
            table = {}
            self.node.storage[self.slot] = table
        return table

    def seen(self, msg: Message) -> dict | None:
        """The reply already given to this request, or None if it is new."""
        reply = self._table.get(request_key(msg, self.by_id))
        if reply is not None:
            self.duplicates += 1
        return reply

    def remember(self, msg: Message, reply: dict) -> dict:
        """Note that ``msg`` was applied with ``reply``; returns ``reply``."""
        table = self._table
        table[request_key(msg, self.by_id)] = reply
        while len(table) > self.window:
            del table[next(iter(table))]
        return reply
