"""Maelstrom's lin-kv protocol, shared by every key-value store in ``nodes``.

Requests and replies::

    {"type": "read",  "key": k}                  -> {"type": "read_ok", "value": v}
    {"type": "write", "key": k, "value": v}      -> {"type": "write_ok"}
    {"type": "cas",   "key": k, "from": a, "to": b} -> {"type": "cas_ok"}

Errors use Maelstrom's codes: 11 temporarily unavailable, 20 key does not
exist, 22 precondition failed (all definite: the operation did not happen);
13 crash and 0 timeout are indefinite.

Request ids and at-most-once application. A network may deliver a message
twice, and late. Every request is named by a *request id*, ``[client,
msg_id]``: the client's name and the ``msg_id`` its rpc gave the message,
unique per client because a node's message ids only grow, across restarts
too. A node that forwards a request passes the id along (``"rid"``), so every
copy of one request, however it travelled, carries the same id.
:func:`apply_once` applies a write or cas at most once per id: the store
keeps, per key and client, the latest id applied and its answer (in storage,
next to the data, so it survives crashes and moves with the key). A copy of
that request gets the same answer again; a request older than it, a late
duplicate or an abandoned attempt, is dropped unanswered (the client has
already given up on it, or will see a timeout: indefinite either way), so it
cannot overwrite a newer value. Reads apply as often as they arrive: a read
has no effect, and each copy answers with a value current when it ran.
A client must therefore not have two writes to one key in flight at once
(Jepsen's process model, which ``faults.Workload`` follows): the older one,
arriving second, would be dropped as stale.

``SingleKV`` is the baseline: one node holds everything, linearizable by
construction, unavailable when that node is unreachable (CP with N = 1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import KEY_DOES_NOT_EXIST, MALFORMED_REQUEST, PRECONDITION_FAILED, TEMPORARILY_UNAVAILABLE, TIMEOUT

__all__ = [
    "SingleKV",
    "answer",
    "apply_once",
    "apply_op",
    "checked_key",
    "error_answer",
    "forwarded",
    "merge_requests",
    "not_found",
    "precondition_failed",
    "recall",
    "remember",
    "request_id",
    "take_once",
    "unavailable",
]

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


def checked_key(body: dict):
    """The request's ``"key"``: a string, number, boolean or null (what a dict can hold as a key).

    Raises:
        RPCError: 12 (malformed, definite) for a list or an object, which no key can be.
    """
    key = body.get("key")
    if isinstance(key, (list, dict)):
        raise RPCError(MALFORMED_REQUEST, f"a key is a string, number, boolean or null, got {key!r:.80}")
    return key


def apply_op(data: dict, body: dict) -> dict:
    """Apply one lin-kv request to ``data`` in place and return the reply body.

    Raises:
        RPCError: 20 for a missing key, 22 for a cas that found another value, 12 for a key that is a list or an
            object.
    """
    kind, key = body["type"], checked_key(body)
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


def request_id(msg) -> list | None:
    """The id of the client request ``msg`` carries: its ``"rid"`` if a node forwarded it, else ``[src, msg_id]``.

    None for a message sent without ``msg_id`` (fire-and-forget: it expects no answer).

    Raises:
        RPCError: 12 (malformed) when ``"rid"`` is not ``[name, int]``.
    """
    rid = msg.body.get("rid")
    if rid is None:
        msg_id = msg.body.get("msg_id")
        return None if msg_id is None else [msg.src, msg_id]
    if (
        not isinstance(rid, list)
        or len(rid) != 2
        or not isinstance(rid[0], str)
        or isinstance(rid[1], bool)
        or not isinstance(rid[1], int)
    ):
        raise RPCError(MALFORMED_REQUEST, f"rid must be [client name, message id], got {rid!r}")
    return rid


def forwarded(msg, **extra) -> dict:
    """The body to forward ``msg`` with: its request id kept as ``"rid"``, its own ``msg_id`` left for the next rpc."""
    body = {k: v for k, v in msg.body.items() if k != "msg_id"}
    rid = request_id(msg)
    if rid is not None:
        body["rid"] = rid
    body.update(extra)
    return body


def recall(applied: dict, key, rid: list) -> list | None:
    """What to do with request ``rid`` on ``key``, given the requests already taken.

    Args:
        applied: key -> {client: [msg_id, answer]}: per key and client, the
            latest request taken and its answer (None while it has none yet).
        key: the key the request is on.
        rid: the request's id, ``[client, msg_id]`` (:func:`request_id`).

    Returns:
        None when the request is new: take it. Otherwise ``[answer]``: the
        request, or a later one from its client, was taken already, and a copy
        gets ``answer`` (see :func:`answer`), or no reply when it is None (an
        older request, or one whose first copy is still running).
    """
    last = applied.get(key, {}).get(rid[0])
    if last is None or rid[1] > last[0]:
        return None
    return [last[1] if rid[1] == last[0] else None]


def remember(applied: dict, key, rid: list, answer: dict | None) -> None:
    """Record that request ``rid`` on ``key`` was taken, with its ``answer``.

    The answer is a reply body, ``{"error": [code, text]}``, or None for "running".
    """
    applied.setdefault(key, {})[rid[0]] = [rid[1], answer]


def answer(recalled: dict | None) -> dict | None:
    """The reply a copy of a taken request gets (a copy of the first answer); raises the error it was."""
    if recalled is not None and "error" in recalled:
        raise RPCError(*recalled["error"])
    return None if recalled is None else dict(recalled)


def error_answer(exc: RPCError) -> dict:
    """An error as :func:`remember` stores it."""
    return {"error": [exc.code, exc.text]}


async def take_once(storage, name: str, key, rid: list | None, serve: Callable[[], Awaitable[dict]]) -> dict | None:
    """Run ``await serve()`` for request ``rid`` on ``key`` at most once on this node, and give every copy its answer.

    For a node that does more than apply a request (forward it, coordinate
    replicas, refuse it): the first copy runs ``serve``; a copy that comes
    while it runs gets no reply (the first answers), and one that comes
    after gets the same answer, so two copies can never be told different
    things (one "done", the other "refused"). A request that ends after a
    later one of its client was taken leaves the later one's record. The record is
    :func:`recall`'s, kept in ``storage[name]`` and assigned again after
    each change, so a node's file storage saves it.

    Raises:
        RPCError: what ``serve`` raised, and to every later copy; a Timeout
            is remembered as error 0 (indefinite).
    """
    if rid is None:
        return await serve()
    recalled = recall(storage[name], key, rid)
    if recalled is not None:
        return answer(recalled[0])
    _note(storage, name, key, rid, None)
    try:
        reply = await serve()
    except RPCError as exc:
        _note(storage, name, key, rid, error_answer(exc))
        raise
    except Timeout as exc:
        _note(storage, name, key, rid, error_answer(RPCError(TIMEOUT, str(exc))))
        raise
    _note(storage, name, key, rid, reply)
    return reply


def _note(storage, name: str, key, rid: list, answer_: dict | None) -> None:
    requests = storage[name]
    last = requests.get(key, {}).get(rid[0])
    if last is not None and last[0] > rid[1]:
        return  # a later request of the client was taken while this one ran: keep its record, not this one's
    remember(requests, key, rid, answer_)
    storage[name] = requests


def merge_requests(mine: dict, theirs: dict) -> dict:
    """Two records of one key's requests (client -> [msg_id, answer]) as one: each client's latest wins."""
    merged = dict(mine)
    for client, entry in theirs.items():
        if client not in merged or entry[0] >= merged[client][0]:
            merged[client] = entry
    return merged


def apply_once(data: dict, applied: dict, body: dict, rid: list | None) -> dict | None:
    """Apply a lin-kv request like :func:`apply_op`, a write or cas at most once per request id.

    Args:
        data: key -> value, changed in place.
        applied: the requests taken (see :func:`recall`); changed in place.
        body: the request's body (its ``type``, ``key`` and values).
        rid: the request's id (:func:`request_id`); None applies it unconditionally.

    Returns:
        The reply body; None for a copy of a request older than the latest
        applied from its client to its key (answer nothing: it must not apply).

    Raises:
        RPCError: 20 or 22, the first time and for every copy after.
    """
    if body["type"] == "read" or rid is None:
        return apply_op(data, body)
    key = checked_key(body)
    recalled = recall(applied, key, rid)
    if recalled is not None:
        return answer(recalled[0])
    try:
        reply = apply_op(data, body)
    except RPCError as exc:
        remember(applied, key, rid, error_answer(exc))
        raise
    remember(applied, key, rid, reply)
    return reply


class SingleKV(Node):
    """Every key on one node: other nodes forward to it (the ``leader``, default the first server).

    Linearizable (one copy, one order, each request applied at most once:
    see the module docstring), whatever the network duplicates, reorders or
    delays, client links included; unavailable to anyone cut off from the
    leader. Data and the request ids applied are in storage, so they survive
    a crash of the leader.
    """

    def __init__(self, leader: str | None = None):
        self.leader = leader

    async def on_start(self) -> None:
        # A leader that is no server would be found at the first request forwarded to it, as an unknown node.
        if self.leader is not None and self.leader != self.name and self.leader not in self.peers:
            raise ConfigError(
                f"leader {self.leader!r} is not a server of this cluster (its servers: "
                f"{', '.join(sorted([self.name, *self.peers]))}); name one of them, or leave leader out for the first"
            )

    def _leader(self) -> str:
        return self.leader or min([self.name, *self.peers])

    @staticmethod
    def leader_of(sim) -> str:
        """Who leads now in ``sim``'s lin-kv cluster: the configured leader (default the first server)."""
        for name in sim.servers:
            node = sim.node(name)
            if isinstance(node, SingleKV):
                return node._leader()
        return sim.servers[0]

    async def _serve(self, msg):
        if self.name == self._leader():
            data = self.storage.setdefault("data", {})
            applied = self.storage.setdefault("applied", {})
            reply = apply_once(data, applied, msg.body, request_id(msg))
            self.storage["data"], self.storage["applied"] = data, applied  # a file storage saves on assignment
            return reply
        return await self.rpc(self._leader(), forwarded(msg), timeout=1.0)

    async def handle_read(self, msg):
        return await self._serve(msg)

    async def handle_write(self, msg):
        return await self._serve(msg)

    async def handle_cas(self, msg):
        return await self._serve(msg)
