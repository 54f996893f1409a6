"""A replicated key-value store in plain aiohttp: one primary, its replicas. It knows nothing of capsim.

Every machine runs ``main`` with the same arguments and finds its role from
its own host name (``socket.gethostname()``), as a service in a StatefulSet
does. Run it for real with ``python -m examples.replicated_kv --primary n0
--replicas n1,n2`` on three machines named n0, n1 and n2.

HTTP API, the lin-kv operations as REST (any machine answers; replicas
forward to the primary)::

    GET  /kv/{key}                              200 {"value": v} | 404
    PUT  /kv/{key}       {"value": v}           200 {}
    POST /kv/{key}/cas   {"from": a, "to": b}   200 {} | 404 (no such key) | 412 (it was not a)

    503: not done (safe to retry);  500 and 504: may have been done.

Replication: the primary takes writes one at a time, sends each to every
replica (``PUT /replicate``) and applies and acknowledges it once all of
them have it. So every replica holds every acknowledged write, and the
primary, which serves the reads, holds them too. A primary that starts
(or restarts, having lost its memory) first merges the copies of all its
replicas, newest version of each key winning, and answers 503 until then;
a replica that starts copies the primary before it accepts replication.

``reads="local"`` lets replicas answer reads from their own copy instead of
forwarding them: faster, and, as capsim's checkers show, not linearizable.
"""

from __future__ import annotations

import argparse
import asyncio
import socket

import aiohttp
from aiohttp import web

__all__ = ["main"]


async def main(
    primary: str, replicas: list[str], port: int = 8080, reads: str = "primary", timeout: float = 0.5
) -> None:
    """Serve on ``port`` as the primary or one of the replicas, whichever this machine is."""
    if reads not in ("primary", "local"):
        raise ValueError(f"reads must be 'primary' or 'local', got {reads!r}")
    me = socket.gethostname()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
    role = Primary(session, replicas, port) if me == primary else Replica(session, primary, port, reads)
    app = web.Application()
    role.routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    try:
        await role.start()
        await asyncio.Event().wait()
    finally:
        await session.close()
        await runner.cleanup()


class Store:
    """Versioned values: key -> [seq, value]; a version applies only if it is newer."""

    def __init__(self):
        self.data: dict[str, list] = {}

    def apply(self, key: str, seq: int, value) -> None:
        if key not in self.data or self.data[key][0] < seq:
            self.data[key] = [seq, value]

    def merge(self, snapshot: dict) -> None:
        for key, (seq, value) in snapshot.items():
            self.apply(key, seq, value)

    def top(self) -> int:
        return max((seq for seq, _ in self.data.values()), default=0)


