"""Maelstrom's lin-kv protocol, shared by every key-value store in ``nodes``.

Requests and replies::

    {"type": "read",  "key": k}                  -> {"type": "read_ok", "value": v}
    {"type": "write", "key": k, "value": v}      -> {"type": "write_ok"}
    {"type": "cas",   "key": k, "from": a, "to": b} -> {"type": "cas_ok"}

Errors use Maelstrom's codes: 11 temporarily unavailable, 20 key does not
exist, 22 precondition failed (all definite: the operation did not happen);
13 crash and 0 timeout are indefinite.

``SingleKV`` is the baseline: one node holds everything, linearizable by
construction, unavailable when that node is unreachable (CP with N = 1).
"""

from __future__ import annotations

from emulator import Node, RPCError
from emulator.errors import KEY_DOES_NOT_EXIST, PRECONDITION_FAILED, TEMPORARILY_UNAVAILABLE

__all__ = ["SingleKV", "not_found", "precondition_failed", "unavailable", "apply_op"]

_MISSING = object()


def not_found(key) -> RPCError:
    """Error 20 (definite): ``key`` has no value."""
    return RPCError(KEY_DOES_NOT_EXIST, f"key {key!r} does not exist")


def precondition_failed(key, expected, found) -> RPCError:
    """Error 22 (definite): a cas found another value."""
    return RPCError(PRECONDITION_FAILED, f"cas on {key!r}: expected {expected!r}, found {found!r}")


def unavailable(reason: str) -> RPCError:
    """Error 11 (definite): the store refuses rather than risk consistency."""
    return RPCError(TEMPORARILY_UNAVAILABLE, reason)


def apply_op(data: dict, body: dict) -> dict:
    """Apply one lin-kv request to ``data`` in place and return the reply body.

    Raises:
        RPCError: 20 for a missing key, 22 for a cas that found another value.
    """
    kind, key = body["type"], body.get("key")
    current = data.get(key, _MISSING)
    if kind == "read":
        if current is _MISSING:
            raise not_found(key)
        return {"type": "read_ok", "value": current}
    if kind == "write":
        data[key] = body.get("value")
        return {"type": "write_ok"}
    if kind == "cas":
        if current is _MISSING:
            raise not_found(key)
        if current != body.get("from"):
            raise precondition_failed(key, body.get("from"), current)
        data[key] = body.get("to")
        return {"type": "cas_ok"}
    raise RPCError(10, f"lin-kv has no operation {kind!r}")


class SingleKV(Node):
    """Every key on one node: other nodes forward to it (the ``leader``, default the first server).

    Linearizable (one copy, one order); unavailable to anyone cut off from
    the leader. Data is in storage, so it survives a crash of the leader.
    """

    def __init__(self, leader: str | None = None):
        self.leader = leader

    def _leader(self) -> str:
        return self.leader or min([self.name, *self.peers])

    async def _serve(self, msg):
        if self.name == self._leader():
            data = self.storage.setdefault("data", {})
            reply = apply_op(data, msg.body)
            self.storage["data"] = data
            return reply
        body = {k: v for k, v in msg.body.items() if k != "msg_id"}
        return await self.rpc(self._leader(), body, timeout=1.0)

    async def handle_read(self, msg):
        return await self._serve(msg)

    async def handle_write(self, msg):
        return await self._serve(msg)

    async def handle_cas(self, msg):
        return await self._serve(msg)
