"""Hosts: unmodified asyncio programs as machines of the simulation.

``sim.add_host("web", main)`` adds a machine named ``web`` whose program is
``main()``, an ordinary async function: it may start an aiohttp server,
open connections to other hosts by name (``http://db:5432/``), send
datagrams, sleep and time out, all in virtual time over the simulated
network. Hosts and nodes share that network, so ``partition``,
``set_link``, ``isolate``, ``crash``, ``restart``, ``pause`` and ``skew``
act on hosts exactly as on nodes.

- A host gets an IPv4 address (10.0.0.1, 10.0.0.2, ... in the order added);
  its name resolves to it, from ``getaddrinfo`` and from aiohttp's resolver.
- A crash cancels every task of the host's program and resets its
  connections; its sockets go dead: code of the dead incarnation that still
  runs can call them, but nothing leaves the host and nothing reaches it. A
  peer the reset reaches reads ``ConnectionResetError``; the reset is sent
  once, so a peer it does not reach (behind a partition, or the segment lost)
  learns when it next sends (a reset from the restarted host, or its user
  timeout) or by keepalive, as after a real crash. No timer of the dead
  incarnation's connections runs again, and the simulation lets go of its
  sockets, so crashing and restarting a host again and again does not grow
  the memory (though a timer the dead program itself set, with
  ``call_later``, still fires when due and holds what it refers to until
  then). A restart runs ``main``
  again with a fresh network stack; the host's ``storage`` survives, as a
  node's does.
- A pause stops the whole machine, its network stack included: its timers
  wait and segments to it are held until ``resume``.

Each incarnation runs in its own ``contextvars.Context`` (with ``OWNER``
set to the host's name, as a node's does), so every task, callback and
timer its code creates is the host's: a pause holds them and a crash finds
them.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import random
import re
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from typing import TYPE_CHECKING, Any

from emulator import sandbox
from emulator.errors import ConfigError, NotAllowed
from emulator.kernel import Kernel, World, ephemeral_ports, ipv4
from emulator.node import Storage
from emulator.sockets import LOOPBACK, WILDCARD
from emulator.tcp import Segment, TcpSettings

if TYPE_CHECKING:
    from emulator.loop import VirtualLoop
    from emulator.message import Message
    from emulator.network import Network
    from emulator.node import Clock
    from emulator.simulation import Simulation

#: What a host's program is: an async callable, called with the host's config.
HostMain = Callable[..., Awaitable[object]]
_Task = asyncio.Task[Any]

__all__ = ["Host", "HostEndpoint", "Hosts", "current_host"]

#: The host incarnation whose code is running (unset outside any host).
_LIFE: contextvars.ContextVar[HostEndpoint | None] = contextvars.ContextVar("capsim_host", default=None)

_NAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")
_KINDS = ("tcp.", "udp", "icmp.")


def current_host() -> HostEndpoint | None:
    """The incarnation of the host whose code calls this, or None outside any host."""
    return _LIFE.get()


class Hosts(World):
    """The hosts of one Simulation: their addresses, their network stacks, and the carrier.

    Made by the first ``sim.add_host``; ``sim.hosts`` returns it.

    Args:
        sim: the simulation.
        tcp: TCP's tunables (retransmission timeout, buffers, ...); see ``TcpSettings``.
    """

    def __init__(self, sim: Simulation, tcp: TcpSettings | None = None):
        super().__init__(sim.loop, tcp)
        self._sim = sim
        self._ips: dict[str, str] = {}  # lower-case name -> address
        self._names: dict[str, str] = {}  # address -> name
        self._ports: dict[str, Iterator[int]] = {}
        self._handles: dict[str, Host] = {}
        self.live: dict[str, HostEndpoint] = {}
        sandbox.install()
        sim.loop.set_world(self, sandbox.Sandbox(sim, current_host))
        self._previous_factory: Callable[..., asyncio.Future[Any]] | None = sim.loop.get_task_factory()
        sim.loop.set_task_factory(self._task)

    @property
    def tcp(self) -> TcpSettings:
        """TCP's tunables for every host (change them before the connections they should affect)."""
        return self.settings

    def add(self, name: str) -> Host:
        """Give ``name`` an address (called by ``sim.add_host``)."""
        if not isinstance(name, str) or not _NAME.match(name) or ipv4(name) is not None:
            raise ConfigError(
                f"a host name must be a valid DNS name such as 'web-1' or 'db.local' (letters, "
                f"digits and hyphens, dot-separated), got {name!r}"
            )
        if name.lower() in self._ips:
            raise ConfigError(f"a host named {name!r} already exists (names are case-insensitive)")
        n = len(self._ips)
        ip = f"10.{n // 65024}.{n // 254 % 256}.{n % 254 + 1}"
        self._ips[name.lower()] = ip
        self._names[ip] = name
        self._ports[name] = ephemeral_ports()
        host = self._handles[name] = Host(self._sim, name, ip)
        return host

    def ports(self, name: str) -> Iterator[int]:
        """Host ``name``'s ephemeral ports: one counter its incarnations share, so a restart carries on from it."""
        return self._ports[name]

    def host(self, name: str) -> Host:
        """The handle of host ``name``."""
        handle = self._handles.get(name)
        if handle is None:
            known = ", ".join(self._handles) or "none yet"
            raise ConfigError(f"unknown host {name!r}; hosts: {known}. Add one with sim.add_host(name, main)")
        return handle

    @property
    def names(self) -> list[str]:
        """Every host's name, in the order added."""
        return list(self._handles)

    def address(self, name: str) -> str:
        return self.host(name).address

    # -- World --------------------------------------------------------------------------------

    def current(self) -> Kernel:
        life = _LIFE.get()
        if life is None:
            raise NotAllowed(
                "a socket was used by code that runs on no host (a sim.run workload, a node's handler, a test "
                "body?): sockets belong to hosts. Run the code on one: sim.host(name).spawn(coro), or give it its "
                "own machine with sim.add_host(name, main)."
            )
        return life.kernel

    def lookup(self, host: str) -> str:
        if host in ("", WILDCARD):
            return WILDCARD
        if host.lower() == "localhost":  # /etc/hosts matches names in any case
            return LOOPBACK
        ip = ipv4(host)
        if ip is not None:
            if ip in self._names or ip.startswith("127.") or ip == WILDCARD:
                return ip
            raise self.outside(host, f"its hosts are {self._known()}")
        found = self._ips.get(host.lower().rstrip("."))
        if found is not None:
            return found
        if host in self._sim.nodes:
            raise NotAllowed(
                f"{host!r} is a capsim Node: it speaks messages, not sockets. Run a program there "
                f"with sim.add_host({host!r}, main) instead of add_node."
            )
        raise self.outside(host, f"its hosts are {self._known()}")

    def _known(self) -> str:
        return ", ".join(f"{n} ({ip})" for ip, n in self._names.items()) or "none yet"

    def name_of(self, ip: str) -> str | None:
        if ip.startswith("127."):
            return "localhost"
        return self._names.get(ip)

    def transmit(self, kernel: Kernel, dst_ip: str, segment: Segment) -> None:
        name = self._names.get(dst_ip)
        if name is None:
            raise self.outside(dst_ip, f"its hosts are {self._known()}")
        endpoint = kernel.endpoint
        assert endpoint is not None  # a kernel sends only from the incarnation it serves
        self._sim.network.transmit(endpoint, name, segment)

    def power_off(self) -> None:
        """The end of the world: stop every host's program, sending nothing (see ``Simulation.close``)."""
        for life in list(self.live.values()):
            life.kill(reset=False)

    def ip_of(self, name: str) -> str | None:
        return self._ips.get(name.lower())

    # -- tasks -----------------------------------------------------------------------------------

    def _task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        context: contextvars.Context | None = None,
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        """The loop's task factory: each task made by a host's code is that incarnation's, for a crash."""
        factory = self._previous_factory
        if factory is not None:
            task = factory(loop, coro, context=context, **kwargs) if context is not None else factory(loop, coro)
        else:
            task = asyncio.Task(coro, loop=loop, context=context, **kwargs)
        life = context.get(_LIFE) if context is not None else _LIFE.get()
        if life is not None:
            life.own(task)
        return task


