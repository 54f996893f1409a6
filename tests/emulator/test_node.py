"""The node runtime: handlers, replies, rpc, owned tasks, storage, rng, clocks."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from tests.common.layout import slot_offsets
from tests.common.nodes import Echo, cluster


class Forwarder(em.Node):
    """Forwards a request to another node and answers with what it said."""

    async def handle_forward(self, msg):
        reply = await self.rpc(msg.body["to"], {"type": "echo", "echo": msg.body["echo"]}, timeout=5)
        return {"type": "forward_ok", "echo": reply["echo"], "at": asyncio.get_running_loop().time()}

    async def handle_echo(self, msg):
        return {"type": "echo_ok", "echo": msg.body["echo"], "at": asyncio.get_running_loop().time()}


class Slow(em.Node):
    async def handle_echo(self, msg):
        await asyncio.sleep(msg.body.get("delay", 0))
        return {"type": "echo_ok", "echo": msg.body["echo"], "at": asyncio.get_running_loop().time()}


def test_a_waiting_handler_does_not_hold_up_the_node_s_other_messages():
    """While one handler awaits an rpc, the same node answers another message at once."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("a", Forwarder)
    sim.add_node("b", Slow)
    client = sim.add_client("c")

    async def main():
        slow = asyncio.ensure_future(client.rpc("a", {"type": "forward", "to": "b", "echo": 1}))
        await asyncio.sleep(0)
        fast = await client.rpc("a", {"type": "echo", "echo": 2})
        return fast, await slow

    fast, slow = sim.run(main())
    assert fast["at"] == 0.001 and slow["echo"] == 1


