"""The node runtime: what a node's code sees, whatever network it runs on.

A ``Node`` subclass defines ``async def handle_<type>(self, msg)`` methods;
returning a dict replies with it. The node reaches the world only through its
``Endpoint``: sending, rpc bookkeeping, handler dispatch, owned tasks, its
clock, rng and storage. The transport behind an endpoint is one method,
``transmit(endpoint, dest, body)``, so the simulated network and the aiohttp
transport are interchangeable and node code never knows which it runs on.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import operator
import random
import weakref
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Callable, Coroutine, Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from emulator.errors import CRASH, NOT_SUPPORTED, ConfigError, MessageError, RPCError, Timeout
from emulator.message import Message, copy_value, shown
from emulator.message import fast_copy_body as copy_body
from emulator.speedups import native
from emulator.tasks import HandlerTask, run_handler
from emulator.validate import is_number, timeout_error

if TYPE_CHECKING:
    from emulator.handles import Periodic

_T = TypeVar("_T")

_new = object.__new__

__all__ = ["Clock", "Endpoint", "Node", "Storage", "Transport", "handlers_of"]

_HANDLER_PREFIX = "handle_"
_handler_names: dict[type, dict[str, str]] = {}


def handlers_of(cls: type) -> dict[str, str]:
    """Message type -> method name, for every ``handle_<type>`` of ``cls`` (cached)."""
    names = _handler_names.get(cls)
    if names is None:
        names = {
            attr[len(_HANDLER_PREFIX) :]: attr
            for attr in sorted(dir(cls))
            if attr.startswith(_HANDLER_PREFIX) and callable(getattr(cls, attr))
        }
        _handler_names[cls] = names
    return names


class Transport(Protocol):
    """Carries bodies between endpoints: the one seam between nodes and a network."""

    def transmit(self, src: Endpoint, dest: str, body: dict[str, Any]) -> None:
        """Send ``body`` (already the receiver's own copy) from ``src`` to ``dest``."""


class Clock(Protocol):
    """A node's clock: what ``Node.now`` reads."""

    def now(self) -> float:
        """This node's idea of the time, in seconds."""


class Storage(MutableMapping[str, Any]):
    """A node's durable state: survives crash and restart, unlike its memory.

    Writes from an incarnation that has crashed are ignored, as a dead process
    cannot write to its disk; so are its changes in place to a stored value
    (the next incarnation gets a copy of the storage taken at the crash).
    """

    __slots__ = ("_data", "_endpoint")

    def __init__(self, data: dict[str, Any], endpoint: Endpoint):
        self._data = data
        self._endpoint = endpoint

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if self._endpoint.alive:
            self._data[key] = value

    def __delitem__(self, key: str) -> None:
        if self._endpoint.alive:
            del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __repr__(self) -> str:
        return f"Storage({self._data!r})"


class _NodeLog:
    """``self.log``: logging with the node's name and virtual time in front."""

    __slots__ = ("_endpoint", "_logger")

    def __init__(self, endpoint: Endpoint):
        self._endpoint = endpoint
        self._logger: logging.Logger | None = None  # made on first use: loggers live as long as the process

    def _log(self, level: int, msg: str, args: tuple[Any, ...]) -> None:
        if self._logger is None:
            self._logger = logging.getLogger(f"capsim.node.{self._endpoint.name}")
        if self._logger.isEnabledFor(level):
            prefix = f"[t={self._endpoint.true_time():.6f} {self._endpoint.name}] "
            self._logger.log(level, prefix + msg, *args)

    def debug(self, msg: str, *args: Any) -> None:
        self._log(logging.DEBUG, msg, args)

    def info(self, msg: str, *args: Any) -> None:
        self._log(logging.INFO, msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._log(logging.WARNING, msg, args)

    def error(self, msg: str, *args: Any) -> None:
        self._log(logging.ERROR, msg, args)


class Node:
    """Base class of every node: subclass it and add ``handle_<type>`` methods.

    Inside a node: ``self.name``, ``self.peers``, ``self.send``, ``self.rpc``,
    ``self.reply``, ``self.spawn``, ``self.now()``, ``self.rng``,
    ``self.storage``, ``self.log``. They are set before ``__init__`` runs, so
    a constructor may use them. ``on_start`` runs after start and after every
    restart; memory (attributes) is lost in a crash, ``storage`` is not.
    """

    _endpoint: Endpoint

    def __init__(self, **config: Any) -> None:
        if config:
            raise ConfigError(
                f"{type(self).__name__} got config {sorted(config)} but takes none; "
                "define __init__(self, ...) to accept it"
            )

    async def on_start(self) -> None:
        """Called after the node starts and after every restart. Override freely."""

    #: This node's name, e.g. ``"n1"``. (Read by a compiled getter: no Python frame, as node code reads it often.)
    name: str = property(operator.attrgetter("_endpoint.name"), doc='This node\'s name, e.g. ``"n1"``.')  # type: ignore[assignment]

    @property
    def peers(self) -> Sequence[str]:
        """The other server nodes, sorted (clients are not peers): a read-only list (``emulator.peers``)."""
        return self._endpoint.peers()

    @property
    def rng(self) -> random.Random:
        """This node's random stream, derived from the root seed by name."""
        return self._endpoint.rng

    @property
    def storage(self) -> Storage:
        """Durable state: a dict-like that survives crash and restart (attributes do not)."""
        return self._endpoint.storage

    @property
    def log(self) -> _NodeLog:
        """A logger (``debug``/``info``/``warning``/``error``) that prefixes virtual time and name."""
        return self._endpoint.log

    def now(self) -> float:
        """This node's clock in seconds: true time plus its skew and drift."""
        return self._endpoint.clock.now()

    def send(self, dest: str, body: dict[str, Any]) -> None:
        """Send ``body`` to ``dest`` and do not wait; it may be lost."""
        self._endpoint.send(dest, body)

    async def rpc(self, dest: str, body: dict[str, Any], timeout: float | None = 1.0) -> dict[str, Any]:
        """Send ``body`` to ``dest`` and wait for the reply body.

        Raises:
            Timeout: no reply within ``timeout`` seconds (indefinite).
            RPCError: the peer answered with an error body.
        """
        return await self._endpoint.rpc(dest, body, timeout)

    def reply(self, msg: Message, body: dict[str, Any]) -> None:
        """Answer ``msg`` now or later (a handler that replies this way returns None)."""
        self._endpoint.reply(msg, body)

    def spawn(self, coro: Coroutine[Any, Any, _T], name: str | None = None) -> asyncio.Task[_T]:
        """Run ``coro`` as a task this node owns; a crash cancels it."""
        return self._endpoint.spawn(coro, name)

    def every(self, interval: float, callback: Callable[..., object], *args: Any) -> Periodic | asyncio.Task[None]:
        """Call ``callback(*args)`` every ``interval`` seconds, from one interval from now, until cancelled.

        For periodic work such as a heartbeat: cheaper than a task looping
        on ``asyncio.sleep`` (one timer per tick, no task, future or handle),
        and the same timing: a pause holds a tick and a crash stops the
        timer. ``callback`` is a plain function (``self.send`` is); spawn a
        task for work that awaits. If it raises, the error is recorded as a
        node error and the timer stops. Returns the timer: ``cancel()`` stops it.
        """
        return self._endpoint.every(interval, callback, *args)

    def event(self, what: str, value: Any = None) -> None:
        """Note a protocol event (a failover, a breaker opening) in the run's trace.

        ``value`` must be JSON-compatible; events are part of the trace digest.
        """
        self._endpoint.event(what, value)

    def __repr__(self) -> str:
        endpoint = getattr(self, "_endpoint", None)
        return f"<{type(self).__name__} {endpoint.name if endpoint else '(unbound)'}>"


async def _every(interval: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
    if not is_number(interval, gt=0, lt=float("inf")):
        raise ConfigError(f"every() needs an interval of seconds > 0, got {interval!r}")
    while True:
        await asyncio.sleep(interval)
        callback(*args)


def _bind_fast_paths(node: Node, endpoint: Endpoint) -> None:
    # Calls from node code to send/rpc/reply go straight to the endpoint unless
    # the node class overrides them: one Python frame less per message.
    cls = type(node)
    if cls.send is Node.send:
        node.send = endpoint.send  # type: ignore[method-assign]  # the fast path this function binds
    if cls.reply is Node.reply:
        node.reply = endpoint.reply  # type: ignore[method-assign]  # as above


class _PendingRpc:
    """An rpc awaiting its reply: what a reply, a timeout, a crash or a deadlock report needs."""

    __slots__ = ("dest", "future", "kind", "sent", "timer")

    def __init__(
        self,
        future: asyncio.Future[dict[str, Any]],
        timer: asyncio.TimerHandle | None,
        dest: str,
        kind: str,
        sent: float,
    ):
        self.future = future  # resolved by the reply, failed by the timeout, cancelled by a crash
        self.timer = timer  # the timeout's timer, or None without a timeout
        self.dest = dest
        self.kind = kind  # the request's message type
        self.sent = sent  # loop time


class Endpoint:
    """One incarnation of a node on a transport: dispatch, rpc, owned tasks.

    Args:
        name: the node's name.
        transport: carries outgoing bodies (``transmit``).
        loop: the event loop its tasks run on.
        context: the ``contextvars.Context`` its code runs in.
        clock: the node's clock.
        rng: its random stream, or a function that makes it, called on first use.
        storage_data: its durable dict.
        ids: an iterator of message ids that survives restarts, so a late reply
            to an old incarnation's rpc never matches a new one.
        peers: a callable returning the sorted names of the other server nodes.
        on_error: called as ``on_error(endpoint, what, exc)`` when node code fails.
        on_event: called as ``on_event(endpoint, what, value)`` for ``Node.event``.
    """

    # Slots for what the compiled message path and dispatch read (emulator.speedups), and for what node
    # code reads per message (alive and _transmit in send, Node.name): a slot is in the endpoint's own
    # memory, where an attribute in __dict__ loads two more objects. The rest is in __dict__.
    # route_dest and route_link are the compiled path's copy of the route used last (routes is the
    # whole cache): it checks them before the dict. _handlers is replaced whole, never changed in place:
    # the compiled dispatch keeps the handler it found last for the dict it found it in.
    # CPython lays slots out in name order: the compiled dispatch reads _handler_done_cb and _handlers,
    # which share the 64-byte line of the endpoint's header (it keeps the loop, which never changes,
    # itself), and a send adds the line of name, route_dest and route_link (tests/emulator/test_node.py
    # checks it on live endpoints).
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_handler_done_cb",
        "_handlers",
        "_transmit",
        "alive",
        "loop",
        "name",
        "route_dest",
        "route_link",
        "routes",
    )

    def __init__(
        self,
        name: str,
        transport: Transport,
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context,
        clock: Clock,
        rng: random.Random | Callable[[], random.Random],
        storage_data: dict[str, Any],
        ids: Iterator[int],
        peers: Callable[[], Sequence[str]],
        on_error: Callable[[Endpoint, str, BaseException], object],
        on_event: Callable[[Endpoint, str, Any], object] | None = None,
    ) -> None:
        self.name = name
        self.transport = transport
        self.loop = loop
        self.context = context
        self.clock = clock
        self._rng = rng
        self.alive = True
        self.storage = Storage(storage_data, self)
        self.log = _NodeLog(self)
        self.peers = peers
        self._ids = ids
        self._on_error = on_error
        self._on_event = on_event
        self._pending: dict[int, _PendingRpc] = {}  # by msg_id
        self._tasks: dict[asyncio.Task[Any], None] = {}
        self._periodic: weakref.WeakSet[Periodic] = weakref.WeakSet()  # call_every timers, stopped by a crash
        #: handler tasks that are suspended (awaiting), kept by ``HandlerTask`` itself
        self.handler_tasks: dict[HandlerTask, None] = {}
        self._handlers: dict[str, Any] = {}
        self._run = context.run  # bound once: every delivery runs in the node's context
        self.deliver = functools.partial(context.run, self._deliver_here)  # type: ignore[method-assign,call-arg]  # see deliver()
        self._transmit = transport.transmit
        self._handler_done_cb = self._handler_done
        if native is not None:  # _deliver_here's common case compiled; it calls _deliver_here for the rest
            # It enters the node's context itself: context.run(_deliver_here, msg) in one call.
            dispatch = native.Dispatch(
                self, self._deliver_here, Message, HandlerTask, _enter_task, _leave_task, context
            )
            self.deliver = dispatch  # type: ignore[method-assign]
        self.node: Node | None = None
        #: per-destination state private to the transport (a route cache)
        self.routes: dict[str, Any] = {}

    def true_time(self) -> float:
        return self.loop.time()

    @property
    def rng(self) -> random.Random:
        """The node's random stream (made on first use when given as a function)."""
        rng = self._rng
        if not isinstance(rng, random.Random):
            rng = self._rng = rng()
        return rng

    # -- building the node ---------------------------------------------------------

    def build(self, factory: Callable[..., Node], config: dict[str, Any]) -> Node:
        """Make the node from ``factory(**config)`` with this endpoint bound first."""
        if isinstance(factory, type) and issubclass(factory, Node):
            node = factory.__new__(factory)
            node._endpoint = self
            self.context.run(node.__init__, **config)  # type: ignore[misc]  # made by __new__ just above
        else:
            made: object = self.context.run(factory, **config)
            if not isinstance(made, Node):
                raise ConfigError(f"node factory {factory!r} returned {made!r}, not an emulator.Node")
            node = made
            node._endpoint = self
        _bind_fast_paths(node, self)
        self.node = node
        self._handlers = {kind: getattr(node, attr) for kind, attr in handlers_of(type(node)).items()}
        return node

    def start(self) -> None:
        """Run ``on_start`` (eagerly, as a handler task)."""
        node = self.node
        if node is None:
            raise RuntimeError("Endpoint.start() before build()")
        self._run(run_handler, self, node.on_start(), "on_start", self._after_start, None)

    def _after_start(self, _: object, value: object, exc: BaseException | None) -> None:
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            self._on_error(self, "on_start", exc)

    # -- sending ---------------------------------------------------------------------

    def send(self, dest: str, body: dict[str, Any]) -> None:
        if self.alive:
            self._transmit(self, dest, copy_body(body))

    def reply(self, msg: Message, body: dict[str, Any]) -> None:
        request_id = msg.body.get("msg_id")
        if request_id is None or not self.alive:
            return  # a fire-and-forget message expects no reply
        out = copy_body(body)
        out["in_reply_to"] = request_id
        self._transmit(self, msg.src, out)

    async def rpc(self, dest: str, body: dict[str, Any], timeout: float | None = 1.0) -> dict[str, Any]:
        out = copy_body(body)
        if not self.alive:
            raise asyncio.CancelledError("the node crashed")
        msg_id = next(self._ids)
        out["msg_id"] = msg_id
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        timer = None
        if timeout is not None:
            try:
                seconds = timeout >= 0 and type(timeout) is not bool  # validate.is_timeout, inlined: once per rpc
            except TypeError:  # not a number at all
                seconds = False
            if not seconds:
                raise timeout_error("rpc timeout", timeout)
            timer = self.loop.call_later(timeout, self._expire, msg_id, dest, out["type"], timeout)
        self._pending[msg_id] = _PendingRpc(future, timer, dest, out["type"], self.loop.time())
        self._transmit(self, dest, out)
        try:
            reply = await future
        finally:
            if self._pending.pop(msg_id, None) is not None and timer is not None:
                timer.cancel()
        if reply.get("type") == "error":
            definite = reply.get("definite")  # the sender's override of the code's verdict, if any
            raise RPCError(
                reply.get("code", CRASH), str(reply.get("text", "")), definite if isinstance(definite, bool) else None
            )
        return reply

    def _expire(self, msg_id: int, dest: str, kind: str, timeout: float) -> None:
        pending = self._pending.pop(msg_id, None)
        if pending is not None and not pending.future.done():
            pending.future.set_exception(Timeout(f"no reply from {dest} to {kind!r} within {timeout}s"))

    # -- receiving ---------------------------------------------------------------------

    def deliver(self, msg: Message) -> None:
        """Hand ``msg`` to its rpc waiter or its handler.

        Called by the transport from a loop callback, never from inside a
        running task: a handler's first step runs here, as its own task.
        (Replaced in ``__init__`` by the same call made inside the node's
        context, without a Python frame of its own: it runs once per message.)
        """
        self._run(self._deliver_here, msg)

    def _deliver_here(self, msg: Message) -> None:
        # deliver, inside the node's context; the handler's start is HandlerTask.start, inlined.
        body = msg.body
        in_reply_to = body.get("in_reply_to")
        if type(in_reply_to) is int:  # ids are ints; anything else is not a reply of ours
            pending = self._pending.pop(in_reply_to, None)
            if pending is not None:
                if pending.timer is not None:
                    pending.timer.cancel()
                if not pending.future.done():
                    pending.future.set_result(body)
                return
            if body["type"] not in self._handlers:
                return  # a late reply to an rpc that already timed out
        kind = body["type"]
        handler = self._handlers.get(kind)
        if handler is None:
            self._answer_error(msg, RPCError(NOT_SUPPORTED, f"{self.name} has no handler for {kind!r}"))
            return
        coro = handler(msg)
        task = _new(HandlerTask)
        task._host = self
        task._coro = coro
        task._name = kind
        task._on_done = self._handler_done_cb
        task._arg = msg
        loop = self.loop
        _enter_task(loop, task)  # type: ignore[arg-type]  # it stands in for a Task (emulator.tasks)
        try:
            result = coro.send(None)
        except StopIteration as stop:
            task._done = True
            if stop.value is not None:  # a None result needs no reply: skip the call
                self._handler_done(msg, stop.value, None)
        except (KeyboardInterrupt, SystemExit):
            task._finish(None, None)
            raise
        except BaseException as error:
            task._finish(None, error)
        else:
            task._suspend(result)
        finally:
            _leave_task(loop, task)  # type: ignore[arg-type]  # as above

    def _handler_done(self, msg: Message, value: Any, exc: BaseException | None) -> None:
        if exc is None:
            if value is None:
                return
            if type(value) is dict:
                try:
                    self.reply(msg, value)
                    return
                except MessageError as error:  # a reply that cannot travel: the handler's bug, as if it raised
                    exc = error
            else:
                exc = MessageError(
                    f"handler for {msg.body['type']!r} returned {shown(value):.80}; return a dict or None"
                )
        if isinstance(exc, (RPCError, Timeout)):  # an answer, not a bug: pass it on
            self._answer_error(msg, exc)
        elif not isinstance(exc, asyncio.CancelledError):
            self._on_error(self, msg.body["type"], exc)
            self._answer_error(msg, RPCError(CRASH, f"{type(exc).__name__}: {exc}"))

    def _answer_error(self, msg: Message, error: RPCError | Timeout) -> None:
        self.reply(msg, error.to_body())

    def event(self, what: str, value: Any = None) -> None:
        if not self.alive:
            return
        if self._on_event is not None:
            self._on_event(self, str(what), copy_value(value, "event value"))
        else:
            self.log.info("event %s %r", what, value)

    # -- owned tasks ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, _T], name: str | None = None) -> asyncio.Task[_T]:
        if not self.alive:
            coro.close()
            raise asyncio.CancelledError("the node crashed")
        task = self.loop.create_task(
            coro, name=f"{self.name}:{name or getattr(coro, '__name__', 'task')}", context=self.context
        )
        self._tasks[task] = None
        task.add_done_callback(self._task_done)
        return task

    def every(self, interval: float, callback: Callable[..., object], *args: Any) -> Periodic | asyncio.Task[None]:
        if not self.alive:
            raise asyncio.CancelledError("the node crashed")
        if inspect.iscoroutinefunction(callback):
            raise ConfigError(
                f"every() calls a plain function, and {callback.__qualname__} is async: "
                "spawn a task that loops on asyncio.sleep for work that awaits"
            )
        where = f"every {getattr(callback, '__name__', 'callback')}"
        call_every = getattr(self.loop, "call_every", None)
        if call_every is None:  # a real event loop (the HTTP transport): a task that sleeps does the same
            return self.spawn(_every(interval, callback, args), where)
        timer: Periodic = call_every(
            interval, callback, *args, context=self.context, on_error=lambda exc: self._on_error(self, where, exc)
        )
        self._periodic.add(timer)
        return timer

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._on_error(self, task.get_name(), exc)

    def kill(self) -> None:
        """Crash this incarnation: stop its tasks, forget its rpcs, ignore its writes."""
        self.alive = False
        for timer in list(self._periodic):
            timer.cancel()
        for task in list(self._tasks) + list(self.handler_tasks):
            task.cancel("node crashed")
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
            pending.future.cancel("node crashed")
        self._pending.clear()

    def describe_waiting(self) -> list[str]:
        """One line per rpc awaiting a reply and per suspended handler, for deadlock reports."""
        lines = [
            f"{self.name} awaits a reply from {p.dest} to {p.kind!r} (sent at t={p.sent:.6f}, "
            f"{'no timeout' if p.timer is None else 'with a timeout'})"
            for p in self._pending.values()
        ]
        lines += [f"{self.name} handler {task.get_name()!r} is suspended" for task in self.handler_tasks]
        return lines
