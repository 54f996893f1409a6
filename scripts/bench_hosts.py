"""An aiohttp request and response between two simulated hosts, beside the same pair over real loopback.

    python scripts/bench_hosts.py [REQUESTS] [--json]

The same code both ways: an aiohttp ``web.Application`` served by
``web.AppRunner`` + ``web.TCPSite``, and a ``ClientSession`` that GETs a
small JSON document ``REQUESTS`` times, one request in flight at a time on
one keep-alive connection. Simulated: two hosts (``web`` and ``client``) on
a 1 ms link, the wall time of ``sim.run`` for the whole program, aiohttp's
start-up included. Real: the server and the client on one asyncio loop in
this process, over 127.0.0.1 (the kernel's loopback: no network latency at
all), the wall time of the same program from start to finish. The figure is
wall seconds per request; each side is the median of interleaved runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def real(requests: int) -> float:
    """Wall seconds for the same GETs over real loopback TCP, on a stock asyncio loop."""

    async def main():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        ready, answers = asyncio.Event(), []
        start = time.perf_counter()  # wall-clock ok
        server = asyncio.create_task(_serve(port, ready))
        await ready.wait()
        await _client(f"http://127.0.0.1:{port}/", requests, answers)
        wall = time.perf_counter() - start  # wall-clock ok
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        if answers != [str(i) for i in range(requests)]:
            raise RuntimeError(f"the real client got {len(answers)} of {requests} answers")
        return wall

    return asyncio.run(main())


def bench_hosts(requests: int, repeats: int = 3) -> dict:
    """Both sides, interleaved ``repeats`` times; medians, per request, and their ratio."""
    sim_runs, real_runs = [], []
    for _ in range(repeats):
        sim_runs.append(simulated(requests))
        real_runs.append(real(requests))
    sim_s, real_s = statistics.median(sim_runs) / requests, statistics.median(real_runs) / requests
    return {
        "requests": requests,
        "repeats": repeats,
        "simulated_s_per_request": sim_s,
        "loopback_s_per_request": real_s,
        "loopback_over_simulated": real_s / sim_s,
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
            f"loopback {row['loopback_s_per_request'] * 1e6:,.0f} us per request "
            f"(simulated is {row['loopback_over_simulated']:.2f}x faster)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
