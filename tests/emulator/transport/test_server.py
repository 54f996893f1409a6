"""Tests of emulator/transport/server.py: what a node answers over HTTP."""

import asyncio
import json

import pytest

from emulator.transport import ControlClient, NodeHost
from emulator.transport.http import REPLY_TO_HEADER
from tests.common.nodes import Recorder
from tests.common.transport_http import TOKEN, envelope, post
from tests.common.transport_nodes import Relay


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "data, status, words",
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"src": "x", "dest": "n1", "body": {"echo": 1}}', 400, 'non-empty string "type"'),
        (b'{"src": "x", "dest": "n1", "body": {"type": ""}}', 400, 'non-empty string "type"'),
        (b'{"src": "x", "dest": "n1", "body": {"type": "echo", "msg_id": "7"}}', 400, "'msg_id' must be an integer"),
        (b'{"src": "x", "dest": "n1", "body": {"type": "echo", "v": NaN}}', 400, "NaN is not JSON"),
        (b'{"dest": "n1", "body": {"type": "echo"}}', 400, '"src"'),
        (b"[]", 400, "empty batch"),
        (b'[{"src": "x", "dest": "n1", "body": {"type": "a"}}, 3]', 400, "envelope 1"),
        (b'{"src": "x", "dest": "n7", "body": {"type": "echo"}}', 404, "there is no node 'n7' here"),
        (b"x" * (65 * 1024), 413, "too large"),
    ],
)
async def test_a_bad_message_gets_a_4xx_with_a_reason(host, http, data, status, words):
    """Malformed JSON, a missing type, a bad id, a wrong destination, a huge body: 4xx and a message."""
    answer_status, answer = await post(http, host.url + "/msg", data)
    assert answer_status == status and words in answer["error"]
    assert host.delivered == 0 and host.rejected == 1


@pytest.mark.asyncio
async def test_the_node_still_serves_after_refusals(host, http):
    """After bad requests, a good envelope is accepted (202) and delivered to the handler."""
    await post(http, host.url + "/msg", b"{oops")
    status, answer = await post(http, host.url + "/msg", envelope({"type": "note", "text": "hi"}))
    await asyncio.sleep(0.01)
    assert (status, answer) == (202, {"accepted": 1}) and host.node.notes == [["x", "hi"]]


@pytest.mark.asyncio
async def test_a_batch_is_delivered_in_order(http):
    """A list of envelopes is one request; the handler sees them in the order sent."""
    host = await NodeHost("n1", Recorder).start()
    try:
        batch = [{"src": "x", "dest": "n1", "body": {"type": "note", "i": i}} for i in range(50)]
        assert (await post(http, host.url + "/msg", json.dumps(batch)))[0] == 202
        await asyncio.sleep(0.01)
        assert [body["i"] for _, _, body in host.node.got] == list(range(50))
    finally:
        await host.stop()


@pytest.mark.asyncio
async def test_wrong_methods_and_paths_get_json_4xx(host, http):
    """GET /msg is 405, an unknown path 404, each with an error message."""
    async with http.get(host.url + "/msg") as resp:
        assert resp.status == 405 and "error" in await resp.json()
    async with http.get(host.url + "/nowhere") as resp:
        assert resp.status == 404 and "POST /msg" in (await resp.json())["error"]


@pytest.mark.asyncio
async def test_health_and_status_describe_the_node(host, http):
    """/health names the node; /status carries counters, faults and recent handler errors."""
    async with http.get(host.url + "/health") as resp:
        assert (await resp.json())["name"] == "n1"
    await post(http, host.url + "/msg", envelope({"type": "boom"}))
    await asyncio.sleep(0.01)
    status = await ControlClient(host.url, None, http).status()
    assert status["counters"]["received"] == 1 and status["counters"]["delivered"] == 1
    assert [e["error"] for e in status["errors"]] == ["RuntimeError: boom"]
    assert status["peers"] == {} and status["faults"] == []