class Primary:
    def __init__(self, session: aiohttp.ClientSession, replicas: list[str], port: int):
        self.session = session
        self.replicas = [f"http://{name}:{port}" for name in replicas]
        self.store = Store()
        self.seq = 0
        self.lock = asyncio.Lock()
        self.ready = False

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/kv/{key}", self.read)
        app.router.add_put("/kv/{key}", self.write)
        app.router.add_post("/kv/{key}/cas", self.cas)
        app.router.add_get("/snapshot", self.snapshot)

    async def start(self) -> None:
        """Merge every replica's copy before serving: each holds every acknowledged write."""
        while not self.ready:
            try:
                copies = await asyncio.gather(*(self._get_json(f"{url}/snapshot") for url in self.replicas))
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.1)
                continue
            for copy in copies:
                self.store.merge(copy)
            self.seq = self.store.top()
            self.ready = True

    async def _get_json(self, url: str) -> dict:
        async with self.session.get(url) as response:
            response.raise_for_status()
            return await response.json()

    async def snapshot(self, request: web.Request) -> web.Response:
        if not self.ready:
            raise web.HTTPServiceUnavailable(text="recovering")
        return web.json_response(self.store.data)

    async def read(self, request: web.Request) -> web.Response:
        if not self.ready:
            raise web.HTTPServiceUnavailable(text="recovering")
        entry = self.store.data.get(request.match_info["key"])
        if entry is None:
            raise web.HTTPNotFound(text="no such key")
        return web.json_response({"value": entry[1]})

    async def write(self, request: web.Request) -> web.Response:
        value = (await request.json())["value"]
        return await self._commit(request.match_info["key"], lambda current: value)

    async def cas(self, request: web.Request) -> web.Response:
        body = await request.json()

        def check(current):
            if current is None:
                raise web.HTTPNotFound(text="no such key")
            if current[1] != body["from"]:
                raise web.HTTPPreconditionFailed(text=f"the value is {current[1]!r}, not {body['from']!r}")
            return body["to"]

        return await self._commit(request.match_info["key"], check)

    async def _commit(self, key: str, new_value) -> web.Response:
        if not self.ready:
            raise web.HTTPServiceUnavailable(text="recovering")
        async with self.lock:
            value = new_value(self.store.data.get(key))
            self.seq += 1
            seq = self.seq
            try:
                results = await asyncio.gather(*(self._replicate(url, key, seq, value) for url in self.replicas))
            except (TimeoutError, aiohttp.ClientError) as exc:
                results = [f"{type(exc).__name__}"]
            if not all(result is True for result in results):
                # Some replicas may have it: the write may yet surface, so the answer is indefinite.
                raise web.HTTPInternalServerError(text=f"replication failed: {results}")
            self.store.apply(key, seq, value)
        return web.json_response({})

    async def _replicate(self, url: str, key: str, seq: int, value):
        async with self.session.put(f"{url}/replicate", json={"key": key, "seq": seq, "value": value}) as response:
            return True if response.status == 200 else response.status


class Replica:
    def __init__(self, session: aiohttp.ClientSession, primary: str, port: int, reads: str):
        self.session = session
        self.primary = f"http://{primary}:{port}"
        self.reads = reads
        self.store = Store()
        self.synced = False

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/kv/{key}", self.read)
        app.router.add_put("/kv/{key}", self.forward)
        app.router.add_post("/kv/{key}/cas", self.forward)
        app.router.add_put("/replicate", self.replicate)
        app.router.add_get("/snapshot", self.snapshot)

    async def start(self) -> None:
        """Copy the primary before taking replication: it holds every acknowledged write."""
        while not self.synced:
            try:
                async with self.session.get(f"{self.primary}/snapshot") as response:
                    response.raise_for_status()
                    self.store.merge(await response.json())
                    self.synced = True
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.1)

    async def replicate(self, request: web.Request) -> web.Response:
        if not self.synced:
            raise web.HTTPServiceUnavailable(text="syncing")
        body = await request.json()
        self.store.apply(body["key"], body["seq"], body["value"])
        return web.json_response({})

    async def snapshot(self, request: web.Request) -> web.Response:
        return web.json_response(self.store.data)

    async def read(self, request: web.Request) -> web.Response:
        if self.reads == "primary":
            return await self.forward(request)
        entry = self.store.data.get(request.match_info["key"])
        if entry is None:
            raise web.HTTPNotFound(text="no such key")
        return web.json_response({"value": entry[1]})

    async def forward(self, request: web.Request) -> web.Response:
        """Pass a client's request to the primary and its answer back."""
        body = await request.read()
        try:
            async with self.session.request(
                request.method, f"{self.primary}{request.path}", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                return web.Response(
                    status=response.status, body=await response.read(), content_type=response.content_type
                )
        except aiohttp.ClientConnectorError:
            raise web.HTTPServiceUnavailable(text="primary unreachable") from None  # nothing was sent
        except (TimeoutError, aiohttp.ClientError):
            raise web.HTTPGatewayTimeout(text="no answer from the primary") from None  # it may have been done


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--primary", required=True, help="the primary's host name")
    parser.add_argument("--replicas", required=True, help="the replicas' host names, comma-separated")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--reads", choices=("primary", "local"), default="primary")
    args = parser.parse_args()
    asyncio.run(main(args.primary, args.replicas.split(","), args.port, args.reads))


if __name__ == "__main__":
    _cli()
