"""Clients: nodes that invoke operations and record them in the history.

``invoke`` follows Jepsen's process model: each client is one process with at
most one operation in flight; an operation that ends indeterminate (``info``)
retires the process and the client continues under a fresh process id, so the
history stays checkable (a process never has two operations open).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from emulator.errors import CRASH, ConfigError, RPCError, Timeout
from emulator.message import copy_body
from emulator.node import Node
from emulator.validate import is_timeout, timeout_error

__all__ = ["Client"]


class Client(Node):
    """A node that drives the cluster and records a Jepsen-style history.

    Made by ``sim.add_client(name)``; call ``invoke`` (recorded) or ``rpc``
    (not recorded) from the workload coroutine.

    Attributes:
        process: the process id of the next operation.
    """

    def __init__(self, record: Callable[[dict[str, Any]], Any], new_process: Callable[[], int]):
        self._record = record
        self._new_process = new_process
        self.process = new_process()

    async def invoke(
        self,
        f: str,
        key: Any = None,
        value: Any = None,
        dest: str | None = None,
        timeout: float | None = 1.0,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send operation ``f`` to ``dest``, record invoke and completion, return the reply.

        The body is ``{"type": f, "key": key, "value": value}`` (absent fields
        left out); for ``cas``, ``value`` is ``[from, to]`` and the body carries
        ``"from"`` and ``"to"``, as in Maelstrom's lin-kv. A read's recorded
        value is the one it returned.

        Args:
            f: the operation (``"read"``, ``"write"``, ``"cas"``, ...): the body's type.
            key: the key it acts on; None leaves it out of the body.
            value: the value written (``[from, to]`` for ``cas``); None leaves it out.
            dest: the server to ask; by default one chosen with this client's rng.
            timeout: seconds to wait for the reply (None: forever).
            fields: more body fields for the store (a read quorum ``"r"``, a
                ``"min_version"`` token); not recorded in the history.

        Raises:
            RPCError: recorded as ``fail`` when definite, ``info`` otherwise.
            Timeout: recorded as ``info``.
            ConfigError: a misuse (an empty ``f``, a ``cas`` value that is not
                ``[from, to]``, a ``timeout`` that is not seconds >= 0 or None,
                such as ``True``), raised before anything is recorded.
            MessageError: a key or value JSON cannot carry, raised before
                anything is recorded.
        """
        self._check_loop()
        if not is_timeout(timeout):
            raise timeout_error("rpc timeout", timeout)
        dest = dest if dest is not None else self._pick()
        body = copy_body(_body(f, key, value, fields))  # a body that cannot travel is refused before it is recorded
        process = self.process
        op = {
            "process": process,
            "f": f,
            "key": key,
            "value": None if f == "read" else value,
            "node": dest,
            "client": self.name,
        }
        self._record({**op, "type": "invoke"})
        try:
            reply = await self.rpc(dest, body, timeout)
        except (RPCError, Timeout) as exc:
            self._complete(op, "fail" if exc.definite else "info", [exc.code, getattr(exc, "text", str(exc))])
            raise
        except BaseException as exc:  # cancelled, or a misuse found on the way: it may have been sent
            self._complete(op, "info", [CRASH, f"{type(exc).__name__}: {exc}"])
            raise
        self._record({**op, "type": "ok", "value": reply.get("value") if f == "read" else value})
        return reply

    def _check_loop(self) -> None:
        """A misuse, before anything is recorded: invoke awaited on a loop that is not this client's."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._endpoint.loop:
            raise ConfigError(
                f"{self.name}.invoke ran outside its simulation (under asyncio.run, or another loop); "
                "await it inside the coroutine you give sim.run: sim.run(workload()), "
                "or in a test that takes the sim fixture"
            )

    def _complete(self, op: dict[str, Any], kind: str, error: list[Any]) -> None:
        """Record a failed completion; an indeterminate one retires the process (Jepsen's model)."""
        self._record({**op, "type": kind, "error": error})
        if kind == "info":
            self.process = self._new_process()

    def _pick(self) -> str:
        peers = self.peers
        if not peers:
            raise ConfigError("invoke needs a server node: add one with sim.add_node, or pass dest=")
        return self.rng.choice(peers)


_RESERVED = {"type", "key", "value", "from", "to", "msg_id", "in_reply_to"}


def _body(f: str, key: Any, value: Any, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    if not isinstance(f, str) or not f:
        raise ConfigError(f"an operation name f must be a non-empty string such as 'read', got {f!r}")
    body: dict[str, Any] = {"type": f}
    if key is not None:
        body["key"] = key
    if f == "cas":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(f"cas takes value=[from, to], got {value!r}")
        body["from"], body["to"] = value
    elif value is not None:
        body["value"] = value
    if fields:
        clash = sorted(set(fields) & _RESERVED)
        if clash:
            raise ConfigError(f"fields may not set {clash}: pass them as invoke's own arguments")
        body.update(fields)
    return body
