"""One node on a real asyncio loop, reachable over HTTP: ``NodeHost``.

A host builds the same ``Endpoint`` the simulation builds, with real parts:
an ``HttpTransport`` to send, an aiohttp server to receive (``POST /msg``),
a ``WallClock``, a ``random.Random`` seeded from ``seed`` (or from the OS
when none is given: a real run is not replayable either way, since the
network's timing is real), a storage dict (saved to a file with
``data_dir``), and message ids that start from the wall clock in
microseconds so a restarted process never reuses one. Node code cannot tell
it from the simulation.

Messages are delivered from a loop callback, never from inside the request
handler's task: the runtime runs a handler's first step in place, which
asyncio allows only outside another task.

``pause`` (a ``LinkFaults`` action) is a soft pause: the node's inbox (up
to ``max_held`` messages, then dropped as ``overflow``) and outbox wait,
but its timers keep running, because a real loop cannot freeze
one node's timers. For a true stop-the-world pause, stop the process
(``RealCluster.pause`` sends SIGSTOP to a node process).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import errno
import fcntl
import itertools
import logging
import math
import os
import random
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from emulator.errors import ConfigError
from emulator.message import Message
from emulator.node import Endpoint, Node
from emulator.rng import Streams
from emulator.transport.auth import peer_key
from emulator.transport.http import HttpTransport
from emulator.transport.links import LinkFaults
from emulator.transport.server import build_app
from emulator.transport.storage import FileStorage, WallClock
from emulator.transport.wire import MAX_BODY, JsonObject

__all__ = ["NodeHost"]

_log = logging.getLogger("capsim.transport")


def _lock_storage(path: Path) -> int:
    """Lock ``<path>.lock`` for this host (the open file holds the lock), or say who has it.

    Raises:
        ConfigError: another running node (this process or another) owns the storage.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(
            f"{path} is in use by another node (pid {holder}); two nodes on one storage overwrite each other: "
            "give each node its own --data-dir (or name), or stop the other first"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class NodeHost:
    """Run one node (``factory(**config)``) behind an HTTP server.

    Args:
        name: the node's name.
        factory: a ``Node`` subclass.
        config: keyword arguments for the factory, at start and every restart.
        host: the address to listen on.
        port: the port to listen on; 0 picks a free one (see ``url``).
        peers: the other server nodes, name -> base URL.
        token: the cluster secret: the control token (``Authorization: Bearer
            <token>``), and the key that signs this node's messages and checks
            those that claim a server's name (``emulator.transport.auth``).
            None disables the control endpoint and peer authentication.
        seed: seeds the node's rng and the link fault draws; None draws one
            from the OS (shown by ``/status``).
        data_dir: keep ``storage`` in ``<data_dir>/<name>.storage``, so it
            survives a restart of the process. One host at a time owns the
            file (a lock beside it, ``.lock``, held until ``stop``): a second
            one, in any process, is refused with a ConfigError.
        max_body: the largest request accepted, in bytes (413 above).
        protocol: a label for ``/health`` and ``/status``.
        server: False for a client host (it is nobody's peer).
        timeout: seconds a peer has to accept a batch of messages, and a
            sender has to send a request's whole body (408 after).
        max_held: messages a soft pause holds; more are dropped (inbound ``overflow``).
    """

    def __init__(
        self,
        name: str,
        factory: Callable[..., Node],
        config: JsonObject | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        peers: dict[str, str] | None = None,
        token: str | None = None,
        seed: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        max_body: int = MAX_BODY,
        protocol: str | None = None,
        server: bool = True,
        timeout: float = 5.0,
        max_held: int = 100_000,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a node name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise ConfigError(f"NodeHost({name!r}, ...) needs a Node subclass as factory, got {factory!r}")
        for what, value in (("timeout", timeout), ("max_body", max_body)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigError(f"NodeHost({name!r}, ...): {what} must be a finite number > 0, got {value!r}")
        if isinstance(max_held, bool) or not isinstance(max_held, int) or max_held < 0:
            raise ConfigError(f"NodeHost({name!r}, ...): max_held must be a whole number >= 0, got {max_held!r}")
        self.name, self.factory, self.config = name, factory, dict(config or {})
        self.host, self.port = host, port
        self.peer_urls = {n: u.rstrip("/") for n, u in (peers or {}).items() if n != name}
        self.token, self.max_body, self.timeout, self.max_held = token, max_body, timeout, max_held
        self.key = peer_key(token)
        self.protocol = protocol or getattr(factory, "__name__", str(factory))
        self.server = server
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**63)
        self._streams = Streams(self.seed)
        self.faults = LinkFaults()
        self.clock = WallClock()
        self._lock: int | None = None  # the open lock file of the storage, while this host owns it
        if data_dir:
            self._lock = _lock_storage(Path(data_dir) / f"{name}.storage")
        self.storage_data = FileStorage(Path(data_dir) / f"{name}.storage") if data_dir else {}
        self.ids = itertools.count(int(time.time() * 1_000_000))  # wall-clock ok
        self.context = contextvars.Context()
        self.errors: collections.deque[JsonObject] = collections.deque(maxlen=100)
        self.events: collections.deque[JsonObject] = collections.deque(maxlen=100)
        self.received = self.delivered = self.rejected = 0
        self.inbound_drops: collections.Counter[str] = collections.Counter()
        self.started_at = time.time()  # wall-clock ok
        self.endpoint: Endpoint | None = None
        self.transport: HttpTransport | None = None
        self._runner: web.AppRunner | None = None
        self._inbox: list[Message] = []  # held while paused
        self._loop: asyncio.AbstractEventLoop  # set by listen(), before any message

    # -- life cycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL peers send to, e.g. ``http://127.0.0.1:9001``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def node(self) -> Node | None:
        """The live node instance, or None while crashed or stopped."""
        return self.endpoint.node if self.endpoint is not None else None

    @property
    def alive(self) -> bool:
        return self.endpoint is not None

    async def listen(self) -> str:
        """Bind the server (idempotent) and return ``url``; messages before ``start`` are dropped.

        Raises:
            OSError: the address cannot be bound (in use, not local).
        """
        if self._runner is not None:
            return self.url

        self._loop = asyncio.get_running_loop()
        runner = web.AppRunner(
            build_app(self, self.max_body, self.timeout), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
            if not runner.addresses:  # seen when the process is out of file descriptors: no socket, no error
                raise OSError(
                    errno.EMFILE,
                    f"{self.name} could not listen on {self.host}:{self.port} (no socket was opened: is the process "
                    "out of file descriptors? each host holds a few; see ulimit -n)",
                )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self.url

    async def start(self) -> NodeHost:
        """Listen, then build the node and begin its ``on_start``; returns self.

        Raises:
            OSError: the address cannot be bound (in use, not local).
            ConfigError: the node is already running.
        """
        if self.endpoint is not None:
            raise ConfigError(f"{self.name} is already running")
        await self.listen()
        self.transport = HttpTransport(
            self.name,
            {**self.peer_urls, self.name: self.url},
            self.faults,
            self._streams(f"net:{self.name}"),
            timeout=self.timeout,
            max_body=self.max_body,
            key=self.key,
        )
        self.transport.reply_to = self.url
        if isinstance(self.storage_data, FileStorage):
            self.transport.before_send = self._save  # changes made in place, on disk before a message leaves
        await self.transport.open()
        try:
            self._boot()
        except BaseException:
            await self.crash()
            raise
        await asyncio.sleep(0)  # on_start has taken its first step: the node is set up when start returns
        return self

    def _boot(self) -> None:
        assert self.transport is not None  # start() opened it before booting
        endpoint = Endpoint(
            self.name,
            self.transport,
            self._loop,
            self.context,
            self.clock,
            self._streams(f"node:{self.name}"),
            self.storage_data,
            self.ids,
            self._peers,
            self._on_error,
            self._on_event,
        )
        endpoint.build(self.factory, self.config)
        self.endpoint = endpoint
        # From a callback, not this task: the runtime steps on_start in place.
        self._loop.call_soon(self._start_endpoint, endpoint)

    def _save(self) -> bool:
        """Save what the node changed in place; False (its message is then dropped) if that cannot be done.

        A message must not acknowledge a change that is not on disk: one the
        file cannot hold (``inf``, an object) or a failed write is a node
        error (``/status``), and the message is lost, as on a lossy link.
        """
        assert isinstance(self.storage_data, FileStorage)  # set as before_send only then
        try:
            self.storage_data.sync()
        except (ConfigError, OSError) as exc:
            if self.endpoint is not None:
                self._on_error(self.endpoint, "saving its storage before a message", exc)
            return False
        return True

    def _start_endpoint(self, endpoint: Endpoint) -> None:
        if endpoint.alive:
            endpoint.start()

    def _peers(self) -> list[str]:
        return sorted(self.peer_urls)

    def speaks_for_server(self, name: str) -> bool:
        """Whether a message from ``name`` must be signed: it names a server this host knows, or itself."""
        return name == self.name or name in self.peer_urls

    async def stop(self) -> None:
        """Stop the node and the server; the same as a crash, for good (another host may then take the storage)."""
        await self.crash()
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)

    async def crash(self) -> None:
        """Kill the node (tasks cancelled, memory lost) and stop listening; storage stays."""
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            endpoint.kill()
        self._inbox.clear()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        transport, self.transport = self.transport, None
        if transport is not None:
            await transport.close()

    async def restart(self) -> NodeHost:
        """Start a crashed host again on the same address, with the same storage."""
        if self.endpoint is not None:
            raise ConfigError(f"{self.name} is running; crash it before restarting it")
        return await self.start()

    # -- receiving -------------------------------------------------------------------------

    def accept(self, messages: list[Message]) -> None:
        """Take validated messages from the server: deliver, hold (paused) or drop (cut)."""
        self.received += len(messages)
        faults = self.faults
        for msg in messages:
            if faults.blocked(msg.src, self.name):
                self.inbound_drops["partition"] += 1
            elif faults.paused(self.name):
                if len(self._inbox) < self.max_held:
                    self._inbox.append(msg)
                else:
                    self.inbound_drops["overflow"] += 1
            else:
                self._loop.call_soon(self._deliver, msg)

    def _deliver(self, msg: Message) -> None:
        endpoint = self.endpoint
        if endpoint is None or not endpoint.alive:
            self.inbound_drops["down"] += 1
            return
        if self.faults.blocked(msg.src, self.name):
            self.inbound_drops["partition"] += 1
            return
        self.delivered += 1
        try:
            endpoint.deliver(msg)
        except Exception as exc:
            self._on_error(endpoint, f"deliver {msg.body.get('type')!r}", exc)

    def faults_changed(self) -> None:
        """Called after a control action: wake held outboxes, release a resumed inbox."""
        if self.transport is not None:
            self.transport.wake()
        if self._inbox and not self.faults.paused(self.name):
            inbox, self._inbox = self._inbox, []
            for msg in inbox:
                self._loop.call_soon(self._deliver, msg)

    # -- reporting -------------------------------------------------------------------------

    def _on_error(self, endpoint: Endpoint, where: str, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.errors.append(
            {
                "time": time.time(),  # wall-clock ok: a real node's error, in real time
                "node": self.name,
                "where": where,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": text,
            }
        )
        _log.warning("%s: error in %s: %s", self.name, where, text.rstrip())

    def _on_event(self, endpoint: Endpoint, what: str, value: object) -> None:
        self.events.append({"time": time.time(), "node": self.name, "what": what, "value": value})  # wall-clock ok
        _log.info("%s: event %s %r", self.name, what, value)

    def health(self) -> JsonObject:
        return {
            "status": "ok" if self.alive else "down",
            "name": self.name,
            "protocol": self.protocol,
            "pid": os.getpid(),
        }

    def status(self) -> JsonObject:
        """What ``GET /status`` answers: who, peers, counters, faults, recent errors and events."""
        return {
            **self.health(),
            "url": self.url,
            "peers": dict(sorted(self.peer_urls.items())),
            "seed": self.seed,
            "uptime": time.time() - self.started_at,  # wall-clock ok
            "counters": {
                "received": self.received,
                "delivered": self.delivered,
                "rejected": self.rejected,
                "inbound_dropped": dict(self.inbound_drops),
                "held": len(self._inbox),
                **(self.transport.stats() if self.transport else {}),
            },
            "faults": self.faults.describe(),
            "errors": [{k: v for k, v in e.items() if k != "traceback"} for e in self.errors],
            "events": list(self.events),
        }
