"""The sending half of the real transport: outboxes, FIFO batches, faults at send time, drops never raised."""

import asyncio
import json
import random
import socket

import pytest
import pytest_asyncio
from aiohttp import web

import emulator as em
from emulator.transport.auth import SIGNATURE_HEADER, sign, verify
from emulator.transport.http import REPLY_TO_HEADER, HttpTransport
from emulator.transport.links import LinkFaults
from emulator.transport.wire import MAX_BATCH
from tests.common.transport_http import envelope, post

WAIT = 5.0  # seconds of real time a test may wait for a delivery: generous, the machine is shared


class Peer:
    """A stand-in node: records every POST /msg (headers and envelopes) and answers ``status``."""

    def __init__(self):
        self.requests: list[tuple[dict, list]] = []
        self.status = 202
        self.url = ""

    async def handle(self, request):
        body = await request.read()
        parsed = json.loads(body)
        self.requests.append((dict(request.headers), parsed if isinstance(parsed, list) else [parsed], body))
        return web.json_response({"accepted": 1} if self.status == 202 else {"error": "no"}, status=self.status)

    @property
    def envelopes(self) -> list:
        return [env for _, envs, _ in self.requests for env in envs]


@pytest_asyncio.fixture
async def peer():
    """A recording HTTP peer on a free loopback port; cleaned up after the test."""
    recorder = Peer()
    app = web.Application()
    app.router.add_post("/msg", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield recorder
    await runner.cleanup()


@pytest_asyncio.fixture
async def make():
    """Build open HttpTransports from n1 (closed after the test): ``await make(routes, **kwargs)``."""
    made = []

    async def build(routes, faults=None, **kwargs):
        transport = HttpTransport("n1", routes, faults or LinkFaults(), random.Random(7), **kwargs)
        await transport.open()
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await transport.close()


async def _until(predicate, limit=WAIT):
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.005)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _send(transport, dest, count, start=0):
    for i in range(start, start + count):
        transport.transmit(None, dest, {"type": "note", "i": i})


@pytest.mark.asyncio
async def test_messages_arrive_in_order_batched_per_round_trip(peer, make):
    """300 messages sent at once arrive in order, in far fewer requests than messages; all counted as posted."""
    transport = await make({"n2": peer.url})
    _send(transport, "n2", 300)
    await _until(lambda: transport.posted == 300)
    assert [env["body"]["i"] for env in peer.envelopes] == list(range(300))
    assert all(env["src"] == "n1" and env["dest"] == "n2" for env in peer.envelopes)
    assert len(peer.requests) <= 300 // MAX_BATCH + 2
    assert transport.stats() == {"sent": 300, "posted": 300, "duplicated": 0, "dropped": 0, "drops": {}, "queued": 0}


@pytest.mark.asyncio
async def test_with_latency_and_no_reorder_a_link_stays_fifo(peer, make):
    """A random latency holds each message until due, yet never lets one overtake an earlier one."""
    faults = LinkFaults()
    faults.apply("link", {"src": "n1", "dst": "n2", "latency": {"uniform": [0.0, 0.02]}})
    transport = await make({"n2": peer.url}, faults)
    for i in range(40):
        _send(transport, "n2", 1, start=i)
        await asyncio.sleep(0.001)
    await _until(lambda: transport.posted == 40)
    assert [env["body"]["i"] for env in peer.envelopes] == list(range(40))


@pytest.mark.asyncio
async def test_loss_and_duplication_are_drawn_per_message(peer, make):
    """loss=1 drops every message as 'loss'; duplicate=1 posts every message twice."""
    faults = LinkFaults()
    faults.apply("link", {"src": "n1", "dst": "n2", "loss": 1.0})
    faults.apply("link", {"src": "n1", "dst": "n3", "duplicate": 1.0})
    transport = await make({"n2": peer.url, "n3": peer.url}, faults)
    _send(transport, "n2", 5)
    _send(transport, "n3", 5)
    await _until(lambda: transport.posted == 10)
    assert sorted(env["body"]["i"] for env in peer.envelopes) == sorted(list(range(5)) * 2)
    assert {env["dest"] for env in peer.envelopes} == {"n3"}
    assert transport.drops == {"loss": 5} and transport.duplicated == 5


