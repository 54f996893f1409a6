"""The lin-kv workload over HTTP: requests from a client machine, outcomes recorded as Maelstrom decides them."""

import asyncio

import pytest
from aiohttp import web

import emulator as em
from faults import Workload
from faults.httpkv import HttpKVClient


async def scripted(port=8080):
    """Answers each key with the status named in it: /kv/404, /kv/503, ...; /kv/slow never answers."""

    async def handle(request):
        key = request.match_info["key"]
        if key == "slow":
            await asyncio.sleep(100)
        if len(key) == 3 and key.isdigit() and key != "200":
            return web.Response(status=int(key), text="scripted")
        return web.json_response({"value": 7} if request.method == "GET" else {})

    app = web.Application()
    app.router.add_route("*", "/kv/{key}", handle)
    app.router.add_route("*", "/kv/{key}/cas", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    await asyncio.Event().wait()


def _outcomes(calls):
    sim = em.Simulation(seed=1)
    sim.add_host("kv", scripted)
    client = HttpKVClient(sim, "c0")

    async def workload():
        out = []
        for f, key, value in calls:
            try:
                reply = await client.invoke(f, key=key, value=value, dest="kv", timeout=1.0)
                out.append(("ok", reply.get("value")))
            except em.RPCError as exc:
                out.append((exc.code, exc.definite))
            except em.Timeout:
                out.append(("timeout", False))
        return out

    outcomes = sim.run(workload())
    sim.close()
    return outcomes, sim


def test_statuses_map_to_definite_and_indefinite_outcomes():
    """404, 412 and 503 are definite; 500 and 504 are not; a timeout is not; 200 is ok with the value read."""
    outcomes, sim = _outcomes(
        [
            ("read", "200", None),
            ("write", "404", 1),
            ("cas", "412", [1, 2]),
            ("write", "503", 1),
            ("write", "500", 1),
            ("write", "504", 1),
            ("read", "slow", None),
            ("write", "400", 1),
        ]
    )
    assert outcomes == [
        ("ok", 7),
        (20, True),
        (22, True),
        (11, True),
        (13, False),
        (0, False),
        ("timeout", False),
        (12, True),
    ]
    types = [op["type"] for op in sim.history if op["type"] != "invoke"]
    assert types == ["ok", "fail", "fail", "fail", "info", "info", "info", "fail"]


def test_an_indefinite_outcome_retires_the_process():
    """After an info the client continues as a fresh process, as in Jepsen's model."""
    _, sim = _outcomes([("write", "500", 1), ("write", "200", 2), ("write", "404", 3), ("write", "200", 4)])
    processes = [op["process"] for op in sim.history if op["type"] == "invoke"]
    assert processes[0] != processes[1] == processes[2] == processes[3]


def test_a_refused_connection_is_definite_for_a_get_and_post_but_not_a_put():
    """Nothing listens: the request never left, unless aiohttp's retry of a PUT follows a first attempt."""
    sim = em.Simulation(seed=1)
    sim.add_host("kv")  # no program: nothing listens on 8080
    client = HttpKVClient(sim, "c0")

    async def workload():
        out = []
        for f, value in (("read", None), ("cas", [1, 2]), ("write", 1)):
            try:
                await client.invoke(f, key=0, value=value, dest="kv")
            except em.RPCError as exc:
                out.append((f, exc.definite))
        return out

    assert sim.run(workload()) == [("read", True), ("cas", True), ("write", False)]
    sim.close()


def test_the_workload_drives_http_clients_unchanged():
    """faults.Workload runs its process model on HttpKVClient as on emulator.Client."""
    sim = em.Simulation(seed=3)
    sim.add_host("kv", scripted)
    workload = Workload(clients=2, rate=20, keys=2, duration=2.0, mix={"read": 1.0})
    clients = [HttpKVClient(sim, f"c{i}") for i in range(2)]
    sim.run(workload.run(sim, clients))
    reads = [op for op in sim.history if op["type"] == "ok"]
    assert len(reads) > 20 and {op["value"] for op in reads} == {7}
    with pytest.raises(em.ConfigError, match="read, write and cas"):
        sim.run(clients[0].invoke("append", key=1, dest="kv"))
    sim.close()


def test_closing_the_simulation_closes_the_clients_sessions():
    """No 'Unclosed client session' is left for the garbage collector to report after sim.close()."""
    import gc

    _, sim = _outcomes([("read", "200", None), ("write", "200", 1)])
    gc.collect()
    assert [str(e) for e in sim.errors] == []


def test_a_timeout_of_a_bool_is_refused_before_anything_is_recorded():
    """invoke(timeout=True) is not one second: a ConfigError saying to pass seconds, and no op in the history."""
    sim = em.Simulation(seed=1)
    sim.add_host("kv", scripted)
    client = HttpKVClient(sim, "c0")
    with pytest.raises(em.ConfigError, match="timeout must be a number of seconds >= 0 or None, got True; pass a"):
        sim.run(client.invoke("read", key="200", dest="kv", timeout=True))
    assert len(sim.history) == 0
    sim.close()
