"""Sharded key-value store: one copy of each key, on its owner by a consistent-hash ring.

Guarantees: per-key linearizability (one authority per key, its ring owner: CP per shard), kept through
joins and leaves with no acknowledged write lost. Gives up: the keys whose owner is down or cut off (11 or a
timeout; other keys keep answering: partial availability). PACELC: PC/EC; a non-owner adds one forwarding hop.

Protocol: Maelstrom's lin-kv (see :mod:`nodes.kv`): ``read``, ``write`` and
``cas`` go to any node, which serves the key if it owns it and forwards the
request otherwise (at most ``hops`` times, then error 11). Admin requests,
to any node, answered once the change is complete::

    {"type": "join",  "node": "n5"}  -> {"type": "join_ok",  "epoch": e, "members": [...]}
    {"type": "leave", "node": "n2"}  -> {"type": "leave_ok", "epoch": e, "members": [...]}
    {"type": "get_view"}             -> {"type": "get_view_ok", "view": {"active": ..., "next": ...}}

Design:

- A *configuration* is ``{"epoch": e, "members": [...]}`` (an active one also
  carries ``"changes"``, its leader's record of changes, below); configuration 1 is
  the initial members. Only the *leader* of configuration e (its smallest
  member name) creates configuration e + 1, and it writes it to storage
  before telling anyone, so an epoch names one configuration and any node may
  adopt a newer one from any message: views ride on forwarded requests and on
  handoff messages, and a node that sees an older view answers with its own.
- A node serves by its ``active`` configuration and, during a change, knows
  ``next`` (epoch + 1). A node that learns ``next`` stops serving the keys it
  loses (*frozen*), then sends each new owner its batch of them, retrying
  until acked. A new owner serves a gained key only once it holds the batch
  from the key's old owner. Until then both answer 11 (moving); afterwards
  the old owner forwards to the new one, and other nodes route a moving key
  to its old owner, which knows how far the move has gone. So the old owner
  stops before the new one starts, and the new one starts with every write
  the old one acknowledged.
- The leader asks every member of ``active`` to hand off; when all have, it
  activates ``next`` and announces it. A node activates a configuration only
  once its change is complete (the leader says so, or a later change exists),
  and then drops the keys it no longer owns. A request for another change
  while one is in progress gets 11.
- Each node takes a write or cas at most once (:func:`nodes.kv.take_once`):
  a forwarded request carries its client's request id (``rid``), and every
  node keeps, per key and client, the latest id it took and its answer,
  whether it applied the request, forwarded it or refused it. A copy gets
  the first answer (none while the first runs), so two copies are never
  told different things, "done" and "moving, retry"; and a late copy of an
  old write never writes over a newer value. The owner's record travels in
  the handoff batch with the value (merged, each client's latest winning),
  and the old owner keeps its own when it drops the key: the batch leaves
  before the old owner stops refusing, so a request it refused in between
  is in its record alone, and the network delivers that request's copies to
  it, never to the new owner. Every node's record so holds one entry per key
  and client it ever served, routed or refused.
- A join or leave is a request like a write: each node takes it at most once
  per request id (:func:`nodes.kv.take_once`, one record per client for all
  its changes, whatever node they name), so every copy of a change gets the
  first copy's answer, never "11" while another copy is applied. The answer
  means: ``join_ok``/``leave_ok``, done; 11 or 12 (definite), not done, and
  this request never will be; a timeout (error 0 from a forwarding node, or
  none at all), indeterminate, Jepsen's ``info``: a change that has begun is
  never abandoned, so it may complete after its client gave up. Until the
  client's next change: a request older than its client's latest is dropped
  unanswered, at the leader (also when a newer one came while it probed the
  joining node) and, through the record the leader puts in each configuration
  it activates, at every later leader. So a client that gave up on a change
  settles it with its next change (the undo, or the same change again): once
  that one is answered, the cluster holds what the answer says, however late
  copies of the old one arrive. A client must not have two changes in flight at
  once (the older, arriving second, would be dropped and time out).
- Configurations, data, request ids and received batches live in
  ``self.storage`` and survive a crash: a restarted node resumes its handoff,
  a restarted leader resumes driving the change.

Limits: the default ``members`` is this node and its peers at its first
start, so add every initial node before the simulation runs; a node added
at run time takes ``contact=`` (a node to learn the configuration from) and
serves nothing until it joins. A change needs every member of the old
configuration, so a crashed or cut-off member stalls it (its moving keys
stay unavailable) until it is back; the leader is a single point for
membership changes, not for data. One copy means a key is as durable as its
owner's storage.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.errors import MALFORMED_REQUEST
from emulator.validate import is_int, is_number
from nodes.hashring import HashRing
from nodes.kv import apply_op, forwarded, merge_requests, request_id, take_once, unavailable

__all__ = ["ShardedKV", "make_config"]

#: The one record key of membership changes in ``storage["changes"]``: a client's changes are ordered
#: among themselves, whatever node they name.
CHANGES = "membership"


def make_config(epoch: int, members) -> dict:
    """A configuration: its epoch and its members, sorted."""
    return {"epoch": epoch, "members": sorted(members)}


@functools.lru_cache(maxsize=256)
def _ring_of(members: tuple[str, ...], vnodes: int) -> HashRing:
    """The ring of ``members``: pure, so every node and incarnation can share one."""
    return HashRing(members, vnodes=vnodes)


def _rank(view: dict) -> tuple[int, int]:
    """Order views by progress: the active epoch, then whether a change is known."""
    nxt = view.get("next")
    return view["active"]["epoch"], nxt["epoch"] if nxt else 0


def _positive(name: str, value: object, kind: Callable[..., bool] = is_number) -> None:
    if not kind(value, gt=0):
        raise ConfigError(f"ShardedKV {name} must be a positive number, got {value!r}")


class ShardedKV(Node):
    """A node of the sharded store (see the module docstring for the protocol).

    Args:
        members: the initial members, the same list on every initial node;
            default: this node and its peers at its first start.
        contact: for a node added at run time instead of ``members``: a node
            to learn the configuration from. The new node routes but owns
            nothing until a ``join`` adds it.
        vnodes: ring points per member.
        hops: how many times a request may be forwarded before error 11.
        timeout: seconds to wait for the next hop; handoff rpcs wait longer.
        retry: seconds between handoff attempts.
    """

    def __init__(
        self,
        members=None,
        contact: str | None = None,
        vnodes: int = 64,
        hops: int = 3,
        timeout: float = 0.5,
        retry: float = 0.05,
    ):
        if members is not None and contact is not None:
            raise ConfigError("give ShardedKV members= (an initial node) or contact= (a node added later), not both")
        if members is not None and (isinstance(members, str) or not list(members)):
            raise ConfigError(f"members must be a non-empty list of node names, got {members!r}")
        _positive("vnodes", vnodes, is_int)
        if not is_int(hops, ge=0):
            raise ConfigError(f"ShardedKV hops must be an int >= 0, got {hops!r}")
        _positive("timeout", timeout)
        _positive("retry", retry)
        self.members = sorted(members) if members is not None else None
        self.contact, self.vnodes, self.hops = contact, vnodes, hops
        self.timeout, self.retry = timeout, retry
        self._rings: dict[int, HashRing] = {}
        self._handoff: asyncio.Task | None = None
        self._driver: asyncio.Task | None = None

    async def on_start(self) -> None:
        if "active" not in self.storage:
            members = [] if self.contact else self.members or [self.name, *self.peers]
            self.storage["active"] = make_config(0 if self.contact else 1, members)
            self.storage["data"] = {}
        if "requests" not in self.storage:
            self.storage["requests"] = {}
        if "changes" not in self.storage:
            self.storage["changes"] = {CHANGES: {}}
        if self._next is not None:
            self._resume()
        if not self._active["members"]:
            self.spawn(self._fetch_view(), "fetch_view")

    # -- what this node knows --------------------------------------------------------------

    @property
    def _active(self) -> dict:
        return self.storage["active"]

    @property
    def _next(self) -> dict | None:
        return self.storage.get("next")

    def view(self) -> dict:
        """This node's configurations: ``{"active": config, "next": config or None}``."""
        return {"active": self._active, "next": self._next}

    def _ring(self, config: dict) -> HashRing:
        ring = self._rings.get(config["epoch"])
        if ring is None:
            ring = self._rings[config["epoch"]] = _ring_of(tuple(config["members"]), self.vnodes)
        return ring

    def _received(self) -> list[str]:
        """The old owners whose batch for the change in progress this node holds."""
        return self._progress("received")

    def _acked(self) -> list[str]:
        """The new owners that hold this node's batch for the change in progress."""
        return self._progress("acked")

    def _progress(self, name: str) -> list[str]:
        entry, nxt = self.storage.get(name), self._next
        return entry["nodes"] if entry and nxt and entry["epoch"] == nxt["epoch"] else []

    def _note(self, name: str, node: str) -> None:
        """Add ``node`` to the ``received``/``acked`` list of the change in progress."""
        nodes = self._progress(name)
        if node not in nodes:
            assert self._next is not None  # a change is in progress: its epoch is the one acknowledged
            self.storage[name] = {"epoch": self._next["epoch"], "nodes": sorted([*nodes, node])}

    def _leader(self) -> str:
        members = self._active["members"]
        if members:
            return members[0]
        if self.contact:
            return self.contact
        raise unavailable(f"{self.name} has no configuration yet")

    @staticmethod
    def leader_of(sim) -> str:
        """Who leads now in ``sim``: the leader (smallest member) of the newest configuration a live node holds.

        It alone drives membership changes; data has no leader (each key's
        ring owner serves it). Falls back to the first server.
        """
        best, best_epoch = None, -1
        for name in sim.servers:
            node = sim.node(name)
            if isinstance(node, ShardedKV) and "active" in node.storage:
                active = node.storage["active"]
                if active["members"] and active["epoch"] > best_epoch:
                    best, best_epoch = active["members"][0], active["epoch"]
        return best if best is not None else sim.servers[0]

    def _is_leader(self) -> bool:
        return bool(self._active["members"]) and self._active["members"][0] == self.name

    # -- learning newer configurations ----------------------------------------------------------

    def _learn(self, view: dict | None) -> None:
        """Adopt whatever is newer in ``view``: an epoch names one configuration, so it is safe."""
        if not view:
            return
        if view["active"]["epoch"] > self._active["epoch"]:
            self._activate(view["active"])
        nxt = view.get("next")
        if nxt is not None and self._next is None and nxt["epoch"] == self._active["epoch"] + 1:
            self._begin(nxt)

    def _hear(self, msg) -> None:
        """Learn from a forwarded request's view, and tell a sender that is behind."""
        view = msg.body.get("view")
        if view is None:
            return
        self._learn(view)
        if _rank(view) < _rank(self.view()):
            self.send(msg.src, {"type": "view", "view": self.view()})

    def _begin(self, nxt: dict) -> None:
        """Know the next configuration: freeze the keys this node loses and start handing them off."""
        self.storage["next"] = nxt
        self.log.debug("epoch %s begins: %s", nxt["epoch"], nxt["members"])
        if self.name in self._active["members"]:
            self._start_handoff()

    def _activate(self, config: dict) -> None:
        """Serve by ``config``, whose change is complete, and drop the keys it gives to others.

        Complete means every batch was acked, so nothing dropped here is the
        only copy of an acknowledged write. The record of requests is kept (see
        the module docstring).
        """
        self.storage["active"] = config
        self._merge_changes(config.get("changes", {}))
        nxt = self._next
        if nxt is not None and nxt["epoch"] <= config["epoch"]:
            del self.storage["next"]
        data = self.storage["data"]
        ring = self._ring(config) if config["members"] else None
        for key in [k for k in data if ring is None or ring.lookup(k) != self.name]:
            del data[key]
        # The key's record of requests stays: copies of a request sent here still arrive here, and one this node
        # refused after its batch left must be refused again, not forwarded to the new owner, which never saw it.
        self.storage["data"] = data
        self.log.debug("epoch %s active: %s", config["epoch"], config["members"])

    def _merge_changes(self, latest: dict) -> None:
        """Take the leader's record of changes (client -> its latest request id) into this node's own.

        A request older than its client's latest is dropped unanswered here too,
        so a late copy of a change the client gave up on cannot reach a new leader
        and take effect after the client's later change.
        """
        changes = self.storage["changes"]
        mine = changes[CHANGES]
        for client, msg_id in latest.items():
            if client not in mine or mine[client][0] < msg_id:
                mine[client] = [msg_id, None]  # a copy of it gets no answer: its client has one, or gave up
        self.storage["changes"] = changes

    def _resume(self) -> None:
        """After a restart in the middle of a change: pick up this node's part of it."""
        if self.name in self._active["members"]:
            self._start_handoff()
        if self._is_leader():
            self._start_driver()

    async def _fetch_view(self) -> None:
        assert self.contact is not None  # a joining node was given a member to ask
        while not self._active["members"]:
            try:
                reply = await self.rpc(self.contact, {"type": "get_view"}, timeout=self.timeout)
                self._learn(reply.get("view"))
            except (Timeout, RPCError):
                await asyncio.sleep(self.retry)

    async def handle_view(self, msg):
        self._learn(msg.body.get("view"))
        return {"type": "view_ok"}

    async def handle_get_view(self, msg):
        return {"type": "get_view_ok", "view": self.view()}

    # -- lin-kv -------------------------------------------------------------------------------------

    async def handle_read(self, msg):
        return await self._serve(msg)

    async def handle_write(self, msg):
        return await self._serve(msg)

    async def handle_cas(self, msg):
        return await self._serve(msg)

    async def _serve(self, msg) -> dict | None:
        self._hear(msg)
        key = msg.body.get("key")
        if not (isinstance(key, str) or is_int(key)):
            raise RPCError(MALFORMED_REQUEST, f"{msg.body['type']} needs a key (a string or an int), got {key!r}")
        rid = request_id(msg) if msg.body["type"] != "read" else None
        return await take_once(self.storage, "requests", key, rid, lambda: self._route(key, msg))

    async def _route(self, key, msg) -> dict:
        owner = self._place(key)
        if owner != self.name:
            return await self._forward(owner, msg, self.timeout)
        # Checking ownership and applying happen in one step: no handoff can slip in between.
        data = self.storage["data"]
        reply = apply_op(data, msg.body)
        self.storage["data"] = data  # a file storage saves on assignment
        return reply

    def _place(self, key) -> str:
        """The node to serve ``key`` by this node's view (possibly itself).

        During a change a moving key's old owner decides: it forwards to the
        new owner once that one has acked its batch. A router sends there.

        Raises:
            RPCError: 11 when this node has no configuration, or the key is
                moving and its batch has not reached the new owner.
        """
        active, nxt = self._active, self._next
        if not active["members"]:
            raise unavailable(f"{self.name} has no configuration yet")
        old = self._ring(active).lookup(key)
        if nxt is None:
            return old
        new = self._ring(nxt).lookup(key)
        if old == new:
            return old
        arrived = (new == self.name and old in self._received()) or (old == self.name and new in self._acked())
        if not arrived and self.name in (old, new):
            raise unavailable(f"key {key!r} is moving from {old} to {new} (epoch {nxt['epoch']})")
        return new if arrived else old

    async def _forward(self, dest: str, msg, timeout: float) -> dict:
        """Pass ``msg`` on to ``dest`` with this node's view; its answer or error is ours."""
        hops = msg.body.get("hops", 0)
        if hops >= self.hops or dest == self.name:
            raise unavailable(f"{msg.body['type']} gave up at {self.name} after {hops} hops (views are changing)")
        reply = await self.rpc(dest, forwarded(msg, hops=hops + 1, view=self.view()), timeout=timeout)
        reply.pop("in_reply_to", None)
        return reply

    # -- handing keys off (every member of the old configuration) ---------------------------------

    def _handed_off(self, epoch: int) -> bool:
        return (
            self._active["epoch"] >= epoch
            or self.storage.get("sent", 0) >= epoch
            or self.name not in self._active["members"]
        )

    def _start_handoff(self) -> asyncio.Task:
        if self._handoff is None or self._handoff.done():
            self._handoff = self.spawn(self._hand_off(), "handoff")
        return self._handoff

    async def _hand_off(self) -> None:
        """Send every new owner its batch of the keys this node loses; retry until all are acked."""
        while (nxt := self._next) is not None and not self._handed_off(nxt["epoch"]):
            view = self.view()
            batches = self._batches(view)
            acked = await asyncio.gather(*(self._send_batch(dest, pairs, view) for dest, pairs in batches.items()))
            if all(acked):
                self.storage["sent"] = nxt["epoch"]
                self.log.debug("handed off %d keys for epoch %s", sum(map(len, batches.values())), nxt["epoch"])
                return
            await asyncio.sleep(self.retry)

    def _batches(self, view: dict) -> dict[str, list]:
        """New owner -> [[key, value, request ids], ...] of the keys it gains from this node (one per member)."""
        old, new = self._ring(view["active"]), self._ring(view["next"])
        batches: dict[str, list[list]] = {m: [] for m in view["next"]["members"] if m != self.name}
        requests = self.storage["requests"]
        for key, value in self.storage["data"].items():
            if old.lookup(key) == self.name:
                owner = new.lookup(key)
                if owner != self.name:
                    batches[owner].append([key, value, requests.get(key, {})])
        return batches

    async def _send_batch(self, dest: str, pairs: list, view: dict) -> bool:
        body = {"type": "transfer", "from": self.name, "view": view, "pairs": pairs}
        try:
            await self.rpc(dest, body, timeout=2 * self.timeout)
        except (Timeout, RPCError):
            return False
        if self._next == view["next"]:
            self._note("acked", dest)
        return True

    async def handle_transfer(self, msg):
        """Take a batch from an old owner, once: a repeat must not undo writes served since."""
        self._learn(msg.body["view"])
        epoch, source = msg.body["view"]["next"]["epoch"], msg.body["from"]
        if self._active["epoch"] >= epoch:
            return {"type": "transfer_ok"}  # the change is complete: this is a repeat
        if self._next is None or self._next["epoch"] != epoch:
            raise unavailable(f"{self.name} cannot place a batch for epoch {epoch}")
        if source not in self._received():
            data, requests = self.storage["data"], self.storage["requests"]
            for key, value, taken in msg.body["pairs"]:
                data[key] = value
                requests[key] = merge_requests(requests.get(key, {}), taken)
            self.storage["data"], self.storage["requests"] = data, requests
            self._note("received", source)
        return {"type": "transfer_ok"}

    async def handle_handoff(self, msg):
        """The leader asks for this node's handoff; answer once every batch is acked (or 11)."""
        self._learn(msg.body["view"])
        epoch = msg.body["view"]["next"]["epoch"]
        if not self._handed_off(epoch):
            await asyncio.wait([self._start_handoff()], timeout=2 * self.timeout)
        if not self._handed_off(epoch):
            raise unavailable(f"{self.name} is still handing off keys for epoch {epoch}")
        return {"type": "handoff_ok"}

    # -- membership changes (the leader) ---------------------------------------------------------

    async def handle_join(self, msg):
        return await self._change(msg, "join")

    async def handle_leave(self, msg):
        return await self._change(msg, "leave")

    async def _change(self, msg, kind: str) -> dict | None:
        node = msg.body.get("node")
        if not isinstance(node, str) or not node:
            raise RPCError(MALFORMED_REQUEST, f"{kind} needs 'node': the name of the node to {kind}")
        self._hear(msg)
        rid = request_id(msg)
        return await take_once(self.storage, "changes", CHANGES, rid, lambda: self._lead(msg, kind, node, rid))

    async def _lead(self, msg, kind: str, node: str, rid: list | None) -> dict:
        """Make the change if this node leads (else forward it): the part of a request taken once per id."""
        if not self._is_leader():
            return await self._forward(self._leader(), msg, 40 * self.timeout)
        if kind == "join" and node not in self._active["members"] and self._next is None:
            await self._probe(node)
            if rid is not None and self.storage["changes"][CHANGES][rid[0]][0] > rid[1]:
                # A later change of its client came while the probe ran: the client gave up on this one.
                raise unavailable(f"{kind} of {node} superseded by a later change from {rid[0]}")
            if not self._is_leader():  # a change of the view came in meanwhile
                return await self._forward(self._leader(), msg, 40 * self.timeout)
        target = self._target(kind, node)
        nxt = self._next
        if nxt is not None and nxt["members"] != target:
            raise unavailable(f"a membership change to epoch {nxt['epoch']} is in progress; retry")
        if nxt is None and target != self._active["members"]:
            self._begin(make_config(self._active["epoch"] + 1, target))
        if self._next is not None:
            await asyncio.shield(self._start_driver())
        return {"type": f"{kind}_ok", "epoch": self._active["epoch"], "members": self._active["members"]}

    def _target(self, kind: str, node: str) -> list[str]:
        members = set(self._active["members"])
        target = sorted(members | {node} if kind == "join" else members - {node})
        if not target:
            raise RPCError(MALFORMED_REQUEST, f"{node} is the last member; a store needs one")
        return target

    async def _probe(self, node: str) -> None:
        """Refuse to start a join whose node cannot answer: the change would wait for it forever."""
        try:
            await self.rpc(node, {"type": "get_view"}, timeout=2 * self.timeout)
        except ValueError as exc:  # no such node on this network
            raise RPCError(MALFORMED_REQUEST, str(exc)) from None
        except (Timeout, RPCError):
            raise unavailable(f"cannot reach {node} to join it; retry") from None

    def _start_driver(self) -> asyncio.Task:
        if self._driver is None or self._driver.done():
            self._driver = self.spawn(self._drive(), "drive")
        return self._driver

    async def _drive(self) -> None:
        """Get every member of the old configuration to hand off, then activate the new one."""
        while (nxt := self._next) is not None:
            view = self.view()
            done = await asyncio.gather(*(self._ask_handoff(m, view) for m in view["active"]["members"]))
            if all(done) and self._next == nxt:
                latest = {client: entry[0] for client, entry in self.storage["changes"][CHANGES].items()}
                self._activate({**nxt, "changes": latest})
                self.spawn(self._announce(view), "announce")
                return
            await asyncio.sleep(self.retry)

    async def _ask_handoff(self, member: str, view: dict) -> bool:
        epoch = view["next"]["epoch"]
        if member == self.name:
            await asyncio.wait([self._start_handoff()], timeout=2 * self.timeout)
            return self._handed_off(epoch)
        try:
            await self.rpc(member, {"type": "handoff", "view": view}, timeout=4 * self.timeout)
            return True
        except (Timeout, RPCError):
            return False

    async def _announce(self, view: dict, rounds: int = 20) -> None:
        """Tell the old and new members the change is complete.

        A few rounds, not forever: a member that misses them learns the
        configuration from the next forwarded request or the next change.
        """
        waiting = sorted((set(view["active"]["members"]) | set(view["next"]["members"])) - {self.name})
        for _ in range(rounds):
            if not waiting or self._active["epoch"] != view["next"]["epoch"]:
                return
            told = await asyncio.gather(*(self._tell(member) for member in waiting))
            waiting = [member for member, ok in zip(waiting, told) if not ok]
            await asyncio.sleep(4 * self.retry)

    async def _tell(self, member: str) -> bool:
        try:
            await self.rpc(member, {"type": "view", "view": self.view()}, timeout=self.timeout)
            return True
        except (Timeout, RPCError):
            return False