class HostEndpoint:
    """One incarnation of a host: its program's tasks and its network stack.

    Built by the Simulation in place of a node's ``Endpoint`` (same
    constructor), so crash, restart, pause and skew treat it as a node.
    """

    def __init__(
        self,
        name: str,
        transport: Network,
        loop: VirtualLoop,
        context: contextvars.Context,
        clock: Clock,
        rng: Callable[..., random.Random],
        storage_data: dict[str, Any],
        ids: Iterator[int],
        peers: object,
        on_error: Callable[[HostEndpoint, str, BaseException], None],
        on_event: Callable[[HostEndpoint, str, object], None] | None = None,
    ):
        self.name = name
        self.network = transport
        self.loop = loop
        self.clock = clock
        self.rng = rng
        self.alive = True
        self.storage = Storage(storage_data, self)  # type: ignore[arg-type]  # it asks only .alive of either kind
        self.routes: dict[str, Any] = {}  # the network's route cache, as for a node
        self._on_error = on_error
        world = loop.world
        assert isinstance(world, Hosts)  # a Simulation with hosts set it
        self.hosts = world
        self.handle = self.hosts.host(name)
        self.ip = self.handle.address
        self.context = context.copy()  # this incarnation's own: a crash finds exactly its tasks
        self.context.run(_LIFE.set, self)
        self._run = self.context.run
        self.kernel = Kernel(self.hosts, name, self.ip, self.context, self.hosts.ports(name))
        self.kernel.endpoint = self
        self._tasks: dict[asyncio.Future[Any], None] = {}  # a task factory may make futures of its own
        self.main: _Task | None = None
        self.node: Host | None = None
        self._main: HostMain | None = None
        self._config: dict[str, Any] = {}

    def build(self, factory: HostMain, config: dict[str, Any]) -> Host:
        """Keep the program to run (``factory`` is the host's ``main``); returns the host's handle."""
        self._main, self._config = factory, config
        self.node = self.handle
        self.handle.attach(self)
        self.hosts.live[self.name] = self
        return self.handle

    def start(self) -> None:
        """Run the program: ``main(**config)``, plus ``storage=`` if ``main`` takes it."""
        if self._main is None:
            return
        config = dict(self._config)
        if "storage" in _parameters(self._main) and "storage" not in config:
            config["storage"] = self.storage
        try:
            coro = self._run(self._main, **config)
        except Exception as exc:
            self._on_error(self, "main", exc)
            return
        if not inspect.isawaitable(coro):
            self._on_error(
                self,
                "main",
                ConfigError(f"host {self.name!r}: main() returned {coro!r}, not a coroutine; make it an async def"),
            )
            return
        self.main = self.spawn(coro, "main")
        self.main.add_done_callback(self._main_done)  # other tasks' errors go to whoever awaits them

    def spawn(self, coro: Awaitable[Any], name: str | None = None) -> _Task:
        """Run ``coro`` as a task of this host; a crash cancels it."""
        if not self.alive:
            close = getattr(coro, "close", None)
            if close is not None:
                close()
            raise asyncio.CancelledError(f"host {self.name} crashed")
        runnable = coro if asyncio.iscoroutine(coro) else _awaited(coro)
        return self.loop.create_task(
            runnable, name=f"{self.name}:{name or getattr(runnable, '__name__', 'task')}", context=self.context
        )

    def own(self, task: asyncio.Future[Any]) -> None:
        self._tasks[task] = None
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._tasks.pop(task, None)

    def _main_done(self, task: _Task) -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved even from a crashed incarnation: asyncio does not log it then
        if exc is not None and self.alive:
            self._on_error(self, task.get_name(), exc)

    def deliver(self, msg: Message) -> None:
        """A segment or datagram from the network (a node's message to a host is ignored, like a closed port)."""
        if msg.body["type"].startswith(_KINDS):
            src_ip = self.hosts.ip_of(msg.src)
            if src_ip is not None:  # else a node's message that only looks like a segment
                self._run(self.kernel.receive, src_ip, self.ip, msg.body)

    def kill(self, reset: bool = True) -> None:
        """Crash: cancel every task of this incarnation, reset its connections (unless not ``reset``)."""
        self.alive = False
        if self.hosts.live.get(self.name) is self:
            del self.hosts.live[self.name]
        for task in list(self._tasks):
            task.cancel(f"host {self.name} crashed")
        self.kernel.crash(reset)

    def describe_waiting(self) -> list[str]:
        return self.kernel.describe()

    def __repr__(self) -> str:
        return f"<HostEndpoint {self.name} {self.ip}{'' if self.alive else ' (crashed)'}>"


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _parameters(fn: Callable[..., object]) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return {}


