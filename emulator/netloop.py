"""The networking half of ``VirtualLoop``: asyncio's socket API on simulated sockets.

``NetLoop`` is a mixin of ``emulator.loop.VirtualLoop``. It gives the loop
what asyncio's networking needs, answered by the simulated kernels of
``emulator.kernel``, in three layers:

- ``create_connection``, ``create_server``, ``create_datagram_endpoint``,
  ``connect_accepted_socket``, ``getaddrinfo`` and ``getnameinfo`` (this
  module), so ``asyncio.open_connection``, ``asyncio.start_server``, aiohttp
  and any protocol code run unchanged;
- the ``sock_*`` coroutines (``emulator.sockcalls``);
- the loop's simulated network and the reader and writer callbacks on the
  fake descriptors of simulated sockets, fired as a level-triggered
  selector would fire them (``emulator.netbase``).

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
import socket
from asyncio import base_events, selector_events, tasks
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from emulator.errors import NotAllowed
from emulator.netbase import refuse
from emulator.sockcalls import SockCalls

if TYPE_CHECKING:  # the resolver and the sockets are imported by the first call that needs them
    from emulator.resolver import AddrInfo
    from emulator.sockets import Address, SimSocket

__all__ = ["NetLoop", "refuse"]

# asyncio's private helpers that NetLoop borrows (the stubs do not declare them).
_Selector: Any = selector_events.BaseSelectorEventLoop
_Base: Any = base_events.BaseEventLoop
_Transports: Any = selector_events  # _SelectorSocketTransport, _SelectorDatagramTransport
_ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class NetLoop(SockCalls):
    """Mixin: asyncio networking on simulated sockets (see the module docstring)."""

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
        from emulator import resolver

        return resolver.getaddrinfo(self.world, host, port, family, type, proto, flags)

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int = 0
    ) -> tuple[str, str]:
        from emulator import resolver

        return resolver.getnameinfo(self.world, sockaddr, flags)

    _ensure_resolved = _Base._ensure_resolved

    # -- streams ---------------------------------------------------------------------------------

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
            sockets = await self._listen_all(host, port, family, flags, backlog, reuse_address, reuse_port)
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
        reuse_port: bool | None = None,
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
        if reuse_address is None:  # asyncio's default, on POSIX
            reuse_address = True
        sockets: list[SimSocket] = []
        try:
            for *_, address in infos:
                sock = self._host_socket()
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, True)
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
            sim, remote = await self._datagram_socket(local_addr, remote_addr, family, proto, flags, reuse_port)
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
        reuse_port: bool | None = None,
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
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, True)
            if local is not None:
                sock.bind(local)
            if remote is not None:
                sock.connect(remote)
        except BaseException:
            sock.close()
            raise
        return sock, remote

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
