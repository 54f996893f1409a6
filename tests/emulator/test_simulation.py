"""The Simulation: building clusters, node faults, running, recording."""

import asyncio

import pytest

import emulator as em
from tests.common.imports import SOCKET_LAYER, modules_of
from tests.common.nodes import Echo, Recorder, cluster


class Heartbeat(em.Node):
    """Sends a note to n1 every second and records when its timer fired."""

    async def on_start(self):
        self.fired = []
        self.spawn(self.beat())

    async def beat(self):
        while True:
            await asyncio.sleep(1)
            self.fired.append(asyncio.get_running_loop().time())
            self.send("n1", {"type": "note", "at": self.fired[-1]})


def test_messages_to_a_crashed_node_are_lost_and_the_sender_times_out():
    """A crashed node answers nothing; after restart it answers again."""
    sim, (client,) = cluster(n=2)

    async def main():
        sim.crash("n1")
        with pytest.raises(em.Timeout):
            await client.rpc("n1", {"type": "echo", "echo": 1}, timeout=0.5)
        sim.restart("n1")
        return await client.rpc("n1", {"type": "echo", "echo": 2})

    assert sim.run(main())["echo"] == 2
    assert sim.network.stats["dropped"] == 1


def test_messages_in_flight_to_a_node_that_crashes_are_lost():
    """A request already on the wire when its receiver crashes is dropped on arrival."""
    sim, (client,) = cluster(n=1, latency=0.010)

    async def main():
        pending = asyncio.ensure_future(client.rpc("n0", {"type": "echo", "echo": 1}, timeout=1))
        await asyncio.sleep(0.005)
        sim.crash("n0")
        sim.restart("n0")
        with pytest.raises(em.Timeout):
            await pending

    sim.run(main())
    assert sim.node("n0").seen == []


def test_pause_holds_timers_and_inbox_until_resume():
    """A paused node's timers and messages wait; on resume they run at once, in order."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("n0", Heartbeat)
    sim.add_node("n1", Recorder)

    async def main():
        await asyncio.sleep(2.5)
        sim.pause("n0")
        sim.pause("n1")
        await asyncio.sleep(3)
        assert sim.node("n0").fired == [1.0, 2.0]
        assert [t for t, _, _ in sim.node("n1").got] == [1.001, 2.001]
        sim.resume("n1")
        await asyncio.sleep(1)
        sim.resume("n0")
        await asyncio.sleep(1.1)

    sim.run(main())
    assert sim.node("n0").fired == [1.0, 2.0, 6.5, 7.5]  # the timer due at 3.0 fires on resume
    got = [(t, body["at"]) for t, _, body in sim.node("n1").got]
    assert got == [(1.001, 1.0), (2.001, 2.0), (6.501, 6.5), (7.501, 7.5)]


def test_messages_to_a_paused_node_are_delivered_on_resume_in_order():
    """Messages that reach a paused node wait in its inbox and arrive on resume, in order."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("n1", Recorder)
    client = sim.add_client("c0")

    async def main():
        sim.pause("n1")
        for i in range(3):
            client.send("n1", {"type": "note", "i": i})
            await asyncio.sleep(0.5)
        sim.resume("n1")
        await asyncio.sleep(0)

    sim.run(main())
    assert [(t, body["i"]) for t, _, body in sim.node("n1").got] == [(1.5, 0), (1.5, 1), (1.5, 2)]