def test_concurrent_sleeping_handlers_overlap():
    """Two requests that each sleep 1 s finish together, not one after the other."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("a", Slow)
    client = sim.add_client("c")

    async def main():
        return await asyncio.gather(
            *(client.rpc("a", {"type": "echo", "echo": i, "delay": 1.0}, timeout=5) for i in range(2))
        )

    replies = sim.run(main())
    assert [r["at"] for r in replies] == [1.001, 1.001]


class Deferred(em.Node):
    def __init__(self):
        self.waiting = []

    async def handle_wait(self, msg):
        self.waiting.append(msg)  # no return: answered later

    async def handle_release(self, msg):
        for waiter in self.waiting:
            self.reply(waiter, {"type": "wait_ok", "released_by": msg.src})
        return {"type": "release_ok", "count": len(self.waiting)}


def test_a_deferred_reply_answers_a_waiting_rpc():
    """reply(msg, body) from another handler answers the rpc that is still waiting."""
    sim, (c0, c1) = cluster(n=1, factory=Deferred, clients=2)

    async def main():
        waiter = asyncio.ensure_future(c0.rpc("n0", {"type": "wait"}, timeout=5))
        await asyncio.sleep(1)
        released = await c1.rpc("n0", {"type": "release"})
        return released["count"], (await waiter)["released_by"]

    assert sim.run(main()) == (1, "c1")


def test_handlers_may_use_asyncio_timeout_taskgroup_and_current_task():
    """Inside a handler, asyncio.timeout, TaskGroup and current_task behave as in any task."""

    class Fancy(em.Node):
        async def handle_go(self, msg):
            assert asyncio.current_task() is not None
            try:
                async with asyncio.timeout(0.5):
                    await asyncio.sleep(10)
            except TimeoutError:
                timed_out_at = asyncio.get_running_loop().time()
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(asyncio.sleep(0.1, result=i)) for i in range(3)]
            return {"type": "go_ok", "timed_out_at": timed_out_at, "results": [t.result() for t in tasks]}

    sim, (client,) = cluster(n=1, factory=Fancy, latency=0.001)

    async def main():
        return await client.rpc("n0", {"type": "go"}, timeout=5)

    reply = sim.run(main())
    assert reply["timed_out_at"] == 0.501 and reply["results"] == [0, 1, 2]
    assert sim.errors == []


def test_an_unknown_message_type_gets_a_definite_not_supported_error():
    """A type with no handler answers error 10, definite, and the node keeps working."""
    sim, (client,) = cluster()

    async def main():
        with pytest.raises(em.RPCError) as caught:
            await client.rpc("n0", {"type": "frobnicate"})
        return caught.value, await client.rpc("n0", {"type": "echo", "echo": 1})

    error, reply = sim.run(main())
    assert error.code == 10 and error.definite and "no handler for 'frobnicate'" in error.text
    assert reply["echo"] == 1


def test_a_raising_handler_answers_crash_and_is_recorded():
    """A handler exception becomes an indefinite error 13 reply and lands in sim.errors and the trace."""

    class Buggy(em.Node):
        async def handle_echo(self, msg):
            return {"type": "echo_ok", "echo": msg.body["missing"]}

    sim, (client,) = cluster(n=1, factory=Buggy, keep_trace=True)

    async def main():
        with pytest.raises(em.RPCError) as caught:
            await client.rpc("n0", {"type": "echo"})
        return caught.value

    error = sim.run(main())
    assert error.code == 13 and not error.definite and "KeyError" in error.text
    assert len(sim.errors) == 1
    recorded = sim.errors[0]
    assert recorded.node == "n0" and recorded.where == "echo" and isinstance(recorded.exception, KeyError)
    assert "handle_echo" in recorded.traceback
    assert any(r["kind"] == "error" and r["node"] == "n0" for r in sim.trace.records())


def test_a_handler_may_raise_rpcerror_to_answer_with_that_code():
    """Raising RPCError(22, ...) in a handler answers with code 22, definite."""

    class Picky(em.Node):
        async def handle_cas(self, msg):
            raise em.RPCError(22, "expected 1, found 2")

    sim, (client,) = cluster(n=1, factory=Picky)

    async def main():
        with pytest.raises(em.RPCError, match="expected 1, found 2") as caught:
            await client.rpc("n0", {"type": "cas"})
        return caught.value

    error = sim.run(main())
    assert error.code == 22 and error.definite and sim.errors == []


def test_a_handler_that_returns_a_non_dict_is_reported():
    """Returning something other than a dict or None is an error the caller hears about."""

    class Wrong(em.Node):
        async def handle_echo(self, msg):
            return "echo_ok"

    sim, (client,) = cluster(n=1, factory=Wrong)

    async def main():
        with pytest.raises(em.RPCError, match="return a dict or None"):
            await client.rpc("n0", {"type": "echo"})

    sim.run(main())
    assert isinstance(sim.errors[0].exception, em.MessageError)


def test_a_handler_that_returns_a_body_json_cannot_carry_is_reported_and_the_run_goes_on():
    """A returned reply holding a set, NaN or no type is the handler's bug: recorded, answered with error 13
    (indefinite), and the simulation keeps running, whether the handler returned at once or after waiting."""

    class Wrong(em.Node):
        async def handle_now(self, msg):
            return {"type": "now_ok", "v": {1, 2}}

        async def handle_later(self, msg):
            await asyncio.sleep(0.01)
            return {"type": "later_ok", "v": float("nan")}

        async def handle_untyped(self, msg):
            return {"v": 1}

    sim, (client,) = cluster(n=1, factory=Wrong)

    async def main():
        codes = []
        for kind in ("now", "later", "untyped"):
            with pytest.raises(em.RPCError, match="MessageError") as caught:
                await client.rpc("n0", {"type": kind})
            codes.append((caught.value.code, caught.value.definite))
        return codes

    assert sim.run(main()) == [(13, False)] * 3
    assert [(e.where, type(e.exception)) for e in sim.errors] == [
        ("now", em.MessageError),
        ("later", em.MessageError),
        ("untyped", em.MessageError),
    ]


@pytest.mark.parametrize("timeout", [-1, float("nan"), "1", [1]])
def test_an_rpc_timeout_that_is_not_seconds_is_refused_before_anything_is_sent(timeout):
    """rpc(timeout=...) takes seconds >= 0 or None; anything else is a ConfigError and nothing is sent."""
    sim, (client,) = cluster(n=1)

    async def main():
        with pytest.raises(em.ConfigError, match="rpc timeout must be a number of seconds >= 0 or None"):
            await client.rpc("n0", {"type": "echo", "echo": 1}, timeout=timeout)
        return (await client.rpc("n0", {"type": "echo", "echo": 2}, timeout=1.0))["echo"]

    assert sim.run(main()) == 2
    assert sim.network.stats["sent"] == 2  # the good rpc and its reply


class Relay(em.Node):
    """Asks n0 to echo, with the timeout the request names."""

    async def handle_relay(self, msg):
        reply = await self.rpc("n0", {"type": "echo", "echo": 1}, timeout=msg.body["timeout"])
        return {"type": "relay_ok", "echo": reply["echo"]}


@pytest.mark.parametrize("timeout", [True, False])
def test_an_rpc_timeout_of_a_bool_is_refused_saying_to_pass_seconds(timeout):
    """rpc(timeout=True) is not one second (a bool compares as 1): a ConfigError saying to pass seconds,
    from Node.rpc in a handler, Client.rpc and Client.invoke alike, before anything is sent or recorded."""
    sim, (client,) = cluster(n=1)
    sim.add_node("relay", Relay)
    message = f"rpc timeout must be a number of seconds >= 0 or None, got {timeout}; pass a number of seconds"

    async def main():
        for call in (client.rpc("n0", {"type": "echo"}, timeout=timeout), client.invoke("echo", timeout=timeout)):
            with pytest.raises(em.ConfigError, match=message):
                await call
        with pytest.raises(em.RPCError):  # the handler's error: 13, crash
            await client.rpc("relay", {"type": "relay", "timeout": timeout})

    sim.run(main())
    assert [(e.where, str(e.exception)) for e in sim.errors] == [
        ("relay", message + " such as 1.0 (a bool is not one)")
    ]
    assert len(sim.history) == 0 and sim.network.stats["sent"] == 2  # the relay request and its error reply


@pytest.mark.parametrize("timeout", [1e300, float("inf")])
def test_an_rpc_with_a_timeout_past_the_clock_s_range_returns_the_reply(timeout):
    """rpc(timeout=1e300) to a live peer answers as with any timeout (it was an OverflowError); like inf,
    its timer is in no heap, so no timer is left behind once the reply is in."""
    sim, (client,) = cluster(n=1)

    async def main():
        reply = await client.rpc("n0", {"type": "echo", "echo": 1}, timeout=timeout)
        return reply["echo"], asyncio.get_running_loop().time()

    echo, now = sim.run(main())
    assert echo == 1 and 0 < now < 1 and sim.loop.pending_timers() == 0


def test_rpc_to_a_silent_handler_times_out_as_indefinite():
    """A handler that returns None sends nothing: the rpc raises Timeout (indefinite)."""

    class Silent(em.Node):
        async def handle_echo(self, msg):
            return None

    sim, (client,) = cluster(n=1, factory=Silent)

    async def main():
        with pytest.raises(em.Timeout) as caught:
            await client.rpc("n0", {"type": "echo"}, timeout=0.25)
        return caught.value, asyncio.get_running_loop().time()

    error, now = sim.run(main())
    assert not error.definite and now == 0.25


def test_a_late_reply_after_a_timeout_is_ignored():
    """A reply that arrives after its rpc gave up is dropped quietly, not misrouted."""
    sim, (client,) = cluster(n=1, factory=Slow, latency=0.001)

    async def main():
        with pytest.raises(em.Timeout):
            await client.rpc("n0", {"type": "echo", "echo": 1, "delay": 1.0}, timeout=0.5)
        return await client.rpc("n0", {"type": "echo", "echo": 2, "delay": 0.0}, timeout=5)

    assert sim.run(main())["echo"] == 2
    sim.run()
    assert sim.errors == []


def test_spawned_tasks_belong_to_the_node_and_die_with_it():
    """A task from spawn runs in virtual time and is cancelled when its node crashes."""

    class Ticker(em.Node):
        async def on_start(self):
            self.ticks = 0
            self.spawn(self.tick())

        async def tick(self):
            while True:
                await asyncio.sleep(1)
                self.ticks += 1
                self.storage["ticks"] = self.ticks

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Ticker)
    sim.run(until=10.5)
    assert sim.node("n0").ticks == 10
    sim.crash("n0")
    sim.run(until=20.5)
    assert sim.node("n0") is None
    assert sim.run() is None  # nothing left: the ticker is gone


def test_storage_survives_a_crash_and_memory_does_not():
    """After crash and restart, storage keeps its data, attributes start over, on_start runs again."""
    sim, (client,) = cluster(n=1)

    async def main():
        first = await client.rpc("n0", {"type": "echo", "echo": "a"})
        sim.node("n0").seen.append("memory only")
        sim.crash("n0")
        sim.restart("n0")
        second = await client.rpc("n0", {"type": "echo", "echo": "b"})
        return first["boots"], second["boots"], sim.node("n0").seen

    assert sim.run(main()) == (1, 2, ["b"])


def test_a_crashed_incarnation_cannot_write_storage_or_send():
    """Code of a crashed incarnation that still runs (a finally block) writes and sends nothing."""

    class Stubborn(em.Node):
        async def on_start(self):
            self.spawn(self.work())

        async def work(self):
            try:
                await asyncio.sleep(100)
            finally:
                self.storage["after_crash"] = True
                self.send("n1", {"type": "echo", "echo": "ghost"})

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Stubborn)
    sim.add_node("n1", Echo)

    async def main():
        await asyncio.sleep(1)
        sim.crash("n0")
        await asyncio.sleep(1)

    sim.run(main())
    sim.restart("n0")
    assert "after_crash" not in sim.node("n0").storage
    assert sim.network.stats["sent"] == 0


def test_a_crashed_incarnation_cannot_change_a_stored_value_in_place():
    """A finally block of a crashed incarnation that appends to a stored list, or changes a stored dict,
    changes nothing the next incarnation sees; what two keys shared they still share, and a value
    deepcopy refuses is kept."""
    import threading

    lock = threading.Lock()

    class Stubborn(em.Node):
        async def on_start(self):
            if "log" not in self.storage:
                shared = {"n": 1}
                self.storage["log"], self.storage["a"], self.storage["b"] = ["kept"], shared, shared
                self.storage["lock"] = lock
            self.spawn(self.work())

        async def work(self):
            log, a = self.storage["log"], self.storage["a"]
            try:
                await asyncio.sleep(100)
            finally:
                log.append("ghost")
                a["n"] = 2

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Stubborn)
    sim.run(until=1)
    sim.crash("n0")
    sim.run(until=2)
    storage = sim.restart("n0").storage
    assert storage["log"] == ["kept"] and storage["a"] == {"n": 1}
    assert storage["a"] is storage["b"] and storage["lock"] is lock


def test_each_node_has_its_own_rng_stream_unaffected_by_other_nodes():
    """A node's draws depend on the seed and its name only, not on which other nodes exist."""

    def draws(extra_nodes):
        sim = em.Simulation(seed=42)
        for name in extra_nodes:
            sim.add_node(name, Echo)
        node = sim.add_node("target", Echo)
        return [node.rng.random() for _ in range(5)]

    assert draws([]) == draws(["a", "b", "c"])
    other = em.Simulation(seed=43).add_node("target", Echo)
    assert draws([]) != [other.rng.random() for _ in range(5)]


