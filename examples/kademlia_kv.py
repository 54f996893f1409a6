"""The kademlia DHT (PyPI ``kademlia``, run unmodified) behind a small HTTP front, for the lin-kv workload.

Every machine runs ``main`` with the same arguments: a DHT node on UDP port
``dht_port`` that bootstraps from the other machines, and an aiohttp front
on ``port`` that turns the workload's REST calls into the DHT's own calls::

    GET /kv/{key}                   server.get(key)         200 {"value": v} | 404
    PUT /kv/{key}  {"value": v}     server.set(key, v)      200 | 500 (no peer acknowledged the store)

kademlia has no compare-and-set, so a scenario gives it reads and writes
only. A failed ``set`` is answered 500, which the workload records as
indefinite: the node may have kept the value itself, and some peers may
have stored it though their answers were lost. Nothing here knows capsim.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from aiohttp import web
from kademlia.network import Server

__all__ = ["main"]

# kademlia and rpcudp log every unanswered RPC; under partitions that is most of their output.
for _name in ("kademlia", "rpcudp"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


async def main(peers: list[str], dht_port: int = 8468, port: int = 8080) -> None:
    """Join the DHT through ``peers`` (host names) and serve its keys over HTTP on ``port``."""
    dht = Server()
    await dht.listen(dht_port)
    me = socket.gethostname()
    # kademlia's bootstrap takes addresses, not names.
    await dht.bootstrap([(socket.gethostbyname(peer), dht_port) for peer in peers if peer != me])

    async def read(request: web.Request) -> web.Response:
        value = await dht.get(request.match_info["key"])
        if value is None:
            raise web.HTTPNotFound(text="no such key")
        return web.json_response({"value": value})

    async def write(request: web.Request) -> web.Response:
        value = (await request.json())["value"]
        if not await dht.set(request.match_info["key"], value):
            raise web.HTTPInternalServerError(text="no peer acknowledged the store")
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/kv/{key}", read)
    app.router.add_put("/kv/{key}", write)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        dht.stop()
        await runner.cleanup()