@pytest.mark.parametrize("fault", ["partition", "hold"])
def test_a_message_in_a_paused_nodes_inbox_stays_there_whatever_happens_to_its_link_since(fault):
    """Found by a review: a message that arrived (link open) in a paused node's inbox was dropped at the resume
    if a partition had begun since, or went back onto a link held since and travelled again on its release."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("n1", Recorder)
    client = sim.add_client("c0")

    async def main():
        sim.pause("n1")
        client.send("n1", {"type": "note", "i": 0})  # arrives at 0.001, into the paused node's inbox
        await asyncio.sleep(0.005)
        if fault == "partition":
            sim.network.partition(["c0"], ["n1"])
        else:
            sim.network.hold("c0", "n1")
        sim.resume("n1")
        client.send("n1", {"type": "note", "i": 1})  # sent now: cut (dropped) or held (waits for the release)
        await asyncio.sleep(0.005)

    sim.run(main())
    assert [(round(t, 6), body["i"]) for t, _, body in sim.node("n1").got] == [(0.005, 0)]
    assert sim.network.dropped == (1 if fault == "partition" else 0)


def test_a_node_paused_before_it_started_runs_on_start_at_its_resume():
    """Found by a review: paused right after add_node (or crash, restart, pause in one instant), a node ran its
    on_start and sent while paused. A pause holds the start too."""
    started = []

    class Starter(em.Node):
        async def on_start(self):
            started.append((self.now(), sim.is_paused(self.name)))
            self.send("c0", {"type": "note"})

    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_client("c0")
    sim.add_node("n0", Starter)
    sim.pause("n0")

    async def main():
        await asyncio.sleep(1.0)
        sim.crash("n0")  # never started: its start is dropped with it
        sim.restart("n0")
        sim.pause("n0")
        await asyncio.sleep(1.0)
        sim.resume("n0")
        await asyncio.sleep(0.1)

    sim.run(main())
    assert started == [(2.0, False)]


def test_on_resume_the_held_messages_are_handled_before_the_tasks_their_timers_wake():
    """Resume, as documented: timers first in the order due, then the inbox in the order it arrived, and a task
    that a timer woke takes its next step after the messages' handlers start, as after a SIGCONT, whatever fell
    due first."""

    class Node(em.Node):
        def __init__(self, seen):
            self.seen = seen

        async def on_start(self):
            self.spawn(self.nap())
            self.every(1.5, lambda: self.seen.append(("tick", asyncio.get_running_loop().time())))

        async def nap(self):
            await asyncio.sleep(1.0)
            self.seen.append(("nap", asyncio.get_running_loop().time()))

        async def handle_note(self, msg):
            self.seen.append((f"note {msg.body['i']}", asyncio.get_running_loop().time()))

    seen: list = []
    sim = em.Simulation(seed=1, latency=em.Constant(0.5))
    sim.add_node("n0", Node, seen=[])
    sim.add_node("n1", Node, seen=seen)

    async def main():
        await asyncio.sleep(0)
        sim.pause("n1")
        sim.node("n0").send("n1", {"type": "note", "i": 0})  # due at 0.5, before the nap's timer (1.0)
        await asyncio.sleep(1.0)
        sim.node("n0").send("n1", {"type": "note", "i": 1})  # due at 1.5, with the tick
        await asyncio.sleep(2.0)
        sim.resume("n1")  # at 3.0
        await asyncio.sleep(0.1)

    sim.run(main())
    assert seen == [("tick", 3.0), ("note 0", 3.0), ("note 1", 3.0), ("nap", 3.0)]


def test_a_paused_node_does_not_see_its_rpc_time_out():
    """Time stops for a paused node: its rpc timeout fires only after resume."""

    class Asker(em.Node):
        async def on_start(self):
            self.outcome = None
            self.spawn(self.ask())

        async def ask(self):
            try:
                await self.rpc("n1", {"type": "echo", "echo": 1}, timeout=1.0)
            except em.Timeout:
                self.outcome = ("timeout", asyncio.get_running_loop().time())

    sim = em.Simulation(seed=1)
    sim.add_node("n0", Asker)
    sim.add_node("n1", Echo)
    sim.crash("n1")

    async def main():
        await asyncio.sleep(0.5)
        sim.pause("n0")
        await asyncio.sleep(10)
        sim.resume("n0")
        await asyncio.sleep(0.1)

    sim.run(main())
    assert sim.node("n0").outcome == ("timeout", 10.5)


def test_crashing_a_paused_node_unfreezes_its_cancellations():
    """Crash of a paused node cancels its tasks; restart starts clean."""
    sim = em.Simulation(seed=1)
    sim.add_node("n0", Heartbeat)
    sim.add_node("n1", Recorder)
    sim.run(until=1.5)
    sim.pause("n0")
    sim.crash("n0")
    sim.restart("n0")
    sim.run(until=3.5)
    assert sim.node("n0").fired == [2.5, 3.5]


def test_is_paused_follows_pause_resume_crash_and_restart():
    """is_paused is true from a pause to the next resume or crash; a pause of a crashed node does nothing."""
    sim = em.Simulation(seed=1)
    sim.add_node("n0", Heartbeat)
    sim.add_node("n1", Recorder)
    seen = [sim.is_paused("n0")]
    sim.pause("n0")
    sim.pause("n0")  # not counted: one resume ends it, as SIGCONT ends any number of SIGSTOPs
    seen.append(sim.is_paused("n0"))
    sim.resume("n0")
    seen.append(sim.is_paused("n0"))
    sim.pause("n0")
    sim.crash("n0")  # a crash lifts the pause
    seen.append(sim.is_paused("n0"))
    sim.pause("n0")  # crashed: nothing to freeze
    sim.restart("n0")
    seen.append(sim.is_paused("n0"))
    assert seen == [False, True, False, False, False] and not sim.is_paused("n1")
    sim.run(until=1.5)
    sim.pause("n0")
    sim.run(until=3.5)
    assert sim.is_paused("n0") and sim.node("n0").fired == [1.0]  # and it really is frozen


def test_is_paused_of_an_unknown_node_names_the_known_ones():
    sim, _ = cluster(n=1)
    with pytest.raises(em.ConfigError, match="unknown node 'n9'; known nodes: c0, n0"):
        sim.is_paused("n9")


def test_node_faults_record_themselves_in_the_history():
    """crash, restart, pause, resume and skew appear as nemesis info ops."""
    sim, _ = cluster(n=2)
    sim.crash("n0")
    sim.restart("n0")
    sim.pause("n1")
    sim.resume("n1")
    sim.skew("n1", 0.5, 0.01)
    assert [(op["f"], op["value"]) for op in sim.history.nemesis_ops()] == [
        ("crash", "n0"),
        ("restart", "n0"),
        ("pause", "n1"),
        ("resume", "n1"),
        ("skew", ["n1", 0.5, 0.01]),
    ]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda sim: sim.add_node("n0", Echo), em.ConfigError, "already exists"),
        (lambda sim: sim.add_node("", Echo), em.ConfigError, "non-empty string"),
        # "a->b" named a link's random stream: a -> "b->c" and "a->b" -> c shared one (found by a review)
        (lambda sim: sim.add_node("b->c", Echo), em.ConfigError, "cannot contain '->'"),
        (lambda sim: sim.add_client("a->b"), em.ConfigError, "cannot contain '->'"),
        (lambda sim: sim.add_host("a->b", None), em.ConfigError, "valid DNS name"),  # which has no '>
        (lambda sim: em.Simulation(latency=None), em.ConfigError, "latency must be given"),
        # a set's repr in the trace follows PYTHONHASHSEED: the digest did (found by a review)
        (lambda sim: sim.record_nemesis("cut", {"n0", "n1"}), em.MessageError, "nemesis value is a set"),
        (lambda sim: sim.record_event("n0", "seen", {"n0", "n1"}), em.MessageError, "event value is a set"),
        (lambda sim: sim.add_node("x", 42), em.ConfigError, "Node subclass"),
        (lambda sim: sim.crash("ghost"), em.ConfigError, "unknown node 'ghost'"),
        (lambda sim: sim.restart("n0"), em.ConfigError, "crash it before restarting"),
        (lambda sim: sim.skew("n0", float("nan")), em.ConfigError, "finite"),
        (lambda sim: sim.skew("n0", 0, -1.5), em.ConfigError, "cannot run backwards"),
        (lambda sim: sim.run(asyncio.sleep), em.ConfigError, "sim.run takes a coroutine"),
        (lambda sim: sim.run(until="soon"), em.ConfigError, "virtual time in seconds"),
        (lambda sim: em.Simulation(seed="abc"), em.ConfigError, "seed must be an int"),
        (lambda sim: em.Simulation(loss=2), em.ConfigError, "probability between 0 and 1"),
        (lambda sim: sim.node("n0").send("n1", {"no": "type"}), em.MessageError, 'non-empty string "type"'),
        (lambda sim: sim.node("n0").send("n1", {"type": "x", "v": {1, 2}}), em.MessageError, "set"),
    ],
)
def test_misuse_raises_a_clear_error(call, error, message):
    """Each misuse raises a ValueError/TypeError subclass whose message says what to do."""
    sim, _ = cluster(n=2)
    with pytest.raises(error, match=message):
        call(sim)


def test_run_until_advances_the_clock_exactly_and_can_continue():
    """run(until=T) stops at T even when idle, and a later run continues from there."""
    sim, (client,) = cluster(n=1)
    sim.run(until=12.5)
    assert sim.now == 12.5

    async def main():
        await client.rpc("n0", {"type": "echo", "echo": 1})
        return sim.now

    assert sim.run(main()) == 12.5 + 0.002


def test_a_workload_waiting_on_a_dropped_message_without_timeout_is_a_deadlock():
    """rpc with timeout=None to an isolated node cannot finish: Deadlock, not a hang."""
    sim, (client,) = cluster(n=1)
    sim.network.isolate("n0")

    async def main():
        await client.rpc("n0", {"type": "echo", "echo": 1}, timeout=None)

    with pytest.raises(em.Deadlock, match=r"(?s)workload.*c0 awaits a reply from n0 to 'echo'.*give rpc"):
        sim.run(main())


def test_a_simulated_hour_of_a_five_node_cluster_runs():
    """An hour of heartbeats among five nodes completes with every beat delivered."""

    class Beat(em.Node):
        async def on_start(self):
            self.heard = 0
            self.spawn(self.beat())

        async def beat(self):
            while True:
                await asyncio.sleep(1.0)
                for peer in self.peers:
                    self.send(peer, {"type": "beat"})

        async def handle_beat(self, msg):
            self.heard += 1

    sim = em.Simulation(seed=5)
    for i in range(5):
        sim.add_node(f"n{i}", Beat)
    sim.run(until=3600.0)
    assert sim.now == 3600.0
    assert [sim.node(f"n{i}").heard for i in range(5)] == [4 * 3599 + 4] * 5 or all(
        sim.node(f"n{i}").heard >= 4 * 3599 for i in range(5)
    )


def test_record_nemesis_and_clock_of_serve_fault_policies():
    """record_nemesis puts a policy's own op in the history; clock_of reads back a skew."""
    sim, _ = cluster(n=2)
    op = sim.record_nemesis("start-partition", {"sides": [["n0"], ["n1"]]})
    assert sim.history[-1] is op and op["process"] == "nemesis" and op["type"] == "info"
    assert sim.clock_of("n0") == (0.0, 0.0)
    sim.skew("n0", 2.5, 0.1)
    assert sim.clock_of("n0") == (2.5, pytest.approx(0.1))