def test_node_clock_follows_skew_offset_and_drift():
    """skew(name, offset, drift) moves only that node's now(); asyncio time stays true."""
    sim, _ = cluster(n=2)

    async def main():
        await asyncio.sleep(10)
        sim.skew("n0", offset=5.0, drift=0.1)
        await asyncio.sleep(10)
        return sim.node("n0").now(), sim.node("n1").now(), asyncio.get_running_loop().time()

    skewed, normal, true = sim.run(main())
    assert skewed == pytest.approx(20.0 + 5.0 + 1.0) and normal == 20.0 and true == 20.0


def test_peers_are_the_other_servers_sorted_without_clients():
    """self.peers lists every other server node, sorted, and never a client."""
    sim = em.Simulation(seed=1)
    for name in ("n2", "n0", "n1"):
        sim.add_node(name, Echo)
    sim.add_client("c0")
    assert sim.node("n1").peers == ["n0", "n2"]
    sim.add_node("n3", Echo)
    assert sim.node("n1").peers == ["n0", "n2", "n3"]


def test_config_reaches_the_constructor_and_unknown_config_is_refused():
    """add_node kwargs go to __init__; a Node that takes none refuses them clearly."""

    class Configured(em.Node):
        def __init__(self, replicas=1):
            self.replicas = replicas
            self.me = self.name  # runtime attributes exist before __init__

    sim = em.Simulation(seed=1)
    node = sim.add_node("n0", Configured, replicas=3)
    assert (node.replicas, node.me) == (3, "n0")
    with pytest.raises(em.ConfigError, match="takes none"):
        sim.add_node("n1", Echo, replicas=3)


