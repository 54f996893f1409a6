"""TCP between simulated hosts: what a program using asyncio streams sees."""

import asyncio
import errno
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
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


def test_a_crashed_peer_resets_the_connection():
    """A crash resets the host's connections: the peer's pending read raises ConnectionResetError.

    The crash cancels start_server's handlers; that is the fault, not a program error (none in sim.errors):
    Python 3.11's streams report a cancelled handler as "Exception in callback ... CancelledError" (3.12
    closes the transport instead), and capsim behaves as 3.12 on both.
    """
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
    errors = list(sim.errors)
    sim.close()
    assert seen["error"].errno == errno.ECONNRESET
    assert seen["at"] == pytest.approx(1.005)  # the reset crossed the link
    assert errors == []


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


def test_socket_errors_carry_linuxs_errno():
    """Writing after shutdown(SHUT_WR) is EPIPE; binding an address that is not the host's is EADDRNOTAVAIL."""
    seen = {}

    async def main():
        _reader, writer = await asyncio.open_connection("b", 7)
        sock = writer.get_extra_info("socket")._sock  # the SimSocket under asyncio's TransportSocket
        writer.write_eof()
        try:
            sock.send(b"late")
        except BrokenPipeError as exc:
            seen["send"] = exc.errno
        try:
            await asyncio.open_connection("b", 7, local_addr=("10.0.0.2", 0))  # b's address, not a's
        except OSError as exc:
            seen["bind"] = exc.errno

    sim = em.Simulation(seed=1)
    sim.add_host("a", main)
    sim.add_host("b", echo_server)
    sim.run(until=1)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert seen == {"send": errno.EPIPE, "bind": errno.EADDRNOTAVAIL}
