"""TCP between simulated hosts: what a program using asyncio streams sees."""

import asyncio
import errno
import hashlib
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from emulator.tcp import TcpSettings
from tests.common.hosts import digest_server, echo_server, now


def _payload(n: int, salt: int = 0) -> bytes:
    return bytes((i * 31 + salt) % 251 for i in range(n))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(0, 200_000),
    chunk=st.integers(1, 70_000),
    loss=st.sampled_from([0.0, 0.05, 0.2]),
    duplicate=st.sampled_from([0.0, 0.2]),
    reorder=st.sampled_from([0.0, 0.3, 1.0]),
    fifo=st.booleans(),
)
def test_the_stream_is_ordered_and_reliable_under_loss_duplication_and_reordering(
    seed, size, chunk, loss, duplicate, reorder, fifo
):
    """Every byte arrives once, in order, whatever the link loses, duplicates or reorders."""
    payload = _payload(size, seed % 7)
    got = {}

    async def source():
        reader, writer = await asyncio.open_connection("sink", 9000)
        for i in range(0, size, chunk):
            writer.write(payload[i : i + chunk])
            await writer.drain()
        writer.write_eof()
        got["reply"] = await reader.read()

    sim = em.Simulation(
        seed=seed, latency=em.Uniform(0.001, 0.02), loss=loss, duplicate=duplicate, reorder=reorder, fifo=fifo
    )
    sim.add_host("sink", digest_server)
    sim.add_host("source", source)
    sim.run(until=600)
    sim.close()
    assert got["reply"] == hashlib.sha256(payload).hexdigest().encode() + b" %d" % size
    assert sim.errors == []


def test_a_port_where_nothing_listens_refuses_the_connection_in_one_round_trip():
    """connect() to a closed port fails with ECONNREFUSED after one round trip (a reset comes back)."""
    seen = {}

    async def client():
        try:
            await asyncio.open_connection("server", 81)
        except ConnectionRefusedError as exc:
            seen["error"], seen["at"] = exc, now()

    sim = em.Simulation(seed=1, latency=0.005)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=5)
    sim.close()
    assert seen["error"].errno == errno.ECONNREFUSED
    assert seen["at"] == pytest.approx(0.010)
    assert "Connect call failed ('10.0.0.1', 81)" in str(seen["error"])


def test_peername_and_sockname_are_the_hosts_addresses():
    """Each end's peername is the other's sockname: the host's address and port."""
    ends = {}

    async def server():
        async def handle(reader, writer):
            ends["server"] = (writer.get_extra_info("sockname"), writer.get_extra_info("peername"))
            writer.close()

        await (await asyncio.start_server(handle, "0.0.0.0", 80)).serve_forever()

    async def client():
        reader, writer = await asyncio.open_connection("web", 80)
        ends["client"] = (writer.get_extra_info("sockname"), writer.get_extra_info("peername"))
        await reader.read()

    sim = em.Simulation(seed=1)
    sim.add_host("web", server)
    sim.add_host("app", client)
    sim.run(until=1)
    sim.close()
    assert ends["client"] == (("10.0.0.2", 32768), ("10.0.0.1", 80))
    assert ends["server"] == (("10.0.0.1", 80), ("10.0.0.2", 32768))


def test_half_close_lets_the_peer_answer_after_eof():
    """write_eof() ends one direction; the peer reads EOF and can still write back."""
    got = {}

    async def client():
        reader, writer = await asyncio.open_connection("sink", 9000)
        writer.write(b"abc")
        writer.write_eof()
        got["reply"] = await reader.read()

    sim = em.Simulation(seed=2)
    sim.add_host("sink", digest_server)
    sim.add_host("client", client)
    sim.run(until=1)
    sim.close()
    assert got["reply"] == hashlib.sha256(b"abc").hexdigest().encode() + b" 3"


