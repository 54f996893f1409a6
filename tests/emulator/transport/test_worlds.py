"""The same protocol tests in the simulation and over aiohttp: node code cannot tell them apart."""

import asyncio
import itertools

import pytest

import emulator as em
from emulator.check import linearizable
from nodes.kv import SingleKV
from tests.common.transport_nodes import Relay
from tests.common.transport_worlds import WORLDS, outcome

NAMES = ["n0", "n1", "n2"]
RELAY_TIMEOUT = 0.3


def _world(kind, factory, **kwargs):
    return WORLDS[kind]({name: factory for name in NAMES}, **kwargs)


async def _kv_session(world):
    """write, read, cas through the leader (n0) and through followers that forward to it."""
    c = world.clients[0]
    await c.invoke("write", key="x", value=1, dest="n1")
    await c.invoke("read", key="x", dest="n2")
    with pytest.raises(em.RPCError, match="expected 5"):
        await c.invoke("cas", key="x", value=[5, 6], dest="n2")
    await c.invoke("cas", key="x", value=[1, 2], dest="n0")
    await c.invoke("read", key="x", dest="n1")
    with pytest.raises(em.RPCError) as missing:
        await c.invoke("read", key="nope", dest="n2")
    assert missing.value.code == 20 and missing.value.definite
    return [
        (op["type"], op["f"], op["key"], op["value"], op.get("error", [None])[0]) for op in world.history.client_ops()
    ]


@pytest.mark.parametrize("kind", ["sim", "http"])
def test_lin_kv_gives_the_same_answers_in_both_worlds(kind):
    """SingleKV answers write/read/cas/missing-key the same way; the history is linearizable."""
    world = _world(kind, SingleKV)
    ops = world.run(_kv_session)
    completions = [op for op in ops if op[0] != "invoke"]
    assert completions == [
        ("ok", "write", "x", 1, None),
        ("ok", "read", "x", 1, None),
        ("fail", "cas", "x", [5, 6], 22),
        ("ok", "cas", "x", [1, 2], None),
        ("ok", "read", "x", 2, None),
        ("fail", "read", "nope", None, 20),
    ]
    assert linearizable(list(world.history), model="cas_register").valid is True


def test_both_worlds_record_the_same_history_ops():
    """Apart from times, the two worlds record the same operations in the same order."""
    sim_ops = _world("sim", SingleKV).run(_kv_session)
    http_ops = _world("http", SingleKV).run(_kv_session)
    assert sim_ops == http_ops and len(sim_ops) == 12


async def _relay_matrix(world):
    c = world.clients[0]
    pairs = list(itertools.permutations(NAMES, 2))
    results = await asyncio.gather(
        *(
            outcome(c.rpc(a, {"type": "relay", "to": b, "echo": 1, "timeout": RELAY_TIMEOUT}, timeout=5.0))
            for a, b in pairs
        )
    )
    return dict(zip(pairs, results))


async def _partition_session(world):
    before = await _relay_matrix(world)
    await world.partition(["n0"], ["n1", "n2"])
    during = await _relay_matrix(world)
    await world.heal()
    after = await _relay_matrix(world)
    return before, during, after


@pytest.mark.parametrize("kind", ["sim", "http"])
def test_a_partition_cuts_rpcs_across_it_and_not_within(kind):
    """During [n0] | [n1, n2], relays across time out (error 0) and relays within succeed; heal restores all."""
    before, during, after = _world(kind, Relay).run(_partition_session)
    across = {("n0", "n1"), ("n0", "n2"), ("n1", "n0"), ("n2", "n0")}
    assert set(before.values()) == {"ok"} and set(after.values()) == {"ok"}
    assert during == {pair: "error 0" if pair in across else "ok" for pair in during}


def test_a_partition_has_the_same_effect_on_traffic_in_both_worlds():
    """The matrix of relay outcomes before, during and after a partition is identical in both worlds."""
    sim = _world("sim", Relay).run(_partition_session)
    http = _world("http", Relay).run(_partition_session)
    assert sim == http and "error 0" in sim[1].values()


async def _oneway_session(world):
    c = world.clients[0]
    await world.partition_oneway(["n0"], ["n1"])
    for src, dst in (("n0", "n1"), ("n1", "n0")):
        await c.rpc(src, {"type": "tell", "to": dst, "text": f"{src}->{dst}"})
    relays = [
        await outcome(c.rpc(a, {"type": "relay", "to": b, "timeout": RELAY_TIMEOUT}, timeout=5.0))
        for a, b in (("n0", "n1"), ("n1", "n0"))
    ]
    await asyncio.sleep(0.1)
    notes = {name: (await c.rpc(name, {"type": "notes"}))["notes"] for name in ("n0", "n1")}
    return relays, notes


@pytest.mark.parametrize("kind", ["sim", "http"])
def test_a_oneway_partition_drops_one_direction_only(kind):
    """n0 -/-> n1: n1's note reaches n0, n0's does not; an rpc either way times out (its reply or request is cut)."""
    relays, notes = _world(kind, Relay).run(_oneway_session)
    assert relays == ["error 0", "error 0"]
    assert notes == {"n0": [["n1", "n1->n0"]], "n1": []}


async def _crash_session(world):
    c = world.clients[0]
    first = (await c.rpc("n1", {"type": "notes"}))["boots"]
    await c.rpc("n0", {"type": "tell", "to": "n1", "text": "before"})
    await asyncio.sleep(0.05)
    await world.crash("n1")
    while_down = await outcome(c.rpc("n1", {"type": "echo"}, timeout=RELAY_TIMEOUT))
    await world.restart("n1")
    await asyncio.sleep(0.05)
    after = await c.rpc("n1", {"type": "notes"})
    return first, while_down, after["boots"], after["notes"]


@pytest.mark.parametrize("kind", ["sim", "http"])
def test_crash_loses_memory_and_keeps_storage(kind):
    """A crashed node times out; after restart its storage (boots) survived and its memory (notes) did not."""
    assert _world(kind, Relay).run(_crash_session) == (1, "timeout", 2, [])


async def _loss_session(world):
    c = world.clients[0]
    await world.set_link_oneway("n0", "n1", loss=1.0)
    cut = await outcome(c.rpc("n0", {"type": "relay", "to": "n1", "timeout": RELAY_TIMEOUT}, timeout=5.0))
    other = await outcome(c.rpc("n1", {"type": "relay", "to": "n2", "timeout": RELAY_TIMEOUT}, timeout=5.0))
    return cut, other


@pytest.mark.parametrize("kind", ["sim", "http"])
def test_a_link_with_total_loss_drops_its_messages(kind):
    """loss=1.0 on n0->n1 makes n0's rpcs to n1 time out; other links are untouched."""
    assert _world(kind, Relay).run(_loss_session) == ("error 0", "ok")


@pytest.mark.parametrize("kind", ["sim", "http"])
def test_a_handler_exception_answers_error_13(kind):
    """A handler that raises answers crash (13, indefinite) and the node keeps serving."""

    async def body(world):
        c = world.clients[0]
        return [await outcome(c.rpc("n0", {"type": "boom"})), await outcome(c.rpc("n0", {"type": "echo"}))]

    assert _world(kind, Relay).run(body) == ["error 13", "ok"]


@pytest.mark.parametrize("kind", ["sim", "http"])
def test_an_unknown_message_type_answers_error_10(kind):
    """A type with no handler answers not-supported (10), never crashing the node."""

    async def body(world):
        return await outcome(world.clients[0].rpc("n0", {"type": "frobnicate"}))

    assert _world(kind, Relay).run(body) == "error 10"
