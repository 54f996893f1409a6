"""Node classes the real-transport tests share (importable by node subprocesses too)."""

import emulator as em


class Relay(em.Node):
    """Echoes, relays an echo to another node, tells (fire-and-forget) and keeps notes."""

    async def on_start(self):
        self.storage["boots"] = self.storage.get("boots", 0) + 1
        self.notes = []

    async def handle_echo(self, msg):
        return {"type": "echo_ok", "echo": msg.body.get("echo")}

    async def handle_relay(self, msg):
        body = msg.body
        return await self.rpc(body["to"], {"type": "echo", "echo": body.get("echo")}, timeout=body["timeout"])

    async def handle_tell(self, msg):
        self.send(msg.body["to"], {"type": "note", "text": msg.body.get("text")})
        return {"type": "tell_ok"}

    async def handle_note(self, msg):
        self.notes.append([msg.src, msg.body.get("text")])

    async def handle_notes(self, msg):
        return {"type": "notes_ok", "notes": self.notes, "boots": self.storage["boots"]}

    async def handle_boom(self, msg):
        raise RuntimeError("boom")


class BrokenOn(em.Node):
    """Refuses to start on the node named ``broken`` (a node process that fails at start)."""

    def __init__(self, broken: str = "n2"):
        if self.name == broken:
            raise RuntimeError(f"{self.name} is configured to fail at start")

    async def handle_echo(self, msg):
        return {"type": "echo_ok", "echo": msg.body.get("echo")}
