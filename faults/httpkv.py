"""The lin-kv workload over HTTP: a client machine that records a Jepsen history of REST calls.

A service that speaks HTTP instead of capsim messages is driven through
the same lin-kv operations, mapped onto REST (the API of
``examples.replicated_kv``)::

    read   GET  /kv/{key}                              200 {"value": v}
    write  PUT  /kv/{key}      {"value": v}            200
    cas    POST /kv/{key}/cas  {"from": a, "to": b}    200

Each ``HttpKVClient`` is a simulated host (``server=False``), so its
requests cross the simulated network and its connections meet the faults.
``invoke`` has ``emulator.Client.invoke``'s contract, so ``faults.Workload``
drives it unchanged, and it records the same history, deciding definite
from indefinite outcomes as Maelstrom's error registry does:

=========================================  =========================  ==========
outcome                                    error                      history
=========================================  =========================  ==========
404                                        20 key-does-not-exist      ``fail``
412                                        22 precondition-failed     ``fail``
503                                        11 temporarily-unavailable ``fail``
no connection could be opened (GET, POST)  11 temporarily-unavailable ``fail``
other 4xx                                  12 malformed-request       ``fail``
500, 504, other 5xx                        13 crash                   ``info``
no answer within the timeout, reset        0 timeout / 13 crash       ``info``
=========================================  =========================  ==========

A connection that could not be opened carried nothing, so the operation
surely did not happen; once a request may have left, only the server's
answer can say it did not. aiohttp retries an idempotent request once on a
fresh connection when the first one broke, so a PUT whose retry could not
connect may have been applied by its first attempt: that one is ``info``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

import emulator as em
from emulator.errors import (
    CRASH,
    KEY_DOES_NOT_EXIST,
    MALFORMED_REQUEST,
    PRECONDITION_FAILED,
    TEMPORARILY_UNAVAILABLE,
    TIMEOUT,
)
from emulator.validate import is_timeout, timeout_error

__all__ = ["HttpKVClient"]

_DEFINITE = {404: KEY_DOES_NOT_EXIST, 412: PRECONDITION_FAILED, 503: TEMPORARILY_UNAVAILABLE}


class HttpKVClient:
    """A client machine that invokes lin-kv operations over HTTP and records them in ``sim.history``.

    Args:
        sim: the simulation; the client is added to it as host ``name`` (not a server).
        name: the client's host name, e.g. ``"c0"``.
        port: the port the servers listen on.

    Attributes:
        process: the process id of the next operation (a fresh one after each ``info``).
    """

    def __init__(self, sim: em.Simulation, name: str, port: int = 8080):
        self.sim = sim
        self.name = name
        self.port = port
        self.host = sim.add_host(name, server=False)
        self.rng = sim.rng(f"client:{name}")
        self.process = sim.new_process()
        self._session: aiohttp.ClientSession | None = None

    async def invoke(
        self,
        f: str,
        key: Any = None,
        value: Any = None,
        dest: str | None = None,
        timeout: float | None = 1.0,
        fields: dict | None = None,
    ) -> dict:
        """Send operation ``f`` to server ``dest`` over HTTP, record invoke and completion, return the reply.

        Raises:
            RPCError: recorded as ``fail`` when definite, ``info`` otherwise.
            Timeout: recorded as ``info``.
            ConfigError: ``timeout`` is not seconds >= 0 or None (``True`` is not), before anything is recorded.
        """
        if not is_timeout(timeout):
            raise timeout_error("HttpKVClient.invoke timeout", timeout)
        dest = dest if dest is not None else self.rng.choice(self.sim.servers)
        op = {
            "process": self.process,
            "f": f,
            "key": key,
            "value": None if f == "read" else value,
            "node": dest,
            "client": self.name,
        }
        self.sim.record_op({**op, "type": "invoke"})
        task = self.host.spawn(self._request(f, key, value, dest, timeout), f"{f}:{key}")
        try:
            reply = await task
        except (em.RPCError, em.Timeout) as exc:
            self._complete(op, "fail" if exc.definite else "info", [exc.code, str(exc)])
            raise
        except BaseException as exc:  # cancelled, or a bug on the way: the request may have left
            task.cancel()
            self._complete(op, "info", [CRASH, f"{type(exc).__name__}: {exc}"])
            raise
        self.sim.record_op({**op, "type": "ok", "value": reply.get("value") if f == "read" else value})
        return reply

    def _complete(self, op: dict, kind: str, error: list) -> None:
        self.sim.record_op({**op, "type": kind, "error": error})
        if kind == "info":
            self.process = self.sim.new_process()

    async def _request(self, f: str, key, value, dest: str, timeout: float | None) -> dict:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self.host.spawn(_close_at_exit(self._session), "http-session")
        url = f"http://{dest}:{self.port}/kv/{key}"
        if f == "read":
            method, body = "GET", None
        elif f == "write":
            method, body = "PUT", {"value": value}
        elif f == "cas":
            method, body, url = "POST", {"from": value[0], "to": value[1]}, url + "/cas"
        else:
            raise em.ConfigError(f"HttpKVClient speaks read, write and cas; got {f!r}")
        try:
            async with self._session.request(
                method, url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                status, text = response.status, await response.text()
        except aiohttp.ClientConnectorError as exc:
            code = CRASH if method == "PUT" else TEMPORARILY_UNAVAILABLE  # a PUT may be aiohttp's retry
            raise em.RPCError(code, f"cannot connect to {dest}: {exc}") from None
        except TimeoutError:
            raise em.Timeout(f"no answer from {dest} to {f} within {timeout}s") from None
        except aiohttp.ClientError as exc:
            raise em.RPCError(CRASH, f"{type(exc).__name__}: {exc}") from None
        return _reply(status, text)


async def _close_at_exit(session: aiohttp.ClientSession) -> None:
    # Closes the session when the machine stops (sim.close), so none is left for the garbage collector
    # to report as "Unclosed client session".
    try:
        await asyncio.Event().wait()
    finally:
        await session.close()


def _reply(status: int, text: str) -> dict:
    if status == 200:
        return json.loads(text) if text else {}
    code = _DEFINITE.get(status)
    if code is None:
        code = MALFORMED_REQUEST if 400 <= status < 500 else CRASH
    if code == CRASH and status == 504:
        code = TIMEOUT
    raise em.RPCError(code, f"HTTP {status}: {text[:200]}")