def test_a_message_sent_to_a_node_while_it_is_down_is_lost_even_after_a_restart():
    """A message sent while its receiver is down, arriving after the restart, is dropped."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.010))
    sim.add_node("n1", Recorder)
    client = sim.add_client("c0")

    async def main():
        sim.crash("n1")
        client.send("n1", {"type": "note", "i": 1})
        await asyncio.sleep(0.005)
        sim.restart("n1")
        await asyncio.sleep(0.010)

    sim.run(main())
    assert sim.node("n1").got == [] and sim.network.stats["dropped"] == 1


def test_messages_held_by_a_pause_are_lost_when_the_node_crashes_right_after_resume():
    """resume then crash then restart in one instant: what the pause held goes nowhere."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("n1", Recorder)
    client = sim.add_client("c0")

    async def main():
        sim.pause("n1")
        client.send("n1", {"type": "note", "i": 1})
        await asyncio.sleep(0.01)
        sim.resume("n1")
        sim.crash("n1")
        sim.restart("n1")
        await asyncio.sleep(0.01)

    sim.run(main())
    assert sim.node("n1").got == []


def test_healing_one_cut_keeps_the_others():
    """partition returns an id; heal(id) lifts that cut alone; heal() lifts them all."""
    sim, _ = cluster(n=4)
    net = sim.network
    first = net.partition(["n0"], ["n1"])
    second = net.isolate("n3")
    net.heal(first)
    assert not net.cut("n0", "n1") and net.cut("n3", "n0")
    with pytest.raises(em.ConfigError, match="no such cut"):
        net.heal(first)
    net.heal()
    assert not net.cut("n3", "n0")
    assert [op["value"] for op in sim.history.nemesis_ops() if op["f"] == "heal"] == [[first], None]
    assert second != first


