r"""The control endpoint of a real node, and a client for it.

    POST /control/ACTION   Authorization: Bearer TOKEN   body: the action's JSON payload
    GET  /control/state    Authorization: Bearer TOKEN

ACTION is one of ``LinkFaults``' actions (``partition``, ``partition_oneway``,
``isolate``, ``heal``, ``link``, ``reset_link``, ``defaults``, ``hold``,
``release``, ``pause``, ``resume``, ``state``) or ``skew`` (this node's clock:
``{"offset": s, "drift": r}``). Examples::

    curl -H "Authorization: Bearer $TOKEN" -d '{"groups": [["n1"], ["n2", "n3"]]}' \
         http://127.0.0.1:9001/control/partition
    curl -H "Authorization: Bearer $TOKEN" -d '{"src": "n1", "dst": "n2", "loss": 0.5}' \
         http://127.0.0.1:9001/control/link

A fault changes only the node that receives the call; ``RealNetwork`` sends
each call to every node, so all of them agree (see emulator.transport.cluster).

Security: the token is compared in constant time; no token, no control
(401 without an Authorization header, 403 with a wrong token or when the node
was started without one).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterable
from typing import Protocol, cast

import aiohttp
from aiohttp import web

from emulator.errors import ConfigError
from emulator.transport.errors import ControlError, WireError
from emulator.transport.links import ACTIONS, LinkFaults
from emulator.transport.wire import JsonObject, Latency, distribution_to_json, parse_object

__all__ = ["CONTROL_ACTIONS", "ControlClient", "ControlQueue", "add_control_routes", "link_settings"]

#: Everything ``POST /control/ACTION`` accepts.
CONTROL_ACTIONS = (*ACTIONS, "skew")


class _Clock(Protocol):
    def set(self, offset: float, drift: float) -> None: ...


class Controlled(Protocol):
    """What the control endpoint changes: a ``NodeHost``'s fault state and clock."""

    @property
    def name(self) -> str: ...

    @property
    def token(self) -> str | None: ...

    @property
    def faults(self) -> LinkFaults: ...

    @property
    def clock(self) -> _Clock: ...

    def faults_changed(self) -> None: ...


def add_control_routes(app: web.Application, host: Controlled) -> None:
    """Add ``/control/*`` for ``host`` (a ``NodeHost``) to ``app``."""

    async def post(request: web.Request) -> web.Response:
        _authorize(request, host.token)
        action = request.match_info["action"]
        payload = parse_object(await request.read(), f"the payload of {action!r}")
        try:
            _apply(host, action, payload)
        except ConfigError as exc:
            raise WireError(404 if action not in CONTROL_ACTIONS else 400, str(exc)) from None
        return web.json_response({"ok": True, "node": host.name, "version": host.faults.version})

    async def state(request: web.Request) -> web.Response:
        _authorize(request, host.token)
        return web.json_response({"node": host.name, "version": host.faults.version, "faults": host.faults.to_json()})

    app.router.add_get("/control/state", state)
    app.router.add_post("/control/{action}", post)


def _apply(host: Controlled, action: str, payload: JsonObject) -> None:
    if action == "skew":
        host.clock.set(payload.get("offset", 0.0), payload.get("drift", 0.0))
        return
    if action not in CONTROL_ACTIONS:
        raise ConfigError(f"unknown control action {action!r}; use one of {', '.join(CONTROL_ACTIONS)}")
    host.faults.apply(action, payload)
    host.faults_changed()


def _authorize(request: web.Request, token: str | None) -> None:
    if not token:
        raise WireError(403, "this node was started without a control token; control is disabled")
    header = request.headers.get("Authorization", "")
    if not header:
        raise WireError(401, "control needs 'Authorization: Bearer <token>' (the token is in the cluster state file)")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise WireError(403, "wrong control token")


