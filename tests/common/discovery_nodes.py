"""Nodes and an oracle for the discovery tests and demo checks.

``LoggedInstance`` keeps ``(sent, acknowledged)`` for each heartbeat a
registry acknowledged (in a list the test owns, so it outlives a crash).
``Looker`` looks a service up every ``every`` seconds and keeps each answer
with the times it was asked and answered, or the error. ``missed`` names
the instances an answer left out although a heartbeat acknowledged before
the lookup began keeps them alive past its answer (a lease runs ``ttl``
from when a replica took the heartbeat, which is after it was sent): the
CP registry's promise is that there are none.
"""

from __future__ import annotations

import asyncio

import emulator as em
from nodes.discovery import Instance, Resolver


class LoggedInstance(Instance):
    """An Instance that appends ``(sent, acknowledged)`` of each acknowledged heartbeat to ``acks``."""

    def __init__(self, acks: list, **config):
        super().__init__(**config)
        self.acks = acks
        beat = self.announcer.beat

        async def logged_beat() -> bool:
            sent = self.now()
            ok = await beat()
            if ok:
                self.acks.append((sent, self.now()))
            return ok

        self.announcer.beat = logged_beat


class Looker(em.Node):
    """Looks up ``service`` at ``registry`` every ``every`` seconds; keeps (asked, answered, instances or error)."""

    def __init__(self, service: str, registry: str, every: float = 0.05, seen: list | None = None):
        self.service, self.registry, self.every = service, registry, every
        self.seen = seen if seen is not None else []

    async def on_start(self):
        self.spawn(self._loop())

    async def _loop(self):
        while True:
            asked = self.now()
            try:
                reply = await self.rpc(self.registry, {"type": "lookup", "service": self.service}, timeout=0.5)
                self.seen.append((asked, self.now(), reply["instances"]))
            except (em.RPCError, em.Timeout) as exc:
                self.seen.append((asked, self.now(), exc))
            await asyncio.sleep(self.every)


class Caller(em.Node):
    """Resolves ``service`` through a ``Resolver`` and sends a request to each instance in turn, every ``every``.

    ``sent`` gets ``(time, instance)`` for each request sent.
    """

    def __init__(self, service: str, registries: list[str], cache_ttl: float, sent: list, every: float = 0.01):
        self.service, self.every, self.sent = service, every, sent
        self.resolver = Resolver(self, registries, cache_ttl=cache_ttl)

    async def on_start(self):
        self.spawn(self._loop())

    async def _loop(self):
        turn = 0
        while True:
            try:
                instances = await self.resolver.lookup(self.service)
            except em.RPCError:
                instances = []
            if instances:
                target = instances[turn % len(instances)]
                turn += 1
                self.sent.append((self.now(), target))
                self.send(target, {"type": "request", "key": turn})
            await asyncio.sleep(self.every)


def missed(answer: list[str], asked: float, answered: float, acks: dict[str, list], ttl: float) -> list[str]:
    """Instances ``answer`` left out although an acknowledged heartbeat kept them alive throughout the lookup."""
    return sorted(instance for instance, beats in acks.items() if instance not in answer
                  and any(a <= asked and s + ttl > answered for s, a in beats))
