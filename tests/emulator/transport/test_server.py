"""Tests of emulator/transport/server.py and control.py: what a node answers over HTTP."""

import asyncio
import json

import aiohttp
import pytest
import pytest_asyncio

import emulator as em
from emulator.transport import ControlClient, ControlError, NodeHost
from emulator.transport.http import REPLY_TO_HEADER
from tests.common.nodes import Recorder
from tests.common.transport_nodes import Relay

TOKEN = "test-token"


@pytest_asyncio.fixture
async def host():
    node = await NodeHost("n1", Relay, token=TOKEN, max_body=64 * 1024).start()
    yield node
    await node.stop()


@pytest_asyncio.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def _post(http, url, data, headers=None):
    async with http.post(url, data=data, headers=headers or {}) as resp:
        return resp.status, await resp.json(content_type=None)


def _env(body, src="x", dest="n1"):
    return json.dumps({"src": src, "dest": dest, "body": body})


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
    answer_status, answer = await _post(http, host.url + "/msg", data)
    assert answer_status == status and words in answer["error"]
    assert host.delivered == 0 and host.rejected == 1


@pytest.mark.asyncio
async def test_the_node_still_serves_after_refusals(host, http):
    """After bad requests, a good envelope is accepted (202) and delivered to the handler."""
    await _post(http, host.url + "/msg", b"{oops")
    status, answer = await _post(http, host.url + "/msg", _env({"type": "note", "text": "hi"}))
    await asyncio.sleep(0.01)
    assert (status, answer) == (202, {"accepted": 1}) and host.node.notes == [["x", "hi"]]


@pytest.mark.asyncio
async def test_a_batch_is_delivered_in_order(http):
    """A list of envelopes is one request; the handler sees them in the order sent."""
    host = await NodeHost("n1", Recorder).start()
    try:
        batch = [{"src": "x", "dest": "n1", "body": {"type": "note", "i": i}} for i in range(50)]
        assert (await _post(http, host.url + "/msg", json.dumps(batch)))[0] == 202
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
    await _post(http, host.url + "/msg", _env({"type": "boom"}))
    await asyncio.sleep(0.01)
    status = await ControlClient(host.url, None, http).status()
    assert status["counters"]["received"] == 1 and status["counters"]["delivered"] == 1
    assert [e["error"] for e in status["errors"]] == ["RuntimeError: boom"]
    assert status["peers"] == {} and status["faults"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"Authorization": f"Basic {TOKEN}"}, 403),
    ],
)
async def test_control_needs_the_token(host, http, headers, status):
    """No token 401, a wrong one 403; nothing changes."""
    answer_status, answer = await _post(http, host.url + "/control/isolate", b'{"name": "n1"}', headers)
    assert answer_status == status and "token" in answer["error"] and host.faults.describe() == []


@pytest.mark.asyncio
async def test_control_is_disabled_without_a_token(http):
    """A node started without a token refuses every control call with 403."""
    node = await NodeHost("n1", Relay).start()
    try:
        with pytest.raises(ControlError, match="control is disabled") as refused:
            await ControlClient(node.url, "anything", http).heal()
        assert refused.value.status == 403
    finally:
        await node.stop()


@pytest.mark.asyncio
async def test_control_changes_the_fault_state(host, http):
    """Authorized calls apply in order; the state reads back; bad payloads are 400, unknown actions 404."""
    control = ControlClient(host.url, TOKEN, http)
    await control.partition(["n1"], ["n2"])
    await control.set_link_oneway("n1", "n3", latency=em.Uniform(0.01, 0.02), loss=0.25)
    state = await control.state()
    assert state["rules"] == [{"partition": {"groups": [["n1"], ["n2"]]}}]
    assert state["links"] == [{"src": "n1", "dst": "n3", "latency": {"uniform": [0.01, 0.02]}, "loss": 0.25}]
    with pytest.raises(ControlError, match="probability") as bad:
        await control.set_link_oneway("n1", "n3", loss=2)
    assert bad.value.status == 400
    with pytest.raises(ControlError, match="unknown control action") as unknown:
        await control.call("explode")
    assert unknown.value.status == 404
    await control.isolate("n3")
    await control.heal(1)  # the partition, by the id the node gave it; the isolation stays
    assert (await control.state())["rules"] == [{"isolate": {"name": "n3"}}]
    with pytest.raises(ControlError, match="no such cut") as unknown_cut:
        await control.heal(1)
    assert unknown_cut.value.status == 400
    await control.heal()
    assert (await control.state())["rules"] == []


@pytest.mark.asyncio
async def test_skew_moves_only_the_node_clock(host, http):
    """skew sets the node's now() ahead; a bad drift is refused."""
    before = host.node.now()
    await ControlClient(host.url, TOKEN, http).skew(offset=100.0)
    assert host.node.now() - before > 99
    with pytest.raises(ControlError, match="drift"):
        await ControlClient(host.url, TOKEN, http).skew(drift=-2)


@pytest.mark.asyncio
async def test_a_reply_address_is_learned_only_from_its_own_host(host, http):
    """A sender is answered at the URL it gives only if that URL is on the address it came from."""
    await _post(http, host.url + "/msg", _env({"type": "echo"}, src="c1"), {REPLY_TO_HEADER: "http://10.1.2.3:80"})
    await _post(http, host.url + "/msg", _env({"type": "echo"}, src="c2"), {REPLY_TO_HEADER: "http://127.0.0.1:9"})
    assert dict(host.transport.learned) == {"c2": "http://127.0.0.1:9"}


@pytest.mark.asyncio
async def test_a_reply_to_an_unknown_sender_is_dropped_not_raised(host, http):
    """An rpc from a sender with no address is handled; the reply is counted as dropped (no route)."""
    await _post(http, host.url + "/msg", _env({"type": "echo", "msg_id": 1}, src="stranger"))
    await asyncio.sleep(0.01)
    assert host.transport.drops["no-route"] == 1 and not host.errors


@pytest.mark.asyncio
async def test_sending_to_an_unknown_node_is_a_config_error(host):
    """Node code that sends to a name nobody gave raises ConfigError, as in the simulation."""
    with pytest.raises(em.ConfigError, match="unknown node 'n9'"):
        host.node.send("n9", {"type": "note"})


@pytest.mark.asyncio
async def test_a_soft_pause_holds_the_inbox_until_resume(host, http):
    """While paused, messages wait; on resume they are delivered in order."""
    control = ControlClient(host.url, TOKEN, http)
    await control.pause("n1")
    for i in range(3):
        await _post(http, host.url + "/msg", _env({"type": "note", "text": i}))
    await asyncio.sleep(0.01)
    assert host.node.notes == []
    await control.resume("n1")
    await asyncio.sleep(0.01)
    assert host.node.notes == [["x", 0], ["x", 1], ["x", 2]]


@pytest.mark.asyncio
async def test_a_port_in_use_raises_oserror():
    """A second host on a taken port fails to start with OSError and leaves nothing running."""
    first = await NodeHost("n1", Relay).start()
    try:
        with pytest.raises(OSError):
            await NodeHost("n2", Relay, port=first.port).start()
    finally:
        await first.stop()
