"""Sockets of simulated hosts: what asyncio's transports call, answered by a simulated kernel.

A ``SimSocket`` has the non-blocking methods of ``socket.socket`` that
asyncio uses (``connect``, ``accept``, ``send``, ``recv``, ``sendto``,
``recvfrom``, ``shutdown``, ``getsockopt``, ...), so asyncio's own selector
transports and ``loop.sock_*`` coroutines run on it unchanged. It tells the
loop when it may have become readable or writable (``_wake``); the loop
then runs the reader or writer callbacks registered for its fake file
descriptor, as a selector would.

Errors are the ones Linux gives, with the same errno: ``ConnectionRefusedError``
(ECONNREFUSED), ``ConnectionResetError`` (ECONNRESET), ``TimeoutError``
(ETIMEDOUT), ``BrokenPipeError`` (EPIPE), ``OSError`` EADDRINUSE and
EADDRNOTAVAIL. A call that would block on a blocking socket raises
``NotAllowed`` instead: it would stop virtual time (with ``MSG_DONTWAIT`` it
raises ``BlockingIOError``, as on Linux). Flags a simulated socket does not
honour are refused with ``NotAllowed`` naming the ones it takes.
"""

from __future__ import annotations

import collections
import errno
import os
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING

from emulator.errors import NotAllowed
from emulator.tcp import CLOSED, ESTABLISHED, SYN_SENT, Tcb

if TYPE_CHECKING:
    from emulator.kernel import Kernel

#: An AF_INET address: (host, port).
Address = tuple[str, int]
#: What a socket sends from or reads into (collections.abc.Buffer from Python 3.12).
Bytes = bytes | bytearray | memoryview

__all__ = ["LOOPBACK", "WILDCARD", "SimSocket"]

WILDCARD = "0.0.0.0"
LOOPBACK = "127.0.0.1"
#: The largest UDP payload over IPv4.
MAX_DATAGRAM = 65507

_TCP_OPTS = {
    getattr(socket, "TCP_KEEPIDLE", -1): "keepalive_time",
    getattr(socket, "TCP_KEEPINTVL", -2): "keepalive_intvl",
    getattr(socket, "TCP_KEEPCNT", -3): "keepalive_probes",
}
_TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)
_TCP_SYNCNT = getattr(socket, "TCP_SYNCNT", 7)
#: The values Linux takes for the TCP options a simulated socket honours (others: EINVAL).
_TCP_RANGES = {
    _TCP_USER_TIMEOUT: (0, 2**31 - 1),
    _TCP_SYNCNT: (1, 127),
    **{option: (1, 127 if name == "keepalive_probes" else 32767) for option, name in _TCP_OPTS.items()},
}


def os_error(code: int, text: str | None = None) -> OSError:
    """An OSError for an errno, with the platform's message unless `text` is given."""
    return OSError(code, text or os.strerror(code))


def _would_block(what: str) -> NotAllowed:
    return NotAllowed(
        f"a blocking socket call ({what}) would stop virtual time: inside a simulation use asyncio "
        "(streams, protocols, or loop.sock_* coroutines), or setblocking(False)"
    )


