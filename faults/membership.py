"""The membership nemesis: servers join and leave a sharded store while it serves.

``kind = "membership"`` changes the configuration of a protocol whose nodes
answer ``view()`` (sharded-kv, :mod:`nodes.sharded`): when it starts, a
server outside the newest configuration joins (``change = "join"``), or,
when every server is a member, one member other than the configuration's
leader leaves (``change = "leave"``); when it stops, the change is undone.
``change`` and ``node`` pick them explicitly.

The admin requests go from a client node of its own (``nemesis-admin``)
to a live server, and are retried, every ``retry`` seconds for at most
``attempts`` tries, while the cluster answers 11 (another change is in
progress, a member is unreachable) or does not answer: a change needs every
old member, so under partitions and crashes it waits. The retries run in
the background: the start and stop are recorded at once, and the change
completes when the cluster lets it (``stop-membership`` names the undo it
began). A run that ends with the nemesis stopped has every undo under way;
give the cluster a settle phase to let them finish (``pending(sim)`` says
how many are left).

Several membership nemeses at once (overlapping steps) share the admin
client, and it keeps one change in flight at a time, as :mod:`nodes.sharded`
asks of a client: changes and undos go to the cluster one after another, in
the order they were begun, each retried until it is answered ok or refused
for good (or ``attempts`` run out). An undo waits for its own change (a stop
does not cut a change short: one sent and not answered may yet be applied,
and the undo after it would then race it). A nemesis chooses its node from
the members the cluster will have once the changes queued before it are
done, and never a node another nemesis holds (from its start until its undo
is done): changes of different nodes commute, so once every undo is done the
members are what they were, however the steps overlap. (A step that names
its ``node`` gets that node, held or not: that choice is the scenario's.)

Only for simulations (it reads the nodes' views to choose); a cluster meant
to grow starts with spare servers outside ``members``::

    [cluster]
    protocol = "sharded-kv"
    nodes = 5
    config = { members = ["n0", "n1", "n2"] }    # n3, n4 route but own nothing until they join
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, ClassVar

import emulator as em
from faults.base import Driver, Nemesis, background
from faults.spec import ParamError, check_choice, check_count, check_number
from faults.target import FaultTarget

__all__ = ["ADMIN", "Membership", "pending"]

#: The client node the admin requests come from.
ADMIN = "nemesis-admin"


class _Admin:
    """What the membership nemeses of one simulation share: the admin client's queue of changes.

    ``turn`` lets one change (or undo) at a time go to the cluster, in the
    order they were begun (an asyncio.Lock wakes its waiters first in, first
    out). While any is queued (``queued`` > 0), ``members`` is what the
    cluster will hold once they are all done; with none queued, the nemeses
    read the cluster's own newest configuration again. ``held``: the nodes
    a nemesis has changed and not yet changed back, which no other chooses.
    """

    def __init__(self) -> None:
        self.turn = asyncio.Lock()
        self.queued = 0
        self.members: list[str] = []
        self.held: set[str] = set()

    def begin(self, sim: FaultTarget, change: str, node: str) -> None:
        """Count a change in the queue, and what the members will be after it."""
        members = self.members if self.queued else _members(sim)
        self.members = sorted({*members, node}) if change == "join" else [m for m in members if m != node]
        self.queued += 1


_ADMINS: weakref.WeakKeyDictionary[Any, _Admin] = weakref.WeakKeyDictionary()


def pending(sim: FaultTarget) -> int:
    """How many membership changes and undos on ``sim`` are queued or running (0: every one is done)."""
    admin = _ADMINS.get(sim)
    return admin.queued if admin is not None else 0


def _admin(sim: FaultTarget) -> _Admin:
    admin = _ADMINS.get(sim)
    if admin is None:
        admin = _ADMINS[sim] = _Admin()
    return admin


class Membership(Nemesis):
    """Join a spare server (or make a member leave); stop undoes it. See the module docstring."""

    kind: ClassVar[str] = "membership"
    PARAMS: ClassVar[dict[str, Any]] = {"change": None, "node": None, "retry": 0.1, "attempts": 300, "after": None}

    def _check(self, params: dict) -> dict:
        if params["change"] is not None:
            check_choice("change", params["change"], ("join", "leave"))
        if params["node"] is not None and not (isinstance(params["node"], str) and params["node"]):
            raise ParamError("node", params["node"], "the name of a server")
        check_number("retry", params["retry"], low=0.0, strict_low=True)
        check_count("attempts", params["attempts"])
        if params["after"] not in (None, "ack"):
            raise ParamError("after", params["after"], "'ack', or leave it out")
        return params

    def prepare(self, injector: Driver) -> dict:
        admin = _admin(injector.sim)
        members = list(admin.members) if admin.queued else _members(injector.sim)  # as they will be
        self.change, self.node = self._choose(injector, members, admin.held)  # both set, or both None
        self.task: asyncio.Task[bool] | None = None
        if self.change is not None and self.node is not None:
            admin.begin(injector.sim, self.change, self.node)
            admin.held.add(self.node)
        return {"change": self.change, "node": self.node, "members": members}

    def _choose(self, injector: Driver, members: list[str], held: set[str]) -> tuple[str | None, str | None]:
        servers = injector.sim.servers
        change, node = self.params["change"], self.params["node"]
        if node is not None and node not in servers:
            raise ParamError("node", node, f"a server name from {', '.join(servers)}")
        # Spares to join, and members other than the leader to leave, that no other nemesis holds (name order).
        pools = {
            "join": [s for s in servers if s not in members and s not in held],
            "leave": [s for s in members[1:] if s not in held],
        }
        if change is None:
            change = (
                ("leave" if node in members else "join") if node is not None else ("join" if pools["join"] else "leave")
            )
        if node is None:
            node = injector.rng.choice(pools[change]) if pools[change] else None
        return (change, node) if node is not None else (None, None)

    def inject(self, injector: Driver) -> None:
        if self.change is not None and self.node is not None:
            self.task = background(
                injector.sim, _in_turn(injector, self.change, self.node, self.params), f"membership-{self.id}"
            )

    def repair(self, injector: Driver) -> dict:
        if self.change is None or self.node is None:
            return {"undo": None}
        undo = "leave" if self.change == "join" else "join"
        _admin(injector.sim).begin(injector.sim, undo, self.node)
        background(
            injector.sim, _in_turn(injector, undo, self.node, self.params, release=True), f"membership-undo-{self.id}"
        )
        return {"undo": undo, "node": self.node}


async def _in_turn(injector: Driver, change: str, node: str, params: dict, release: bool = False) -> bool:
    """``change`` of ``node`` (counted in the queue by ``_Admin.begin``), once those begun before it are done.

    ``release``: an undo, after which other nemeses may choose ``node`` again.
    """
    admin = _admin(injector.sim)
    try:
        async with admin.turn:
            return await _drive(injector, change, node, params)
    finally:
        admin.queued -= 1
        if release:
            admin.held.discard(node)


def _members(sim: FaultTarget) -> list[str]:
    """The members of the newest configuration a live server holds (the nodes must have ``view()``)."""
    best: list[str] = []
    epoch, viewers = -1, 0
    for name in sim.servers:
        node = sim.node(name) if hasattr(sim, "node") else None
        view = getattr(node, "view", None)
        if view is None:
            continue
        viewers += 1
        active = view()["active"]
        if active["epoch"] > epoch:
            best, epoch = list(active["members"]), active["epoch"]
    if not viewers:
        raise ParamError("kind", "membership", "a protocol whose nodes have view() (sharded-kv), in a simulation")
    return best


async def _drive(injector: Driver, change: str, node: str, params: dict) -> bool:
    """Send ``change`` of ``node`` to live servers in turn until one answers ok; False if every attempt failed."""
    sim = injector.sim
    admin = sim.node(ADMIN) if ADMIN in sim.nodes else sim.add_client(ADMIN)  # type: ignore[attr-defined]  # a Simulation's (see _members)
    for attempt in range(params["attempts"]):
        live = [s for s in sim.servers if sim.alive(s) and s != (node if change == "leave" else None)] or sim.servers
        try:
            await admin.rpc(live[attempt % len(live)], {"type": change, "node": node}, timeout=2.0)
            return True
        except em.Timeout:
            continue
        except em.RPCError as exc:
            if exc.code != 11:  # malformed: the last member, an unknown node; retrying will not help
                return False
            await asyncio.sleep(params["retry"])
    return False