@pytest.mark.asyncio
async def test_a_cut_drops_at_send_time_and_again_when_a_held_message_leaves(peer, make):
    """Cut before sending: dropped at once. Cut while a message waits out its latency: dropped, never posted."""
    faults = LinkFaults()
    faults.apply("link", {"src": "n1", "dst": "n2", "latency": {"constant": 0.3}})
    transport = await make({"n2": peer.url}, faults)
    _send(transport, "n2", 3)  # due in 0.3 s
    faults.apply("partition", {"groups": [["n1"], ["n2"]]})
    _send(transport, "n2", 2, start=3)
    assert transport.drops == {"partition": 2}
    await _until(lambda: transport.drops["partition"] == 5)
    assert peer.requests == [] and transport.stats()["queued"] == 0


@pytest.mark.asyncio
async def test_a_held_link_waits_and_a_release_sends_in_order(peer, make):
    """hold keeps messages in the outbox; release plus wake() sends them, in order."""
    faults = LinkFaults()
    faults.apply("hold", {"a": "n1", "b": "n2"})
    transport = await make({"n2": peer.url}, faults)
    _send(transport, "n2", 5)
    await asyncio.sleep(0.1)
    assert peer.requests == [] and transport.stats()["queued"] == 5
    faults.apply("release", {"a": "n1", "b": "n2"})
    transport.wake()
    await _until(lambda: transport.posted == 5)
    assert [env["body"]["i"] for env in peer.envelopes] == list(range(5))


@pytest.mark.asyncio
async def test_a_peer_that_is_down_or_refuses_looks_like_a_lossy_link(peer, make):
    """Nothing raised: an unreachable peer's messages drop as 'unreachable', a 400 as 'refused 400'; problems noted."""
    transport = await make({"n2": f"http://127.0.0.1:{_closed_port()}", "n3": peer.url}, timeout=2.0)
    peer.status = 400
    _send(transport, "n2", 2)
    _send(transport, "n3", 3)
    await _until(lambda: sum(transport.drops.values()) == 5)
    assert transport.drops == {"unreachable": 2, "refused 400": 3} and transport.posted == 0
    reasons = {p["dest"]: p["reason"] for p in transport.problems}
    assert reasons["n2"].startswith("unreachable") and reasons["n3"].startswith("refused 400")


@pytest.mark.asyncio
async def test_a_batch_over_the_body_limit_is_split_and_an_oversized_message_dropped(peer, make):
    """Requests stay under max_body: a big batch goes in halves; one message bigger than the limit is 'too-large'."""
    transport = await make({"n2": peer.url}, max_body=2000)
    for i in range(40):
        transport.transmit(None, "n2", {"type": "note", "i": i, "pad": "x" * 100})
    transport.transmit(None, "n2", {"type": "note", "i": 40, "pad": "y" * 3000})
    await _until(lambda: transport.posted + sum(transport.drops.values()) == 41)
    assert [env["body"]["i"] for env in peer.envelopes] == list(range(40))
    assert len(peer.requests) > 1 and all(len(body) <= 2000 for _, _, body in peer.requests)
    assert transport.drops == {"too-large": 1}


@pytest.mark.asyncio
async def test_an_outbox_holds_at_most_max_queue_messages(peer, make):
    """Beyond max_queue, messages drop as 'overflow' instead of piling up."""
    faults = LinkFaults()
    faults.apply("hold", {"a": "n1", "b": "n2"})
    transport = await make({"n2": peer.url}, faults, max_queue=10)
    _send(transport, "n2", 15)
    assert transport.drops == {"overflow": 5} and transport.stats()["queued"] == 10


