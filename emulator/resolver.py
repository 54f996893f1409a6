"""Name resolution inside a simulation: ``getaddrinfo`` and ``getnameinfo`` without threads or DNS.

A host's name resolves to its address, ``localhost`` to 127.0.0.1, and a
numeric address to itself, with the tuples glibc gives (one per socket type
unless a type or a protocol is asked for, glibc's errors for a type and a
protocol that do not go together, enum families and types, a canonical
name on the first only). Service names come from a built-in table
(``SERVICES``), each with the protocols Debian's /etc/services gives it.
A name outside the simulation is not looked up: that would be real I/O,
so it raises ``NotAllowed``, which says what to do instead. Only IPv4 is
simulated.
"""

from __future__ import annotations

import socket

from emulator.kernel import World, ipv4
from emulator.validate import is_int

#: What getaddrinfo returns: (family, type, proto, canonical name, (address, port)).
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]

__all__ = ["SERVICES", "getaddrinfo", "getnameinfo"]

#: Service names a port may be given as (a built-in table: /etc/services is not read), with the
#: protocols Debian's /etc/services lists each for.
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
_SERVICE_PROTOCOLS: dict[str, tuple[int, ...]] = {  # the rest are TCP only
    "https": (socket.IPPROTO_TCP, socket.IPPROTO_UDP),
    "domain": (socket.IPPROTO_TCP, socket.IPPROTO_UDP),
    "ntp": (socket.IPPROTO_UDP,),
}
_SCTP = getattr(socket, "IPPROTO_SCTP", 132)
#: glibc's table of socket types and protocols (gaih_inet_typeproto), in its order; a raw socket takes any protocol.
_TYPEPROTO = (
    (socket.SOCK_STREAM, socket.IPPROTO_TCP),
    (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
    (socket.SOCK_STREAM, _SCTP),
    (socket.SOCK_SEQPACKET, _SCTP),
    (socket.SOCK_RAW, 0),
)
_DEFAULTS = (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW)  # what type=0, proto=0 gives


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
    if isinstance(host, bytes):
        host = host.decode("idna")
    if host == "":
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    if host is None and port is None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")  # neither: glibc's answer
    if host is None and flags & socket.AI_CANONNAME:
        raise socket.gaierror(socket.EAI_BADFLAGS, "Bad value for ai_flags")
    entries, number = _entries(port, type, proto, flags)
    if host is None:
        host = "0.0.0.0" if flags & socket.AI_PASSIVE else "127.0.0.1"
    elif flags & socket.AI_NUMERICHOST and ipv4(host) is None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    address = world.lookup(host)
    canonical = host if flags & socket.AI_CANONNAME else ""
    return [
        (socket.AF_INET, socket.SocketKind(kind), protocol, canonical if i == 0 else "", (address, number))
        for i, (kind, protocol) in enumerate(entries)
    ]


def _entries(port: object, kind: int, proto: int, flags: int) -> tuple[list[tuple[int, int]], int]:
    """The (type, protocol) pairs glibc answers with for this request, and the port number.

    Raises ``socket.gaierror`` as glibc does: EAI_SOCKTYPE for a type and a
    protocol that do not go together, EAI_SERVICE for a service the types asked
    for do not have (a raw socket has no ports).
    """
    number, protocols = _port(port, flags)
    raw_ok = port is None  # a raw socket has no port: glibc refuses one with a service, even 0
    if kind and not any(k == kind for k, _ in _TYPEPROTO):
        raise socket.gaierror(socket.EAI_SOCKTYPE, "ai_socktype not supported")
    if kind and proto and kind != socket.SOCK_RAW and (kind, proto) not in _TYPEPROTO:
        raise socket.gaierror(socket.EAI_SOCKTYPE, "ai_socktype not supported")
    entries: list[tuple[int, int]] = []
    for k, p in _TYPEPROTO:
        if kind and k != kind:
            continue
        if not kind and (k == socket.SOCK_SEQPACKET or (not proto and k not in _DEFAULTS)):
            continue  # SCTP's seqpacket only when asked for by type
        if k == socket.SOCK_RAW:
            if (kind or proto) and not raw_ok:
                continue
            if entries and proto:
                continue  # type 0 with a protocol: raw only when nothing else takes it
            entries.append((k, proto))
            continue
        if proto and p != proto:
            continue
        if protocols is not None and p not in protocols:
            continue
        if any(e[0] == k for e in entries):
            continue  # one entry per type: SCTP's stream only when asked for by protocol
        entries.append((k, p))
    if protocols is not None:
        entries = [e for e in entries if e[0] != socket.SOCK_RAW]
    if not entries:
        raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")
    return entries, number


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
    if not flags & socket.NI_NUMERICSERV:  # the name of the service on this port for TCP, or UDP with NI_DGRAM
        protocol = socket.IPPROTO_UDP if flags & socket.NI_DGRAM else socket.IPPROTO_TCP
        service = next(
            (
                n
                for n, p in SERVICES.items()
                if p == port and protocol in _SERVICE_PROTOCOLS.get(n, (socket.IPPROTO_TCP,))
            ),
            service,
        )
    return name, service


def _port(port: object, flags: int) -> tuple[int, tuple[int, ...] | None]:
    """The port number, and the protocols a named service has (None for a number: any)."""
    if port is None:
        return 0, None
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        if port.isdigit():
            return int(port), None
        if flags & socket.AI_NUMERICSERV:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if port in SERVICES:
            return SERVICES[port], _SERVICE_PROTOCOLS.get(port, (socket.IPPROTO_TCP,))
        raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")
    if not is_int(port):
        raise TypeError(f"getaddrinfo() argument 2 must be integer or string, got {port!r}")
    if not 0 <= port <= 65535:
        raise OverflowError("getsockaddrarg: port must be 0-65535.")
    return port, None
