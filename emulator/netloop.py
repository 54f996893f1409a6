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

import selectors
import socket
import weakref
from asyncio import base_events, events, selector_events, tasks

from emulator.errors import NotAllowed
from emulator.kernel import LocalWorld, World
from emulator.resolver import getaddrinfo, getnameinfo
from emulator.sockets import SimSocket

__all__ = ["NetLoop", "refuse"]

_Selector = selector_events.BaseSelectorEventLoop
_Base = base_events.BaseEventLoop


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

    def __init__(self, io: dict):
        self._io = io

    def get_key(self, fd: int) -> selectors.SelectorKey:
        reader, writer, _ = self._io[fd]
        events_ = (selectors.EVENT_READ if reader is not None else 0) | (selectors.EVENT_WRITE if writer else 0)
        return selectors.SelectorKey(fd, fd, events_, (reader, writer))


class _NetState:
    """A loop's networking state, made on first use."""

    def __init__(self, loop):
        self.world: World | None = None
        self.io: dict[int, list] = {}  # fd -> [reader handle, writer handle, socket]
        self.transports: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.adopted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # real socket -> SimSocket
        self.keys = _Keys(self.io)


class NetLoop:
    """Mixin: asyncio networking on simulated sockets (see the module docstring)."""

    __net: _NetState | None = None
    #: the simulation's answers to time.time, random, ... while this loop runs (emulator.sandbox)
    _sandbox = None

    @property
    def _net(self) -> _NetState:
        state = self.__net
        if state is None:
            state = self.__net = _NetState(self)
        return state

    @property
    def world(self) -> World:
        """The simulated network's address book and carrier (a lone localhost unless a Simulation set one)."""
        net = self._net
        if net.world is None:
            net.world = LocalWorld(self)
        return net.world

    def set_world(self, world: World, sandbox=None) -> None:
        """Put this loop's sockets on ``world``; answer ``time.time``, ``random``, ... from ``sandbox``.

        A Simulation with hosts passes a sandbox, which answers while this loop
        runs (see ``emulator.sandbox``).
        """
        self._net.world = world
        self._sandbox = sandbox

    @property
    def _transports(self):
        return self._net.transports

    @property
    def _selector(self):
        return self._net.keys

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def call_at_ns(self, when_ns: int, callback, *args, context=None):
        """``call_at`` with an exact time in integer virtual nanoseconds."""
        return self._call_at_ns(when_ns, callback, args, context)

    # -- readiness of simulated descriptors ------------------------------------------------

    def _sim_socket(self, fd) -> SimSocket:
        sock = self.world.socket_of(fd if isinstance(fd, int) else _fileno(fd))
        if sock is None:
            raise refuse(f"watching file descriptor {fd!r}, which is not a simulated socket,")
        return sock

    def _io_wake(self, sock: SimSocket, context) -> None:
        """``sock`` may have become readable or writable: check on the next step."""
        net = self.__net  # not the _net property: this runs once per segment that arrives
        if sock._poll_pending or net is None or sock._fd not in net.io:
            return
        sock._poll_pending = True
        self.call_soon(self._io_poll, sock, context=context)

    def _io_poll(self, sock: SimSocket) -> None:
        sock._poll_pending = False
        io = self._net.io
        entry = io.get(sock._fd)
        if entry is None or not sock._kernel.alive:
            return
        if entry[0] is not None and sock.readable():
            entry[0]._run()
            entry = io.get(sock._fd)  # the reader may have removed itself, or closed the socket
        if entry is not None and entry[1] is not None and sock.writable():
            entry[1]._run()
            entry = io.get(sock._fd)
        if entry is not None and (
            (entry[0] is not None and sock.readable()) or (entry[1] is not None and sock.writable())
        ):
            self._io_wake(sock, sock._kernel.context)  # level-triggered: again on the next step

    def _io_forget(self, fd: int) -> None:
        entry = self._net.io.pop(fd, None)
        if entry is not None:
            for handle in entry[:2]:
                if handle is not None:
                    handle.cancel()

    def _add_io(self, fd, slot: int, callback, args):
        self._check_closed()
        sock = self._sim_socket(fd)
        handle = events.Handle(callback, args, self, None)
        entry = self._net.io.setdefault(sock._fd, [None, None, sock])
        if entry[slot] is not None:
            entry[slot].cancel()
        entry[slot] = handle
        self._io_wake(sock, sock._kernel.context)
        return handle

    def _remove_io(self, fd, slot: int) -> bool:
        if self.is_closed():
            return False
        entry = self._net.io.get(fd if isinstance(fd, int) else _fileno(fd))
        if entry is None or entry[slot] is None:
            return False
        entry[slot].cancel()
        entry[slot] = None
        if entry[0] is None and entry[1] is None:
            del self._net.io[entry[2]._fd]
        return True

    def _add_reader(self, fd, callback, *args):
        return self._add_io(fd, 0, callback, args)

    def _remove_reader(self, fd) -> bool:
        return self._remove_io(fd, 0)

    def _add_writer(self, fd, callback, *args):
        return self._add_io(fd, 1, callback, args)

    def _remove_writer(self, fd) -> bool:
        return self._remove_io(fd, 1)

    def add_reader(self, fd, callback, *args):
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd, callback, *args):
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    _ensure_fd_no_transport = _Selector._ensure_fd_no_transport

    # -- names ------------------------------------------------------------------------------------

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        """Resolve ``host`` among the simulation's hosts (no thread, no DNS)."""
        return getaddrinfo(self.world, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        return getnameinfo(self.world, sockaddr, flags)

    _ensure_resolved = _Base._ensure_resolved

    # -- streams ---------------------------------------------------------------------------------

    def _host_socket(self, kind: int = socket.SOCK_STREAM) -> SimSocket:
        return self.world.current().socket(kind)

    async def create_connection(
        self,
        protocol_factory,
        host=None,
        port=None,
        *,
        ssl=None,
        family=0,
        proto=0,
        flags=0,
        sock=None,
        local_addr=None,
        server_hostname=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
        happy_eyeballs_delay=None,
        interleave=None,
        **kwargs,
    ):
        """Open a TCP connection to a simulated host (see ``asyncio.loop.create_connection``)."""
        _no_tls(ssl, server_hostname)
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sock = self._adopted(sock, "create_connection(sock=...)")
        elif host is None and port is None:
            raise ValueError("host and port was not specified and no sock specified")
        else:
            sock = await self._connect_any(host, port, family, proto, flags, local_addr)
        return await self._create_connection_transport(sock, protocol_factory, None, None)

    async def _connect_any(self, host, port, family, proto, flags, local_addr) -> SimSocket:
        infos = await self._ensure_resolved(
            (host, port), family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags, loop=self
        )
        errors = []
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

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        return selector_events._SelectorSocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, *args, **kwargs):
        raise _tls_refused()

    def _make_datagram_transport(self, sock, protocol, address=None, waiter=None, extra=None):
        return selector_events._SelectorDatagramTransport(self, sock, protocol, address, waiter, extra)

    async def create_server(
        self,
        protocol_factory,
        host=None,
        port=None,
        *,
        family=socket.AF_UNSPEC,
        flags=socket.AI_PASSIVE,
        sock=None,
        backlog=100,
        ssl=None,
        reuse_address=None,
        reuse_port=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
        start_serving=True,
        **kwargs,
    ):
        """Listen on a simulated host (see ``asyncio.loop.create_server``); returns asyncio's own ``Server``."""
        _no_tls(ssl, None)
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            sockets = [self._adopted(sock, "create_server(sock=...)")]
        else:
            sockets = await self._listen_all(host, port, family, flags, backlog, reuse_address)
        server = base_events.Server(
            self, sockets, protocol_factory, None, backlog, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        if start_serving:
            server._start_serving()
            await tasks.sleep(0)  # as asyncio does: let the serving start before returning
        return server

    async def _listen_all(self, host, port, family, flags, backlog, reuse_address) -> list[SimSocket]:
        hosts = [host] if host is None or host == "" or isinstance(host, str) else list(host)
        infos = []
        for name in hosts:
            name = None if name == "" else name
            for info in await self._ensure_resolved(
                (name, port), family=family, type=socket.SOCK_STREAM, flags=flags, loop=self
            ):
                if info not in infos:
                    infos.append(info)
        sockets = []
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
                        err.errno, f"error while attempting to bind on address {address!r}: {err.strerror.lower()}"
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

    async def connect_accepted_socket(
        self, protocol_factory, sock, *, ssl=None, ssl_handshake_timeout=None, ssl_shutdown_timeout=None
    ):
        _no_tls(ssl, None)
        sock = self._adopted(sock, "connect_accepted_socket")
        return await self._create_connection_transport(sock, protocol_factory, None, "", server_side=True)

    # -- datagrams -----------------------------------------------------------------------------------

    async def create_datagram_endpoint(
        self,
        protocol_factory,
        local_addr=None,
        remote_addr=None,
        *,
        family=0,
        proto=0,
        flags=0,
        reuse_address=None,
        reuse_port=None,
        allow_broadcast=None,
        sock=None,
    ):
        """A UDP endpoint on a simulated host; its datagrams meet the links' loss, duplication and reordering."""
        if allow_broadcast:
            raise refuse("broadcast", "Send to each simulated host by name instead.")
        if sock is not None:
            if local_addr or remote_addr or family or proto or flags:
                raise ValueError("socket modifier keyword arguments can not be used when sock is specified.")
            sock = self._adopted(sock, "create_datagram_endpoint(sock=...)")
            remote = None
        else:
            sock, remote = await self._datagram_socket(local_addr, remote_addr, family, proto, flags)
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_datagram_transport(sock, protocol, remote, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _datagram_socket(self, local_addr, remote_addr, family, proto, flags):
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

    def _adopted(self, sock, what: str) -> SimSocket:
        """The simulated socket for ``sock``: itself, or the one standing in for a real socket."""
        if isinstance(sock, SimSocket):
            return sock
        stand_in = self._net.adopted.get(sock)
        if stand_in is None:
            raise refuse(f"{what} with a real socket")
        return stand_in

    async def sock_connect(self, sock, address):
        """Connect a socket; a fresh real one (as aiohappyeyeballs makes) gets a simulated stand-in."""
        sim = sock
        if not isinstance(sock, SimSocket):
            if not isinstance(sock, socket.socket) or _connected(sock):
                raise refuse("loop.sock_connect with a real socket that is already in use")
            sim = self._net.adopted[sock] = self._host_socket(sock.type)
            sim._real = sock
            sim.setblocking(False)
        try:
            return await _Selector.sock_connect(self, sim, address)
        except BaseException:
            if sim is not sock:
                self._net.adopted.pop(sock, None)
                sim._real = None
                sim.close()
            raise

    _sock_connect = _Selector._sock_connect
    _sock_connect_cb = _Selector._sock_connect_cb
    _sock_write_done = _Selector._sock_write_done
    _sock_read_done = _Selector._sock_read_done
    _sock_recv = _Selector._sock_recv
    _sock_recv_into = _Selector._sock_recv_into
    _sock_sendall = _Selector._sock_sendall
    _sock_accept = _Selector._sock_accept

    async def sock_recv(self, sock, n):
        return await _Selector.sock_recv(self, self._adopted(sock, "loop.sock_recv"), n)

    async def sock_recv_into(self, sock, buf):
        return await _Selector.sock_recv_into(self, self._adopted(sock, "loop.sock_recv_into"), buf)

    async def sock_sendall(self, sock, data):
        return await _Selector.sock_sendall(self, self._adopted(sock, "loop.sock_sendall"), data)

    async def sock_accept(self, sock):
        return await _Selector.sock_accept(self, self._adopted(sock, "loop.sock_accept"))

    if hasattr(_Selector, "sock_recvfrom"):  # Python 3.11+
        _sock_recvfrom = _Selector._sock_recvfrom
        _sock_recvfrom_into = _Selector._sock_recvfrom_into
        _sock_sendto = _Selector._sock_sendto

        async def sock_recvfrom(self, sock, bufsize):
            return await _Selector.sock_recvfrom(self, self._adopted(sock, "loop.sock_recvfrom"), bufsize)

        async def sock_recvfrom_into(self, sock, buf, nbytes=0):
            return await _Selector.sock_recvfrom_into(self, self._adopted(sock, "loop.sock_recvfrom_into"), buf, nbytes)

        async def sock_sendto(self, sock, data, address):
            return await _Selector.sock_sendto(self, self._adopted(sock, "loop.sock_sendto"), data, address)

    async def sock_sendfile(self, sock, file, offset=0, count=None, *, fallback=True):
        raise refuse("loop.sock_sendfile (it reads a real file)", "Send the bytes with sock_sendall.")

    async def sendfile(self, transport, file, offset=0, count=None, *, fallback=True):
        raise refuse("loop.sendfile (it reads a real file)", "Read the data first, then transport.write() it.")

    # -- what stays refused ---------------------------------------------------------------------------

    async def start_tls(self, *args, **kwargs):
        raise _tls_refused()

    async def create_unix_connection(self, *args, **kwargs):
        raise refuse("a Unix socket (a real file)", "Use TCP between simulated hosts.")

    async def create_unix_server(self, *args, **kwargs):
        raise refuse("a Unix socket (a real file)", "Use TCP between simulated hosts.")


def _no_tls(ssl, server_hostname) -> None:
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


def _fileno(fileobj) -> int:
    try:
        return int(fileobj.fileno())
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"Invalid file object: {fileobj!r}") from None


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True
