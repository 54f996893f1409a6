"""A host's network stack: addresses, ports, resets, and a crashed incarnation that answers nothing."""

import asyncio
import errno
import itertools
import socket

import pytest

import emulator as em
from emulator.kernel import EPHEMERAL, LocalWorld, ephemeral_ports, ipv4
from emulator.loop import VirtualLoop
from tests.common.hosts import echo_server, now

# -- addresses -----------------------------------------------------------------------------------------


def test_a_lone_loop_world_knows_localhost_and_loopback_only():
    """localhost is 127.0.0.1, any 127.x literal is itself, '' and 0.0.0.0 are the wildcard."""
    world = LocalWorld(VirtualLoop())
    assert [world.lookup(h) for h in ("localhost", "127.0.0.1", "127.3.2.1", "", "0.0.0.0")] == [
        "127.0.0.1",
        "127.0.0.1",
        "127.3.2.1",
        "0.0.0.0",
        "0.0.0.0",
    ]
    assert (world.name_of("127.0.0.1"), world.name_of("10.0.0.1")) == ("localhost", None)


@pytest.mark.parametrize("host", ["10.0.0.1", "example.com", "::1"])
def test_an_address_outside_the_lone_loop_world_is_refused_with_what_to_do(host):
    """Any other name or address is NotAllowed, and the message says how to simulate a host instead."""
    with pytest.raises(em.NotAllowed, match=r"outside the simulated network.*sim\.add_host"):
        LocalWorld(VirtualLoop()).lookup(host)


def test_ipv4_recognises_dotted_literals_only():
    """ipv4() normalises an IPv4 literal and returns None for names and IPv6."""
    assert ipv4("10.0.0.1") == "10.0.0.1"
    assert [ipv4(h) for h in ("web", "::1", "10.0.0", "256.0.0.1", "")] == [None] * 5


def test_ephemeral_ports_run_through_linuxs_range_and_wrap():
    """32768..60999 in order, then 32768 again."""
    low, high = EPHEMERAL
    assert (low, high) == (32768, 60999)
    ports = list(itertools.islice(ephemeral_ports(), high - low + 3))
    assert ports[:2] == [32768, 32769] and ports[high - low] == 60999 and ports[-2:] == [32768, 32769]


# -- ports on one host ---------------------------------------------------------------------------------


def _run(coro_fn):
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


def test_port_zero_takes_the_next_free_ephemeral_port():
    """Binding port 0 hands out 32768, 32769, ... and skips a port already taken."""

    async def main():
        loop = asyncio.get_running_loop()
        taken = await loop.create_server(asyncio.Protocol, "127.0.0.1", 32769)
        first = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        second = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        return [s.sockets[0].getsockname()[1] for s in (taken, first, second)]

    assert _run(main) == [32769, 32768, 32770]


def test_tcp_and_udp_ports_are_separate_but_a_wildcard_conflicts_with_a_specific_address():
    """UDP 5000 and TCP 5000 coexist; TCP 127.0.0.1:5000 after 0.0.0.0:5000 is EADDRINUSE."""

    async def main():
        loop = asyncio.get_running_loop()
        await loop.create_server(asyncio.Protocol, "0.0.0.0", 5000)
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 5000))
        udp = transport.get_extra_info("sockname")
        with pytest.raises(OSError) as caught:
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 5000)
        return udp, caught.value.errno

    assert _run(main) == (("127.0.0.1", 5000), errno.EADDRINUSE)


def test_closing_a_server_frees_its_port():
    """After server.close() the same port can be bound again."""

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 8080)
        server.close()
        await server.wait_closed()
        again = await loop.create_server(asyncio.Protocol, "127.0.0.1", 8080)
        return again.sockets[0].getsockname()

    assert _run(main) == ("127.0.0.1", 8080)


def test_describe_lists_listeners_and_connections():
    """The deadlock report names the host's listener and both ends of its connection."""

    async def main():
        loop = asyncio.get_running_loop()
        accepted = []
        server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 8080)
        _, writer = await asyncio.open_connection("localhost", 8080)
        await asyncio.sleep(0.01)
        lines = loop.world.kernel.describe()
        port = writer.get_extra_info("sockname")[1]
        for end in (writer, *accepted):
            end.close()
        server.close()
        await asyncio.sleep(0.01)
        return lines, port

    lines, port = _run(main)
    assert lines[0] == "localhost listens on 127.0.0.1:8080"
    assert len(lines) == 3 and all(line.startswith("localhost <") for line in lines[1:]), lines
    assert sum(str(port) in line for line in lines[1:]) == 2, lines


