"""Name resolution inside a simulation: ``getaddrinfo`` and ``getnameinfo`` without threads or DNS.

A host's name resolves to its address, ``localhost`` to 127.0.0.1, and a
numeric address to itself, with the tuples the C library gives (one per
socket type unless a type is asked for, enum families and types, a
canonical name on the first only). A name outside the simulation is not
looked up: that would be real I/O, so it raises ``NotAllowed``, which says
what to do instead. Only IPv4 is simulated.
"""

from __future__ import annotations

import socket

from emulator.kernel import World, ipv4
from emulator.validate import is_int

#: What getaddrinfo returns: (family, type, proto, canonical name, (address, port)).
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]

__all__ = ["SERVICES", "getaddrinfo", "getnameinfo"]

#: Service names a port may be given as (a built-in table: /etc/services is not read).
SERVICES = {
    "http": 80,
    "https": 443,
    "ftp": 21,
    "ssh": 22,
    "smtp": 25,
    "domain": 53,
    "ntp": 123,
    "redis": 6379,
    "postgresql": 5432,
    "mysql": 3306,
}
_PROTOCOLS: dict[int, int] = {
    socket.SOCK_STREAM: socket.IPPROTO_TCP,
    socket.SOCK_DGRAM: socket.IPPROTO_UDP,
    socket.SOCK_RAW: 0,
}


def getaddrinfo(
    world: World,
    host: str | bytes | None,
    port: str | bytes | int | None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[AddrInfo]:
    """``socket.getaddrinfo`` answered from the simulation's hosts.

    Raises:
        socket.gaierror: a malformed request (a bad service name, an IPv6-only
            family, a name where ``AI_NUMERICHOST`` wants a number).
        NotAllowed: a name or address outside the simulation.
    """
    if family not in (0, socket.AF_INET):
        raise socket.gaierror(
            socket.EAI_FAMILY if family != socket.AF_INET6 else socket.EAI_ADDRFAMILY,
            "Address family for hostname not supported (capsim simulates IPv4 only)",
        )
    port = _port(port, type)
    if isinstance(host, bytes):
        host = host.decode("idna")
    if host is None:
        host = "0.0.0.0" if flags & socket.AI_PASSIVE else "127.0.0.1"
    elif flags & socket.AI_NUMERICHOST and ipv4(host) is None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    address = world.lookup(host)
    canonical = host if flags & socket.AI_CANONNAME else ""
    kinds = [type] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW]
    out: list[AddrInfo] = []
    for kind in kinds:
        number = proto or _PROTOCOLS.get(kind, 0)
        out.append((socket.AF_INET, socket.SocketKind(kind), number, canonical if not out else "", (address, port)))
    return out


def getnameinfo(world: World, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int = 0) -> tuple[str, str]:
    """``socket.getnameinfo`` answered from the simulation's hosts."""
    host, port = sockaddr[0], sockaddr[1]
    address = world.lookup(host)
    name = address if flags & socket.NI_NUMERICHOST else world.name_of(address)
    if name is None:
        if flags & socket.NI_NAMEREQD:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        name = address
    service = str(port)
    if not flags & socket.NI_NUMERICSERV:
        service = next((n for n, p in SERVICES.items() if p == port), service)
    return name, service


def _port(port: object, kind: int) -> int:
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        if port in SERVICES:
            return SERVICES[port]
        raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")
    if not is_int(port):
        raise TypeError(f"getaddrinfo() argument 2 must be integer or string, got {port!r}")
    if not 0 <= port <= 65535:
        raise OverflowError("getsockaddrarg: port must be 0-65535.")
    return port
