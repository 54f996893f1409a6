"""The networking half of ``VirtualLoop``: asyncio's socket API on simulated sockets.

``NetLoop`` is a mixin of ``emulator.loop.VirtualLoop``. It gives the loop
what asyncio's networking needs, answered by the simulated kernels of
``emulator.kernel``:

- ``create_connection``, ``create_server``, ``create_datagram_endpoint``,
  ``connect_accepted_socket``, ``getaddrinfo``, ``getnameinfo`` and the
  ``sock_*`` coroutines, so ``asyncio.open_connection``,
  ``asyncio.start_server``, aiohttp and any protocol code run unchanged;
- reader and writer callbacks on the fake descriptors of simulated sockets,
  fired as a level-triggered selector would fire them.

The transports are asyncio's own selector transports and the server is
asyncio's own ``Server``, running on ``SimSocket``; the ``sock_*`` helpers
are the selector loop's own methods, borrowed. So flow control, half-close,
error texts and the order of protocol callbacks are the stock ones.

Real I/O is refused with ``NotAllowed``: a real socket (except one that
asyncio or ``aiohappyeyeballs`` made only to ``sock_connect`` it, which a
simulated socket then stands in for), a real file descriptor, TLS, Unix
sockets, pipes, subprocesses and signals.
"""

from __future__ import annotations

import asyncio
import contextvars
import selectors
import socket
import weakref
from asyncio import base_events, events, selector_events, tasks
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple, cast

from emulator.errors import NotAllowed
from emulator.kernel import LocalWorld, World
from emulator.resolver import AddrInfo, getaddrinfo, getnameinfo
from emulator.sockets import Address, Bytes, SimSocket

if TYPE_CHECKING:
    from emulator.handles import SleepTimer
    from emulator.sandbox import Sandbox

    # NetLoop is mixed into VirtualLoop, an asyncio loop: type-check it as one.
    _Mixin = asyncio.AbstractEventLoop
else:
    _Mixin = object

__all__ = ["NetLoop", "refuse"]

# asyncio's private helpers that NetLoop borrows (the stubs do not declare them).
_Selector: Any = selector_events.BaseSelectorEventLoop
_Base: Any = base_events.BaseEventLoop
_Transports: Any = selector_events  # _SelectorSocketTransport, _SelectorDatagramTransport
_ProtocolFactory = Callable[[], asyncio.BaseProtocol]
_Ts = TypeVarTuple("_Ts")


def refuse(what: str, instead: str = "") -> NotAllowed:
    """The error for real I/O inside a simulation."""
    return NotAllowed(
        f"{what} is not allowed inside a simulation: it is real I/O, which runs outside virtual time "
        "and could not be replayed from the run's seed. "
        + (
            instead
            or "Use the simulated network: run the program as a host (sim.add_host(name, main)) "
            "and connect to other hosts by name."
        )
    )


class _Keys:
    """What asyncio's transports ask a selector (``get_key``, in their ``repr``), from the loop's registrations."""

    def __init__(self, io: dict[int, _Registration]):
        self._io = io

    def get_key(self, fd: int) -> selectors.SelectorKey:
        reader, writer, _ = self._io[fd]
        events_ = (selectors.EVENT_READ if reader is not None else 0) | (selectors.EVENT_WRITE if writer else 0)
        return selectors.SelectorKey(fd, fd, events_, (reader, writer))


#: A descriptor's registration: [reader handle, writer handle, the socket].
_Registration = list[Any]


class _NetState:
    """A loop's networking state, made on first use."""

    def __init__(self) -> None:
        self.world: World | None = None
        self.io: dict[int, _Registration] = {}  # fd -> [reader handle, writer handle, socket]
        self.transports: weakref.WeakValueDictionary[int, asyncio.Transport] = weakref.WeakValueDictionary()
        self.adopted: weakref.WeakKeyDictionary[socket.socket, SimSocket] = weakref.WeakKeyDictionary()
        self.keys = _Keys(self.io)