@pytest.mark.asyncio
async def test_requests_are_signed_and_carry_the_reply_address(peer, make):
    """With a key every body is signed (the peer can verify it); reply_to goes in its header."""
    key = b"k" * 32
    transport = await make({"n2": peer.url}, key=key)
    transport.reply_to = "http://127.0.0.1:1234"
    _send(transport, "n2", 1)
    await _until(lambda: transport.posted == 1)
    ((headers, _, body),) = peer.requests
    assert verify(key, body, headers[SIGNATURE_HEADER]) and headers[SIGNATURE_HEADER] == sign(key, body)
    assert headers[REPLY_TO_HEADER] == "http://127.0.0.1:1234"


@pytest.mark.asyncio
async def test_a_learned_route_never_overrides_a_static_one(peer, make):
    """learn() of a node with a static route changes nothing: its messages still go to the static URL."""
    transport = await make({"n2": peer.url})
    _send(transport, "n2", 1)
    transport.learn("n2", f"http://127.0.0.1:{_closed_port()}")
    _send(transport, "n2", 1, start=1)
    await _until(lambda: transport.posted + sum(transport.drops.values()) == 2)
    assert transport.posted == 2 and "n2" not in transport.learned


@pytest.mark.asyncio
async def test_learned_routes_are_bounded_least_recently_learned_out_first(make):
    """learn() keeps the newest `limit` names; learning a name again makes it the newest."""
    transport = await make({})
    for i in range(5):
        transport.learn(f"c{i}", f"http://127.0.0.1:{100 + i}", limit=3)
    transport.learn("c2", "http://127.0.0.1:999", limit=3)
    assert list(transport.learned.items()) == [
        ("c3", "http://127.0.0.1:103"),
        ("c4", "http://127.0.0.1:104"),
        ("c2", "http://127.0.0.1:999"),
    ]


@pytest.mark.asyncio
async def test_close_stops_every_outbox(peer, make):
    """After close() no outbox task is left running and queued messages are gone."""
    faults = LinkFaults()
    faults.apply("hold", {"a": "n1", "b": "n2"})
    transport = await make({"n2": peer.url}, faults)
    _send(transport, "n2", 3)
    await asyncio.sleep(0)
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("capsim-outbox:n1->")]
    await transport.close()
    assert tasks and all(t.done() for t in tasks) and transport.stats()["queued"] == 0


# -- through a running node -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_reply_to_an_unknown_sender_is_dropped_not_raised(host, http):
    """An rpc from a sender with no address is handled; the reply is counted as dropped (no route)."""
    await post(http, host.url + "/msg", envelope({"type": "echo", "msg_id": 1}, src="stranger"))
    await asyncio.sleep(0.01)
    assert host.transport.drops["no-route"] == 1 and not host.errors


@pytest.mark.asyncio
async def test_sending_to_an_unknown_node_is_a_config_error(host):
    """Node code that sends to a name nobody gave raises ConfigError, as in the simulation."""
    with pytest.raises(em.ConfigError, match="unknown node 'n9'"):
        host.node.send("n9", {"type": "note"})


@pytest.mark.asyncio
async def test_a_batch_a_peer_refuses_as_too_large_is_sent_again_in_halves(make):
    """A peer started with a smaller --max-body than its sender's: the sender's batches fit its own limit, the
    peer answered 413 and the whole batch was dropped, though each message fits. A 413 means nothing was
    taken, so the batch goes again in halves: every message arrives, in order."""
    from emulator.transport import NodeHost
    from tests.common.transport_nodes import Relay

    receiver = await NodeHost("n2", Relay, max_body=4096).start()
    try:
        transport = await make({"n2": receiver.url})
        for i in range(40):
            transport.transmit(None, "n2", {"type": "note", "text": f"{i}:" + "x" * 300})
        await _until(lambda: transport.posted + sum(transport.drops.values()) == 40)
        await _until(lambda: len(receiver.node.notes) == 40)
        assert [int(text.split(":")[0]) for _, text in receiver.node.notes] == list(range(40))
        assert transport.drops == {} and receiver.rejected >= 1
    finally:
        await receiver.stop()
