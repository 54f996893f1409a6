"""Fuzzing POST /msg: whatever arrives, the node answers 2xx or 4xx and keeps serving."""

import asyncio
import http.client
import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.transport import NodeHost
from emulator.transport.auth import SIGNATURE_HEADER, sign
from tests.common.transport_nodes import Relay

MAX_BODY = 4096

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
names = st.sampled_from(["n1", "c0", "n2", ""]) | st.text(max_size=5)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["echo", "relay", "tell", "note", "notes", "boom", "error", "echo_ok", ""])
        | json_values,
        "msg_id": st.integers(-5, 2**70) | json_values,
        "in_reply_to": st.integers(-5, 5) | json_values,
        "to": names,
        "timeout": st.floats(0, 0.05) | json_values,
        "echo": json_values,
    },
)
envelopes = st.fixed_dictionaries({"src": names, "dest": st.just("n1") | names, "body": bodies | json_values})
# Envelopes that pass the shape checks (right node, a handled type) with hostile values elsewhere:
# they reach the node runtime, so this is where a crash would hide.
hostile = st.fixed_dictionaries(
    {
        "src": st.sampled_from(["n1", "c0", "x"]),
        "dest": st.just("n1"),
        "body": st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    ["echo", "relay", "tell", "note", "notes", "boom", "echo_ok", "error", "unknown"]
                )
            },
            optional={
                "msg_id": json_values,
                "in_reply_to": json_values,
                "to": json_values,
                "timeout": json_values,
                "echo": json_values,
                "text": json_values,
            },
        ),
    }
)
payloads = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | envelopes.map(lambda v: json.dumps(v).encode())
    | st.lists(envelopes, max_size=5).map(lambda v: json.dumps(v).encode())
    | st.integers(MAX_BODY - 2, MAX_BODY + 2).map(lambda n: b'"' + b"a" * (n - 2) + b'"')
)


@pytest.fixture(scope="module")
def server():
    """A Relay node on its own loop in a thread, so hypothesis can call it synchronously."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    host = asyncio.run_coroutine_threadsafe(NodeHost("n1", Relay, token="t", max_body=MAX_BODY).start(), loop).result(5)
    host.flush = lambda: asyncio.run_coroutine_threadsafe(asyncio.sleep(0.001), loop).result(5)

    async def await_forever():  # an rpc that never ends, so replies are always matched against a waiter
        host.node.spawn(host.node.rpc("n1", {"type": "note"}, timeout=None))

    asyncio.run_coroutine_threadsafe(await_forever(), loop).result(5)
    yield host
    asyncio.run_coroutine_threadsafe(host.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _runtime_errors(host) -> list:
    """Errors outside node code: the runtime or the transport tripped over a message."""
    return [e for e in list(host.errors) if e["where"].startswith("deliver")]


def _post(host, data: bytes, signed: bool = False) -> int:
    """POST /msg on a kept-alive connection (reopened when the server closed it); ``signed`` as a peer would."""
    headers = {"Content-Type": "application/json"}
    if signed:
        headers[SIGNATURE_HEADER] = sign(host.key, data)
    for attempt in (1, 2):
        connection = getattr(host, "connection", None)
        if connection is None:
            connection = host.connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=5)
        try:
            connection.request("POST", "/msg", body=data, headers=headers)
            response = connection.getresponse()
            response.read()
        except (http.client.HTTPException, ConnectionError):
            connection.close()
            host.connection = None
            if attempt == 2:
                raise
            continue
        if response.will_close:
            connection.close()
            host.connection = None
        return response.status


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=payloads)
def test_any_request_gets_2xx_or_4xx(server, data):
    """Random bytes, random JSON and random envelopes never get a 5xx."""
    status = _post(server, data)
    assert 200 <= status < 500, (status, data[:200])


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(envelope=hostile)
def test_hostile_values_in_a_valid_envelope_never_trip_the_runtime(server, envelope):
    """An envelope for this node with odd ids, targets or payloads is refused (4xx) or handled by node code."""
    status = _post(server, json.dumps(envelope).encode(), signed=True)  # "n1" is a server: signed, as a peer's
    server.flush()
    assert status in (202, 400), status
    assert _runtime_errors(server) == []


def test_the_node_survives_the_fuzzing(server):
    """After fuzzing, the node is healthy, still delivers, and its errors are handler errors only."""
    _post(server, b'{"src": "x", "dest": "n1", "body": {"type": "note", "text": "still here"}}')
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/status")
    status = json.loads(connection.getresponse().read())
    connection.close()
    assert status["status"] == "ok" and status["counters"]["delivered"] >= 1
    assert _runtime_errors(server) == []