def test_a_node_whose_constructor_raises_is_not_added():
    """add_node that raises leaves nothing: the name is free, no peer lists it, and what it spawned never runs."""
    ran = []

    class Broken(em.Node):
        def __init__(self):
            self.spawn(self.work())
            raise ValueError("bad config")

        async def work(self):
            ran.append(self.name)

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Echo)
    with pytest.raises(em.ConfigError, match="takes none"):
        sim.add_node("n1", Echo, replicas=3)
    with pytest.raises(ValueError, match="bad config"):
        sim.add_node("n2", Broken)
    sim.run(until=1.0)
    assert sim.nodes == ["n0"] and sim.servers == ["n0"] and sim.node("n0").peers == []
    assert ran == [] and sim.errors == []
    sim.add_node("n1", Echo)
    assert sim.node("n0").peers == ["n1"]


def test_a_failing_spawned_task_is_recorded():
    """An exception escaping a spawned task is kept in sim.errors with the task's name."""

    class Failing(em.Node):
        async def on_start(self):
            self.spawn(self.explode(), name="exploder")

        async def explode(self):
            await asyncio.sleep(1)
            raise RuntimeError("kaboom")

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Failing)
    sim.run()
    assert [(e.node, e.where, str(e.exception)) for e in sim.errors] == [("n0", "n0:exploder", "kaboom")]