# -- across hosts: a port counter that outlives a crash, resets, a dead incarnation -----------------------


def test_a_restarted_host_does_not_reuse_its_last_ephemeral_port():
    """The host's port counter outlives an incarnation: after a restart the next connection gets the next port."""
    ports = []

    async def client():
        _, writer = await asyncio.open_connection("server", 7)
        ports.append(writer.get_extra_info("sockname")[1])
        await asyncio.sleep(10)

    sim = em.Simulation(seed=1, latency=0.005)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=1)
    sim.crash("client")
    sim.restart("client")
    sim.run(until=2)
    sim.close()
    assert ports == [32768, 32769]


def _after_a_crash_behind_a_partition(restart: bool) -> dict:
    """The server crashes while cut off from the client; after the heal the client writes on its old connection."""
    seen = {}

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"hi\n")
        seen["echo"] = await reader.readline()
        try:
            await asyncio.wait_for(reader.readline(), 1.5)  # the crash's reset, if it got through
        except TimeoutError:
            seen["quiet"] = True
        writer.write(b"again\n")
        try:
            seen["answer"] = await asyncio.wait_for(reader.readline(), 3.0)
        except ConnectionResetError as exc:
            seen["reset"] = (exc.errno, round(now(), 3))
        except TimeoutError:
            seen["silence"] = True

    sim = em.Simulation(seed=1, latency=0.005)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=0.5)
    sim.network.partition(["server"], ["client"])
    sim.crash("server")  # its reset goes out on the network, and the partition swallows it
    sim.run(until=1.0)
    sim.network.heal()
    if restart:
        sim.restart("server")
    sim.run(until=6)
    sim.close()
    return seen


def test_a_partition_swallows_the_reset_of_a_crash_and_the_next_incarnation_resets_the_old_connection():
    """The client hears nothing of the crash; its next segment reaches a kernel that does not know it: reset."""
    seen = _after_a_crash_behind_a_partition(restart=True)
    assert seen["echo"] == b"hi\n" and seen["quiet"]
    assert seen["reset"][0] == errno.ECONNRESET and "answer" not in seen


def test_a_crashed_host_that_stays_down_answers_nothing():
    """A dead incarnation's kernel is inert: the client's segment gets no reset, only silence."""
    seen = _after_a_crash_behind_a_partition(restart=False)
    assert seen["echo"] == b"hi\n" and seen["quiet"] and seen.get("silence") and "reset" not in seen


def test_code_of_a_dead_incarnation_that_still_runs_reaches_no_one():
    """A program that swallows its cancellation and connects after the crash: no SYN leaves the dead kernel."""
    accepted, outcome = [], []

    async def witness():
        async def handle(reader, writer):
            accepted.append(writer.get_extra_info("peername"))
            writer.close()

        await (await asyncio.start_server(handle, "0.0.0.0", 9)).serve_forever()

    async def ghost():
        await asyncio.start_server(lambda r, w: accepted.append("itself"), "127.0.0.1", 8000)
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            pass  # a badly behaved program: it goes on after the crash
        for host, port in (("witness", 9), ("127.0.0.1", 8000)):  # over the network, and over loopback
            try:
                await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
                outcome.append("connected")
            except (OSError, TimeoutError) as exc:
                outcome.append(type(exc).__name__)

    sim = em.Simulation(seed=1, latency=0.005)
    sim.add_host("witness", witness)
    sim.add_host("ghost", ghost)
    sim.run(until=1)
    sim.crash("ghost")
    sim.run(until=8)
    sim.close()
    assert outcome == ["TimeoutError", "TimeoutError"] and accepted == []


