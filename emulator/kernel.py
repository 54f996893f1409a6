"""The network stack of a simulated host: ports, listeners, connections, datagrams.

A ``Kernel`` belongs to one incarnation of one host. It allocates ports,
demultiplexes incoming segments to connections (``tcp.Tcb``) and listening
sockets, answers a SYN to a closed port and a segment of an unknown
connection with a reset (so ``connect`` is refused, as on Linux), answers a
datagram to a closed port with an ICMP port-unreachable, and hands
segments to its ``World`` to carry. Traffic to the host itself (127.0.0.1,
or its own address) never touches the network: it is delivered on the next
loop step, and no partition can cut it.

A ``World`` is the address book and the carrier. ``LocalWorld`` is the one a
bare ``VirtualLoop`` gets: a single host, ``localhost``, at 127.0.0.1. A
``Simulation`` with hosts has ``emulator.hosts.Hosts``, whose segments ride
the simulated network.

When a host crashes its kernel resets every connection (the RST goes out on
the network like any segment, so a partition can swallow it), then goes
inert: its sockets accept writes that go nowhere and never become readable,
so code of the dead incarnation that still runs cannot reach anyone.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import ipaddress
import socket
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from emulator.errors import NotAllowed
from emulator.sockets import LOOPBACK, WILDCARD, Address, SimSocket, os_error
from emulator.tcp import CLOSED, RST, SYN, SYN_RCVD, SYN_SENT, Segment, Tcb, TcpSettings

if TYPE_CHECKING:
    from emulator.hosts import HostEndpoint
    from emulator.netbase import NetBase

__all__ = ["Kernel", "LocalWorld", "World"]

#: Linux's default ephemeral port range (net.ipv4.ip_local_port_range).
EPHEMERAL = (32768, 60999)
UDP, UNREACHABLE = "udp", "icmp.unreach"


class World:
    """Addresses, ids and the carrier shared by the kernels of one loop.

    Subclasses define ``lookup(host)`` (a name or literal to an address of
    this world, or ``NotAllowed``) and ``transmit(kernel, dst_ip, segment)``.
    """

    def __init__(self, loop: NetBase, settings: TcpSettings | None = None):
        self.loop = loop
        self.settings = settings or TcpSettings()
        self._fds = iter(range(1000, 1 << 30))  # fake descriptors: never handed to the OS
        self._cids = iter(range(1, 1 << 62))
        self._sockets: dict[int, SimSocket] = {}  # fd -> every open socket of a running kernel
        # fd -> an open socket of a crashed kernel, for as long as anything (its dead incarnation's code)
        # still holds it: a crash releases its sockets, yet late cleanup can still find them (socket_of).
        self._dead: weakref.WeakValueDictionary[int, SimSocket] = weakref.WeakValueDictionary()

    def register(self, sock: SimSocket) -> int:
        """A fresh descriptor for ``sock`` (of a crashed kernel: held only weakly, see ``bury``)."""
        fd = next(self._fds)
        if sock.kernel.alive:
            self._sockets[fd] = sock
        else:
            self._dead[fd] = sock
        return fd

    def unregister(self, fd: int) -> None:
        self._sockets.pop(fd, None)
        self._dead.pop(fd, None)

    def bury(self, fds: Iterable[int]) -> None:
        """A kernel crashed: let go of its sockets, ``fds``, and of dead sockets' registrations on the loop.

        The world stops holding them, so a host that crashes and restarts
        again and again does not grow. Its dead code may still watch one
        (``add_reader``; it never becomes ready): ``socket_of`` finds it while
        that code holds it, and the next crash drops the registration.
        """
        for fd in list(self._dead):  # registrations made by dead code since the last crash
            self.loop.io_forget(fd)
        for fd in fds:
            self.loop.io_forget(fd)
            sock = self._sockets.pop(fd, None)
            if sock is not None:
                self._dead[fd] = sock

    def socket_of(self, fd: int) -> SimSocket | None:
        """The open simulated socket with descriptor ``fd``, if there is one."""
        sock = self._sockets.get(fd)
        return sock if sock is not None else self._dead.get(fd)

    def next_cid(self) -> int:
        return next(self._cids)

    def current(self) -> Kernel:
        """The kernel of the host whose code is running now."""
        raise NotImplementedError

    def lookup(self, host: str) -> str:
        raise NotImplementedError

    def name_of(self, ip: str) -> str | None:
        """The host name of ``ip``, or None."""
        raise NotImplementedError

    def transmit(self, kernel: Kernel, dst_ip: str, segment: Segment) -> None:
        raise NotImplementedError

    def outside(self, host: str, known: str) -> NotAllowed:
        """The error for an address or name outside this world."""
        return NotAllowed(
            f"{host!r} is outside the simulated network ({known}): real network I/O cannot run in "
            "virtual time or be replayed from a seed. Connect to a simulated host by its name "
            "(sim.add_host(name, main) adds one), or talk to the outside world before sim.run()."
        )


class Kernel:
    """One host incarnation's network stack.

    Args:
        world: the ``World`` it lives in.
        name: the host's name.
        ip: the host's IPv4 address.
        context: the ``contextvars.Context`` its timers and callbacks run in
            (so a paused host's kernel waits too), or None.
        ports: the host's ephemeral-port counter, which outlives an incarnation.
    """

    def __init__(
        self,
        world: World,
        name: str,
        ip: str,
        context: contextvars.Context | None = None,
        ports: Iterator[int] | None = None,
    ):
        self.world = world
        self.loop = world.loop
        self.settings = world.settings
        self.name = name
        self.ip = ip
        self.context = context
        #: virtual nanoseconds now: the loop's own clock, bound once (the Tcbs read it per segment)
        self.now_ns: Callable[[], int] = self.loop.time_ns
        self.endpoint: HostEndpoint | None = None  # the host incarnation it serves (set by emulator.hosts)
        self.alive = True
        self._ports = ports if ports is not None else ephemeral_ports()
        self.sockets: dict[int, SimSocket] = {}  # fd -> open socket
        self.bound: dict[tuple[int, int], list[tuple[str, SimSocket]]] = {}  # (proto, port) -> [(ip, sock)]
        self.listeners: dict[Address, SimSocket] = {}
        self.tcbs: dict[tuple[int, str, int], Tcb] = {}  # (local port, remote ip, remote port) -> Tcb
        # The same key -> the id of the last connection accepted there (Tcb._accepted). Ids only grow
        # (the world hands them out), so a SYN with an id no newer is a late copy of an old one's: it is
        # ignored, as a real stack tells one by its initial sequence number.
        self.syn_cids: dict[tuple[int, str, int], int] = {}
        self.udp: dict[Address, SimSocket] = {}

    def __repr__(self) -> str:
        return f"<Kernel {self.name} {self.ip}{'' if self.alive else ' (crashed)'}>"

    # -- time, for the Tcbs -------------------------------------------------------------

    def call_later(self, delay: float, fn: Callable[..., object], *args: object) -> asyncio.TimerHandle:
        return self.loop.call_later(delay, fn, *args, context=self.context)

    def call_at_ns(self, when_ns: int, fn: Callable[..., object], *args: object) -> asyncio.TimerHandle:
        return self.loop.call_at_ns(when_ns, fn, *args, context=self.context)

    # -- sockets ----------------------------------------------------------------------------

    def socket(self, kind: int = socket.SOCK_STREAM) -> SimSocket:
        return SimSocket(self, kind)

    def open(self, sock: SimSocket) -> int:
        fd = self.world.register(sock)
        self.sockets[fd] = sock
        return fd

    def release(self, sock: SimSocket) -> None:
        """A socket is closed: free its port, its listener or datagram slot, its loop registration."""
        self.sockets.pop(sock.fd, None)
        self.world.unregister(sock.fd)
        if sock.local is not None:
            entries = self.bound.get((sock.proto, sock.local[1]), [])
            entries[:] = [e for e in entries if e[1] is not sock]
            self.unlisten(sock)
            if self.udp.get(sock.local) is sock:
                del self.udp[sock.local]
        self.loop.io_forget(sock.fd)

    def wake(self, sock: SimSocket) -> None:
        if self.alive:
            self.loop.io_wake(sock, self.context)

    def local_ip(self, host: str) -> str:
        """The address a socket binds to for ``host`` (a wildcard, loopback, or this host's)."""
        if host in ("", WILDCARD):
            return WILDCARD
        ip = self.world.lookup(host)
        if ip == self.ip or _loopback(ip):
            return LOOPBACK if _loopback(ip) else ip
        raise os_error(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    def bind(self, sock: SimSocket, host: str, port: int) -> tuple[str, int]:
        ip = self.local_ip(host)
        key = (sock.proto, port)
        if port == 0:
            port = self._ephemeral(sock.proto)
            key = (sock.proto, port)
        else:
            for other_ip, other in self.bound.get(key, ()):
                if other_ip == ip or WILDCARD in (ip, other_ip):
                    if sock.proto == socket.IPPROTO_TCP and _reuse_addr(sock) and _reuse_addr(other):
                        if not self._listens(other):
                            continue  # Linux: two SO_REUSEADDR sockets may share a port while neither listens
                    elif sock.proto == socket.IPPROTO_UDP and _reuse_addr(sock) and _reuse_addr(other):
                        raise NotAllowed(
                            f"two UDP sockets sharing port {port} with SO_REUSEADDR (Linux delivers each datagram "
                            "to one of them) is not simulated: give each its own port"
                        )
                    if _reuse_port(sock) and _reuse_port(other):
                        raise NotAllowed(
                            f"two sockets sharing port {port} with SO_REUSEPORT (Linux spreads connections or "
                            "datagrams between them) is not simulated: give each its own port, or run each "
                            "server on its own host"
                        )
                    raise os_error(errno.EADDRINUSE, "Address already in use")
            if sock.proto == socket.IPPROTO_TCP and self._orphan_holds(ip, port, sock):
                raise os_error(errno.EADDRINUSE, "Address already in use")
        self.bound.setdefault(key, []).append((ip, sock))
        if sock.type == socket.SOCK_DGRAM:
            self.udp[(ip, port)] = sock
        return ip, port

    def _orphan_holds(self, ip: str, port: int, sock: SimSocket) -> bool:
        """Whether a connection its program closed, still sending, holds ``ip:port`` (Linux's bind conflict).

        Both its socket and ``sock`` having ``SO_REUSEADDR`` lets the new one bind
        (as asyncio's servers set it; a client's ``local_addr`` does not).
        """
        reuse = bool(sock.options.get((socket.SOL_SOCKET, socket.SO_REUSEADDR)))
        return any(
            tcb.orphan
            and tcb.lport == port
            and (tcb.lip == ip or WILDCARD in (ip, tcb.lip))
            and not (reuse and tcb.reuse_addr)
            for tcb in self.tcbs.values()
        )

    def _ephemeral(self, proto: int) -> int:
        for _ in range(EPHEMERAL[1] - EPHEMERAL[0] + 1):
            port = next(self._ports)
            if not self.bound.get((proto, port)):
                return port
        raise os_error(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    def listen(self, sock: SimSocket) -> None:
        assert sock.local is not None  # SimSocket.listen binds first
        ip, port = sock.local
        for other_ip, other in self.bound.get((sock.proto, port), ()):
            if other is not sock and self._listens(other) and (other_ip == ip or WILDCARD in (ip, other_ip)):
                raise os_error(errno.EADDRINUSE, "Address already in use")  # two sockets bound there, as Linux
        self.listeners[sock.local] = sock

    def _listens(self, sock: SimSocket) -> bool:
        return any(listener is sock for listener in self.listeners.values())

    def unlisten(self, sock: SimSocket) -> None:
        """``sock`` stops listening (closed, or shut for reading); its port stays bound while it is open."""
        if sock.local is not None and self.listeners.get(sock.local) is sock:
            del self.listeners[sock.local]

    def route(self, host: str, port: int) -> tuple[str, int]:
        """``(ip, port)`` of a destination in this world (a name is looked up), or ``NotAllowed``."""
        ip = self.world.lookup(host)
        if ip == WILDCARD:
            ip = LOOPBACK  # as on Linux, connecting to 0.0.0.0 reaches this host
        return ip, port

    def source_for(self, ip: str) -> str:
        return LOOPBACK if _loopback(ip) else self.ip

    def connect(self, sock: SimSocket, host: str, port: int) -> Tcb:
        rip, rport = self.route(host, port)
        local = sock.local
        if local is None:
            sock.bind((WILDCARD, 0))
            local = sock.getsockname()
        lip, lport = local
        if lip == WILDCARD:
            lip = self.source_for(rip)
            sock.local = (lip, lport)
        if (lport, rip, rport) in self.tcbs:  # a closed socket's connection, still finishing, has these ports
            raise os_error(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        tcb = Tcb(self, lip, lport, rip, rport, self.world.next_cid(), SYN_SENT)
        tcb.sock = sock
        sock.peer = (rip, rport)
        self.tcbs[(lport, rip, rport)] = tcb
        tcb.connect()
        return tcb

    def forget(self, tcb: Tcb) -> None:
        key = (tcb.lport, tcb.rip, tcb.rport)
        if self.tcbs.get(key) is tcb:
            del self.tcbs[key]

    # -- segments ---------------------------------------------------------------------------

    def emit(self, src_ip: str, dst_ip: str, segment: Segment) -> None:
        """Send a segment: to this host itself on the next step, else onto the world's network."""
        if not self.alive:
            return
        if dst_ip == src_ip or dst_ip.startswith("127.") or dst_ip == self.ip:  # _loopback(dst_ip), inlined
            self.loop.call_soon(self.receive, src_ip, dst_ip, segment, context=self.context)
        else:
            self.world.transmit(self, dst_ip, segment)

    def receive(self, src_ip: str, dst_ip: str, segment: Segment) -> None:
        """One segment or datagram for this host."""
        if not self.alive:
            return
        kind = segment["type"]
        if kind == UDP:
            self._datagram_in(src_ip, dst_ip, segment)
            return
        if kind == UNREACHABLE:
            sock = self.udp.get((src_ip if _loopback(src_ip) else self.ip, segment["sp"])) or self.udp.get(
                (WILDCARD, segment["sp"])
            )
            if sock is not None:
                sock.unreachable((src_ip, segment["dp"]))
            return
        tcb = self.tcbs.get((segment["dp"], src_ip, segment["sp"]))
        if tcb is not None and tcb.cid == segment["cid"]:
            tcb.receive(segment)
            return
        if kind == RST:
            return
        if kind == SYN:
            if segment["cid"] <= self.syn_cids.get((segment["dp"], src_ip, segment["sp"]), 0):
                return  # a late copy of an older connection's SYN: it opens nothing and resets nothing
            if tcb is not None:  # a new connection on the ports of an old one: the old one is gone
                tcb.fail(errno.ECONNRESET)
            listener = self.listeners.get((dst_ip, segment["dp"])) or self.listeners.get((WILDCARD, segment["dp"]))
            if listener is not None:
                self._syn(listener, src_ip, dst_ip, segment)
                return
        # A segment for no connection: answer with a reset (ECONNREFUSED for a SYN).
        self.emit(dst_ip, src_ip, {"type": RST, "sp": segment["dp"], "dp": segment["sp"], "cid": segment["cid"]})

    def _syn(self, listener: SimSocket, src_ip: str, dst_ip: str, segment: Segment) -> None:
        if not listener.room():
            return  # the accept queue is full (SimSocket.room): the SYN is dropped and the client retries
        tcb = Tcb(self, dst_ip, segment["dp"], src_ip, segment["sp"], segment["cid"], SYN_RCVD)
        tcb.listener = listener
        tcb.peer_wnd = segment["wnd"]
        listener.half_open[tcb] = None
        key = (tcb.lport, src_ip, tcb.rport)
        self.tcbs[key] = tcb
        tcb.answer_syn()

    def send_datagram(self, sock: SimSocket, address: Address, payload: bytes) -> None:
        ip, port = address
        local_ip, local_port = sock.getsockname()  # bound: SimSocket._sendto binds first
        src = local_ip if local_ip != WILDCARD else self.source_for(ip)
        self.emit(src, ip, {"type": UDP, "sp": local_port, "dp": port, "data": payload.decode("latin-1")})

    def _datagram_in(self, src_ip: str, dst_ip: str, segment: Segment) -> None:
        port = segment["dp"]
        sock = self.udp.get((dst_ip, port)) or self.udp.get((WILDCARD, port))
        if sock is None:
            self.emit(dst_ip, src_ip, {"type": UNREACHABLE, "sp": segment["sp"], "dp": port})
            return
        sock.datagram(segment["data"].encode("latin-1"), (src_ip, segment["sp"]))

    # -- crashing ---------------------------------------------------------------------------

    def crash(self, reset: bool = True) -> None:
        """The host died: reset its connections (if ``reset``), then ignore everything from now on."""
        for tcb in list(self.tcbs.values()):
            if reset and tcb.state not in (CLOSED, SYN_SENT):
                tcb.send_rst()
            tcb.stop_timers()
        self.alive = False
        self.world.bury(list(self.sockets))
        # Nothing of a dead kernel is used again: drop what would keep its sockets (and so itself) in memory.
        for table in (self.sockets, self.tcbs, self.bound, self.listeners, self.udp):
            table.clear()

    def describe(self) -> list[str]:
        """One line per connection and listener, for a deadlock report."""
        lines = [f"{self.name} listens on {ip}:{port}" for (ip, port) in self.listeners]
        lines += [f"{self.name} {tcb!r}" for tcb in self.tcbs.values()]
        return lines


def _reuse_addr(sock: SimSocket) -> bool:
    return bool(sock.options.get((socket.SOL_SOCKET, socket.SO_REUSEADDR)))


def _reuse_port(sock: SimSocket) -> bool:
    return bool(sock.options.get((socket.SOL_SOCKET, getattr(socket, "SO_REUSEPORT", 15))))


def ephemeral_ports() -> Iterator[int]:
    """Linux's ephemeral range, in order, round and round (a host's counter survives its restarts)."""
    low, high = EPHEMERAL
    while True:
        yield from range(low, high + 1)


def _loopback(ip: str) -> bool:
    return ip.startswith("127.")


def ipv4(host: str) -> str | None:
    """``host`` as a dotted IPv4 literal if it is one, else None."""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        return None


class LocalWorld(World):
    """The world of a ``VirtualLoop`` outside any Simulation, or of one without hosts: ``localhost``, 127.0.0.1."""

    def __init__(self, loop: NetBase):
        super().__init__(loop)
        self.kernel = Kernel(self, "localhost", LOOPBACK)

    def current(self) -> Kernel:
        return self.kernel

    def lookup(self, host: str) -> str:
        if host.lower() in ("localhost", WILDCARD, ""):
            return LOOPBACK if host.lower() == "localhost" else WILDCARD
        ip = ipv4(host)
        if ip is not None and _loopback(ip):
            return ip
        raise self.outside(host, "without hosts, it has only 127.0.0.1 and localhost")

    def name_of(self, ip: str) -> str | None:
        return "localhost" if _loopback(ip) else None

    def transmit(self, kernel: Kernel, dst_ip: str, segment: Segment) -> None:
        raise self.outside(dst_ip, "only 127.0.0.1")