@pytest.mark.parametrize("until", [-1, -0.001, -1e300, float("-inf")])
def test_run_until_a_negative_time_is_an_error(until):
    """sim.run(until=-1) raises a ConfigError instead of returning silently (-1e300 too, not an OverflowError)."""
    sim = em.Simulation(seed=1)
    with pytest.raises(em.ConfigError, match=r"in the past.*sim\.run\(until=sim\.now \+ d\)"):
        sim.run(until=until)


def test_run_until_a_time_already_passed_is_an_error_and_now_is_not():
    """After running to 5 s, until=2 is in the past (with or without a coroutine); until=now is fine."""
    sim = em.Simulation(seed=1)
    sim.run(until=5.0)
    with pytest.raises(em.ConfigError, match=r"until=2.*already 5\.0 s"):
        sim.run(until=2.0)

    async def nothing():
        return 7

    with pytest.raises(em.ConfigError, match="in the past"):
        sim.run(nothing(), until=4.999)
    sim.run(until=5.0)
    sim.run(until=0.1 + 0.2 + 4.7)  # 5.000000000000001: the same nanosecond
    assert sim.now == 5.0


@pytest.mark.parametrize("until", [1e300, float("inf")])
def test_run_until_a_time_past_the_clock_s_range_runs_until_nothing_is_left(until):
    """until=1e300 (past ~1.8e299 s, where nanoseconds overflow a float) is a time no run reaches, as inf:
    the run ends when nothing is left, at the last event, and a timer set past the range never fired."""
    sim = em.Simulation(seed=1)
    seen = []

    async def arm():
        loop = asyncio.get_running_loop()
        loop.call_later(5.0, seen.append, 5.0)
        loop.call_later(1e300, seen.append, 1e300)

    sim.run(arm())
    sim.run(until=until)
    assert seen == [5.0] and sim.now == 5.0