@pytest.mark.asyncio
async def test_a_reply_address_is_learned_only_from_its_own_host(host, http):
    """A sender is answered at the URL it gives only if that URL is on the address it came from."""
    await post(http, host.url + "/msg", envelope({"type": "echo"}, src="c1"), {REPLY_TO_HEADER: "http://10.1.2.3:80"})
    await post(http, host.url + "/msg", envelope({"type": "echo"}, src="c2"), {REPLY_TO_HEADER: "http://127.0.0.1:9"})
    assert dict(host.transport.learned) == {"c2": "http://127.0.0.1:9"}


async def _stall_mid_body(url: str, path: str, sent: bytes, length: int):
    """Open a connection, send headers promising ``length`` bytes and only ``sent``, then wait.

    Returns (status, JSON answer, whether the node then closed the connection, seconds to the answer).
    """
    address = url.removeprefix("http://")
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
            + sent
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        took = loop.time() - began
        size = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(b":")[1])
        answer = json.loads(await asyncio.wait_for(reader.readexactly(size), 10))
        closed = await asyncio.wait_for(reader.read(1), 10) == b""
        return int(head.split()[1]), answer, closed, took
    finally:
        writer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/msg", "/control/partition"])
async def test_a_sender_that_stalls_mid_body_gets_408_and_its_connection_is_closed(http, path):
    """A body that stops coming is refused after the host's timeout (408, JSON), and nothing is held.

    Without the deadline, the handler waits on the body for ever and keeps the connection.
    The node serves the next request and counts the refusal.
    """
    host = await NodeHost("n1", Relay, token=TOKEN, timeout=0.3).start()
    try:
        body = envelope({"type": "note", "text": "hi"}).encode()
        status, answer, closed, took = await _stall_mid_body(host.url, path, body[:10], len(body))
        assert status == 408 and "did not arrive in full within 0.3 s" in answer["error"]
        assert closed and 0.3 <= took < 5
        assert host.rejected == 1 and host.delivered == 0
        assert (await post(http, host.url + "/msg", body))[0] == 202
    finally:
        await host.stop()


@pytest.mark.asyncio
async def test_a_slow_body_that_arrives_within_the_timeout_is_accepted():
    """The deadline is for the whole body, not each piece: pieces over 0.2 s of a 1 s timeout get through."""
    host = await NodeHost("n1", Relay, token=TOKEN, timeout=1.0).start()
    address = host.url.removeprefix("http://")
    reader, writer = await asyncio.open_connection(*address.rsplit(":", 1))
    try:
        body = envelope({"type": "note", "text": "slow"}).encode()
        writer.write(f"POST /msg HTTP/1.1\r\nHost: {address}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for i in range(0, len(body), len(body) // 4 + 1):
            writer.write(body[i : i + len(body) // 4 + 1])
            await writer.drain()
            await asyncio.sleep(0.05)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.split()[1] == b"202"
        await asyncio.sleep(0.01)
        assert host.node.notes == [["x", "slow"]]
    finally:
        writer.close()
        await host.stop()


@pytest.mark.parametrize("setting", [{"timeout": 0}, {"timeout": -1.0}, {"timeout": float("inf")}, {"max_body": 0}])
def test_a_host_refuses_a_timeout_or_limit_that_is_not_a_positive_number(setting):
    """A zero, negative or infinite timeout would refuse or hold every request: ConfigError names the setting."""
    from emulator.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{next(iter(setting))} must be a finite number > 0"):
        NodeHost("n1", Relay, **setting)


@pytest.mark.parametrize("held", [-1, 1.5, True])
def test_a_host_refuses_a_held_limit_that_is_not_a_whole_number(held):
    """max_held counts messages: 0 holds none (a soft pause drops all), a negative or fractional count is refused."""
    from emulator.errors import ConfigError

    with pytest.raises(ConfigError, match="max_held must be a whole number >= 0"):
        NodeHost("n1", Relay, max_held=held)
    assert NodeHost("n1", Relay, max_held=0).max_held == 0
