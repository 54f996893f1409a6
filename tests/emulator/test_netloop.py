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
        # (add_reader on a real descriptor: tests/emulator/test_netbase.py)
        with (
            socket.socket() as real,
            pytest.raises(em.NotAllowed, match=r"create_connection.sock=.... with a real socket"),
        ):
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


def test_loop_create_server_and_create_connection_run_protocols_over_the_network():
    """The protocol API: connection_made, data_received, eof_received and connection_lost in order, both ends."""
    events = {"server": [], "client": []}

    class Recorder(asyncio.Protocol):
        def __init__(self, side, reply=None):
            self.side, self.reply, self.done = side, reply, asyncio.get_running_loop().create_future()

        def connection_made(self, transport):
            self.transport = transport
            events[self.side].append(("made", transport.get_extra_info("peername")[0]))

        def data_received(self, data):
            events[self.side].append(("data", data))
            if self.reply:
                self.transport.write(self.reply)

        def eof_received(self):
            events[self.side].append(("eof",))
            return None  # close our side too

        def connection_lost(self, exc):
            events[self.side].append(("lost", exc))
            self.done.set_result(None)

    async def server():
        srv = await asyncio.get_running_loop().create_server(lambda: Recorder("server", b"pong"), "0.0.0.0", 5000)
        await srv.serve_forever()

    async def client():
        transport, protocol = await asyncio.get_running_loop().create_connection(
            lambda: Recorder("client"), "server", 5000
        )
        transport.write(b"ping")
        await asyncio.sleep(0.1)
        transport.write_eof()
        await protocol.done

    sim = em.Simulation(seed=1, latency=0.005)
    server_address = sim.add_host("server", server).address
    client_address = sim.add_host("client", client).address
    sim.run(until=1)
    sim.close()
    assert events["client"] == [("made", server_address), ("data", b"pong"), ("eof",), ("lost", None)]
    assert events["server"] == [("made", client_address), ("data", b"ping"), ("eof",), ("lost", None)]


def _backlog_run(gap):
    """listen(2), nobody accepting for 10 s, then one accept a second; five clients, ``gap`` seconds apart."""
    seen = {"connected": [], "accepted": []}

    async def server():
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(asyncio.Protocol, "0.0.0.0", 9, backlog=2, start_serving=False)
        await asyncio.sleep(10)
        while True:
            await loop.sock_accept(srv.sockets[0]._sock)
            seen["accepted"].append(round(now(), 2))
            await asyncio.sleep(1)

    async def client(i):
        await asyncio.sleep(gap * i)
        _reader, writer = await asyncio.open_connection("server", 9)
        seen["connected"].append(round(now(), 2))
        await asyncio.sleep(1000)  # the connection stays open, idle
        writer.close()

    sim = em.Simulation(seed=1, latency=0.001)
    sim.add_host("server", server)
    for i in range(5):
        sim.add_host(f"c{i}", client, i=i)
    sim.run(until=100)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    return seen


def test_a_listen_backlog_holds_backlog_plus_one_connections_as_on_linux():
    """listen(2) with nobody accepting: three connections wait in the queue, the others' SYNs are dropped.

    Linux's accept queue is full when it holds more than ``backlog``
    connections. Found by review: capsim held ``backlog``, and counted
    connections still in their handshake in them.
    """
    seen = _backlog_run(gap=0.1)
    # The fourth's and fifth's SYNs, retried at 1, 3, 7 and 15 s, find room after the accepts at 10 and 11 s.
    assert seen["connected"] == [0.0, 0.1, 0.2, 15.3, 15.4]
    assert seen["accepted"] == [10.0, 11.0, 12.0, 15.3, 16.3]


def test_handshakes_that_complete_into_a_full_accept_queue_wait_for_room_as_on_linux():
    """Five SYNs at once to listen(2): every client connects, the server queues three and drops the others' ACKs.

    Half-open connections take no room (SYN cookies, Linux's default), so all
    five SYNs are answered; the ACKs of two find the queue full and are
    dropped, and those two enter it when a retransmitted SYN-ACK is answered
    after room was made (SYN-ACKs at 1, 3, 7, 15 s; accepts from 10 s).
    """
    seen = _backlog_run(gap=0.0)
    assert seen["connected"] == [0.0] * 5
    assert seen["accepted"] == [10.0, 11.0, 12.0, 15.0, 16.0]
