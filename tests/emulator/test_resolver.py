"""getaddrinfo and getnameinfo answered from the simulation's hosts, shaped as the C library shapes them."""

import socket

import pytest

import emulator as em
from emulator.kernel import LocalWorld
from emulator.loop import VirtualLoop
from emulator.resolver import getaddrinfo, getnameinfo

WORLD = LocalWorld(VirtualLoop())


def test_with_no_type_there_is_one_answer_per_socket_type_as_glibc_gives():
    """type=0 gives stream, datagram and raw entries; the canonical name goes on the first only."""
    got = getaddrinfo(WORLD, "localhost", "http", flags=socket.AI_CANONNAME)
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
