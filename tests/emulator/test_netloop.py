"""The loop's networking: datagram endpoints, the sock_* coroutines, servers, and what stays refused."""

import asyncio
import errno
import socket

import pytest

import emulator as em
from emulator.loop import VirtualLoop
from tests.common.hosts import echo_server, now


class Collect(asyncio.DatagramProtocol):
    def __init__(self, inbox):
        self.inbox = inbox

    def datagram_received(self, data, addr):
        self.inbox.append((data, addr))

    def error_received(self, exc):
        self.inbox.append((type(exc).__name__, exc.errno))


def _datagrams(seed, count=2000, **network):
    inbox = []

    async def receiver():
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: Collect(inbox), local_addr=("0.0.0.0", 53))
        await asyncio.Event().wait()

    async def sender():
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("rx", 53)
        )
        for i in range(count):
            transport.sendto(b"%d" % i)
            await asyncio.sleep(0.001)

    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.05), **network)
    sim.add_host("rx", receiver)
    sim.add_host("tx", sender)
    sim.run(until=10)
    sim.close()
    return [int(data) for data, _ in inbox], sim


def test_datagrams_meet_the_links_loss_duplication_and_reordering():
    """UDP gets no help: a share is lost, some arrive twice, some out of order, as the link decides."""
    numbers, sim = _datagrams(1, loss=0.2, duplicate=0.1, reorder=0.5)
    stats = sim.network.stats
    assert len(numbers) == stats["delivered"] == stats["sent"] - stats["dropped"] + stats["duplicated"]
    assert 0.15 < stats["dropped"] / stats["sent"] < 0.25
    assert len(numbers) != len(set(numbers))  # duplicates reach the program
    assert numbers != sorted(numbers)  # so does reordering
    assert _datagrams(1, loss=0.2, duplicate=0.1, reorder=0.5)[0] == numbers  # and the same seed replays it


def test_on_a_calm_link_datagrams_arrive_in_order():
    """With the default FIFO link and no loss every datagram arrives once, in order."""
    numbers, _ = _datagrams(2, count=200)
    assert numbers == list(range(200))


def test_a_connected_udp_socket_hears_that_nothing_listens():
    """An ICMP port-unreachable comes back: a connected endpoint's protocol gets ConnectionRefusedError."""
    inbox = []

    async def sender():
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: Collect(inbox), remote_addr=("rx", 9999)
        )
        transport.sendto(b"anyone?")
        await asyncio.sleep(1)

    sim = em.Simulation(seed=1)
    sim.add_host("rx")
    sim.add_host("tx", sender)
    sim.run(until=2)
    sim.close()
    assert inbox == [("ConnectionRefusedError", errno.ECONNREFUSED)]


def test_the_sock_coroutines_work_on_simulated_sockets():
    """sock_accept, sock_recv and sock_sendall on the sockets of a server and a connection."""

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, start_serving=False)
        listener = server.sockets[0]
        accepted = loop.create_task(loop.sock_accept(listener._sock))
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        conn, address = await accepted
        await loop.sock_sendall(conn, b"from the server")
        data = await reader.readexactly(15)
        writer.write(b"back")
        return data, await loop.sock_recv(conn, 100), address == writer.get_extra_info("sockname")

    loop = VirtualLoop()
    assert loop.run_until_complete(main()) == (b"from the server", b"back", True)


def test_binding_a_port_in_use_fails_as_asyncio_says_it():
    """A second server on the same port gets EADDRINUSE with asyncio's own message."""

    async def main():
        await asyncio.start_server(lambda r, w: None, "0.0.0.0", 8080)
        with pytest.raises(
            OSError,
            match=r"error while attempting to bind on address \('0.0.0.0', 8080\): "
            r"address already in use",
        ) as caught:
            await asyncio.start_server(lambda r, w: None, "0.0.0.0", 8080)
        return caught.value.errno

    assert VirtualLoop().run_until_complete(main()) == errno.EADDRINUSE


def test_real_descriptors_tls_unix_sockets_and_threads_are_refused():
    """Everything that would touch the real machine raises NotAllowed, naming it."""

    async def main():
        loop = asyncio.get_running_loop()
        with socket.socket() as real:
            with pytest.raises(em.NotAllowed, match="not a simulated socket"):
                loop.add_reader(real.fileno(), print)
            with pytest.raises(em.NotAllowed, match=r"create_connection.sock=.... with a real socket"):
                await loop.create_connection(asyncio.Protocol, sock=real)
        with pytest.raises(em.NotAllowed, match="TLS"):
            await asyncio.open_connection("127.0.0.1", 1, ssl=True)
        with pytest.raises(em.NotAllowed, match="Unix socket"):
            await asyncio.open_unix_connection("/tmp/x")
        with pytest.raises(em.NotAllowed, match="subprocess_exec"):
            await asyncio.create_subprocess_exec("true")
        return "refused"

    assert VirtualLoop().run_until_complete(main()) == "refused"


def test_server_close_resets_connections_nobody_accepted_yet():
    """A listener closed with connections still in its accept queue resets them, as Linux does."""
    seen = {}

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 7000, start_serving=False)
        connecting = loop.create_task(asyncio.open_connection("127.0.0.1", 7000))
        reader, _ = await connecting  # the handshake completes in the kernel, before any accept
        server.close()
        try:
            await reader.read()
        except ConnectionResetError:
            seen["reset"] = now()

    VirtualLoop().run_until_complete(main())
    assert "reset" in seen


def test_a_lone_loop_echo_round_trip():
    """Outside any Simulation a VirtualLoop serves and connects on 127.0.0.1."""

    async def main():
        server = loop.create_task(echo_server(port=7))
        await asyncio.sleep(0)
        reader, writer = await asyncio.open_connection("localhost", 7)
        writer.write(b"ping\n")
        line = await reader.readline()
        server.cancel()
        return line

    loop = VirtualLoop()
    assert loop.run_until_complete(main()) == b"ping\n"
