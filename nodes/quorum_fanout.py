"""The quorum store's plumbing: parallel requests to replicas, and a failure detector.

``Fanout`` sends one request to several replicas at once and resolves
``reached`` as soon as ``need`` distinct replicas answered (True) or as soon
as that became impossible (False): an answer counts once per replica, so a
node asked twice (or an answer that arrived twice) never stands for two; ``settled`` resolves when every request has
answered or timed out, for work that may finish after the client's reply
(read repair, hints). It counts with plain integers and futures, never by
iterating a set of tasks, so the order of events is the simulation's own.

``FailureDetector`` is a mixin for a node: an rpc that times out makes its
peer *suspected*; any answer clears it; while anyone is suspected, a ping
goes to each suspect every ``probe_interval`` seconds. A suspicion is a
belief, not a fact: a slow peer is suspected as readily as a dead one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator import RPCError, Timeout

if TYPE_CHECKING:
    from emulator import Node as _Host  # only ever mixed into a Node: type-check it as one
else:
    _Host = object

__all__ = ["FailureDetector", "Fanout"]


class Fanout:
    """One replica request sent to several nodes in parallel.

    Args:
        node: the coordinating node (it provides ``call``, ``spawn``,
            ``suspected``, ``local_request``, ``rpc_timeout`` and ``name``).
        body: the request; a stand-in gets it with ``"hint"`` naming the owner.
        need: answers that make the request succeed.
        spares: fallback nodes in ring order; when a target fails, the next
            spare not suspected takes its place (sloppy quorum), until ``deadline``
            seconds after the start.

    Attributes:
        replies: ``(node, hint, siblings)`` per answer, in arrival order.
        failed: nodes that did not answer.
    """

    def __init__(self, node, body: dict, need: int, spares: list[str], deadline: float):
        loop = asyncio.get_running_loop()
        self.node, self.body, self.need = node, body, need
        self.spares = list(spares)
        self.replies: list[tuple[str, str | None, Any]] = []
        self.failed: list[str] = []
        self._answered: dict[str, None] = {}  # the replicas counted, each once
        self.pending = 0
        self.reached: asyncio.Future = loop.create_future()
        self.settled: asyncio.Future = loop.create_future()
        self._loop = loop
        self._stop_replacing = loop.time() + deadline

    def start(self, targets: list[tuple[str, str | None]]) -> None:
        """Send to every ``(node, hint)``; a node's own copy is served in place."""
        self.pending += len(targets)
        for target, hint in targets:
            self._launch(target, hint)
        self._check()

    def covered(self) -> set[str]:
        """Owners that acknowledged, directly or through a stand-in's hint."""
        return {hint or node for node, hint, _ in self.replies}

    def _launch(self, target: str, hint: str | None) -> None:
        if target == self.node.name:
            self._answer(target, hint, self.node.local_request(self.body, hint))
            self.pending -= 1
        else:
            self.node.spawn(self._ask(target, hint), name=f"{self.body['type']}->{target}")

    async def _ask(self, target: str, hint: str | None) -> None:
        body = self.body if hint is None else {**self.body, "hint": hint}
        try:
            reply = await self.node.call(target, body, self.node.rpc_timeout)
        except (Timeout, RPCError):
            self.failed.append(target)
            spare = self._next_spare()
            if spare is not None:
                self.pending += 1
                self._launch(spare, hint or target)
        else:
            self._answer(target, hint, reply.get("siblings"))
        self.pending -= 1
        self._check()

    def _answer(self, target: str, hint: str | None, siblings) -> None:
        if target not in self._answered:
            self._answered[target] = None
            self.replies.append((target, hint, siblings))

    def _next_spare(self) -> str | None:
        if self._loop.time() > self._stop_replacing:
            return None
        while self.spares:
            spare = self.spares.pop(0)
            if not self.node.suspected(spare):
                return spare
        return None

    def _check(self) -> None:
        if not self.reached.done():
            if len(self.replies) >= self.need:
                self.reached.set_result(True)
            elif self.pending == 0:
                self.reached.set_result(False)
        if self.pending == 0 and not self.settled.done():
            self.settled.set_result(None)


class FailureDetector(_Host):
    """Suspicion from rpc timeouts, cleared by answers and by pings (a node mixin).

    The host node provides ``rpc_timeout``, the seconds a ping may take.

    Args:
        probe_interval: seconds between pings of each suspected peer.
    """

    if TYPE_CHECKING:  # what the host provides
        rpc_timeout: float

    def __init__(self, probe_interval: float):
        self.probe_interval = probe_interval
        self._suspects: dict[str, None] = {}
        self._named_tasks: dict[str, asyncio.Task] = {}

    def suspected(self, peer: str) -> bool:
        """True when ``peer`` (never this node itself) last failed to answer."""
        return peer in self._suspects

    @property
    def suspects(self) -> list[str]:
        """The suspected peers, sorted."""
        return sorted(self._suspects)

    async def call(self, dest: str, body: dict, timeout: float) -> dict:
        """``rpc`` that updates suspicion: a timeout suspects ``dest``, any answer clears it.

        Raises:
            Timeout, RPCError: as ``rpc`` does.
        """
        try:
            reply = await self.rpc(dest, body, timeout=timeout)
        except Timeout:
            if dest not in self._suspects:
                self._suspects[dest] = None
                self._ensure_task("probe", self._probe_loop)
            raise
        except RPCError:
            self._suspects.pop(dest, None)
            raise
        self._suspects.pop(dest, None)
        return reply

    async def handle_q_ping(self, msg):
        return {"type": "q_pong"}

    async def _probe_loop(self) -> None:
        while self._suspects:
            await asyncio.sleep(self.probe_interval)
            for peer in sorted(self._suspects):
                self.spawn(self._probe(peer), name=f"probe->{peer}")

    async def _probe(self, peer: str) -> None:
        try:
            await self.call(peer, {"type": "q_ping"}, self.rpc_timeout)
        except (Timeout, RPCError):
            pass

    def _ensure_task(self, name: str, factory: Callable) -> None:
        """Start ``factory()`` as a node task named ``name`` unless one is running."""
        task = self._named_tasks.get(name)
        if task is None or task.done():
            self._named_tasks[name] = self.spawn(factory(), name=name)
