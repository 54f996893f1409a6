"""The control plane of a real cluster: who its nodes are, which are down, and the calls that reach them.

``RealCluster`` (node faults) and ``RealNetwork`` (link faults) both change
the nodes through one ``ControlPlane``, and neither reaches into the other:

- ``check(name)`` answers "is this a node of the cluster?" with one error
  for both;
- ``broadcast(action, payload)`` sends a control action to every server
  that can answer (not crashed, not paused: calls reach each node in the
  order they were made) and applies it to the clients hosted in this
  process; ``send`` reaches one server;
- every call returns an ``asyncio.Future`` done when the nodes have applied
  it; a failure is kept in ``errors`` (with the cluster's time), and raised
  again to whoever awaits the future; ``settle()`` waits for them all;
- ``record(f, value)`` puts the fault in the cluster's history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import aiohttp

from emulator.errors import ConfigError
from emulator.transport.control import ControlClient, ControlQueue
from emulator.transport.errors import ControlError
from emulator.transport.host import NodeHost
from emulator.validate import unknown_node

__all__ = ["ControlPlane", "Fault"]

#: A change on its way to the nodes: done when every one has applied it (a ControlError if one failed).
Fault = asyncio.Future[Any]


class ControlPlane:
    """The members of a real cluster and the control calls sent to them.

    Args:
        urls: server name -> its base URL.
        token: the cluster secret the control endpoints ask for.
        session: the HTTP session the calls share (the caller closes it).
        clock: the cluster's time, for ``errors``.
        record: puts a fault in the cluster's history, as ``record(f, value)``.

    Attributes:
        errors: control calls that failed, as dicts (time, what, error).
    """

    def __init__(
        self,
        urls: dict[str, str],
        token: str | None,
        session: aiohttp.ClientSession,
        clock: Callable[[], float],
        record: Callable[[str, object], object],
    ):
        self._urls = dict(sorted(urls.items()))
        self._queues = {name: ControlQueue(ControlClient(url, token, session)) for name, url in self._urls.items()}
        self._clients: dict[str, NodeHost] = {}
        self._down: dict[str, None] = {}
        self._paused: dict[str, None] = {}
        self._pending: set[asyncio.Future[Any]] = set()
        self._clock = clock
        self._record = record
        self.errors: list[dict[str, Any]] = []

    # -- members ----------------------------------------------------------------------

    @property
    def servers(self) -> list[str]:
        """The server names, sorted."""
        return list(self._urls)

    @property
    def nodes(self) -> list[str]:
        """Servers and clients, sorted."""
        return sorted([*self._urls, *self._clients])

    @property
    def clients(self) -> dict[str, NodeHost]:
        """The client hosts in this process, by name (a copy)."""
        return dict(self._clients)

    def add_client(self, name: str, host: NodeHost) -> None:
        """Count ``host`` as a member: it is given every later control action."""
        self._clients[name] = host

    def url(self, name: str) -> str:
        """The base URL of a server or client."""
        return self._urls[self.check(name)] if name in self._urls else self._clients[self.check(name)].url

    def check(self, name: object) -> str:
        """``name`` if it is a node of the cluster, else a ConfigError naming the known ones."""
        if not isinstance(name, str) or (name not in self._urls and name not in self._clients):
            raise unknown_node(name, self.nodes, empty="none")
        return name

    def check_server(self, name: object) -> str:
        """``name`` if it is a server (node faults apply to servers only), else a ConfigError."""
        checked = self.check(name)
        if checked not in self._urls:
            raise ConfigError(f"{name!r} is a client of this process; node faults apply to servers")
        return checked

    def down(self, name: str) -> bool:
        """Whether the server ``name`` is crashed (control calls skip it)."""
        return name in self._down

    def set_down(self, names: Iterable[str]) -> None:
        """Mark servers crashed: calls skip them until ``set_up``."""
        for name in names:
            self._down[name] = None

    def set_up(self, name: str) -> None:
        """Mark a server running again."""
        self._down.pop(name, None)

    def paused(self, name: str) -> bool:
        """Whether the server ``name`` is a stopped process (SIGSTOP): it cannot answer, so calls skip it."""
        return name in self._paused

    def set_paused(self, names: Iterable[str]) -> None:
        """Mark servers stopped: calls skip them until ``set_resumed`` (whoever resumes one brings it up to date)."""
        for name in names:
            self._paused[name] = None

    def set_resumed(self, name: str) -> None:
        """Mark a server no longer stopped."""
        self._paused.pop(name, None)

    # -- calls ------------------------------------------------------------------------

    def record(self, f: str, value: object) -> None:
        """Put the fault ``f`` in the cluster's history as a ``nemesis`` op."""
        self._record(f, value)

    def broadcast(self, action: str, payload: dict[str, Any]) -> Fault:
        """Send ``action`` to every server not crashed or paused, and apply it to the in-process clients."""
        futures = [
            queue.submit(action, payload)
            for name, queue in self._queues.items()
            if name not in self._down and name not in self._paused
        ]
        for host in self._clients.values():
            host.faults.apply(action, payload)
            host.faults_changed()
        return self.joined(futures, action)

    def send(self, name: str, action: str, payload: dict[str, Any]) -> Fault:
        """Queue ``action`` for the server ``name`` alone; the future holds its answer (not tracked)."""
        return self._queues[name].submit(action, payload)

    def joined(self, futures: list[asyncio.Future[Any]], what: str) -> Fault:
        """A tracked future done when all of ``futures`` are; a ControlError if any failed."""
        return self.track(_all(futures, what), what)

    def track(self, coro: Coroutine[Any, Any, object], what: str) -> Fault:
        """Run ``coro`` as a task that ``settle`` waits for and whose failure lands in ``errors``."""
        task = asyncio.get_running_loop().create_task(coro, name=f"capsim-fault:{what}")
        self._pending.add(task)
        task.add_done_callback(lambda t: self._settled(t, what))
        return task

    def done(self) -> Fault:
        """A future already done (a fault with nothing to send)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def _settled(self, task: asyncio.Future[Any], what: str) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:  # retrieved here, raised again on await
            self.errors.append({"time": self._clock(), "what": what, "error": str(task.exception())})

    async def settle(self) -> None:
        """Wait until every call made so far has been applied (or failed: see ``errors``)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def status(self, name: str) -> dict[str, Any]:
        """``GET /status`` of one server.

        Raises:
            ControlError: it does not answer (crashed, or paused and the call timed out).
        """
        return await self._queues[self.check_server(name)].client.status()

    async def statuses(self) -> list[dict[str, Any]]:
        """``GET /status`` of every live server, in name order."""
        return [await self.status(name) for name in self._urls if name not in self._down]

    async def close(self) -> None:
        """Stop the call queues (call ``settle`` first to let them finish)."""
        for queue in self._queues.values():
            await queue.close()


async def _all(futures: list[asyncio.Future[Any]], what: str) -> list[Any]:
    results = await asyncio.gather(*futures, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise ControlError(f"{what} failed on {len(failures)} node(s): {failures[0]}")
    return results
