"""An aiohttp GET between two simulated hosts, beside the same pair over real loopback and in memory.

    python scripts/bench_hosts.py [REQUESTS] [--json]

The same code all three ways: an aiohttp ``web.Application`` served by
``web.AppRunner`` + ``web.TCPSite``, and a ``ClientSession`` that GETs a
small JSON document ``REQUESTS`` times, one request in flight at a time on
one keep-alive connection. Simulated: two hosts (``web`` and ``client``) on
a 1 ms link, the wall time of ``sim.run`` for the whole program, aiohttp's
start-up included. Real: the server and the client on one asyncio loop in
this process, over 127.0.0.1 (the kernel's loopback: no network latency at
all), the wall time of the same program from start to finish. Floor: the
same program on a stock asyncio loop whose connections are two in-memory
transports handing each write to the peer's protocol on the next loop turn
(no socket, no TCP, no network): what aiohttp's own Python code costs,
which neither of the others can go below. The figure is wall seconds per
request; each is the median of interleaved runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time

import aiohttp
from aiohttp import web

import emulator as em


async def _serve(port: int, ready: asyncio.Event | None = None) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"n": request.query.get("n")})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0" if ready is None else "127.0.0.1", port).start()
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _client(url: str, requests: int, answers: list) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for i in range(requests):
            async with session.get(url, params={"n": str(i)}) as response:
                answers.append((await response.json())["n"])


def simulated(requests: int) -> float:
    """Wall seconds for ``requests`` GETs between two simulated hosts, start-up included."""
    answers: list = []
    sim = em.Simulation(seed=1, latency=0.001)
    sim.add_host("web", _serve, port=8080)
    sim.add_host("client", _client, url="http://web:8080/", requests=requests, answers=answers)
    start = time.perf_counter()  # wall-clock ok
    sim.run(until=requests)  # ~2 ms of virtual time per request: ample
    wall = time.perf_counter() - start  # wall-clock ok
    sim.close()
    if answers != [str(i) for i in range(requests)]:
        raise RuntimeError(f"the simulated client got {len(answers)} of {requests} answers")
    return wall


async def _started(serve, ready: asyncio.Event) -> asyncio.Task:
    """The server's task once it listens; its error if it fails to start, rather than waiting forever."""
    server, listening = asyncio.create_task(serve), asyncio.create_task(ready.wait())
    await asyncio.wait((server, listening), return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        listening.cancel()
        server.result()
        raise RuntimeError("the server returned before it listened")
    return server


def real(requests: int) -> float:
    """Wall seconds for the same GETs over real loopback TCP, on a stock asyncio loop."""

    async def main():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        ready, answers = asyncio.Event(), []
        start = time.perf_counter()  # wall-clock ok
        server = await _started(_serve(port, ready), ready)
        await _client(f"http://127.0.0.1:{port}/", requests, answers)
        wall = time.perf_counter() - start  # wall-clock ok
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        if answers != [str(i) for i in range(requests)]:
            raise RuntimeError(f"the real client got {len(answers)} of {requests} answers")
        return wall

    return asyncio.run(main())


class _MemoryTransport(asyncio.Transport):
    """One end of an in-memory byte pipe: ``write`` hands the bytes to the peer's protocol on the next loop turn.

    That is the least a transport can do and still keep asyncio's contract (a
    protocol is never called back from inside its own ``write``); a socket
    transport does the same work plus a system call each way.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol, name: tuple):
        super().__init__()
        self._loop, self._protocol, self._name = loop, protocol, name
        self.peer: _MemoryTransport | None = None
        self._closing = False

    def get_extra_info(self, name, default=None):
        return {"peername": self.peer and self.peer._name, "sockname": self._name}.get(name, default)

    def write(self, data) -> None:
        if data and not self._closing and self.peer is not None and not self.peer._closing:
            self._loop.call_soon(self.peer._protocol.data_received, bytes(data))

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._loop.call_soon(self._protocol.connection_lost, None)
            if self.peer is not None:
                self.peer.close()

    abort = close


class _MemoryServer:
    """What ``create_server`` returns on the in-memory loop: only what aiohttp's ``TCPSite`` uses."""

    sockets = ()

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


class _MemoryLoop(asyncio.SelectorEventLoop):
    """A stock asyncio loop whose TCP is a pair of in-memory transports per connection, with no socket I/O.

    ``create_server`` records the protocol factory for its port. aiohttp's
    client makes a socket with ``aiohappyeyeballs`` and calls ``sock_connect``
    on it: here that only notes the address, and ``create_connection(sock=...)``
    closes the socket unconnected and joins the client's protocol to a new
    server protocol through a pair of ``_MemoryTransport``. One socket object
    is made per connection; no byte passes through it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._listeners: dict[int, object] = {}
        self._dialled: dict[socket.socket, tuple] = {}

    async def create_server(self, protocol_factory, host=None, port=None, **kwargs):
        self._listeners[port] = protocol_factory
        return _MemoryServer()

    async def sock_connect(self, sock, address) -> None:
        self._dialled[sock] = address

    async def create_connection(self, protocol_factory, host=None, port=None, *, sock=None, **kwargs):
        address = self._dialled.pop(sock) if sock is not None else (host, port)
        if sock is not None:
            sock.close()
        client, server = protocol_factory(), self._listeners[address[1]]()
        ends = _MemoryTransport(self, client, ("127.0.0.1", 40000)), _MemoryTransport(self, server, address[:2])
        ends[0].peer, ends[1].peer = ends[1], ends[0]
        server.connection_made(ends[1])
        client.connection_made(ends[0])
        return ends[0], client


async def _over_memory(requests: int, answers: list, serve=_serve) -> float:
    """The program on the running (in-memory) loop; its wall seconds, from start to finish."""
    ready = asyncio.Event()
    start = time.perf_counter()  # wall-clock ok
    server = await _started(serve(8080, ready), ready)
    await _client("http://127.0.0.1:8080/", requests, answers)
    wall = time.perf_counter() - start  # wall-clock ok
    server.cancel()
    await asyncio.gather(server, return_exceptions=True)
    return wall


def floor(requests: int) -> float:
    """Wall seconds for the same GETs over in-memory transports on a stock asyncio loop: aiohttp's own cost."""
    answers: list = []
    with asyncio.Runner(loop_factory=_MemoryLoop) as runner:
        wall = runner.run(_over_memory(requests, answers))
    if answers != [str(i) for i in range(requests)]:
        raise RuntimeError(f"the in-memory client got {len(answers)} of {requests} answers")
    return wall


def bench_hosts(requests: int, repeats: int = 3) -> dict:
    """All three, interleaved ``repeats`` times; medians, per request, and their ratios."""
    sim_runs, real_runs, floor_runs = [], [], []
    for _ in range(repeats):
        sim_runs.append(simulated(requests))
        real_runs.append(real(requests))
        floor_runs.append(floor(requests))
    sim_s, real_s = statistics.median(sim_runs) / requests, statistics.median(real_runs) / requests
    floor_s = statistics.median(floor_runs) / requests
    return {
        "requests": requests,
        "repeats": repeats,
        "simulated_s_per_request": sim_s,
        "loopback_s_per_request": real_s,
        "floor_s_per_request": floor_s,
        "loopback_over_simulated": real_s / sim_s,
        "loopback_over_floor": real_s / floor_s,
        "simulated_over_floor": sim_s / floor_s,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requests", nargs="?", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    row = bench_hosts(args.requests)
    if args.json:
        print(json.dumps(row, indent=2))
    else:
        print(
            f"{row['requests']} requests: simulated {row['simulated_s_per_request'] * 1e6:,.0f} us, "
            f"in-memory floor {row['floor_s_per_request'] * 1e6:,.0f} us, "
            f"loopback {row['loopback_s_per_request'] * 1e6:,.0f} us per request "
            f"(loopback / simulated {row['loopback_over_simulated']:.2f}x, "
            f"simulated / floor {row['simulated_over_floor']:.2f}x; load average {os.getloadavg()[0]:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
