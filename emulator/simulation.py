"""The Simulation: nodes, clients, node faults, and running in virtual time.

One ``Simulation`` owns a ``VirtualLoop``, a ``Network``, the named random
streams of its seed, a ``Trace`` and a ``History``. Node faults (crash,
restart, pause, resume, skew) are its methods; link faults are methods of
``sim.network``. Every fault records itself in the history as a ``nemesis``
operation and in the trace.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import inspect
import itertools
import math
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from emulator.client import Client
from emulator.distributions import Constant, Distribution
from emulator.errors import ConfigError
from emulator.handles import RANGE_END
from emulator.history import History
from emulator.loop import OWNER, VirtualLoop
from emulator.message import copy_value
from emulator.network import Network
from emulator.node import Endpoint, Node
from emulator.peers import Peers
from emulator.rng import Streams
from emulator.trace import Trace
from emulator.validate import is_number, unknown_node

if TYPE_CHECKING:  # the socket layer is imported by the first host (add_host, sim.hosts): nodes never need it
    from emulator.hosts import Host, HostEndpoint, Hosts

__all__ = ["NodeClock", "NodeError", "Simulation"]

_T = TypeVar("_T")

_DEFAULT_LATENCY = Constant(0.001)  # immutable: one shared default, as the default argument was


@dataclass
class NodeError:
    """An exception raised by node code (a handler, on_start or a spawned task)."""

    time: float
    node: str
    where: str
    exception: BaseException
    traceback: str = field(repr=False)

    def __str__(self) -> str:
        return f"t={self.time:.6f} {self.node} in {self.where}: {type(self.exception).__name__}: {self.exception}"


class NodeClock:
    """A node's clock: true virtual time, plus an offset, running at a rate.

    Survives crash and restart, as a machine's clock does.
    """

    __slots__ = ("_base_local", "_base_true", "_loop", "_rate", "offset")

    def __init__(self, loop: VirtualLoop):
        self._loop = loop
        self._base_true = 0.0
        self._base_local = 0.0
        self._rate = 1.0
        self.offset = 0.0

    @property
    def rate(self) -> float:
        return self._rate

    def now(self) -> float:
        return self._base_local + (self._loop.time() - self._base_true) * self._rate

    def set(self, offset: float, drift: float) -> None:
        """From now on read true time + ``offset``, advancing at ``1 + drift``."""
        true = self._loop.time()
        self._base_true = true
        self._base_local = true + offset
        self._rate = 1.0 + drift
        self.offset = offset


@dataclass
class _Slot:
    """Everything about one node name that outlives an incarnation."""

    name: str
    factory: Callable[..., Any] | None  # a Node factory, or a host's main (None: a bare machine)
    config: dict[str, Any]
    server: bool
    context: contextvars.Context
    clock: NodeClock
    storage: dict[str, Any] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    endpoint: Endpoint | HostEndpoint | None = None
    endpoint_type: type[Endpoint | HostEndpoint] = Endpoint  # a host's is emulator.hosts.HostEndpoint


class Simulation:
    """A cluster of nodes on a simulated network, in virtual time.

    Args:
        seed: the root seed; every random choice derives from it by name.
        latency: default link latency (seconds or a distribution).
        loss: the default per-message probability of loss, in [0, 1].
        duplicate: the default per-message probability of a second copy, in [0, 1].
        reorder: default reordering: a share in [0, 1] of messages (True
            is 1) whose latency is rescaled at random and that may overtake,
            or be overtaken by, other messages on their link; the rest keep
            their link's order.
        fifo: True (the default): a link delivers in the order sent, except
            the reordered share; False: every message keeps its own latency
            draw, so any may overtake another (independent legs).
        keep_trace: keep every trace record in ``sim.trace.events``.
        trace_bodies: hash every delivered message body into the trace digest,
            not only its type (about 15% slower; the determinism tests use it).
    """

    def __init__(
        self,
        seed: int = 0,
        latency: Distribution | float = _DEFAULT_LATENCY,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: bool | float = False,
        keep_trace: bool = False,
        trace_bodies: bool = False,
        fifo: bool = True,
    ):
        self.seed = seed
        self.streams = Streams(seed)
        self.loop = VirtualLoop()  # type: ignore[abstract]  # LoopBase sets the real-I/O methods as refusals
        self.loop.confine()  # time.sleep, threads and real sockets in its code: NotAllowed
        self.loop.set_exception_handler(self._loop_error)
        self.trace = Trace(keep=keep_trace)
        self.history = History()
        self.errors: list[NodeError] = []
        #: protocol events from Node.event / record_event, oldest first
        self.events: list[dict[str, Any]] = []
        self.network = Network(
            self.loop,
            self.streams,
            self.trace,
            self.record_nemesis,
            latency=latency,
            loss=loss,
            duplicate=duplicate,
            reorder=reorder,
            trace_bodies=trace_bodies,
            fifo=fifo,
        )
        self._slots: dict[str, _Slot] = {}
        self._processes = itertools.count()
        self._servers_cache: tuple[str, ...] | None = None
        self._closing = False
        self.loop.waiter_reports.append(self._describe_waiting)

    # -- building -------------------------------------------------------------------------

    def add_node(self, name: str, factory: Callable[..., Node], **config: Any) -> Node:
        """Add a server node made by ``factory(**config)`` and start it.

        Args:
            name: a unique name such as ``"n1"``.
            factory: a ``Node`` subclass (or a callable returning a Node).
            **config: passed to the factory now and again at every restart, the
                same objects each time: a list in it outlives crashes (a test
                can use one to watch a node; a node should not keep state in it).
        """
        if not callable(factory):
            raise ConfigError(f"add_node({name!r}, ...) needs a Node subclass as factory, got {factory!r}")
        return cast(Node, self._add(name, factory, config, server=True))  # an Endpoint builds a Node

    def add_client(self, name: str) -> Client:
        """Add a client node that records its operations in ``sim.history``."""
        config = {"record": self._record, "new_process": self._processes.__next__}
        return cast(Client, self._add(name, Client, config, server=False))  # built by Client

    def _add(
        self,
        name: str,
        factory: Callable[..., Any] | None,
        config: dict[str, Any],
        server: bool,
        endpoint_type: type[Endpoint | HostEndpoint] = Endpoint,
    ) -> Node | Host:
        _check_name(name)
        if name in self._slots:
            raise ConfigError(f"a node named {name!r} already exists; pick another name")
        context = contextvars.Context()
        context.run(OWNER.set, name)
        slot = _Slot(name, factory, dict(config), server, context, NodeClock(self.loop), endpoint_type=endpoint_type)
        self._slots[name] = slot
        self._servers_cache = None
        self.network.register(name, server)
        try:
            return self._boot(slot)
        except BaseException:  # its constructor refused: the name stays free, and no peer lists it
            del self._slots[name]
            self._servers_cache = None
            self.network.unregister(name)
            raise

    def _boot(self, slot: _Slot) -> Node | Host:
        """Start an incarnation of ``slot``: its Node, or for a host, the host's handle."""
        endpoint = slot.endpoint_type(
            slot.name,
            self.network,
            self.loop,
            slot.context,
            slot.clock,
            functools.partial(self.streams, f"node:{slot.name}"),
            slot.storage,
            slot.ids,
            self._peers_of(slot.name),
            self._node_error,
            self._node_event,
        )
        try:
            node = endpoint.build(slot.factory, slot.config)  # type: ignore[arg-type]  # a host's: its main, or None
        except BaseException:
            endpoint.kill()  # what its constructor spawned never runs
            raise
        slot.endpoint = endpoint
        self.network.attach(slot.name, endpoint)
        self.loop.push_soon(self._start, endpoint)
        return node

    def _start(self, endpoint: Endpoint) -> None:
        """Run ``on_start`` (and the rest of a start), unless a later incarnation replaced it; paused, at resume."""
        if endpoint.alive and not self.loop.hold_if_paused(endpoint.name, self._start, endpoint):
            endpoint.start()

    def _peers_of(self, name: str) -> Callable[[], Peers]:
        view: list[Peers | None] = [None]  # the Peers of the current server list: every node shares that list

        def peers() -> Peers:
            servers = self._server_names()
            current = view[0]
            if current is None or current.servers is not servers:
                current = view[0] = Peers(servers, name)
            return current

        return peers

    def _server_names(self) -> tuple[str, ...]:
        if self._servers_cache is None:
            self._servers_cache = tuple(sorted(n for n, s in self._slots.items() if s.server))
        return self._servers_cache

    @property
    def servers(self) -> list[str]:
        """The names of the server nodes, sorted."""
        return list(self._server_names())

    @property
    def nodes(self) -> list[str]:
        """The names of every node, servers and clients, sorted."""
        return sorted(self._slots)

    def node(self, name: str) -> Node | Host | None:
        """The live incarnation of ``name``, or None while it is crashed (a host's: its ``Host`` handle)."""
        endpoint = self._slot(name).endpoint
        return endpoint.node if endpoint is not None else None

    def rng(self, name: str) -> random.Random:
        """A random stream for the caller's own use (a workload), derived by name."""
        return self.streams(f"user:{name}")

    # -- node faults --------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        """Stop ``name``: tasks cancelled, memory lost, messages to it dropped until restart.

        Its storage is kept as it stands at the crash: the next incarnation
        gets a deep copy, so what the dead one's cancelled code still does
        (a ``finally`` that appends to a stored list) changes nothing durable,
        as a dead process cannot write to its disk.
        """
        slot = self._slot(name)
        endpoint = slot.endpoint
        if endpoint is None:
            return
        slot.endpoint = None
        self.network.detach(name)
        endpoint.kill()
        slot.storage = _detached(slot.storage)
        self.loop.resume_owner(name)  # let the cancellations run
        self.record_nemesis("crash", name)

    def restart(self, name: str) -> Node | Host:
        """Start a fresh instance of a crashed ``name``, same factory, config and storage.

        Returns:
            The new Node (for a host, the host's handle).
        """
        slot = self._slot(name)
        if slot.endpoint is not None:
            raise ConfigError(f"{name!r} is running; crash it before restarting it")
        self.record_nemesis("restart", name)
        return self._boot(slot)

    def pause(self, name: str) -> None:
        """Freeze ``name``: its timers, tasks and inbox wait until ``resume``."""
        if self._slot(name).endpoint is None:
            return
        self.loop.pause_owner(name)
        self.network.pause(name)
        self.record_nemesis("pause", name)

    def resume(self, name: str) -> None:
        """Unfreeze ``name``: what fell due while paused runs now, at the time of the resume.

        First its held timers and callbacks, in the order they fell due, then
        its held messages, in the order they arrived; a task that one of its
        timers woke takes its next step after those messages' handlers start
        (as a process woken from SIGSTOP finds its timers and its inbox due at
        once), whichever fell due first.
        """
        self._slot(name)
        self.loop.resume_owner(name)
        self.network.resume(name)
        self.record_nemesis("resume", name)

    def is_paused(self, name: str) -> bool:
        """Whether ``name`` is paused: true from a ``pause`` to the next ``resume`` or ``crash``.

        Pauses are not counted (a second ``pause`` changes nothing; one
        ``resume`` ends them all), and a crashed node is never paused: a fault
        policy that shares a node with others keeps its own ledger of who holds
        a pause (``faults.Injector`` does).

        Raises:
            ConfigError: no node is called ``name``.
        """
        self._slot(name)
        return self.network.paused(name)

    def skew(self, name: str, offset: float = 0.0, drift: float = 0.0) -> None:
        """Make ``name``'s ``now()`` read true time + ``offset``, advancing at ``1 + drift``.

        Only the node's clock moves: asyncio timers keep true virtual time.
        """
        for label, value in (("offset", offset), ("drift", drift)):
            if not is_number(value, finite=True):
                raise ConfigError(f"skew {label} must be a finite number, got {value!r}")
        if drift <= -1.0:
            raise ConfigError(f"skew drift must be > -1 (a clock cannot run backwards), got {drift!r}")
        self._slot(name).clock.set(float(offset), float(drift))
        self.record_nemesis("skew", [name, offset, drift])

    def _describe_waiting(self) -> list[str]:
        return [
            line
            for slot in self._slots.values()
            if slot.endpoint is not None
            for line in slot.endpoint.describe_waiting()
        ]

    def clock_of(self, name: str) -> tuple[float, float]:
        """``(offset, drift)`` of ``name``'s clock as ``skew`` last set them (0, 0 if never)."""
        clock = self._slot(name).clock
        return clock.offset, clock.rate - 1.0

    def alive(self, name: str) -> bool:
        """Whether ``name`` is running (not crashed)."""
        return self._slot(name).endpoint is not None

    def _slot(self, name: str) -> _Slot:
        slot = self._slots.get(name)
        if slot is None:
            raise unknown_node(name, self._slots)
        return slot

    # -- running ----------------------------------------------------------------------------------

    @overload
    def run(self, coro: Awaitable[_T], until: float | None = None) -> _T: ...

    @overload
    def run(self, coro: None = None, until: float | None = None) -> None: ...

    def run(self, coro: Awaitable[_T] | None = None, until: float | None = None) -> _T | None:
        """Run the simulation in virtual time.

        ``sim.run(workload())`` runs until the coroutine ends and returns its
        result; ``sim.run(until=60.0)`` runs until that virtual time; with
        neither, it runs until nothing is left to do.

        Raises:
            Deadlock: the coroutine waits, but nothing can ever wake it.
            Unfinished: ``until`` came before the coroutine ended.
            ConfigError: ``until`` is not a time, or is before ``sim.now``.
        """
        if until is not None and not is_number(until, ge=-math.inf):  # any number but NaN
            raise ConfigError(f"until must be a virtual time in seconds, got {until!r}")
        if (
            until is not None
            and until < self.now
            and (until <= -RANGE_END or round(until * 1e9) < round(self.now * 1e9))
        ):
            if inspect.iscoroutine(coro):
                coro.close()  # refused: it will never run, and must not warn that it was never awaited
            raise ConfigError(
                f"sim.run(until={until!r}) is in the past: virtual time is already {self.now!r} s; "
                "until is an absolute time, so run for d more seconds with sim.run(until=sim.now + d)"
            )
        if coro is None:
            self.loop.run_until(until)
            return None
        if inspect.iscoroutinefunction(coro):
            raise ConfigError("sim.run takes a coroutine: write sim.run(workload()), not sim.run(workload)")
        if not inspect.isawaitable(coro):
            raise ConfigError(f"sim.run takes a coroutine such as workload(), got {coro!r}")
        task = asyncio.ensure_future(coro, loop=self.loop)
        if isinstance(task, asyncio.Task):
            task.set_name("workload")
        return self.loop.run_until_complete(task, until)

    @property
    def now(self) -> float:
        """Virtual seconds since the simulation began."""
        return self.loop.time()

    def trace_digest(self) -> str:
        """Hex sha256 of the canonical trace: equal for equal seeds, in any process."""
        return self.trace.digest()

    # -- recording -------------------------------------------------------------------------------

    def _record(self, op: dict[str, Any]) -> dict[str, Any]:
        op["time"] = self.loop.time()
        if self._closing:
            return op  # the cleanup after the end (close) is not part of the run
        self.history.append(op)
        self.trace.append(
            (self.loop.time_ns(), "op", op["process"], op["type"], op["f"], op.get("key"), op.get("value"))
        )
        return op

    def record_nemesis(self, f: str, value: Any = None) -> dict[str, Any]:
        """Put a fault (or its repair) in the history and the trace as a ``nemesis`` info op.

        The kernel's own fault mechanisms call this; fault policies call it to
        bracket their faults (``start-partition`` ... ``stop-partition``).
        """
        copy_value(value, "nemesis value")  # JSON only: a set's repr, in the trace, would follow the hash seed
        return self._record({"process": "nemesis", "type": "info", "f": f, "value": value})

    def record_event(self, node: str, what: str, value: Any = None) -> None:
        """Put a protocol event (a breaker opening, a failover) in the trace and ``sim.events``.

        ``value`` must be JSON-compatible, as ``Node.event``'s (a ``MessageError`` says what is not).
        """
        copy_value(value, "event value")
        self._event(node, what, value)

    def _event(self, node: str, what: str, value: Any) -> None:
        self.trace.append((self.loop.time_ns(), "event", node, what, value))
        self.events.append({"time": self.loop.time(), "node": node, "what": what, "value": value})

    def _node_event(self, endpoint: Endpoint | HostEndpoint, what: str, value: Any) -> None:
        self._event(endpoint.name, what, value)  # Node.event checked (and copied) the value

    def _node_error(self, endpoint: Endpoint | HostEndpoint, where: str, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.errors.append(NodeError(self.loop.time(), endpoint.name, where, exc, text))
        self.trace.append((self.loop.time_ns(), "error", endpoint.name, where, type(exc).__name__))

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Not traced: such reports can come from the garbage collector at any time.
        if context.get("message", "").startswith("Task was destroyed but it is pending"):
            return  # a simulation that stops leaves tasks waiting: the world just ended
        exc = context.get("exception") or RuntimeError(context.get("message", "unhandled error"))
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.errors.append(NodeError(loop.time(), "(loop)", context.get("message", ""), exc, text))

    # -- hosts: unmodified asyncio programs (emulator.hosts) -------------------------------------------

    def add_host(
        self, name: str, main: Callable[..., Awaitable[Any]] | None = None, *, server: bool = True, **config: Any
    ) -> Host:
        """Add a machine named ``name`` that runs ``main(**config)``, an async function, and start it.

        The program uses asyncio's networking as it would on a real machine
        (aiohttp, streams, datagrams), over the simulated network, in virtual
        time; other hosts reach it by ``name``. A crash cancels it and resets
        its connections; a restart runs ``main`` again. If ``main`` takes a
        ``storage`` argument it gets the host's durable storage.

        Args:
            name: a DNS name such as ``"web-1"``; it resolves to the host's address.
            main: the program, or None for a machine that runs only what is
                spawned on it (``sim.host(name).spawn(coro)``).
            server: False for a client machine, left out of ``sim.servers``
                (and so out of the nemeses' targets).
            **config: keyword arguments of ``main``, the same objects at every restart.
        """
        if main is not None and not callable(main):
            raise ConfigError(f"add_host({name!r}, main): main must be an async function, got {main!r}")
        if name in self._slots:
            raise ConfigError(f"a node named {name!r} already exists; pick another name")
        from emulator.hosts import HostEndpoint

        self.hosts.add(name)
        self._add(name, main, config, server=server, endpoint_type=HostEndpoint)
        return self.hosts.host(name)

    @property
    def hosts(self) -> Hosts:
        """The hosts' addresses, TCP settings and handles (made on first use)."""
        hosts = self.__dict__.get("_hosts")
        if hosts is None:
            from emulator.hosts import Hosts

            hosts = self._hosts = Hosts(self)
        return hosts

    def host(self, name: str) -> Host:
        """The handle of host ``name`` (``alive``, ``address``, ``storage``, ``spawn``)."""
        return self.hosts.host(name)

    def close(self) -> None:
        """End the simulation: stop every host's program and close the loop; it cannot run again.

        ``with Simulation(...) as sim:`` calls it at the end of the block.

        Every node's and host's tasks are cancelled and their cleanup runs (as at
        the end of ``asyncio.run``) against a network that is gone, so nothing is
        added to the trace or the history. Without this, a task still pending when
        its Simulation is garbage-collected is closed mid-``await``, and its
        cleanup fails on the closed loop ("Exception ignored in: <coroutine ...>").
        """
        if self.loop.is_closed():
            return
        self._closing = True
        with self.trace.held():
            for name, slot in sorted(self._slots.items()):
                if slot.endpoint is not None:
                    slot.endpoint.kill()
                    self.loop.resume_owner(name)
            if "_hosts" in self.__dict__:
                self._hosts.power_off()
            self.loop.run_until(self.now)
            # What no node or host owns (the caller's own tasks, tasks a library made from a callback):
            # cancelled in the order they were made, as asyncio.run does, and run to their end.
            for _ in range(3):
                left = sorted(asyncio.all_tasks(self.loop), key=_creation_order)
                if not left:
                    break
                for task in left:
                    task.cancel()
                self.loop.run_until(self.now)
        self.loop.close()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_op(self, op: dict[str, Any]) -> dict[str, Any]:
        """Put a client operation (invoke, ok, fail or info) in the history and the trace.

        For clients other than ``emulator.Client`` (``faults.httpkv.HttpKVClient``).
        """
        return self._record(op)

    def new_process(self) -> int:
        """A fresh process id for a client's operations (a retired process is never reused)."""
        return next(self._processes)


def _check_name(name: object) -> None:
    """A node's name: a non-empty string without "->", which names a link's random stream (``net:a->b``)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a node name must be a non-empty string, got {name!r}")
    if "->" in name:  # a -> "b->c" and "a->b" -> c would share one stream, and perturb each other's draws
        raise ConfigError(f"a node name cannot contain '->' (it names links: 'a->b'), got {name!r}; use '-' or '_'")


def _creation_order(task: asyncio.Task[Any]) -> tuple[int, int, str]:
    # asyncio names unnamed tasks Task-<n> from one counter, so n is the order they were made in;
    # named tasks follow by name. (The set asyncio.all_tasks returns has no stable order.)
    prefix, _, n = task.get_name().rpartition("-")
    if prefix == "Task" and n.isdigit():
        return (0, int(n), "")
    return (1, 0, task.get_name())


def _detached(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a crashed node's storage, for its next incarnation.

    One memo for all the values keeps what two keys share shared. A value
    ``copy.deepcopy`` refuses (a lock, an open file) stays the same object.
    """
    memo: dict[int, Any] = {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        try:
            out[key] = copy.deepcopy(value, memo)
        except Exception:  # not copyable: shared with the dead incarnation, as before
            out[key] = value
    return out