def test_node_events_land_in_sim_events_and_the_trace():
    """self.event(what, value) is recorded with time and node, and is part of the digest."""

    class Noisy(em.Node):
        async def handle_echo(self, msg):
            self.event("breaker-open", {"failures": 5})
            return {"type": "echo_ok"}

    sim, (client,) = cluster(n=1, factory=Noisy, keep_trace=True)
    sim.run(client.rpc("n0", {"type": "echo"}))
    assert sim.events == [{"time": 0.001, "node": "n0", "what": "breaker-open", "value": {"failures": 5}}]
    assert any(r["kind"] == "event" and r["what"] == "breaker-open" for r in sim.trace.records())


def test_a_body_with_a_non_integer_in_reply_to_is_handled_not_crashed_on():
    """A message whose in_reply_to is not an id of ours goes to its handler, even with rpcs pending."""

    class Odd(em.Node):
        async def handle_echo(self, msg):
            return {"type": "echo_ok", "echo": msg.body["echo"]}

    sim, (client,) = cluster(n=1, factory=Odd)

    async def main():
        pending = asyncio.ensure_future(client.rpc("n0", {"type": "echo", "echo": 1}, timeout=1))
        sim.node("n0").send("c0", {"type": "echo", "echo": 2, "in_reply_to": [1]})
        return (await pending)["echo"]

    assert sim.run(main()) == 1


