"""The control endpoint of a real node and its client: token, actions, ordering, errors."""

import asyncio
import gc
import json
import socket

import pytest

import emulator as em
from emulator.transport import ControlClient, ControlError, NodeHost
from emulator.transport.control import CONTROL_ACTIONS, ControlQueue, link_settings
from emulator.transport.links import ACTIONS
from tests.common.transport_http import TOKEN, post
from tests.common.transport_nodes import Relay


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    answer_status, answer = await post(http, host.url + "/control/isolate", b'{"name": "n1"}', headers)
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


def test_the_actions_are_the_link_faults_and_skew():
    """POST /control/ACTION takes every LinkFaults action, and skew."""
    assert (*ACTIONS, "skew") == CONTROL_ACTIONS


def test_link_settings_leaves_out_what_is_not_given():
    """None means 'not given'; a latency becomes its JSON form; zero is kept (it is given)."""
    assert link_settings() == {}
    assert link_settings(latency=em.Constant(0.01), loss=0.0, reorder=0.5) == {
        "latency": {"constant": 0.01},
        "loss": 0.0,
        "reorder": 0.5,
    }


@pytest.mark.asyncio
async def test_a_bad_skew_is_a_400_and_changes_nothing(host, http):
    """skew with an offset that is not a number, or a drift <= -1, is refused with 400; the clock keeps its time."""
    before = host.node.now()
    for payload in ({"offset": "soon"}, {"offset": [1]}, {"drift": -1}):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        status, answer = await post(http, host.url + "/control/skew", json.dumps(payload), headers)
        assert status == 400 and "skew" in answer["error"], (payload, status, answer)
    assert abs(host.node.now() - before) < 5.0


@pytest.mark.asyncio
async def test_a_fault_changes_only_the_node_that_receives_the_call(http):
    """Control one node: its fault state changes, another node's does not."""
    n1 = await NodeHost("n1", Relay, token=TOKEN).start()
    n2 = await NodeHost("n2", Relay, token=TOKEN).start()
    try:
        await ControlClient(n1.url, TOKEN, http).isolate("n1")
        assert n1.faults.describe() != [] and n2.faults.describe() == []
    finally:
        await n1.stop()
        await n2.stop()


@pytest.mark.asyncio
async def test_an_unreachable_node_is_a_control_error_without_status():
    """Nothing listens: ControlError('cannot reach ...') with status None; the client's own session closes."""
    client = ControlClient(f"http://127.0.0.1:{_closed_port()}/", TOKEN, timeout=2.0)
    try:
        with pytest.raises(ControlError, match=r"cannot reach http://127\.0\.0\.1:\d+/control/heal") as caught:
            await client.heal()
        assert caught.value.status is None
        session = client._session
    finally:
        await client.close()
    assert session is not None and session.closed


@pytest.mark.asyncio
async def test_close_leaves_a_shared_session_open(host, http):
    """A ControlClient given a session does not close it."""
    client = ControlClient(host.url, TOKEN, http)
    await client.health()
    await client.close()
    assert not http.closed


@pytest.mark.asyncio
async def test_a_control_queue_applies_calls_in_the_order_submitted(host, http):
    """partition, isolate, heal(1) submitted at once: heal(1) finds the partition (id 1) and lifts only it."""
    queue = ControlQueue(ControlClient(host.url, TOKEN, http))
    try:
        futures = [
            queue.submit("partition", {"groups": [["n1"], ["n2"]]}),
            queue.submit("isolate", {"name": "n3"}),
            queue.submit("heal", {"cuts": [1]}),
        ]
        answers = await asyncio.wait_for(asyncio.gather(*futures), 10.0)
    finally:
        await queue.close()
    assert [a["version"] for a in answers] == sorted(a["version"] for a in answers)
    assert host.faults.to_json()["rules"] == [{"isolate": {"name": "n3"}}]


@pytest.mark.asyncio
async def test_a_failed_call_nobody_awaits_is_not_reported_as_never_retrieved(host, http):
    """The error sits on the future; a future dropped unawaited does not surface as 'never retrieved'."""
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context.get("message")))
    queue = ControlQueue(ControlClient(host.url, TOKEN, http))
    try:
        failing = queue.submit("explode", {})
        kept = queue.submit("heal", {"cuts": [99]})
        await asyncio.wait_for(asyncio.wait([failing, kept]), 10.0)
        assert isinstance(kept.exception(), ControlError) and kept.exception().status == 400
        del failing
        gc.collect()
    finally:
        await queue.close()
        loop.set_exception_handler(None)
    assert reported == []


@pytest.mark.asyncio
@pytest.mark.parametrize("status, text", [(200, "[1, 2]"), (200, '"ok"'), (404, "[1]"), (500, "12")])
async def test_a_stranger_on_a_node_s_port_is_a_control_error(status, text):
    """Another program on the port a state file names (the cluster died, the port was reused): an answer that is
    JSON but no object came back as the node's status (a list; 'capsim cluster status' then raised TypeError), or
    raised AttributeError on .get. It is a ControlError saying this is not a capsim node."""
    from aiohttp import web

    async def stranger(request):
        return web.Response(status=status, text=text)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stranger)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    client = ControlClient(f"http://127.0.0.1:{runner.addresses[0][1]}", TOKEN)
    try:
        for call in (client.status(), client.health(), client.call("heal")):
            with pytest.raises(ControlError, match="not a capsim node"):
                await call
    finally:
        await client.close()
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_node_that_hangs_is_a_control_error_saying_it_did_not_answer_in_time():
    """A node that takes the connection and never answers (hung, or SIGSTOPped): the error read 'cannot reach
    URL: TimeoutError'; it says the node did not answer within the timeout, status None."""
    from aiohttp import web

    async def hang(request):
        await asyncio.sleep(3600)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    client = ControlClient(url, TOKEN, timeout=0.2)
    try:
        with pytest.raises(ControlError, match=r"did not answer within 0\.2 s \(hung, or paused\?\)") as failed:
            await client.call("heal")
        assert failed.value.status is None and f"{url}/control/heal" in str(failed.value)
    finally:
        await client.close()
        await runner.cleanup()
