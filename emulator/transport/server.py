"""The receiving half of the real transport: a node's HTTP interface.

    POST /msg              an envelope or a list of them  -> 202 {"accepted": n}
    GET  /health           liveness: name, protocol, pid  -> 200
    GET  /status           counters, faults, recent errors and events -> 200
    POST /control/ACTION   a fault (see emulator.transport.control), token required
    GET  /control/state    the fault state, token required

Guarantees: every refusal is a 4xx with a JSON body ``{"error": "..."}``
saying what was wrong: 400 malformed JSON or envelope, 404 a message for
another node or an unknown path, 405 a wrong method, 413 a body over the
size limit, 408 a body not received within the host's ``timeout`` (the
connection is then closed, so a sender that stalls mid-body holds nothing),
401/403 a missing or wrong token, 401 a message that claims a
server's name without the cluster secret's signature (see
emulator.transport.auth). No request can crash the node:
node code runs after the answer, in its own callback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from yarl import URL

from emulator.message import Message
from emulator.transport.auth import SIGNATURE_HEADER, verify
from emulator.transport.control import Controlled, add_control_routes
from emulator.transport.errors import WireError
from emulator.transport.http import REPLY_TO_HEADER, HttpTransport
from emulator.transport.wire import JsonObject, parse_envelopes


class Served(Controlled, Protocol):
    """What the server asks of the host it serves (a ``Served``): the node's name, keys, inbox and reports."""

    rejected: int

    @property
    def key(self) -> bytes | None: ...

    @property
    def alive(self) -> bool: ...

    @property
    def peer_urls(self) -> dict[str, str]: ...

    @property
    def transport(self) -> HttpTransport | None: ...

    def speaks_for_server(self, name: str) -> bool: ...

    def accept(self, messages: list[Message]) -> None: ...

    def health(self) -> JsonObject: ...

    def status(self) -> JsonObject: ...


_Route = Callable[[web.Request, Served], Awaitable[web.StreamResponse]]

__all__ = ["Served", "build_app"]


def build_app(host: Served, max_body: int, body_timeout: float = 5.0) -> web.Application:
    """The aiohttp application serving ``host`` (a ``Served``).

    ``body_timeout``: seconds a request's body has, from its headers, to arrive in full (408 after).
    """
    app = web.Application(client_max_size=max_body, middlewares=[_json_errors(host, body_timeout)])
    app.router.add_post("/msg", _handler(_post_msg, host))
    app.router.add_get("/health", _handler(_get_health, host))
    app.router.add_get("/status", _handler(_get_status, host))
    add_control_routes(app, host)
    return app


def _handler(fn: _Route, host: Served) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await fn(request, host)

    return handle


def _json_errors(host: Served, body_timeout: float) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Read the body within ``body_timeout``, and turn every refusal into a 4xx with a JSON message; count it."""
        try:
            if request.body_exists:
                await _read_within(request, body_timeout)  # kept by the request: the handler's read() returns it
            return await handler(request)
        except WireError as exc:
            status, text = exc.status, exc.text
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            status, text = exc.status, _reason(exc)
        host.rejected += 1
        response = web.json_response({"error": text}, status=status)
        if status == 408:  # the rest of the body may never come: answer, then close rather than wait for it
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
        return response

    return middleware


async def _read_within(request: web.Request, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await request.read()
    except TimeoutError:
        raise WireError(
            408, f"the request's body did not arrive in full within {seconds:g} s; send the whole body at once"
        ) from None


def _reason(exc: web.HTTPException) -> str:
    if exc.status == 413:
        return f"request body too large: {exc.text}"
    if exc.status == 404:
        return "no such path; nodes answer POST /msg, GET /health, GET /status, POST /control/ACTION"
    if exc.status == 405:
        return f"method not allowed: {exc.text}"
    return exc.text or exc.reason


async def _post_msg(request: web.Request, host: Served) -> web.Response:
    raw = await request.read()
    messages = parse_envelopes(raw, host.name)
    _authenticate(request, raw, host, messages)
    if not host.alive:
        raise WireError(503, f"{host.name} is down")  # pragma: no cover - a crashed host stops listening
    _learn(request, host, messages[0].src)
    host.accept(messages)
    return web.json_response({"accepted": len(messages)}, status=202)


def _authenticate(request: web.Request, raw: bytes, host: Served, messages: list[Message]) -> None:
    """401 unless every envelope that claims a server's name comes signed with the cluster secret."""
    if host.key is None:
        return
    claimed = next((m.src for m in messages if host.speaks_for_server(m.src)), None)
    if claimed is not None and not verify(host.key, raw, request.headers.get(SIGNATURE_HEADER)):
        raise WireError(
            401,
            f"a message from server {claimed!r} must be signed with the cluster secret "
            f"({SIGNATURE_HEADER}); a client may send under any name that is not a server's",
        )


def _learn(request: web.Request, host: Served, src: str) -> None:
    """Remember the address a sender with no static route (a client) asked to be answered at.

    Only an http URL on the very address the request came from is taken, so a
    request cannot make the node send to a third party.
    """
    url = request.headers.get(REPLY_TO_HEADER)
    if not url or src in host.peer_urls or src == host.name or host.transport is None:
        return
    try:
        parsed = URL(url)
        port = parsed.port
    except (ValueError, TypeError):
        return
    if parsed.scheme == "http" and parsed.host and parsed.host == request.remote and port:
        host.transport.learn(src, str(parsed.origin()))


async def _get_health(request: web.Request, host: Served) -> web.Response:
    return web.json_response(host.health())


async def _get_status(request: web.Request, host: Served) -> web.Response:
    return web.json_response(host.status(), dumps=_dumps)


def _dumps(value: object) -> str:
    return json.dumps(value, default=repr)