def test_a_closed_connection_still_sending_keeps_its_port():
    """A socket closed with data still in flight keeps its port until that data and its FIN are through.

    As on Linux, binding the port again meanwhile fails with EADDRINUSE, and
    the peer reads everything. Found by review: the port was free at once, a
    new connection from it to the same peer silently destroyed the old one,
    and the peer read a truncated stream and ECONNRESET.
    """
    payload = bytes(range(256)) * 200  # 50 KB: all in the kernel's send buffer, most unsent at the close
    seen = {}

    async def sink():
        async def handle(reader, writer):
            data = b""
            try:
                while chunk := await reader.read(65536):
                    data += chunk
                seen.setdefault("read", []).append(len(data))
            except OSError as exc:
                seen.setdefault("read", []).append((len(data), type(exc).__name__))
            writer.close()

        await (await asyncio.start_server(handle, "0.0.0.0", 9000)).serve_forever()

    async def source():
        _reader, writer = await asyncio.open_connection("sink", 9000, local_addr=("0.0.0.0", 40000))
        writer.write(payload)
        writer.close()  # the kernel goes on sending, orphaned
        await asyncio.sleep(0)  # the socket is closed
        try:
            await asyncio.open_connection("sink", 9000, local_addr=("0.0.0.0", 40000))
            seen["again"] = "connected"
        except OSError as exc:
            seen["again"] = exc.errno
        await asyncio.sleep(120)
        _reader, writer = await asyncio.open_connection("sink", 9000, local_addr=("0.0.0.0", 40000))
        seen["later"] = writer.get_extra_info("sockname")

    sim = em.Simulation(seed=1, latency=0.01)
    sim.add_host("sink", sink)
    sim.add_host("source", source)
    sim.run(until=200)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert seen["read"][0] == len(payload), seen
    assert seen["again"] == errno.EADDRINUSE
    assert seen["later"] == ("10.0.0.2", 40000)  # free once the old connection is over


def test_a_server_restarted_on_its_port_binds_past_its_closed_connections_with_so_reuseaddr():
    """asyncio's servers set SO_REUSEADDR (on POSIX, by default): a new one binds while old connections finish.

    Without it (``reuse_address=False``) the bind fails with EADDRINUSE, as on Linux.
    """
    seen = {}

    async def server():
        loop = asyncio.get_running_loop()

        async def handle(reader, writer):
            writer.write(b"x" * 60000)  # the client never reads: the connection cannot finish
            writer.close()

        first = await asyncio.start_server(handle, "0.0.0.0", 9000)
        seen["reuse"] = first.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        await asyncio.sleep(1)
        first.close()
        for reuse in (False, None):
            try:
                again = await loop.create_server(asyncio.Protocol, "0.0.0.0", 9000, reuse_address=reuse)
                seen[reuse] = again.sockets[0].getsockname()
            except OSError as exc:
                seen[reuse] = exc.errno

    async def client():
        _reader, writer = await asyncio.open_connection("server", 9000)
        await asyncio.sleep(100)
        writer.close()

    sim = em.Simulation(seed=1, latency=0.01)
    sim.add_host("server", server)
    sim.add_host("client", client)
    sim.run(until=5)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert seen == {"reuse": 1, False: errno.EADDRINUSE, None: ("0.0.0.0", 9000)}


def test_without_time_wait_a_port_is_free_once_its_connection_is_over():
    """The documented difference from Linux: no TIME_WAIT, so the closer's port can be bound again at once."""
    seen = {}

    async def client():
        reader, writer = await asyncio.open_connection("server", 7, local_addr=("0.0.0.0", 40000))
        writer.write(b"bye\n")
        await reader.readline()
        writer.close()  # the client closes first: on Linux its port would stay in TIME_WAIT for 60 s
        await reader.read()
        await asyncio.sleep(0.1)  # the server's FIN and the last ACK are through
        _reader, writer = await asyncio.open_connection("server", 7, local_addr=("0.0.0.0", 40000))
        seen["again"] = writer.get_extra_info("sockname")

    sim = em.Simulation(seed=1, latency=0.01)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=5)
    sim.close()
    assert seen == {"again": ("10.0.0.2", 40000)}


def test_sharing_a_port_with_so_reuseport_is_refused_naming_it():
    """One socket with SO_REUSEPORT works; a second on its port (Linux would share it) is not simulated: NotAllowed.

    Found by review: ``reuse_port=True`` was dropped, and the second server
    failed with a plain EADDRINUSE, a wrong answer rather than a refusal.
    """
    seen = {}

    async def main():
        loop = asyncio.get_running_loop()
        first = await loop.create_server(asyncio.Protocol, "0.0.0.0", 8080, reuse_port=True)
        seen["option"] = first.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        for make in (
            lambda: loop.create_server(asyncio.Protocol, "0.0.0.0", 8080, reuse_port=True),
            lambda: loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("0.0.0.0", 53), reuse_port=True
            ),
        ):
            try:
                await make()
                await make()
            except em.NotAllowed as exc:
                seen.setdefault("refused", []).append("SO_REUSEPORT" in str(exc))
        try:
            await loop.create_server(asyncio.Protocol, "0.0.0.0", 8080)
        except OSError as exc:
            seen["plain"] = exc.errno  # without SO_REUSEPORT on both, the port is simply in use

    sim = em.Simulation(seed=1)
    sim.add_host("a", main)
    sim.run(until=1)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert seen == {"option": 1, "refused": [True, True], "plain": errno.EADDRINUSE}