def test_drain_waits_while_the_peer_does_not_read():
    """Back-pressure: with the reader stalled, drain() blocks once the buffers fill, and resumes when it reads."""
    marks = {}

    async def slow_reader():
        async def handle(reader, writer):
            await asyncio.sleep(10)  # read nothing for 10 s
            marks["read"] = len(await reader.read())

        await (await asyncio.start_server(handle, "0.0.0.0", 9)).serve_forever()

    async def writer_():
        _reader, writer = await asyncio.open_connection("reader", 9)
        sent = 0
        while now() < 1:
            writer.write(b"x" * 4096)
            sent += 4096
            await writer.drain()
            if sent >= 4_000_000:
                break
        marks["blocked_at"], marks["sent"] = now(), sent
        writer.close()
        await writer.wait_closed()
        marks["closed_at"] = now()

    sim = em.Simulation(seed=1)
    sim.add_host("reader", slow_reader)
    sim.add_host("writer", writer_)
    sim.run(until=30)
    sim.close()
    tcp = TcpSettings()
    # What can be in flight before drain() blocks: the reader's StreamReader (paused past 2 x 64 KiB, after
    # one read of up to 256 KiB), its kernel's receive window, the writer's kernel send buffer and the
    # writer transport's 64 KiB high-water mark.
    buffers = 2 * 65536 + 262144 + tcp.rcvbuf + tcp.sndbuf + 65536
    assert marks["sent"] <= buffers  # drain stopped the writer: it did not push 4 MB
    assert marks["closed_at"] >= 10  # ... until the reader started reading
    assert marks["read"] == marks["sent"]


def test_a_crashed_peer_resets_the_connection():
    """A crash resets the host's connections: the peer's pending read raises ConnectionResetError."""
    seen = {}

    async def client():
        reader, _writer = await asyncio.open_connection("server", 7)
        try:
            await reader.readline()
        except ConnectionResetError as exc:
            seen["error"], seen["at"] = exc, now()

    sim = em.Simulation(seed=1, latency=0.005)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=1)
    sim.crash("server")
    sim.run(until=2)
    sim.close()
    assert seen["error"].errno == errno.ECONNRESET
    assert seen["at"] == pytest.approx(1.005)  # the reset crossed the link


def test_a_partition_stalls_the_stream_and_a_heal_resumes_it():
    """Bytes written during a short partition arrive after the heal, in order, on the same connection."""
    got = []

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        for i in range(6):
            writer.write(b"line %d\n" % i)
            got.append((await reader.readline(), round(now(), 3)))
            await asyncio.sleep(1)

    sim = em.Simulation(seed=1, latency=0.005)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=1.5)
    sim.network.partition(["server"], ["client"])
    sim.run(until=5)
    assert len(got) == 2  # stalled
    sim.network.heal()
    sim.run(until=20)
    sim.close()
    assert [line for line, _ in got] == [b"line %d\n" % i for i in range(6)]
    assert 5 < got[2][1] < 10  # the retransmission after the heal carried it


def test_when_a_partition_outlasts_the_user_timeout_both_sending_ends_time_out():
    """Both ends sending: each gives up with ETIMEDOUT at the user timeout (drain() says "Connection lost")."""
    seen = {"a": [], "b": []}

    async def chatter(me, peer=None):
        async def talk(reader, writer):
            try:
                while True:
                    writer.write(b"x" * 100)
                    await writer.drain()
                    await asyncio.sleep(0.1)
            except ConnectionResetError:  # asyncio's drain() after the transport died: the cause is the reader's
                exc = reader.exception()
                seen[me].append((type(exc).__name__, exc.errno, round(now(), 1)))

        if peer is None:
            await (await asyncio.start_server(talk, "0.0.0.0", 9)).serve_forever()
        await talk(*await asyncio.open_connection(peer, 9))

    sim = em.Simulation(seed=1)
    sim.hosts.tcp.user_timeout = 60.0  # configurable; Linux's default is 924.6 s
    sim.add_host("b", chatter, me="b")
    sim.add_host("a", chatter, me="a", peer="b")
    sim.run(until=1)
    sim.network.partition(["a"], ["b"])
    sim.run(until=200)
    sim.close()
    assert seen == {"a": [("TimeoutError", errno.ETIMEDOUT, 61.0)], "b": [("TimeoutError", errno.ETIMEDOUT, 61.0)]}


def test_an_idle_end_is_reset_when_it_next_sends_after_the_peer_gave_up():
    """Only an end with data in flight times out; the idle one gets a reset when it sends after the heal."""
    seen = {}

    async def server():
        async def handle(reader, writer):
            await reader.readline()  # idle while partitioned
            await asyncio.sleep(2000)
            writer.write(b"late\n")
            try:
                await writer.drain()
                await reader.read()
            except ConnectionResetError as exc:
                seen["server"] = (exc.errno, round(now()))

        await (await asyncio.start_server(handle, "0.0.0.0", 9)).serve_forever()

    async def client():
        reader, writer = await asyncio.open_connection("server", 9)
        writer.write(b"hello\n")
        await asyncio.sleep(1)
        writer.write(b"stuck\n")
        try:
            await reader.read()
        except TimeoutError as exc:
            seen["client"] = (exc.errno, round(now(), 1))

    sim = em.Simulation(seed=1)
    sim.add_host("server", server)
    sim.add_host("client", client)
    sim.run(until=0.5)
    sim.network.partition(["server"], ["client"])
    sim.run(until=1500)
    sim.network.heal()
    sim.run(until=2100)
    sim.close()
    assert seen["client"] == (errno.ETIMEDOUT, 925.6)  # Linux's default: tcp_retries2 = 15, 924.6 s
    assert seen["server"] == (errno.ECONNRESET, 2000)


