"""A smoke-test node for the real transport: ``capsim serve --protocol emulator.transport.diag:Echo``.

{"type": "echo", "echo": x}                      -> {"type": "echo_ok", "echo": x}
{"type": "ping", "n": i}                         -> {"type": "pong", "n": i}
{"type": "relay", "to": n, "echo": x, "timeout": s} -> what ``n`` answers to an echo, or its error
"""

from __future__ import annotations

from typing import Any

from emulator.message import Message
from emulator.node import Node

__all__ = ["Echo"]


class Echo(Node):
    """Answers echo and ping; relays an echo to another node (an rpc across the cluster)."""

    async def handle_echo(self, msg: Message) -> dict[str, Any]:
        return {"type": "echo_ok", "echo": msg.body.get("echo")}

    async def handle_ping(self, msg: Message) -> dict[str, Any]:
        return {"type": "pong", "n": msg.body.get("n")}

    async def handle_relay(self, msg: Message) -> dict[str, Any]:
        body = msg.body
        return await self.rpc(body["to"], {"type": "echo", "echo": body.get("echo")}, timeout=body.get("timeout", 1.0))