class _Waiter(em.Node):
    """A handler that waits for an hour and settles a shared future on its way out (as a cache's fetch does)."""

    async def handle_get(self, msg):
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: None)  # settling it schedules a callback
        try:
            await asyncio.sleep(3600)
        finally:
            self.cleaned = True
            if not future.done():
                future.set_result(None)
            self.send("sink", {"type": "bye"})  # sent by a node that is gone: dropped, not traced


def test_close_cancels_suspended_handlers_and_runs_their_cleanup(monkeypatch):
    """close() does what asyncio.run does at its end: nothing is left to fail later on a closed loop."""
    import gc
    import sys

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    sim = em.Simulation(seed=3)
    waiter = sim.add_node("w", _Waiter)
    sim.add_node("sink", Recorder)
    client = sim.add_client("c")
    task = sim.loop.create_task(client.rpc("w", {"type": "get"}, timeout=None))
    unowned = []

    async def of_no_node():  # made by the caller, as a library makes one from a callback
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: None)
        try:
            await asyncio.sleep(3600)
        finally:
            future.set_result(None)
            unowned.append("cleaned")

    sim.loop.create_task(of_no_node())
    sim.run(until=1.0)
    assert not task.done()
    digest, history = sim.trace.digest(), list(sim.history)
    sim.close()
    assert waiter.cleaned and unowned == ["cleaned"]
    assert (sim.trace.digest(), list(sim.history)) == (digest, history)
    assert sim.loop.is_closed()
    del sim, waiter, client, task
    gc.collect()
    assert unraisable == []


def test_nodes_alone_never_load_the_socket_layer_and_the_first_host_does():
    """A cluster of nodes runs, crashes and partitions without the socket layer; add_host imports it."""
    nodes = (
        "import emulator as em\n"
        "from tests.common.nodes import Echo\n"
        "sim = em.Simulation(seed=1)\n"
        "for name in ('n1', 'n2'):\n"
        "    sim.add_node(name, Echo)\n"
        "sim.network.partition(['n1'], ['n2'])\n"
        "sim.crash('n2')\n"
        "sim.run(until=1.0)\n"
    )
    assert not SOCKET_LAYER & modules_of(nodes)
    hosts = modules_of(nodes + "sim.add_host('web', None)\nsim.run(until=2.0)\n")
    assert hosts >= SOCKET_LAYER - {"emulator.resolver"}  # loaded with the first name a program resolves


class _Chatter(em.Node):
    """Sends to a fixed peer at random intervals (its own stream), and records what it is sent."""

    async def on_start(self):
        self.got = []
        self.spawn(self._chat())

    async def _chat(self):
        target = {"n1": "n2", "n2": "n1", "n3": "n1"}[self.name]
        while True:
            self.send(target, {"type": "note", "r": self.rng.random()})
            await asyncio.sleep(0.01 + self.rng.random() * 0.01)

    async def handle_note(self, msg):
        self.got.append((self.now(), msg.src, msg.body["r"]))


@pytest.mark.parametrize("faulty", [False, True], ids=["plain links", "lossy, duplicating, reordering links"])
def test_adding_a_node_does_not_perturb_the_others(faulty):
    """The README's determinism claim in a simulation (test_rng checks the streams alone): with n3 added, and
    sending to n1, every message n1 sends n2 arrives at the same instant with the same body, on plain links and
    on links that lose, duplicate and reorder (each link's draws come from its own stream)."""

    def n1_to_n2(nodes):
        sim = em.Simulation(seed=7, latency=em.Uniform(0.001, 0.005))
        if faulty:
            sim.network.set_defaults(loss=0.1, duplicate=0.1, reorder=0.2)
        for name in nodes:
            sim.add_node(name, _Chatter)
        sim.run(until=1.0)
        return [got for got in sim.node("n2").got if got[1] == "n1"]

    alone, beside = n1_to_n2(["n1", "n2"]), n1_to_n2(["n1", "n2", "n3"])
    assert len(alone) > 40 and alone == beside