class SimSocket:
    """A TCP or UDP socket on a simulated host (IPv4 only)."""

    family = socket.AF_INET

    def __init__(self, kernel: Kernel, kind: int = socket.SOCK_STREAM):
        if kind not in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            raise NotAllowed(f"socket type {kind!r} is not simulated: use SOCK_STREAM or SOCK_DGRAM")
        self.kernel = kernel
        self.type = socket.SocketKind(kind)
        self.proto = socket.IPPROTO_TCP if kind == socket.SOCK_STREAM else socket.IPPROTO_UDP
        self.fd = kernel.open(self)
        self._timeout: float | None = None  # None: blocking, as a fresh socket is
        self.local: tuple[str, int] | None = None
        self.peer: tuple[str, int] | None = None
        self._tcb: Tcb | None = None
        self._listening = False
        self._backlog = 0  # listening: the accept queue holds backlog + 1 (Linux)
        self._queue: collections.deque[Tcb] = collections.deque()  # listening: established, not yet accepted
        self.half_open: dict[Tcb, None] = {}  # listening: connections still in their handshake
        self._datagrams: collections.deque[tuple[bytes, Address]] = collections.deque()  # UDP
        self._queued = 0
        self._error = 0
        self._shut_wr = False
        self._shut_rd = False
        self._closed = False
        self.poll_pending = False
        self.real: socket.socket | None = None  # a real socket this one stands in for (see NetLoop.sock_connect)
        self.sndbuf = kernel.settings.sndbuf
        self.rcvbuf = kernel.settings.rcvbuf if kind == socket.SOCK_STREAM else 212992
        self.options: dict[tuple[int, int], object] = {}
        self.tcp_options: dict[str, float] = {}
        self.user_timeout: float | None = None  # TCP_USER_TIMEOUT in seconds, None: the simulation's
        self.syn_retries: int | None = None  # TCP_SYNCNT: SYN (and, listening, SYN-ACK) retries; None: the defaults

    # -- identity ---------------------------------------------------------------------

    def fileno(self) -> int:
        return -1 if self._closed else self.fd

    def getsockname(self) -> tuple[str, int]:
        self._check_open()
        return self.local or (WILDCARD, 0)

    def getpeername(self) -> tuple[str, int]:
        self._check_open()
        if self.peer is None:
            raise os_error(errno.ENOTCONN)
        return self.peer

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"laddr={self.local}" + (f", raddr={self.peer}" if self.peer else "")
        kind = "SOCK_STREAM" if self.type == socket.SOCK_STREAM else "SOCK_DGRAM"
        return f"<SimSocket fd={self.fileno()}, {kind}, host={self.kernel.name!r}, {state}>"

    def __enter__(self) -> SimSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- blocking mode and options -------------------------------------------------------

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setsockopt(self, level: int, option: int, value: int | bytes, optlen: int | None = None) -> None:
        self._check_open()
        if level == socket.SOL_SOCKET and option == socket.SO_SNDBUF:
            self.sndbuf = max(4608, 2 * int(value))  # Linux doubles it, with a floor
        elif level == socket.SOL_SOCKET and option == socket.SO_RCVBUF:
            self.rcvbuf = max(2304, 2 * int(value))
        elif level == socket.SOL_SOCKET and option == socket.SO_KEEPALIVE:
            if self._tcb is not None:  # else connect() or accept() applies it (_configure)
                self._tcb.set_keepalive(bool(value))
        elif level == socket.IPPROTO_TCP and option in _TCP_RANGES:
            low, high = _TCP_RANGES[option]
            if not low <= int(value) <= high:
                raise os_error(errno.EINVAL)  # Linux's bounds for these options
            self._tcp_option(option, int(value))
        self.options[(level, option)] = value

    def _tcp_option(self, option: int, value: int) -> None:
        if option == _TCP_USER_TIMEOUT:
            self.user_timeout = value / 1000 if value else None  # 0: the default again, as on Linux
            if self._tcb is not None:
                self._tcb.user_timeout = self.user_timeout or self.kernel.settings.user_timeout
                self._tcb.explicit_timeout = self.user_timeout
        elif option == _TCP_SYNCNT:
            self.syn_retries = value
        else:
            self.tcp_options[_TCP_OPTS[option]] = value
            if self._tcb is not None:
                self._tcb.set_keepalive(self._tcb.keepalive)  # re-time a running keepalive

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> object:
        self._check_open()
        if level == socket.SOL_SOCKET and option == socket.SO_ERROR:
            return self._take_error()
        if level == socket.SOL_SOCKET and option == socket.SO_TYPE:
            return int(self.type)
        if level == socket.SOL_SOCKET and option == socket.SO_SNDBUF:
            return self.sndbuf
        if level == socket.SOL_SOCKET and option == socket.SO_RCVBUF:
            return self.rcvbuf
        if level == socket.SOL_SOCKET and option == socket.SO_ACCEPTCONN:
            return int(self._listening)
        if level == socket.IPPROTO_TCP and option == _TCP_SYNCNT:
            return self.syn_retries or self.kernel.settings.syn_retries
        if level == socket.IPPROTO_TCP and option in _TCP_OPTS:  # Linux answers the default until one is set
            name = _TCP_OPTS[option]
            return int(self.tcp_options.get(name) or getattr(self.kernel.settings, name))
        value = self.options.get((level, option), 0)
        return int(value) if isinstance(value, (bool, int)) else value

    def _take_error(self) -> int:
        code = self._error
        if not code and self._tcb is not None:
            code, self._tcb.error = self._tcb.error, 0
        self._error = 0
        return code

    # -- binding, listening, connecting ----------------------------------------------------

    def bind(self, address: object) -> None:
        self._check_open()
        if self.local is not None:
            raise os_error(errno.EINVAL)
        self.local = self.kernel.bind(self, *_address(address))

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self.type != socket.SOCK_STREAM:
            raise os_error(errno.EOPNOTSUPP)
        if self._tcb is not None:
            raise os_error(errno.EINVAL)  # connected, or connecting: Linux's inet_listen refuses
        if self.local is None:
            self.bind((WILDCARD, 0))
        self.kernel.listen(self)
        self._backlog = max(0, int(backlog))  # as Python's listen(), which makes a negative backlog 0
        self._listening = True

    def connect(self, address: object) -> None:
        code = self.connect_ex(address)
        if code == errno.EINPROGRESS:
            raise BlockingIOError(errno.EINPROGRESS, os.strerror(errno.EINPROGRESS))
        if code:
            raise os_error(code)

    def connect_ex(self, address: object) -> int:
        self._check_open()
        ip, port = _address(address)
        if self.type == socket.SOCK_DGRAM:
            if self.local is None:
                self.bind((WILDCARD, 0))
            self.peer = self.kernel.route(ip, port)
            return 0
        if self._tcb is not None:
            return errno.EALREADY if self._tcb.state == SYN_SENT else errno.EISCONN
        if self._timeout != 0.0:  # refused before anything is sent: no SYN, no half-open connection left behind
            raise _would_block("connect")
        self._tcb = self.kernel.connect(self, ip, port)
        self._configure(self._tcb)
        return errno.EINPROGRESS

    def accept(self) -> tuple[SimSocket, Address]:
        self._check_open()
        if not self._listening:
            raise os_error(errno.EINVAL)  # not listening
        if not self._queue:
            if self._timeout != 0.0:
                raise _would_block("accept")
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        tcb = self._queue.popleft()
        conn = SimSocket(self.kernel, socket.SOCK_STREAM)
        conn._attach(tcb, self)
        return conn, (tcb.rip, tcb.rport)

    def _attach(self, tcb: Tcb, listener: SimSocket | None = None) -> None:
        self._tcb = tcb
        tcb.sock = self
        tcb.listener = None
        self.local = (tcb.lip, tcb.lport)
        self.peer = (tcb.rip, tcb.rport)
        if listener is not None:  # accepted sockets inherit the listener's options, as on Linux
            self.options = dict(listener.options)
            self.tcp_options = dict(listener.tcp_options)
            self.sndbuf, self.rcvbuf = listener.sndbuf, listener.rcvbuf
            self.user_timeout = listener.user_timeout
            self.syn_retries = listener.syn_retries
            self._configure(tcb)

    def _configure(self, tcb: Tcb) -> None:
        """Give a new connection the options set on this socket before it had one."""
        if self.user_timeout is not None:
            tcb.user_timeout = tcb.explicit_timeout = self.user_timeout
        if self.options.get((socket.SOL_SOCKET, socket.SO_KEEPALIVE)):
            tcb.set_keepalive(True)  # armed once the handshake is done

    # called by the kernel for a listening socket
    def established(self, tcb: Tcb) -> None:
        self.half_open.pop(tcb, None)
        self._queue.append(tcb)
        self.wake()

    def forget(self, tcb: Tcb) -> None:
        self.half_open.pop(tcb, None)
        if tcb in self._queue:
            self._queue.remove(tcb)

    def room(self) -> bool:
        """Whether the accept queue has room: Linux's is full once it holds more than ``backlog``.

        Connections still in their handshake take none of it (Linux with SYN
        cookies, its default); one that completes into a full queue waits
        (``Tcb.receive``).
        """
        return len(self._queue) <= self._backlog

    # -- streams ----------------------------------------------------------------------------

    def send(self, data: Bytes, flags: int = 0) -> int:
        self._check_open()
        if self.type == socket.SOCK_DGRAM:
            _check_datagram_flags("send", flags)
            if self.peer is None:
                raise os_error(errno.EDESTADDRREQ)
            return self._sendto(data, self.peer)
        _check_flags("send", flags, _SEND_FLAGS, "stream")
        tcb = self._tcb
        if tcb is None:
            raise os_error(errno.EPIPE)  # Linux's answer to a send on a stream socket never connected
        if tcb.error:
            raise os_error(self._take_error())
        if self._shut_wr or tcb.state == CLOSED or tcb.fin_out:
            raise os_error(errno.EPIPE)
        if not len(data):
            return 0
        if tcb.state != ESTABLISHED:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        n = tcb.put(memoryview(data).cast("B"))
        if n == 0:
            if self._timeout != 0.0 and not flags & socket.MSG_DONTWAIT:
                raise _would_block("send")
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return n

    def sendall(self, data: Bytes, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        while view:
            try:
                n = self.send(view, flags)
            except BlockingIOError:
                if self._timeout == 0.0 or flags & socket.MSG_DONTWAIT:
                    raise  # non-blocking: EAGAIN, as Python's sendall says on Linux (what went out stays sent)
                raise _would_block("sendall") from None
            view = view[n:]

    def sendmsg(
        self, buffers: Iterable[Bytes], ancdata: Iterable[object] = (), flags: int = 0, address: Address | None = None
    ) -> int:
        if ancdata:
            raise NotAllowed("sendmsg with ancillary data is not simulated")
        data = b"".join(bytes(b) for b in buffers)
        return self.sendto(data, flags, address) if address is not None else self.send(data, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0:
            return b""  # as Python's socket.recv answers, without asking the kernel
        self._check_open()
        if self.type == socket.SOCK_DGRAM:
            return self.recvfrom(bufsize, flags)[0]
        _check_flags("recv", flags, _RECV_FLAGS, "stream")
        tcb = self._tcb
        if tcb is None:
            raise os_error(errno.ENOTCONN)
        if tcb.error:
            raise os_error(self._take_error())
        if tcb.rx.rcvq:
            return bytes(tcb.rx.rcvq[:bufsize]) if flags & socket.MSG_PEEK else tcb.take(bufsize)
        if tcb.fin_in or tcb.state == CLOSED or self._shut_rd:
            return b""
        if self._timeout != 0.0 and not flags & socket.MSG_DONTWAIT:
            raise _would_block("recv")
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    def recv_into(self, buffer: Bytes, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    def shutdown(self, how: int) -> None:
        """Shut reading, writing or both, as Linux's ``inet_shutdown`` does.

        A listener stops listening on ``SHUT_RD`` (its queue is reset, its port
        stays bound); a connect under way is abandoned (``SO_ERROR`` ECONNRESET);
        a socket with no connection reports ENOTCONN, yet stays shut.
        """
        self._check_open()
        if how not in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
            raise os_error(errno.EINVAL)
        tcb = self._tcb
        if self._listening:
            if how != socket.SHUT_WR:
                self._stop_listening()
            return
        if tcb is not None and tcb.state == SYN_SENT:
            self._tcb, self.peer, self._error = None, None, errno.ECONNRESET
            tcb.fail(errno.ECONNRESET)  # no segment: Linux sends no reset from SYN_SENT
            tcb.sock = None
            self.wake()
            return
        unconnected = self.peer is None if self.type == socket.SOCK_DGRAM else tcb is None
        self._shut(how)
        if unconnected:
            raise os_error(errno.ENOTCONN)

    def _shut(self, how: int) -> None:
        tcb = self._tcb
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self._shut_rd = True  # what is queued can still be read, then EOF, as on Linux
            self.wake()
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self._shut_wr = True
            if tcb is not None and tcb.state != CLOSED:
                tcb.shutdown_write()

    def _stream(self) -> Tcb:
        if self._tcb is None:
            raise os_error(errno.ENOTCONN)
        return self._tcb

    # -- datagrams --------------------------------------------------------------------------

    def sendto(self, data: Bytes, flags_or_address: int | Address, address: Address | None = None) -> int:
        self._check_open()
        flags, target = (0, flags_or_address) if address is None else (flags_or_address, address)
        if not isinstance(flags, int):
            raise TypeError(f"sendto() flags must be an int, got {flags!r}")
        if self.type != socket.SOCK_DGRAM:
            return self.send(data, flags)  # a stream socket's peer is its connection's: Linux ignores the address
        _check_datagram_flags("sendto", flags)
        ip, port = _address(target)  # a connected UDP socket may still send elsewhere, as on Linux
        if port == 0:
            raise os_error(errno.EINVAL)
        return self._sendto(data, self.kernel.route(ip, port))

    def _sendto(self, data: Bytes, address: Address) -> int:
        if self._error:
            raise os_error(self._take_error())
        payload = bytes(data)
        if len(payload) > MAX_DATAGRAM:
            raise os_error(errno.EMSGSIZE)
        if self._shut_wr:
            raise os_error(errno.EPIPE)
        if self.local is None:
            self.bind((WILDCARD, 0))
        self.kernel.send_datagram(self, address, payload)
        return len(payload)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Address | None]:
        self._check_open()
        if self.type == socket.SOCK_STREAM:
            return self.recv(bufsize, flags), None  # as Linux: a stream's bytes come from no address
        _check_flags("recvfrom", flags, _RECV_FLAGS, "datagram")
        if self._error:
            raise os_error(self._take_error())
        if not self._datagrams:
            if self._timeout != 0.0 and not flags & socket.MSG_DONTWAIT:
                raise _would_block("recvfrom")
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        if flags & socket.MSG_PEEK:
            data, address = self._datagrams[0]
            return data[:bufsize], address
        data, address = self._datagrams.popleft()
        self._queued -= len(data)
        return data[:bufsize], address  # the rest of a longer datagram is lost, as on Linux

    def recvfrom_into(self, buffer: Bytes, nbytes: int = 0, flags: int = 0) -> tuple[int, Address | None]:
        view = memoryview(buffer).cast("B")
        data, address = self.recvfrom(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data), address

    # called by the kernel for a datagram socket
    def datagram(self, data: bytes, address: tuple[str, int]) -> None:
        if self.peer is not None and address != self.peer:
            return  # a connected UDP socket takes datagrams from its peer only
        if self._queued + len(data) > self.rcvbuf:
            return  # the receive buffer is full: dropped, as the kernel would
        self._datagrams.append((data, address))
        self._queued += len(data)
        self.wake()

    def unreachable(self, address: tuple[str, int]) -> None:
        """An ICMP port-unreachable came back: a connected socket reports ECONNREFUSED."""
        if self.peer is not None and address == self.peer:
            self._error = errno.ECONNREFUSED
            self.wake()

    # -- readiness, closing -------------------------------------------------------------------

    def readable(self) -> bool:
        if self._closed:
            return False
        if self._listening:
            return bool(self._queue)
        if self.type == socket.SOCK_DGRAM:
            return bool(self._datagrams) or self._error != 0
        tcb = self._tcb
        return (tcb is not None and (tcb.readable() or self._shut_rd)) or self._error != 0

    def writable(self) -> bool:
        if self._closed or self._listening:
            return False
        if self.type == socket.SOCK_DGRAM:
            return True
        tcb = self._tcb
        return (tcb is not None and (tcb.writable() or self._shut_wr)) or self._error != 0

    def wake(self) -> None:
        if not self.poll_pending and not self._closed:
            kernel = self.kernel  # kernel.wake(self), inlined: once per segment that arrives
            if kernel.alive:
                kernel.loop.io_wake(self, kernel.context)

    def _stop_listening(self) -> None:
        """Reset the connections nobody accepted, as Linux does when a listener closes or shuts reading."""
        for tcb in list(self._queue) + list(self.half_open):
            tcb.abort()
        self._queue.clear()
        self._listening = False
        self._backlog = 0
        self.kernel.unlisten(self)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.kernel.release(self)
        if self._listening:
            self._stop_listening()
        if self._tcb is not None:
            self._tcb.reuse_addr = bool(self.options.get((socket.SOL_SOCKET, socket.SO_REUSEADDR)))
            if self.options.get((socket.SOL_SOCKET, socket.SO_LINGER)) == _LINGER_ZERO:
                self._tcb.abort()
            else:
                self._tcb.close()
        if self.real is not None:
            self.real.close()
            self.real = None

    def detach(self) -> int:
        raise NotAllowed("a simulated socket has no real file descriptor to detach")

    def dup(self) -> SimSocket:
        raise NotAllowed("a simulated socket cannot be duplicated")

    def _check_open(self) -> None:
        if self._closed:
            raise os_error(errno.EBADF, "Bad file descriptor")


_LINGER_ZERO = b"\x01\x00\x00\x00\x00\x00\x00\x00"
_MSG_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0x4000)
_MSG_MORE = getattr(socket, "MSG_MORE", 0x8000)
#: The flags a simulated socket takes: MSG_PEEK peeks and MSG_DONTWAIT makes one call on a blocking socket
#: non-blocking (EAGAIN), as on Linux; the others change nothing in a simulation (no signal is raised; on a
#: stream MSG_MORE is a hint, but on a datagram socket it joins sends into one datagram, which is not simulated).
_RECV_FLAGS = socket.MSG_PEEK | socket.MSG_DONTWAIT
_SEND_FLAGS = socket.MSG_DONTWAIT | _MSG_NOSIGNAL | _MSG_MORE
_DATAGRAM_SEND_FLAGS = socket.MSG_DONTWAIT | _MSG_NOSIGNAL
_FLAG_NAMES = {
    socket.MSG_PEEK: "MSG_PEEK",
    socket.MSG_DONTWAIT: "MSG_DONTWAIT",
    _MSG_NOSIGNAL: "MSG_NOSIGNAL",
    _MSG_MORE: "MSG_MORE",
}


def _check_flags(call: str, flags: int, allowed: int, kind: str) -> None:
    if flags & ~allowed:
        names = [name for bit, name in _FLAG_NAMES.items() if allowed & bit]
        raise NotAllowed(
            f"{call} with flags {flags:#x} is not simulated on a {kind} socket (only {', '.join(names[:-1])} and "
            f"{names[-1]} are): call it without the others"
        )


def _check_datagram_flags(call: str, flags: int) -> None:
    if flags & socket.MSG_OOB:
        raise os_error(errno.EOPNOTSUPP)  # Linux: UDP has no urgent data
    if flags & _MSG_MORE:
        raise NotAllowed(
            f"{call} with MSG_MORE on a datagram socket is not simulated (Linux holds the bytes and sends them with "
            "the next send's as one datagram): join the bytes and send them in one call"
        )
    _check_flags(call, flags, _DATAGRAM_SEND_FLAGS, "datagram")


def _address(address: object) -> Address:
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError(f"an AF_INET address must be a tuple (host, port), got {address!r}")
    host, port = address[0], address[1]
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise OverflowError("connect(): port must be 0-65535.")
    return host, port