class _Beater(em.Node):
    """Records the time of each beat, by Node.every or by a task looping on asyncio.sleep."""

    def __init__(self, log, use_every):
        self.beats, self.use_every = log, use_every

    async def on_start(self):
        if self.use_every:
            self.timer = self.every(0.1, self.beat)
        else:
            self.spawn(self.loop())

    async def loop(self):
        while True:
            await asyncio.sleep(0.1)
            self.beat()

    def beat(self):
        self.beats.append(round(asyncio.get_running_loop().time(), 9))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["pause", "resume", "crash", "restart"]), st.integers(min_value=1, max_value=40)),
        max_size=8,
    )
)
def test_every_beats_when_a_sleep_loop_wakes_under_pauses_and_crashes(faults):
    """Property: Node.every ticks at the times a task looping on asyncio.sleep would, whatever pauses,
    resumes, crashes and restarts come (a pause holds a tick, a crash stops the timer)."""

    def beats(use_every):
        log = []
        sim = em.Simulation(seed=1)
        sim.add_node("n0", _Beater, log=log, use_every=use_every)
        at = 0.0
        for fault, step in faults:
            at += step * 0.013
            sim.run(until=at)
            if fault in ("pause", "resume", "crash"):
                getattr(sim, fault)("n0")
            elif not sim.alive("n0"):
                sim.restart("n0")
        sim.run(until=at + 1.0)
        return log

    assert beats(True) == beats(False)


def test_every_that_raises_is_a_node_error_and_stops():
    """A beat that raises is recorded as the node's error, once: the timer stops."""

    class Bad(em.Node):
        async def on_start(self):
            self.every(0.5, self.beat)

        def beat(self):
            raise RuntimeError("no heart")

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Bad)
    sim.run(until=3.0)
    assert [(e.node, e.where, str(e.exception)) for e in sim.errors] == [("n0", "every beat", "no heart")]


def test_every_refuses_a_coroutine_function():
    """every() takes a plain function; an async one is a ConfigError saying to spawn a task instead."""

    class Wrong(em.Node):
        async def on_start(self):
            self.every(0.5, self.beat)

        async def beat(self):
            pass

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Wrong)
    sim.run(until=1.0)
    assert "spawn a task" in str(sim.errors[0].exception)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_in_a_handler_stops_the_run_and_leaves_no_current_task(interrupt):
    """KeyboardInterrupt and SystemExit are not a handler's outcome: they leave ``sim.run`` (no crash
    reply, no recorded error), the handler is not left as a suspended task, and the loop has no
    current task afterwards (the delivery's task switch is undone)."""

    class Interrupted(em.Node):
        async def handle_echo(self, msg):
            raise interrupt

    sim, (client,) = cluster(n=1, factory=Interrupted)
    client.send("n0", {"type": "echo", "echo": 1})
    with pytest.raises(interrupt):
        sim.run(until=1.0)
    assert sim.errors == [] and asyncio.current_task(sim.loop) is None
    assert sim.node("n0")._endpoint.handler_tasks == {}


def test_a_handler_that_yields_a_bare_value_is_answered_with_its_error():
    """A handler that awaits something that is not an asyncio awaitable fails with a clear error,
    reported and answered as a crash, as any handler error is."""

    class Odd:
        def __await__(self):
            yield 42

    class Yielder(em.Node):
        async def handle_echo(self, msg):
            await Odd()

    sim, (client,) = cluster(n=1, factory=Yielder)

    async def main():
        with pytest.raises(em.RPCError) as caught:
            await client.rpc("n0", {"type": "echo"})
        return caught.value

    assert "await asyncio awaitables only" in sim.run(main()).text
    assert len(sim.errors) == 1 and "yielded 42" in str(sim.errors[0].exception)