class Host:
    """A simulated machine, by name: what ``sim.add_host`` returns and ``sim.host(name)`` finds.

    The handle outlives crashes and restarts; ``incarnation`` is the running one.
    """

    def __init__(self, sim: Simulation, name: str, address: str):
        self._sim = sim
        self.name = name
        #: the host's IPv4 address on the simulated network
        self.address = address
        self._last: HostEndpoint | None = None  # the latest incarnation, for its storage

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.address}{'' if self.alive else ' (down)'}>"

    def attach(self, incarnation: HostEndpoint) -> None:
        """Record ``incarnation`` as the latest run, whose storage :attr:`storage` reads (``HostEndpoint.build``)."""
        self._last = incarnation

    @property
    def alive(self) -> bool:
        """Whether the host is up (not crashed)."""
        up: bool = self._sim.alive(self.name)
        return up

    @property
    def incarnation(self) -> HostEndpoint | None:
        """The running incarnation, or None while crashed."""
        hosts: Hosts = self._sim.hosts
        return hosts.live.get(self.name)

    @property
    def storage(self) -> Storage:
        """Durable state: a dict-like that survives crash and restart (memory does not).

        While the host is down it can be read; writes are ignored, as a dead machine cannot write.
        """
        if self._last is None:
            raise ConfigError(f"host {self.name!r} has not started yet: its storage exists from its first run")
        return self._last.storage

    @property
    def main(self) -> _Task | None:
        """The running incarnation's program task (None before it starts or while crashed)."""
        life = self.incarnation
        return life.main if life is not None else None

    def spawn(self, coro: Awaitable[Any], name: str | None = None) -> _Task:
        """Run ``coro`` on this host, as its own code (its sockets are the host's); a crash cancels it.

        Call it from outside ``sim.run`` or from a coroutine inside it, e.g.
        ``sim.run(sim.host("client").spawn(fetch()))``.
        """
        return self._need("spawn").spawn(coro, name)

    def _need(self, what: str) -> HostEndpoint:
        life = self.incarnation
        if life is None:
            raise ConfigError(
                f"host {self.name!r} is crashed: restart it with sim.restart({self.name!r}) before using {what}"
            )
        return life
