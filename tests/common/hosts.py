"""Host programs shared by the tests of simulated sockets and hosts: plain asyncio and aiohttp, no capsim API."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
from aiohttp import web


def now() -> float:
    return asyncio.get_running_loop().time()


async def digest_server(port: int = 9000) -> None:
    """Reads a whole stream, answers with its sha256 and length, closes."""

    async def handle(reader, writer):
        data = await reader.read()
        writer.write(hashlib.sha256(data).hexdigest().encode() + b" %d" % len(data))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    await server.serve_forever()


async def echo_server(port: int = 7, events: list | None = None) -> None:
    """Echoes each line back; notes how each connection ended in ``events``."""

    async def handle(reader, writer):
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
            (events if events is not None else []).append(("eof", now()))
        except OSError as exc:
            (events if events is not None else []).append((type(exc).__name__, now()))
        writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    await server.serve_forever()


async def counter_app(port: int = 8080, delay: float = 0.0) -> None:
    """An aiohttp service: GET / counts requests (memory, lost in a crash); /slow (GET, POST) waits ``delay`` first."""
    hits = {"n": 0}

    async def count(request):
        hits["n"] += 1
        return web.json_response({"n": hits["n"], "remote": request.remote})

    async def slow(request):
        await asyncio.sleep(delay)
        return await count(request)

    app = web.Application()
    app.router.add_get("/", count)
    app.router.add_get("/slow", slow)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    await asyncio.Event().wait()


async def poller(url: str, log: list, every: float = 0.5, timeout: float = 1.0) -> None:
    """GETs ``url`` forever, logging ``(time, status or error class, n)``."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        while True:
            started = now()
            try:
                async with session.get(url) as response:
                    log.append((started, response.status, (await response.json())["n"]))
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.append((started, type(exc).__name__, None))
            await asyncio.sleep(every)
