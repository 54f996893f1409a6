"""HTTP helpers the real-transport tests share: the control token, an envelope, a raw POST."""

import json

#: The control token of the ``host`` fixture (tests/emulator/transport/conftest.py).
TOKEN = "test-token"


async def post(http, url, data, headers=None):
    """POST ``data`` with the aiohttp session ``http``; returns (status, the JSON answer)."""
    async with http.post(url, data=data, headers=headers or {}) as resp:
        return resp.status, await resp.json(content_type=None)


def envelope(body, src="x", dest="n1"):
    """One message as the JSON text ``POST /msg`` takes."""
    return json.dumps({"src": src, "dest": dest, "body": body})
