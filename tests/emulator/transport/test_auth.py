"""Tests of emulator/transport/auth.py: peer messages signed with the cluster secret."""

import asyncio
import json

import aiohttp
import pytest
import pytest_asyncio

from emulator.transport import NodeHost, RealCluster
from emulator.transport.auth import SIGNATURE_HEADER, peer_key, sign, verify
from tests.common.transport_nodes import Relay

SECRET = "cluster-secret"


def test_a_signature_holds_for_its_body_and_key_only():
    """verify accepts the body it signed under its key, and nothing else: another body, key or header."""
    key = peer_key(SECRET)
    body = b'{"src":"n2","dest":"n1","body":{"type":"note"}}'
    header = sign(key, body)
    assert header.startswith("sha256=") and verify(key, body, header)
    assert not verify(key, body.replace(b"note", b"nose"), header)
    assert not verify(peer_key("another secret"), body, header)
    assert not verify(key, body, None) and not verify(key, body, "")
    assert SECRET.encode() not in key and peer_key(None) is None and peer_key("") is None


@pytest_asyncio.fixture
async def pair():
    """n1 and n2, Relay nodes sharing SECRET, each knowing the other as a peer."""
    n1, n2 = NodeHost("n1", Relay, token=SECRET), NodeHost("n2", Relay, token=SECRET)
    urls = {"n1": await n1.listen(), "n2": await n2.listen()}
    n1.peer_urls, n2.peer_urls = {"n2": urls["n2"]}, {"n1": urls["n1"]}
    await n1.start()
    await n2.start()
    yield n1, n2
    await n1.stop()
    await n2.stop()


async def _post(url: str, envelopes, headers=None) -> tuple[int, dict]:
    data = json.dumps(envelopes).encode()
    async with aiohttp.ClientSession() as http, http.post(url + "/msg", data=data, headers=headers or {}) as resp:
        return resp.status, await resp.json(content_type=None)


def _note(src: str, text: str = "hi", dest: str = "n1") -> dict:
    return {"src": src, "dest": dest, "body": {"type": "note", "text": text}}


@pytest.mark.asyncio
@pytest.mark.parametrize("src", ["n2", "n1"], ids=["a peer", "the node itself"])
async def test_an_unsigned_message_claiming_a_servers_name_is_refused_with_401(pair, src):
    """{"src": "n2", ...} posted by another process without the secret: 401, and nothing is delivered."""
    n1, _ = pair
    status, answer = await _post(n1.url, _note(src, "forged"))
    assert status == 401 and f"from server {src!r} must be signed with the cluster secret" in answer["error"]
    await asyncio.sleep(0.01)
    assert n1.delivered == 0 and n1.node.notes == []


@pytest.mark.asyncio
async def test_a_signature_made_with_another_secret_or_for_another_body_is_refused(pair):
    """A wrong secret, or a valid signature moved onto a different body, is refused with 401."""
    n1, _ = pair
    data = json.dumps(_note("n2", "forged")).encode()
    status, _ = await _post(n1.url, _note("n2", "forged"), {SIGNATURE_HEADER: sign(peer_key("guess"), data)})
    assert status == 401
    honest = json.dumps(_note("n2", "honest")).encode()
    status, _ = await _post(n1.url, _note("n2", "forged"), {SIGNATURE_HEADER: sign(peer_key(SECRET), honest)})
    assert status == 401 and n1.delivered == 0


@pytest.mark.asyncio
async def test_a_batch_with_one_unsigned_server_envelope_is_refused_whole(pair):
    """A client's envelope cannot carry a forged server one past the check: the whole request is refused."""
    n1, _ = pair
    status, _ = await _post(n1.url, [_note("c9", "client"), _note("n2", "forged")])
    assert status == 401
    await asyncio.sleep(0.01)
    assert n1.node.notes == []


@pytest.mark.asyncio
async def test_a_client_needs_no_secret_and_the_peers_sign_theirs(pair):
    """An unsigned client message is delivered; n2's own messages to n1 (signed by its transport) arrive."""
    n1, n2 = pair
    status, _ = await _post(n1.url, _note("c9", "from a client"))
    assert status == 202
    await _post(n2.url, {"src": "c9", "dest": "n2", "body": {"type": "tell", "to": "n1", "text": "from n2"}})
    for _ in range(100):
        if len(n1.node.notes) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(n1.node.notes) == [["c9", "from a client"], ["n2", "from n2"]]
    assert n2.transport.drops == {}


@pytest.mark.asyncio
async def test_a_client_without_the_secret_invokes_and_gets_signed_replies():
    """A client host started without the secret reads and writes against servers that have one."""
    from nodes.kv import SingleKV

    cluster = await RealCluster.local({"n1": SingleKV}, token=SECRET)
    try:
        host = NodeHost("c0", Relay, peers={"n1": cluster.url("n1")}, token=None, server=False)
        await host.start()
        try:
            reply = await host.node.rpc("n1", {"type": "write", "key": "k", "value": 1}, timeout=2)
            assert reply["type"] == "write_ok"
            reply = await host.node.rpc("n1", {"type": "read", "key": "k"}, timeout=2)
            assert reply["value"] == 1
        finally:
            await host.stop()
    finally:
        await cluster.close()


@pytest.mark.asyncio
async def test_a_node_with_a_different_secret_cannot_speak_for_a_server(pair):
    """A third node calling itself n2 with its own secret: its messages are refused and counted as drops."""
    n1, _ = pair
    impostor = NodeHost("n2", Relay, peers={"n1": n1.url}, token="not the secret")
    await impostor.start()
    try:
        impostor.node.send("n1", {"type": "note", "text": "forged"})
        for _ in range(100):
            if impostor.transport.drops:
                break
            await asyncio.sleep(0.01)
        assert impostor.transport.drops == {"refused 401": 1}
        assert n1.node.notes == []
    finally:
        await impostor.stop()


@pytest.mark.asyncio
async def test_a_node_without_a_secret_checks_nothing():
    """NodeHost(token=None): no control endpoint and no peer authentication (documented)."""
    host = await NodeHost("n1", Relay, peers={"n2": "http://127.0.0.1:9"}, token=None).start()
    try:
        status, _ = await _post(host.url, _note("n2", "unsigned"))
        assert status == 202
    finally:
        await host.stop()