def test_a_dispatch_loads_one_line_of_its_endpoint_and_a_send_two():
    """Endpoint's layout claim, on live endpoints: what the compiled dispatch reads of one (its header,
    the handlers and the done callback) lies in one 64-byte line, and the name and the last route a send
    reads in one other."""
    from emulator.node import Endpoint

    sim = em.Simulation(seed=1)
    for i in range(8):
        sim.add_node(f"n{i}", Echo)
    sim.run(until=0.01)
    names = [name for name in Endpoint.__slots__ if not name.startswith("__")]
    offsets = slot_offsets(Endpoint.__new__(Endpoint), names)
    assert sorted(offsets) == sorted(names)
    for i in range(8):
        endpoint = sim.node(f"n{i}")._endpoint
        line = {name: (id(endpoint) + offset) // 64 for name, offset in offsets.items()}
        assert line["_handler_done_cb"] == line["_handlers"] == id(endpoint) // 64
        assert line["name"] == line["route_dest"] == line["route_link"] != id(endpoint) // 64


def test_reading_a_nodes_name_runs_no_python_frame():
    """Node.name is read by a compiled getter (node code reads it per message), and it is read-only."""
    import sys

    sim = em.Simulation(seed=1)
    node = sim.add_node("n1", em.Node)
    frames = []
    sys.setprofile(lambda frame, event, arg: frames.append(frame.f_code.co_name) if event == "call" else None)
    try:
        name = node.name
    finally:
        sys.setprofile(None)
    assert name == "n1" and frames == []
    with pytest.raises(AttributeError):
        node.name = "n2"


def test_a_handler_that_crashes_its_own_node_stops_there():
    """Found by a review: a handler that crashed its own node in its first step was not yet among the node's
    tasks, so the crash did not cancel it and it went on running (and writing) after the crash."""
    ran = []

    class SelfCrash(em.Node):
        async def handle_go(self, msg):
            sim.crash(self.name)
            for i in range(3):
                await asyncio.sleep(1.0)
                ran.append(i)

    sim = em.Simulation(seed=1)
    sim.add_node("n0", SelfCrash)
    client = sim.add_client("c0")

    async def main():
        client.send("n0", {"type": "go"})
        await asyncio.sleep(5.0)

    sim.run(main())
    assert ran == [] and not sim.alive("n0")


@pytest.mark.parametrize("code, definite, recorded", [(11, False, "info"), (99, True, "fail"), (11, None, "fail")])
def test_a_handlers_definite_override_reaches_the_caller_and_the_history(code, definite, recorded):
    """Found by a review: RPCError(11, definite=False) raised in a handler reached its caller as definite, and
    the history said `fail` (did not happen) of an operation that may have."""

    class Refuser(em.Node):
        async def handle_write(self, msg):
            raise em.RPCError(code, "it may or may not have", definite=definite)

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Refuser)
    client = sim.add_client("c0")

    async def main():
        with pytest.raises(em.RPCError) as raised:
            await client.invoke("write", key="k", value=1, dest="n0")
        return raised.value.definite

    expected = definite if definite is not None else True
    assert sim.run(main()) is expected
    assert [op["type"] for op in sim.history][-1] == recorded


def test_a_body_nested_past_the_recursion_limit_is_a_message_error_and_does_not_stop_the_run():
    """Found by a review: a send 5,000 levels deep raised a bare RecursionError, and a handler's reply 600 deep
    stopped sim.run; now a MessageError saying to flatten it, and the reply is the handler's bug (13)."""

    class Tree(em.Node):
        async def handle_tree(self, msg):
            value: list = []
            for _ in range(msg.body["depth"]):
                value = [value]
            return {"type": "tree_ok", "tree": value}

    deep: list = []
    for _ in range(5000):
        deep = [deep]
    sim = em.Simulation(seed=1)
    sim.add_node("n0", Tree)
    client = sim.add_client("c0")
    with pytest.raises(em.MessageError, match="v nests lists or objects too deeply to copy"):
        client.send("n0", {"type": "tree", "v": deep})

    async def main():
        assert (await client.rpc("n0", {"type": "tree", "depth": 50}))["type"] == "tree_ok"
        with pytest.raises(em.RPCError, match="too deeply"):
            await client.rpc("n0", {"type": "tree", "depth": 5000})

    sim.run(main())
    assert [e.where for e in sim.errors] == ["tree"]


def test_a_handler_written_with_def_instead_of_async_def_says_so():
    """Found by a review: a plain `def handle_echo` was "'dict' object has no attribute 'send'", which does not
    say what to do; the caller and sim.errors now read "define it with async def"."""

    class Forgot(em.Node):
        def handle_echo(self, msg):  # no async
            return {"type": "echo_ok"}

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Forgot)
    client = sim.add_client("c0")

    async def main():
        with pytest.raises(
            em.RPCError, match="handler 'echo' returned dict, not a coroutine: define it with async def"
        ):
            await client.rpc("n0", {"type": "echo"})

    sim.run(main())
    assert "define it with async def" in str(sim.errors[0])