class ControlClient:
    """Call one node's control endpoint (and read its health and status).

    Args:
        url: the node's base URL.
        token: its control token.
        session: an aiohttp session to share; by default one is made and closed by ``close``.
        timeout: seconds per call.

    Every method raises ``ControlError`` when the node refuses (its message
    and ``status``) or cannot be reached (``status`` None).
    """

    def __init__(self, url: str, token: str | None, session: aiohttp.ClientSession | None = None, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.token = token
        self._session = session
        self._own = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
        self._session = None

    async def call(self, action: str, payload: JsonObject | None = None) -> JsonObject:
        """``POST /control/ACTION`` with ``payload``; returns the node's answer."""
        return await self._request("POST", f"/control/{action}", payload or {}, auth=True)

    async def health(self) -> JsonObject:
        return await self._request("GET", "/health")

    async def status(self) -> JsonObject:
        return await self._request("GET", "/status")

    async def state(self) -> JsonObject:
        """The node's fault state (``LinkFaults.to_json()``)."""
        faults: JsonObject = (await self._request("GET", "/control/state", auth=True))["faults"]
        return faults

    async def _request(
        self, method: str, path: str, payload: JsonObject | None = None, auth: bool = False
    ) -> JsonObject:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        try:
            async with self._session.request(
                method, self.url + path, json=payload, headers=headers, timeout=self._timeout
            ) as resp:
                try:
                    answer = await resp.json(content_type=None)
                except ValueError:
                    answer = {"error": (await resp.text())[:200]}
                if not isinstance(answer, dict):  # every answer of a node is an object: another program is there
                    raise ControlError(
                        f"{self.url}{path}: {resp.status} {answer!r:.80}: not a capsim node (another program on "
                        "its port?)",
                        resp.status,
                    )
                if resp.status >= 400:
                    raise ControlError(f"{self.url}{path}: {resp.status} {answer.get('error', answer)}", resp.status)
                return cast(JsonObject, answer)  # every endpoint answers an object
        except TimeoutError:
            raise ControlError(
                f"{self.url}{path} did not answer within {self._timeout.total:g} s (hung, or paused?)"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ControlError(f"cannot reach {self.url}{path}: {type(exc).__name__} {exc}".rstrip()) from None

    # -- the fault API, for one node -------------------------------------------------------

    async def partition(self, *groups: Iterable[str]) -> JsonObject:
        return await self.call("partition", {"groups": [list(g) for g in groups]})

    async def partition_oneway(self, src_group: Iterable[str], dst_group: Iterable[str]) -> JsonObject:
        return await self.call("partition_oneway", {"src": list(src_group), "dst": list(dst_group)})

    async def isolate(self, name: str) -> JsonObject:
        return await self.call("isolate", {"name": name})

    async def heal(self, *cuts: int) -> JsonObject:
        """Lift the cuts with these ids; with none, every one."""
        return await self.call("heal", {"cuts": list(cuts)} if cuts else {})

    async def set_link_oneway(
        self,
        src: str,
        dst: str,
        latency: Latency | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: float | None = None,
    ) -> JsonObject:
        return await self.call("link", {"src": src, "dst": dst, **link_settings(latency, loss, duplicate, reorder)})

    async def reset_link(self, src: str, dst: str) -> JsonObject:
        return await self.call("reset_link", {"src": src, "dst": dst})

    async def hold(self, a: str, b: str) -> JsonObject:
        return await self.call("hold", {"a": a, "b": b})

    async def release(self, a: str, b: str) -> JsonObject:
        return await self.call("release", {"a": a, "b": b})

    async def pause(self, name: str) -> JsonObject:
        return await self.call("pause", {"name": name})

    async def resume(self, name: str) -> JsonObject:
        return await self.call("resume", {"name": name})

    async def skew(self, offset: float = 0.0, drift: float = 0.0) -> JsonObject:
        return await self.call("skew", {"offset": offset, "drift": drift})


def link_settings(
    latency: Latency | None = None,
    loss: float | None = None,
    duplicate: float | None = None,
    reorder: float | None = None,
) -> JsonObject:
    """The JSON payload for link settings (None: not given)."""
    out: JsonObject = {}
    if latency is not None:
        out["latency"] = distribution_to_json(latency)
    for key, value in (("loss", loss), ("duplicate", duplicate), ("reorder", reorder)):
        if value is not None:
            out[key] = value
    return out


class ControlQueue:
    """Control calls to one node, sent one after another so they apply in order."""

    def __init__(self, client: ControlClient):
        self.client = client
        self._items: asyncio.Queue[tuple[str, JsonObject, asyncio.Future[JsonObject]]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"capsim-control:{client.url}")

    def submit(self, action: str, payload: JsonObject) -> asyncio.Future[JsonObject]:
        """Queue a call; the future holds its answer or its ControlError.

        Its error counts as seen even if nobody awaits the future (whoever
        would have was cancelled first, as a run is when it is interrupted):
        it must not surface later as "exception was never retrieved".
        """
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_seen)
        self._items.put_nowait((action, payload, future))
        return future

    async def _run(self) -> None:
        while True:
            action, payload, future = await self._items.get()
            try:
                result = await self.client.call(action, payload)
            except ControlError as exc:
                if not future.cancelled():
                    future.set_exception(exc)
            else:
                if not future.cancelled():
                    future.set_result(result)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _seen(future: asyncio.Future[JsonObject]) -> None:
    if not future.cancelled():
        future.exception()
