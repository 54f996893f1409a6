"""How a TCP end sends: within the peer's window, so a writer stops when its reader does (emulator/tcpsend.py)."""

import asyncio

import emulator as em
from emulator.tcp import TcpSettings
from tests.common.hosts import now


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