class NetLoop(_Mixin):
    """Mixin: asyncio networking on simulated sockets (see the module docstring)."""

    __net: _NetState | None = None
    #: the simulation's answers to time.time, random, ... while this loop runs (emulator.sandbox)
    sandbox: Sandbox | None = None

    if TYPE_CHECKING:  # what NetLoop uses of the loop it is mixed into (emulator.loop.VirtualLoop)
        _closed: bool

        def time_ns(self) -> int: ...

        def _call_at_ns(
            self,
            when_ns: int | None,
            callback: Callable[..., object],
            args: tuple[Any, ...],
            context: contextvars.Context | None,
        ) -> asyncio.TimerHandle | SleepTimer: ...

    @property
    def _net(self) -> _NetState:
        state = self.__net
        if state is None:
            state = self.__net = _NetState()
        return state

    @property
    def world(self) -> World:
        """The simulated network's address book and carrier (a lone localhost unless a Simulation set one)."""
        net = self._net
        if net.world is None:
            net.world = LocalWorld(self)
        return net.world

    def set_world(self, world: World, sandbox: Sandbox | None = None) -> None:
        """Put this loop's sockets on ``world``; answer ``time.time``, ``random``, ... from ``sandbox``.

        A Simulation with hosts passes a sandbox, which answers while this loop
        runs (see ``emulator.sandbox``).
        """
        self._net.world = world
        self.sandbox = sandbox

    @property
    def _transports(self) -> weakref.WeakValueDictionary[int, asyncio.Transport]:
        return self._net.transports

    @property
    def _selector(self) -> _Keys:
        return self._net.keys

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def call_at_ns(
        self, when_ns: int, callback: Callable[..., object], *args: object, context: contextvars.Context | None = None
    ) -> asyncio.TimerHandle:
        """``call_at`` with an exact time in integer virtual nanoseconds."""
        # (only asyncio.sleep's own callback gets a SleepTimer, and sleep does not come this way)
        return cast("asyncio.TimerHandle", self._call_at_ns(when_ns, callback, args, context))

    # -- readiness of simulated descriptors ------------------------------------------------

    def _sim_socket(self, fd: int | _HasFileno) -> SimSocket:
        sock = self.world.socket_of(fd if isinstance(fd, int) else _fileno(fd))
        if sock is None:
            raise refuse(f"watching file descriptor {fd!r}, which is not a simulated socket,")
        return sock

    def io_wake(self, sock: SimSocket, context: contextvars.Context | None) -> None:
        """``sock`` may have become readable or writable: check on the next step."""
        net = self.__net  # not the _net property: this runs once per segment that arrives
        if sock.poll_pending or net is None or sock.fd not in net.io:
            return
        sock.poll_pending = True
        self.call_soon(self._io_poll, sock, context=context)

    def _io_poll(self, sock: SimSocket) -> None:
        sock.poll_pending = False
        io = self._net.io
        entry = io.get(sock.fd)
        if entry is None or not sock.kernel.alive:
            return
        if entry[0] is not None and sock.readable():
            entry[0]._run()
            entry = io.get(sock.fd)  # the reader may have removed itself, or closed the socket
        if entry is not None and entry[1] is not None and sock.writable():
            entry[1]._run()
            entry = io.get(sock.fd)
        if entry is not None and (
            (entry[0] is not None and sock.readable()) or (entry[1] is not None and sock.writable())
        ):
            self.io_wake(sock, sock.kernel.context)  # level-triggered: again on the next step

    def io_forget(self, fd: int) -> None:
        entry = self._net.io.pop(fd, None)
        if entry is not None:
            for handle in entry[:2]:
                if handle is not None:
                    handle.cancel()

    def _add_io(
        self, fd: int | _HasFileno, slot: int, callback: Callable[..., object], args: tuple[Any, ...]
    ) -> events.Handle:
        self._check_closed()
        sock = self._sim_socket(fd)
        handle = events.Handle(callback, args, self, None)
        entry = self._net.io.setdefault(sock.fd, [None, None, sock])
        if entry[slot] is not None:
            entry[slot].cancel()
        entry[slot] = handle
        self.io_wake(sock, sock.kernel.context)
        return handle

    def _remove_io(self, fd: int | _HasFileno, slot: int) -> bool:
        if self.is_closed():
            return False
        entry = self._net.io.get(fd if isinstance(fd, int) else _fileno(fd))
        if entry is None or entry[slot] is None:
            return False
        entry[slot].cancel()
        entry[slot] = None
        if entry[0] is None and entry[1] is None:
            del self._net.io[entry[2].fd]
        return True

    def _add_reader(self, fd: int | _HasFileno, callback: Callable[..., object], *args: Any) -> events.Handle:
        return self._add_io(fd, 0, callback, args)

    def _remove_reader(self, fd: int | _HasFileno) -> bool:
        return self._remove_io(fd, 0)

    def _add_writer(self, fd: int | _HasFileno, callback: Callable[..., object], *args: Any) -> events.Handle:
        return self._add_io(fd, 1, callback, args)

    def _remove_writer(self, fd: int | _HasFileno) -> bool:
        return self._remove_io(fd, 1)

    def add_reader(self, fd: int | _HasFileno, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd: int | _HasFileno) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd: int | _HasFileno, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd: int | _HasFileno) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    _ensure_fd_no_transport = _Selector._ensure_fd_no_transport

    # -- names ------------------------------------------------------------------------------------

    async def getaddrinfo(  # type: ignore[override]  # asyncio's stub types family and type as enums
        self,
        host: str | bytes | None,
        port: str | bytes | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[AddrInfo]:
        """Resolve ``host`` among the simulation's hosts (no thread, no DNS)."""
        return getaddrinfo(self.world, host, port, family, type, proto, flags)

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int = 0
    ) -> tuple[str, str]:
        return getnameinfo(self.world, sockaddr, flags)

    _ensure_resolved = _Base._ensure_resolved

    # -- streams ---------------------------------------------------------------------------------

    def _host_socket(self, kind: int = socket.SOCK_STREAM) -> SimSocket:
        return self.world.current().socket(kind)

    async def create_connection(  # type: ignore[override]  # asyncio's overloads; sock may be a SimSocket
        self,
        protocol_factory: _ProtocolFactory,
        host: str | None = None,
        port: int | str | None = None,
        *,
        ssl: object = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: SimSocket | socket.socket | None = None,
        local_addr: Address | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        **kwargs: object,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Open a TCP connection to a simulated host (see ``asyncio.loop.create_connection``)."""
        _no_tls(ssl, server_hostname)
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sim = self._adopted(sock, "create_connection(sock=...)")
        elif host is None and port is None:
            raise ValueError("host and port was not specified and no sock specified")
        else:
            sim = await self._connect_any(host, port, family, proto, flags, local_addr)
        pair: tuple[asyncio.Transport, asyncio.BaseProtocol] = await self._create_connection_transport(
            sim, protocol_factory, None, None
        )
        return pair

    async def _connect_any(
        self,
        host: str | None,
        port: int | str | None,
        family: int,
        proto: int,
        flags: int,
        local_addr: Address | None,
    ) -> SimSocket:
        infos = await self._ensure_resolved(
            (host, port), family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags, loop=self
        )
        errors: list[OSError] = []
        for *_, address in infos:
            sock = self._host_socket()
            try:
                if local_addr is not None:
                    sock.bind(local_addr)
                sock.setblocking(False)
                await self.sock_connect(sock, address)
                return sock
            except OSError as exc:
                errors.append(exc)
                sock.close()
            except BaseException:
                sock.close()
                raise
        if len(errors) == 1:
            raise errors[0]
        model = str(errors[0])
        if all(str(exc) == model for exc in errors):
            raise errors[0]
        raise OSError("Multiple exceptions: {}".format(", ".join(str(exc) for exc in errors)))

    _create_connection_transport = _Base._create_connection_transport

    def _make_socket_transport(
        self,
        sock: SimSocket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        server: asyncio.Server | None = None,
    ) -> asyncio.Transport:
        transport: asyncio.Transport = _Transports._SelectorSocketTransport(self, sock, protocol, waiter, extra, server)
        return transport

    def _make_ssl_transport(self, *args: object, **kwargs: object) -> asyncio.Transport:
        raise _tls_refused()

    def _make_datagram_transport(
        self,
        sock: SimSocket,
        protocol: asyncio.BaseProtocol,
        address: Address | None = None,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> asyncio.DatagramTransport:
        transport: asyncio.DatagramTransport = _Transports._SelectorDatagramTransport(
            self, sock, protocol, address, waiter, extra
        )
        return transport

    async def create_server(
        self,
        protocol_factory: _ProtocolFactory,
        host: str | Iterable[str] | None = None,
        port: int | str | None = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: SimSocket | socket.socket | None = None,
        backlog: int = 100,
        ssl: object = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        **kwargs: object,
    ) -> asyncio.Server:
        """Listen on a simulated host (see ``asyncio.loop.create_server``); returns asyncio's own ``Server``."""
        _no_tls(ssl, None)
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            sockets = [self._adopted(sock, "create_server(sock=...)")]
        else:
            sockets = await self._listen_all(host, port, family, flags, backlog, reuse_address)
        server = base_events.Server(
            self,
            sockets,  # type: ignore[arg-type]  # SimSockets stand in for real ones
            protocol_factory,
            None,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        if start_serving:
            server._start_serving()  # type: ignore[attr-defined]  # asyncio's own, private
            await tasks.sleep(0)  # as asyncio does: let the serving start before returning
        return server

    async def _listen_all(
        self,
        host: str | Iterable[str] | None,
        port: int | str | None,
        family: int,
        flags: int,
        backlog: int,
        reuse_address: bool | None,
    ) -> list[SimSocket]:
        hosts: list[str | None] = [host] if host is None or isinstance(host, str) else list(host)
        infos: list[AddrInfo] = []
        for name in hosts:
            name = None if name == "" else name
            for info in await self._ensure_resolved(
                (name, port), family=family, type=socket.SOCK_STREAM, flags=flags, loop=self
            ):
                if info not in infos:
                    infos.append(info)
        sockets: list[SimSocket] = []
        try:
            for *_, address in infos:
                sock = self._host_socket()
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                try:
                    sock.bind(address)
                except OSError as err:
                    sock.close()
                    raise OSError(
                        err.errno, f"error while attempting to bind on address {address!r}: {str(err.strerror).lower()}"
                    ) from None
                sock.listen(backlog)
                sock.setblocking(False)
                sockets.append(sock)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    _start_serving = _Selector._start_serving
    _stop_serving = _Selector._stop_serving
    _accept_connection = _Selector._accept_connection
    _accept_connection2 = _Selector._accept_connection2

    async def connect_accepted_socket(  # type: ignore[override]  # asyncio's generic protocol type
        self,
        protocol_factory: _ProtocolFactory,
        sock: SimSocket | socket.socket,
        *,
        ssl: object = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        _no_tls(ssl, None)
        sim = self._adopted(sock, "connect_accepted_socket")
        pair: tuple[asyncio.Transport, asyncio.BaseProtocol] = await self._create_connection_transport(
            sim, protocol_factory, None, "", server_side=True
        )
        return pair

    # -- datagrams -----------------------------------------------------------------------------------

    async def create_datagram_endpoint(  # type: ignore[override]  # asyncio's generic protocol type
        self,
        protocol_factory: _ProtocolFactory,
        local_addr: tuple[str, int | str] | None = None,
        remote_addr: tuple[str, int | str] | None = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: SimSocket | socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, asyncio.BaseProtocol]:
        """A UDP endpoint on a simulated host; its datagrams meet the links' loss, duplication and reordering."""
        if allow_broadcast:
            raise refuse("broadcast", "Send to each simulated host by name instead.")
        if sock is not None:
            if local_addr or remote_addr or family or proto or flags:
                raise ValueError("socket modifier keyword arguments can not be used when sock is specified.")
            sim = self._adopted(sock, "create_datagram_endpoint(sock=...)")
            remote = None
        else:
            sim, remote = await self._datagram_socket(local_addr, remote_addr, family, proto, flags)
        protocol = protocol_factory()
        waiter: asyncio.Future[None] = self.create_future()
        transport = self._make_datagram_transport(sim, protocol, remote, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _datagram_socket(
        self,
        local_addr: tuple[str, int | str] | None,
        remote_addr: tuple[str, int | str] | None,
        family: int,
        proto: int,
        flags: int,
    ) -> tuple[SimSocket, Address | None]:
        if family not in (0, socket.AF_INET):
            raise refuse(f"a datagram endpoint of family {family!r}", "Only IPv4 (AF_INET) is simulated.")
        local = remote = None
        if local_addr is not None:
            local = (
                await self._ensure_resolved(local_addr, type=socket.SOCK_DGRAM, proto=proto, flags=flags, loop=self)
            )[0][4]
        if remote_addr is not None:
            remote = (
                await self._ensure_resolved(remote_addr, type=socket.SOCK_DGRAM, proto=proto, flags=flags, loop=self)
            )[0][4]
        sock = self._host_socket(socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if local is not None:
                sock.bind(local)
            if remote is not None:
                sock.connect(remote)
        except BaseException:
            sock.close()
            raise
        return sock, remote

    # -- the sock_* coroutines ------------------------------------------------------------------------

    def _adopted(self, sock: SimSocket | socket.socket, what: str) -> SimSocket:
        """The simulated socket for ``sock``: itself, or the one standing in for a real socket."""
        if isinstance(sock, SimSocket):
            return sock
        stand_in = self._net.adopted.get(sock)
        if stand_in is None:
            raise refuse(f"{what} with a real socket")
        return stand_in

    async def sock_connect(  # type: ignore[override]  # a SimSocket, or a real one it stands in for
        self, sock: SimSocket | socket.socket, address: Address
    ) -> None:
        """Connect a socket; a fresh real one (as aiohappyeyeballs makes) gets a simulated stand-in."""
        if isinstance(sock, SimSocket):
            sim = sock
        else:
            if not isinstance(sock, socket.socket) or _connected(sock):
                raise refuse("loop.sock_connect with a real socket that is already in use")
            sim = self._net.adopted[sock] = self._host_socket(sock.type)
            sim.real = sock
            sim.setblocking(False)
        try:
            await _Selector.sock_connect(self, sim, address)
        except BaseException:
            if not isinstance(sock, SimSocket):
                self._net.adopted.pop(sock, None)
                sim.real = None
                sim.close()
            raise

    # The selector loop's own helpers of the sock_* coroutines, borrowed.
    _sock_connect = _Selector._sock_connect
    _sock_connect_cb = _Selector._sock_connect_cb
    _sock_write_done = _Selector._sock_write_done
    _sock_read_done = _Selector._sock_read_done
    _sock_recv = _Selector._sock_recv
    _sock_recv_into = _Selector._sock_recv_into
    _sock_sendall = _Selector._sock_sendall
    _sock_accept = _Selector._sock_accept
    _sock_recvfrom = _Selector._sock_recvfrom
    _sock_recvfrom_into = _Selector._sock_recvfrom_into
    _sock_sendto = _Selector._sock_sendto

    async def sock_recv(self, sock: SimSocket | socket.socket, n: int) -> bytes:
        data: bytes = await _Selector.sock_recv(self, self._adopted(sock, "loop.sock_recv"), n)
        return data

    async def sock_recv_into(  # type: ignore[override]  # any Buffer in the stub; bytes-likes here
        self, sock: SimSocket | socket.socket, buf: Bytes
    ) -> int:
        n: int = await _Selector.sock_recv_into(self, self._adopted(sock, "loop.sock_recv_into"), buf)
        return n

    async def sock_sendall(  # type: ignore[override]  # any Buffer in the stub; bytes-likes here
        self, sock: SimSocket | socket.socket, data: Bytes
    ) -> None:
        await _Selector.sock_sendall(self, self._adopted(sock, "loop.sock_sendall"), data)

    async def sock_accept(  # type: ignore[override]  # SimSockets in, SimSockets out
        self, sock: SimSocket | socket.socket
    ) -> tuple[SimSocket, Address]:
        accepted: tuple[SimSocket, Address] = await _Selector.sock_accept(self, self._adopted(sock, "loop.sock_accept"))
        return accepted

    async def sock_recvfrom(self, sock: SimSocket | socket.socket, bufsize: int) -> tuple[bytes, Address]:
        got: tuple[bytes, Address] = await _Selector.sock_recvfrom(
            self, self._adopted(sock, "loop.sock_recvfrom"), bufsize
        )
        return got

    async def sock_recvfrom_into(  # type: ignore[override]  # any Buffer in the stub; bytes-likes here
        self, sock: SimSocket | socket.socket, buf: Bytes, nbytes: int = 0
    ) -> tuple[int, Address]:
        got: tuple[int, Address] = await _Selector.sock_recvfrom_into(
            self, self._adopted(sock, "loop.sock_recvfrom_into"), buf, nbytes
        )
        return got

    async def sock_sendto(  # type: ignore[override]  # a SimSocket, or a real one it stands in for
        self, sock: SimSocket | socket.socket, data: Bytes, address: Address
    ) -> int:
        n: int = await _Selector.sock_sendto(self, self._adopted(sock, "loop.sock_sendto"), data, address)
        return n

    async def sock_sendfile(  # type: ignore[override]  # refused, whatever the socket
        self, sock: object, file: object, offset: int = 0, count: int | None = None, *, fallback: bool = True
    ) -> int:
        raise refuse("loop.sock_sendfile (it reads a real file)", "Send the bytes with sock_sendall.")

    async def sendfile(
        self, transport: object, file: object, offset: int = 0, count: int | None = None, *, fallback: bool = True
    ) -> int:
        raise refuse("loop.sendfile (it reads a real file)", "Read the data first, then transport.write() it.")

    # -- what stays refused ---------------------------------------------------------------------------

    async def start_tls(self, *args: object, **kwargs: object) -> asyncio.Transport:
        raise _tls_refused()

    async def create_unix_connection(self, *args: object, **kwargs: object) -> Any:
        raise refuse("a Unix socket (a real file)", "Use TCP between simulated hosts.")

    async def create_unix_server(self, *args: object, **kwargs: object) -> asyncio.Server:
        raise refuse("a Unix socket (a real file)", "Use TCP between simulated hosts.")


def _no_tls(ssl: object, server_hostname: str | None) -> None:
    if ssl:
        raise _tls_refused()
    if server_hostname is not None:
        raise ValueError("server_hostname is only meaningful with ssl")


def _tls_refused() -> NotAllowed:
    return refuse(
        "TLS",
        "The simulated network carries plain TCP: use http:// (not https://) and "
        "no ssl= context between simulated hosts.",
    )


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def _fileno(fileobj: object) -> int:
    try:
        return int(fileobj.fileno())  # type: ignore[attr-defined]  # any object may be passed: checked here
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"Invalid file object: {fileobj!r}") from None


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True
