"""The loop's ``sock_*`` coroutines on simulated sockets, and stand-ins for real ones.

``SockCalls`` is the middle layer of ``emulator.netloop.NetLoop``:
``sock_connect``, ``sock_recv``, ``sock_sendall``, ``sock_accept``,
``sock_recvfrom``, ``sock_sendto`` and the rest are the selector loop's own
methods, borrowed, running on ``SimSocket``. A fresh real socket that
asyncio or ``aiohappyeyeballs`` made only to ``sock_connect`` it gets a
simulated stand-in, with the options the program set on the real one
(``TCP_USER_TIMEOUT``, ``SO_KEEPALIVE``, ...), which every later ``sock_*``
call (and ``create_connection(sock=...)``) uses in its place; any other
real socket is refused.
"""

from __future__ import annotations

import socket
from asyncio import selector_events
from typing import TYPE_CHECKING, Any

from emulator.netbase import NetBase, refuse

if TYPE_CHECKING:  # imported where a socket call needs it: a loop without sockets never loads the socket layer
    from emulator.sockets import Address, Bytes, SimSocket

__all__ = ["SockCalls"]

# The selector loop, whose sock_* methods and their private helpers SockCalls borrows.
_Selector: Any = selector_events.BaseSelectorEventLoop


class SockCalls(NetBase):
    """Mixin: the ``sock_*`` coroutines on simulated sockets (see the module docstring)."""

    def _adopted(self, sock: SimSocket | socket.socket, what: str) -> SimSocket:
        """The simulated socket for ``sock``: itself, or the one standing in for a real socket."""
        from emulator.sockets import SimSocket

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
        from emulator import sandbox
        from emulator.sockets import SimSocket

        if isinstance(sock, SimSocket):
            sim = sock
        else:
            if not isinstance(sock, socket.socket) or _connected(sock):
                raise refuse("loop.sock_connect with a real socket that is already in use")
            sim = self._net.adopted[sock] = self._host_socket(sock.type)
            sim.real = sock
            sim.setblocking(False)
        try:
            if not isinstance(sock, SimSocket):
                for level, option, value in sandbox.options_of(sock):  # TCP_USER_TIMEOUT, SO_KEEPALIVE, ...
                    sim.setsockopt(level, option, value)
                local = sandbox.bound_to(sock)  # as aiohappyeyeballs binds for aiohttp's local_addr
                if local is not None:
                    sim.bind(local)
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


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True
