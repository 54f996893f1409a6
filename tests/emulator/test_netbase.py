"""The loop's simulated descriptors: level-triggered reader callbacks, and real ones refused (emulator/netbase.py)."""

import asyncio
import socket

import pytest

import emulator as em
from emulator.loop import VirtualLoop


def test_a_reader_fires_while_its_socket_stays_readable_and_not_once_removed():
    """add_reader is level-triggered as a selector is: it runs again while unread data waits; never after removal."""
    reads = []

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, start_serving=False)
        listener = server.sockets[0]
        accepted = loop.create_task(loop.sock_accept(listener._sock))
        _, writer = await asyncio.open_connection(*listener.getsockname())
        conn, _ = await accepted
        loop.add_reader(conn.fileno(), lambda: reads.append(conn.recv(1)))  # one byte a call
        writer.write(b"abc")
        await asyncio.sleep(1)
        removed = loop.remove_reader(conn.fileno())
        writer.write(b"d")
        await asyncio.sleep(1)
        return removed, loop.remove_reader(conn.fileno()), conn.recv(10)

    assert VirtualLoop().run_until_complete(main()) == (True, False, b"d")
    assert reads == [b"a", b"b", b"c"]


def test_watching_a_real_descriptor_is_refused():
    """add_reader on a real socket's descriptor raises NotAllowed: the simulation cannot see real readiness."""

    async def main():
        with socket.socket() as real, pytest.raises(em.NotAllowed, match="not a simulated socket"):
            asyncio.get_running_loop().add_reader(real.fileno(), print)
        return "refused"

    assert VirtualLoop().run_until_complete(main()) == "refused"
