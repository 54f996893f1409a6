"""getaddrinfo and getnameinfo answered from the simulation's hosts, shaped as the C library shapes them."""

import functools
import socket
import sys

import pytest

import emulator as em
from emulator.kernel import LocalWorld
from emulator.loop import VirtualLoop
from emulator.resolver import SERVICES, getaddrinfo, getnameinfo

WORLD = LocalWorld(VirtualLoop())


def test_with_no_type_there_is_one_answer_per_socket_type_as_glibc_gives():
    """type=0 gives stream, datagram and raw entries; the canonical name goes on the first only."""
    got = getaddrinfo(WORLD, "localhost", 80, flags=socket.AI_CANONNAME)
    assert got == [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "localhost", ("127.0.0.1", 80)),
        (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", ("127.0.0.1", 80)),
        (socket.AF_INET, socket.SOCK_RAW, 0, "", ("127.0.0.1", 80)),
    ]


def test_passive_and_numeric_requests():
    """No host means the wildcard with AI_PASSIVE, loopback without; AI_NUMERICHOST refuses names."""
    assert getaddrinfo(WORLD, None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][4] == ("0.0.0.0", 0)
    assert getaddrinfo(WORLD, None, 1, type=socket.SOCK_STREAM)[0][4] == ("127.0.0.1", 1)
    with pytest.raises(socket.gaierror):
        getaddrinfo(WORLD, "localhost", 1, flags=socket.AI_NUMERICHOST)


def test_bad_requests_fail_as_the_c_library_fails():
    """An unknown service, IPv6 or a bad port type raise what socket.getaddrinfo raises."""
    with pytest.raises(socket.gaierror, match="Servname not supported"):
        getaddrinfo(WORLD, "localhost", "no-such-service")
    with pytest.raises(socket.gaierror, match="IPv4 only"):
        getaddrinfo(WORLD, "localhost", 80, family=socket.AF_INET6)
    with pytest.raises(TypeError):
        getaddrinfo(WORLD, "localhost", 1.5)
    with pytest.raises(em.NotAllowed, match=r"only 127\.0\.0\.1 and localhost"):
        getaddrinfo(WORLD, "example.com", 80)


def test_getnameinfo_names_hosts_and_services():
    """A numeric request gives the address; otherwise the host's name and the service's."""
    assert getnameinfo(WORLD, ("127.0.0.1", 443)) == ("localhost", "https")
    assert getnameinfo(WORLD, ("127.0.0.1", 443), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV) == ("127.0.0.1", "443")


def test_getnameinfo_names_a_port_by_the_service_its_protocol_has():
    """As glibc with Debian's /etc/services: a port is named for TCP, or for UDP with NI_DGRAM, only by a service
    that has that protocol (found by review: 123 was 'ntp' for TCP, 80 'http' for UDP); compared with this
    machine's getnameinfo where its /etc/services lists every built-in service (for names in the table)."""
    answers = {
        port: (getnameinfo(WORLD, ("127.0.0.1", port))[1], getnameinfo(WORLD, ("127.0.0.1", port), socket.NI_DGRAM)[1])
        for port in (80, 123, 443, 53, 6379)
    }
    assert answers == {
        80: ("http", "80"),
        123: ("123", "ntp"),
        443: ("https", "https"),
        53: ("domain", "domain"),
        6379: ("redis", "6379"),
    }
    try:
        known = all(socket.getservbyname(name, "tcp" if name != "ntp" else "udp") for name in SERVICES)
    except OSError:
        known = False
    if sys.platform == "linux" and known:
        for port in sorted(SERVICES.values()):
            for flags in (0, socket.NI_DGRAM):
                real = socket.getnameinfo(("127.0.0.1", port), flags)
                if real[1].isdigit() or real[1] in SERVICES:  # (21/udp is fsp, a service not in the table)
                    assert getnameinfo(WORLD, ("127.0.0.1", port), flags) == real


def _answers(resolve, *args, **kwargs):
    try:
        return [(int(k), p, c, a) for _, k, p, c, a in resolve(*args, **kwargs)]
    except socket.gaierror as exc:
        return f"gaierror({exc.errno})"


@pytest.mark.skipif(sys.platform != "linux", reason="compared with glibc's own getaddrinfo")
@pytest.mark.parametrize("host", ["127.0.0.1", None])
def test_socket_types_and_protocols_combine_as_glibc_combines_them(host):
    """Every type, protocol and flag with a numeric port or none: the same entries, or the same error, as glibc.

    Found by review: a protocol with no type gave three entries of different
    types all carrying it (glibc: the one type that has it), and a type with a
    protocol it does not have, or a raw socket with a port, answered instead of
    failing with EAI_SOCKTYPE or EAI_SERVICE.
    """
    differ = []
    for port in (80, "8080", 0, None):
        for kind in (0, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
            for proto in (0, socket.IPPROTO_TCP, socket.IPPROTO_UDP, 132, 99):
                for flags in (0, socket.AI_PASSIVE, socket.AI_CANONNAME, socket.AI_NUMERICSERV):
                    kw = {"family": socket.AF_INET, "type": kind, "proto": proto, "flags": flags}
                    real = _answers(socket.getaddrinfo, host, port, **kw)
                    simulated = _answers(functools.partial(getaddrinfo, WORLD), host, port, **kw)
                    if real != simulated:
                        differ.append((port, kind, proto, flags, real, simulated))
    assert differ == []


def test_a_named_service_answers_for_the_protocols_it_has():
    """http is TCP only, ntp UDP only, domain both (Debian's /etc/services); AI_NUMERICSERV refuses a name."""
    kinds = {name: [e[1] for e in getaddrinfo(WORLD, "127.0.0.1", name)] for name in ("http", "ntp", "domain")}
    assert kinds == {
        "http": [socket.SOCK_STREAM],
        "ntp": [socket.SOCK_DGRAM],
        "domain": [socket.SOCK_STREAM, socket.SOCK_DGRAM],
    }
    with pytest.raises(socket.gaierror) as caught:
        getaddrinfo(WORLD, "127.0.0.1", "http", type=socket.SOCK_DGRAM)
    assert caught.value.errno == socket.EAI_SERVICE
    with pytest.raises(socket.gaierror) as caught:
        getaddrinfo(WORLD, "127.0.0.1", "http", flags=socket.AI_NUMERICSERV)
    assert caught.value.errno == socket.EAI_NONAME
    with pytest.raises(socket.gaierror) as caught:
        getaddrinfo(WORLD, "", 80)
    assert caught.value.errno == socket.EAI_NONAME


def test_localhost_is_any_case_as_in_etc_hosts():
    """glibc matches /etc/hosts without regard to case: LOCALHOST and Localhost are 127.0.0.1 too."""
    assert {getaddrinfo(WORLD, name, 80, type=socket.SOCK_STREAM)[0][4][0] for name in ("LOCALHOST", "Localhost")} == {
        "127.0.0.1"
    }

    async def main():
        return [socket.gethostbyname(name) for name in ("LocalHost", "localhost")]

    sim = em.Simulation(seed=1)
    got = {}

    async def host():
        got["names"] = await main()

    sim.add_host("a", host)
    sim.run(until=1)
    sim.close()
    assert got == {"names": ["127.0.0.1", "127.0.0.1"]}