def test_a_socket_can_set_its_own_user_timeout():
    """setsockopt(TCP_USER_TIMEOUT, ms) overrides the default for that connection."""
    seen = {}

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
        await asyncio.sleep(1)
        writer.write(b"ping\n")
        try:
            await reader.readline()
        except TimeoutError:
            seen["at"] = round(now(), 1)

    sim = em.Simulation(seed=1)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=0.5)
    sim.network.isolate("server")
    sim.run(until=100)
    sim.close()
    assert seen["at"] == 6.0


def test_connecting_to_a_host_that_is_down_times_out_after_the_syn_retries():
    """A crashed host answers nothing: connect() gives up after 1 + 2 + ... + 64 = 127 s, like Linux."""
    seen = {}

    async def client():
        try:
            await asyncio.open_connection("server", 7)
        except TimeoutError as exc:
            seen["at"], seen["errno"] = round(now(), 3), exc.errno

    sim = em.Simulation(seed=1)
    sim.add_host("server", echo_server)
    sim.crash("server")
    sim.add_host("client", client)
    sim.run(until=300)
    sim.close()
    assert seen == {"at": 127.0, "errno": errno.ETIMEDOUT}


def test_keepalive_finds_a_dead_peer():
    """With SO_KEEPALIVE and short probes an idle connection to a vanished peer times out."""
    seen = {}

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 2)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        try:
            await reader.readline()
        except TimeoutError:
            seen["at"] = round(now())

    sim = em.Simulation(seed=1)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=1)
    sim.network.isolate("server")
    sim.run(until=100)
    sim.close()
    assert seen["at"] == 16  # idle 10 s after the last segment, then 3 probes 2 s apart


def test_closing_with_unread_data_resets_the_peer():
    """As on Linux, closing a socket whose received data was never read sends a reset, not a FIN."""
    seen = {}

    class Rude(asyncio.Protocol):
        def connection_made(self, transport):
            transport.pause_reading()  # the request stays in the kernel's buffer, never read
            asyncio.get_running_loop().call_later(1, transport.close)

    async def rude():
        await (await asyncio.get_running_loop().create_server(Rude, "0.0.0.0", 9)).serve_forever()

    async def client():
        reader, writer = await asyncio.open_connection("rude", 9)
        writer.write(b"request\n")
        try:
            await reader.read()
        except ConnectionResetError:
            seen["reset"] = True

    sim = em.Simulation(seed=1)
    sim.add_host("rude", rude)
    sim.add_host("client", client)
    sim.run(until=5)
    sim.close()
    assert seen == {"reset": True}


def test_tcp_settings_reject_nonsense():
    """A TcpSettings value that cannot work says which and why."""
    with pytest.raises(ValueError, match="user_timeout must be a positive number"):
        TcpSettings(user_timeout=0)
    with pytest.raises(ValueError, match="mss must be a whole number"):
        TcpSettings(mss=0)


def test_by_default_a_partitioned_sender_times_out_after_linux_tcp_retries2():
    """With no settings changed, unacknowledged data is given up on 924.6 s after it was first sent.

    That is the documented default of TcpSettings.user_timeout: Linux's tcp_retries2 = 15.
    """
    seen = {}

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        await asyncio.sleep(1)
        seen["sent"] = now()
        writer.write(b"into the void\n")
        try:
            await reader.readline()
        except OSError as exc:
            seen["error"], seen["at"] = exc, now()

    sim = em.Simulation(seed=1, latency=0.005)
    assert sim.hosts.tcp.user_timeout == TcpSettings().user_timeout == 924.6
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=0.5)
    sim.network.partition(["server"], ["client"])
    sim.run(until=2000)
    sim.close()
    assert seen["error"].errno == errno.ETIMEDOUT
    assert seen["at"] - seen["sent"] == pytest.approx(924.6, abs=0.2)


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
