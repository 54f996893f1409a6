"""The compiled scheduler core: in use when built, refused when stale, and the same runs as pure Python.

CI runs tests/emulator twice, compiled and with CAPSIM_PURE_PYTHON=1, so every
kernel test here and beside it holds in both modes; the tests below that start
subprocesses compare the two modes directly.
"""

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import emulator.speedups as speedups
from emulator.loop import VirtualLoop
from tests.common import chaos_run

ROOT = Path(__file__).resolve().parents[2]
BUILT = importlib.util.find_spec("emulator._speedups") is not None

# What a process reports about the core it runs, and digests of runs that touch every path of it:
# chaos_run's seeds (partitions, loss, duplication, reordering, crash, restart, skew, pause) and a
# ring that beats both ways (asyncio.sleep loops and Node.every), with a pause, a crash and cancels;
# and rings whose batches of ticks, of sleep timers and of task wakeups, and deliveries in flight, the
# compiled core hints (prefetches) ahead.
PROBE = r"""
import asyncio, bisect, json, sys
import emulator as em
import emulator.handles as handles
import emulator.speedups as speedups
from emulator.loop import VirtualLoop
from tests.common import chaos_run

class Heart(em.Node):
    async def on_start(self):
        self.next = self.peers[bisect.bisect(self.peers, self.name) % len(self.peers)]
        if self.name < "n3":
            self.every(0.1, self.beat)
        else:
            self.spawn(self.loop())
        self.spawn(self.cancelled_sleeps())
    async def loop(self):
        while True:
            await asyncio.sleep(0.1)
            self.beat()
    async def cancelled_sleeps(self):
        while True:
            try:
                await asyncio.wait_for(asyncio.sleep(0.3), 0.07 + 0.01 * self.rng.random())
            except TimeoutError:
                pass
    def beat(self):
        self.send(self.next, {"type": "heartbeat", "from": self.name})
    async def handle_heartbeat(self, msg):
        pass

def pause_and_crash(sim, paused, crashed, times):
    # Run to times[0]; pause one node and crash another to times[1]; resume and restart them to times[2].
    sim.run(until=times[0])
    sim.pause(paused)
    sim.crash(crashed)
    sim.run(until=times[1])
    sim.resume(paused)
    sim.restart(crashed)
    sim.run(until=times[2])

def ring():
    sim = em.Simulation(seed=7, latency=em.Uniform(0.001, 0.003), duplicate=0.1, reorder=0.2)
    for i in range(6):
        sim.add_node(f"n{i}", Heart)
    pause_and_crash(sim, "n1", "n4", (1.0, 2.0, 3.0))
    return sim.trace_digest()

def plain_ring(**options):
    # Plain links (no loss, duplication or reordering): the compiled transmit's own path, and each way
    # off it: a constant latency, a held link, a cut, a paused and a crashed receiver, one-way loss.
    sim = em.Simulation(seed=3, latency=em.Uniform(0.001, 0.003), **options)
    for i in range(6):
        sim.add_node(f"n{i}", Heart)
    sim.run(until=0.5)
    net = sim.network
    net.set_link("n2", "n3", latency=0.002)
    net.hold("n0", "n1")
    cut = net.partition(["n4"], ["n0", "n1", "n2", "n3", "n5"])
    sim.run(until=1.0)
    net.release("n0", "n1")
    net.heal(cut)
    net.set_link_oneway("n5", "n0", loss=0.5)
    sim.pause("n2")
    sim.crash("n3")
    sim.run(until=1.5)
    sim.resume("n2")
    sim.restart("n3")
    sim.run(until=2.0)
    return [sim.trace_digest(), net.stats]

WRONG = []

class Mixed(em.Node):
    # Each beat goes to a peer drawn at random, as one of two types, so the compiled path's one-entry
    # caches (the sender's last route, the link's last recorder, the dispatch's last handler) miss and
    # hit in every order; a handler notes a message whose src is not its sender.
    async def on_start(self):
        self.every(0.01, self.beat)
    def beat(self):
        kind = "ping" if self.rng.random() < 0.5 else "note"
        self.send(self.rng.choice(self.peers), {"type": kind, "from": self.name})
    def check(self, msg):
        if msg.src != msg.body["from"] or msg.dest != self.name:
            WRONG.append([msg.src, msg.dest, msg.body, self.name])
    async def handle_ping(self, msg):
        self.check(msg)
    async def handle_note(self, msg):
        self.check(msg)
        self.event("note", msg.src)

def mixed():
    # Duplication and reordering on some links (the others plain: the compiled path's own), a flapping
    # partition, a held link and a crash with restart around it.
    sim = em.Simulation(seed=5, latency=em.Uniform(0.001, 0.003))
    for i in range(5):
        sim.add_node(f"n{i}", Mixed)
    sim.network.set_link("n0", "n1", duplicate=0.3, reorder=0.3)
    sim.network.set_link("n3", "n4", duplicate=0.2)
    sim.run(until=0.3)
    for t in (0.35, 0.45, 0.55):
        cut = sim.network.partition(["n0", "n1"], ["n2", "n3", "n4"])
        sim.run(until=t)
        sim.network.heal(cut)
        sim.run(until=t + 0.03)
    sim.network.hold("n3", "n4")
    sim.crash("n2")
    sim.run(until=0.7)
    sim.network.release("n3", "n4")
    sim.restart("n2")  # a new endpoint, with a new handlers dict
    sim.run(until=1.0)
    assert not WRONG, WRONG
    return [sim.trace_digest(), sim.network.stats]

class Beat(em.Node):
    # Rings of 40 on Node.every: batches of ticks the compiled loop records hints for and replays a round
    # later, changed by cancels, a pause, a crash and a restart, with a second kind of timer (args) in the
    # same batch; latencies up to 20 ms, so many deliveries are in flight for the delivery hints.
    async def on_start(self):
        i = int(self.name[1:])
        self.next = self.peers[bisect.bisect(self.peers, self.name) % len(self.peers)]
        self.timer = self.every(0.05, self.beat)
        if i % 7 == 0:
            self.every(0.05, self.other, i)
    def beat(self):
        self.send(self.next, {"type": "beat", "from": self.name})
        if self.rng.random() < 0.02:
            self.timer.cancel()
    def other(self, i):
        self.send(self.peers[i % len(self.peers)], {"type": "note", "n": i})
    async def handle_beat(self, msg):
        pass
    async def handle_note(self, msg):
        self.event("note", msg.body["n"])

def hinted():
    sim = em.Simulation(seed=11, latency=em.Uniform(0.001, 0.02))
    for i in range(40):
        sim.add_node(f"m{i:02d}", Beat)
    sim.network.set_link("m03", "m04", duplicate=0.3, reorder=0.3)
    pause_and_crash(sim, "m10", "m20", (0.5, 0.8, 1.2))
    return [sim.trace_digest(), sim.network.stats]

OWN_CODE_RAN = []

class OwnTask(asyncio.Task):
    # A Task subclass with its own get_coro: hinting finds where a task keeps its coroutine with the base
    # class's, and must never run a class's own code in the middle of a batch.
    def get_coro(self):
        OWN_CODE_RAN.append(self.get_name())
        return super().get_coro()

class Sleeper(em.Node):
    # Rings of 40 on asyncio.sleep loops: each round a batch of sleep timers fires, then a batch of the
    # task wakeups they scheduled, both recorded and replayed as hints a round later; changed by tasks of
    # a Task subclass, sleeps cancelled midway, a pause, a crash and a restart.
    async def on_start(self):
        self.next = self.peers[bisect.bisect(self.peers, self.name) % len(self.peers)]
        self.beats = self.spawn(self.loop())
    async def loop(self):
        while True:
            await asyncio.sleep(0.05)
            self.send(self.next, {"type": "beat", "from": self.name})
            if self.rng.random() < 0.03:
                self.spawn(self.interrupt())
    async def interrupt(self):
        await asyncio.sleep(0.02 * self.rng.random())
        self.beats.cancel()
        self.beats = self.spawn(self.loop())
    async def handle_beat(self, msg):
        self.event("beat", msg.src)

def slept():
    sim = em.Simulation(seed=13, latency=em.Uniform(0.001, 0.02))
    made = []
    def factory(loop, coro, **options):  # every third task of the subclass, from the first
        made.append(coro)
        return (OwnTask if len(made) % 3 == 1 else asyncio.Task)(coro, loop=loop, **options)
    sim.loop.set_task_factory(factory)
    for i in range(40):
        sim.add_node(f"s{i:02d}", Sleeper)
    sim.network.set_link("s05", "s06", duplicate=0.3, reorder=0.3)
    pause_and_crash(sim, "s11", "s22", (0.5, 0.8, 1.2))
    assert not OWN_CODE_RAN, OWN_CODE_RAN
    return [sim.trace_digest(), sim.network.stats, sum(type(t) is OwnTask for t in asyncio.all_tasks(sim.loop))]

sleeping = slept()  # the first run in this process: the first task its hints see is of the subclass
probe = em.Simulation(seed=1)
probe.add_node("n0", Heart)
network, deliver = probe.network, probe.node("n0")._endpoint.deliver
print(json.dumps({
    "mode": speedups.MODE,
    "accelerated": speedups.ACCELERATED,
    "core": VirtualLoop.call_soon.__qualname__,
    "sleep_timer": handles.SleepTimer.__module__,
    "message_path": [network.transmit.__qualname__, network._deliver_cb.__qualname__,
                     getattr(deliver, "args", [deliver])[0].__qualname__ if hasattr(deliver, "args")
                     else type(deliver).__name__],
    "digests": [ring(), plain_ring(), plain_ring(trace_bodies=True)] + [chaos_run.run(seed) for seed in range(4)]
               + [mixed(), hinted(), sleeping],
}))
"""


def probe(pure: bool) -> dict:
    env = dict(os.environ, CAPSIM_PURE_PYTHON="1" if pure else "", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]  # the probe's own asserts, with their message
    return json.loads(out.stdout)


@pytest.mark.skipif(not BUILT, reason="emulator._speedups is not built (pure-Python install)")
def test_the_compiled_core_is_in_use_when_it_is_built_and_both_modes_give_the_same_digests():
    """A built extension is used (a broken or stale one would fall back silently but for this), the
    environment variable forces pure Python, and the two run the same: the same digest for every run."""
    compiled, pure = probe(pure=False), probe(pure=True)
    assert compiled["accelerated"] and compiled["mode"] == "C (emulator._speedups)"
    assert compiled["core"] == "Core.call_soon" and compiled["sleep_timer"] == "emulator._speedups"
    assert not pure["accelerated"] and pure["mode"] == "pure Python (CAPSIM_PURE_PYTHON is set)"
    assert pure["core"] == "Scheduler.call_soon" and pure["sleep_timer"] == "emulator.handles"
    assert compiled["message_path"] == ["MessagePath.transmit", "MessagePath.deliver", "Dispatch"]
    assert pure["message_path"] == ["Network.transmit", "Network._deliver", "Endpoint._deliver_here"]
    assert compiled["digests"] == pure["digests"]
    assert compiled["digests"][3:7] == [chaos_run.run(seed) for seed in range(4)]
    assert len({json.dumps(digest) for digest in compiled["digests"]}) == 10
    # The sleep ring's Task subclass was in play (and the probe checks that its own code never ran).
    assert compiled["digests"][-1][2] > 0


# Timers past the clock's range (~1.8e299 s, where nanoseconds overflow a float): asyncio.sleep's fast path
# (compiled, or inlined in Scheduler.call_later), call_later, call_at, wait_for, asyncio.timeout and an rpc.
HUGE = r"""
import asyncio, json
import emulator as em
import emulator.speedups as speedups

class Echo(em.Node):
    async def handle_echo(self, msg):
        await asyncio.sleep(1e300 if msg.body["far"] else 0.001)  # in the handler: a node's own timer
        return {"type": "echo_ok"}

sim = em.Simulation(seed=5, latency=em.Uniform(0.001, 0.003))
sim.add_node("n0", Echo)
client = sim.add_client("c0")
fired = []

async def workload():
    loop = asyncio.get_running_loop()
    handles = [loop.call_later(1e300, fired.append, "later"), loop.call_at(1e300, fired.append, "at")]
    sleeper = asyncio.ensure_future(asyncio.sleep(1e300))
    reply = await client.rpc("n0", {"type": "echo", "far": False}, timeout=1e300)
    slept = await asyncio.wait_for(asyncio.sleep(0.5, "slept"), 1e300)
    async with asyncio.timeout(1e300):
        await asyncio.sleep(0.5)
    stuck = asyncio.ensure_future(client.rpc("n0", {"type": "echo", "far": True}, timeout=1e300))
    await asyncio.sleep(1)
    return [reply["type"], slept, [h.when() for h in handles], sleeper.done(), stuck.done(), loop.time()]

result = sim.run(workload())
sim.run(until=10)
print(json.dumps({"mode": speedups.MODE, "result": result, "fired": fired, "now": sim.now,
                  "digest": sim.trace_digest()}))
"""


@pytest.mark.skipif(not BUILT, reason="emulator._speedups is not built (pure-Python install)")
def test_timers_past_the_clock_s_range_are_taken_and_never_fire_in_both_modes():
    """call_later/call_at/sleep/wait_for/timeout/rpc of 1e300 s are accepted (an OverflowError before) and
    never fire: a run until 10 s ends there, the same run and digest compiled and in pure Python."""
    runs = []
    for pure in (False, True):
        env = dict(os.environ, CAPSIM_PURE_PYTHON="1" if pure else "", PYTHONPATH=str(ROOT))
        out = subprocess.run(
            [sys.executable, "-c", HUGE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr[-3000:]
        runs.append(json.loads(out.stdout))
    compiled, pure = runs
    assert compiled["mode"].startswith("C") and pure["mode"].startswith("pure Python")
    assert compiled["result"] == ["echo_ok", "slept", [1e300, 1e300], False, False, compiled["result"][-1]]
    assert 2.0 < compiled["result"][-1] < 2.1 and compiled["fired"] == [] and compiled["now"] == 10.0
    assert {k: v for k, v in compiled.items() if k != "mode"} == {k: v for k, v in pure.items() if k != "mode"}


def test_this_process_runs_the_core_its_mode_names():
    assert (speedups.native is not None) == speedups.ACCELERATED
    assert (BUILT and not speedups.PURE_REQUESTED) == speedups.ACCELERATED
    if speedups.ACCELERATED:
        assert isinstance(VirtualLoop(), speedups.native.Core)


STALE = r"""
import sys, types, warnings
fake = types.ModuleType("emulator._speedups")
fake.__file__ = "fake.so"
fake.ABI, fake.C_SHA256, fake.PY_SHA256 = {abi}, "0" * 64, "0" * 64
sys.modules["emulator._speedups"] = fake
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import emulator.speedups as speedups
print(speedups.ACCELERATED, "|", speedups.MODE, "|", [str(w.message) for w in caught])
"""


@pytest.mark.parametrize(
    ("abi", "why"), [(0, "its ABI is 0, this code needs"), (speedups.ABI, "emulator/_speedups.c changed since")]
)
def test_a_build_of_another_abi_or_of_other_sources_is_refused_with_a_warning(abi, why):
    env = dict(os.environ, CAPSIM_PURE_PYTHON="", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", STALE.format(abi=abi)], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    accelerated, mode, warned = out.split(" | ")
    assert accelerated == "False"
    assert why in mode and why in warned and "pip install -e ." in warned


def test_an_error_in_a_kernel_event_propagates_and_the_loop_goes_on_where_it_stopped():
    """As from the Python loop: the error leaves run_until, the clock at the failing event, and the
    events after it (the same instant's included) run on the next call, in order."""
    loop = VirtualLoop()
    seen = []

    def boom(arg):
        seen.append(arg)
        raise KeyError(arg)

    events = [(3, boom, "lone"), (5, seen.append, "a"), (7, seen.append, "b"), (7, boom, "x"), (7, seen.append, "c")]
    for when, fn, arg in events:
        loop.push_at(when, fn, arg)
    loop.push_after(9, seen.append, "d")
    loop.call_later(1e-8, seen.append, "e")
    with pytest.raises(KeyError, match="lone"):  # the one event of its instant, run without queueing
        loop.run_until(1.0)
    assert seen == ["lone"] and loop.time_ns() == 3 and not loop.is_running()
    with pytest.raises(KeyError, match="x"):  # one of a batch due at the same instant
        loop.run_until(1.0)
    assert seen == ["lone", "a", "b", "x"] and loop.time_ns() == 7
    loop.run_until(1.0)
    assert seen == ["lone", "a", "b", "x", "c", "d", "e"] and loop.time() == 1.0
    loop.close()


def test_call_soon_and_call_later_take_their_arguments_by_name_as_asyncio_declares_them():
    loop = VirtualLoop()
    seen = []
    loop.call_soon(callback=seen.append, context=None)  # no positional argument left for append: a TypeError
    loop.call_later(delay=0.5, callback=seen.append)
    loop.call_later(0.25, seen.append, "later")
    loop.call_soon(seen.append, "soon")
    for call, error in [
        (lambda: loop.call_soon(seen.append, "x", callback=print), "multiple values for argument 'callback'"),
        (lambda: loop.call_later(0.1, seen.append, delay=1.0), "multiple values for argument 'delay'"),
        (lambda: loop.call_later(callback=print), "missing"),
        (lambda: loop.call_soon(seen.append, when=1), "unexpected keyword argument"),
    ]:
        with pytest.raises(TypeError, match=error):
            call()
    errors = []
    loop.set_exception_handler(lambda _, context: errors.append(type(context["exception"])))
    loop.run_until(1.0)
    assert seen == ["soon", "later"] and errors == [TypeError, TypeError]
    loop.close()


def test_a_sleep_timer_handle_says_when_and_whether_it_was_cancelled():
    """What asyncio.sleep's timer shows whoever holds it (the compiled one mirrors handles.SleepTimer)."""
    loop = VirtualLoop()
    handles = []

    async def sleeper(delay):
        future = loop.create_future()
        handles.append(loop.call_later(delay, asyncio.futures._set_result_unless_cancelled, future, delay))
        return await future

    woken = loop.create_task(sleeper(0.25))
    kept = loop.create_task(sleeper(0.5))
    loop.run_until(0.1)
    first, second = handles
    assert first.when() == 0.25 and not first.cancelled() and repr(first) == "<sleep timer when=0.25 pending>"
    second.cancel()
    assert second.cancelled() and repr(second) == "<sleep timer when=0.5 cancelled>"
    assert loop.pending_timers() == 2  # a cancelled timer stays in the heap until it is due or compacted
    loop.run_until(1.0)
    assert woken.result() == 0.25 and repr(first) == "<sleep timer when=0.25 fired>" and not kept.done()
    first.cancel()  # after it fired: nothing to count
    assert first.cancelled() and loop.pending_timers() == 0
    kept.cancel()
    loop.run_until(2.0)
    loop.close()


_OPS = st.lists(
    st.tuples(st.sampled_from(["at", "after", "floor", "recurring", "later", "cancelled"]), st.integers(0, 4)),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
# A FIFO's head taken in a batch, then its next timer: due at the same instant, but after one in the heap.
@example([("at", 2), ("recurring", 2), ("recurring", 2), ("at", 2), ("recurring", 2)])
def test_events_run_in_the_order_of_their_time_then_of_their_scheduling(ops):
    """Every way in (the heap, the FIFOs of recurring delays, timer handles, cancelled ones skipped):
    callbacks run by (time, order scheduled), the rule both cores keep."""
    loop = VirtualLoop()
    ran, expected = [], []
    for i, (how, t) in enumerate(ops):
        when = t * 1000
        if how == "at":
            loop.push_at(when, ran.append, i)
        elif how == "after":
            loop.push_after(when, ran.append, i)
        elif how == "floor":  # not before 2 us, as a FIFO link passes its last delivery time
            when = max(when, 2000)
            assert loop.push_after(t * 1000, ran.append, i, 2000) == when
        elif how == "recurring":
            loop.push_recurring(when, ran.append, i)
        else:
            handle = loop.call_later(when / 1e9, ran.append, i)
            if how == "cancelled":
                handle.cancel()
                continue
        expected.append((when, i))
    loop.run_until(None)
    assert ran == [i for _, i in sorted(expected)]
    loop.close()


_HEAP_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 20)),
        st.tuples(st.just("pop"), st.just(0)),
        # an entry the C keys cannot hold (a float time, an int past 64 bits): the tuples' own order
        st.tuples(st.just("odd"), st.sampled_from([3.5, 2**70, -(2**70)])),
        st.tuples(st.just("python"), st.integers(0, 20)),  # pushed by heapq, then _timers_changed
        st.tuples(st.just("heapify"), st.just(0)),  # reordered in place, then _timers_changed
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(_HEAP_OPS)
def test_the_timer_heap_pops_in_heapq_s_order_however_its_entries_came(ops):
    """_heap_push/_heap_pop keep heapq's order, entry for entry, in both cores: the compiled one's
    keys in C follow pushes and pops, rebuild after _timers_changed, and step aside for entries
    whose time is not a 64-bit int."""
    import heapq

    loop = VirtualLoop()
    reference = []
    for seq, (how, value) in enumerate(ops):
        entry = (value, seq, "fn", "arg")
        if how in ("push", "odd"):
            loop._heap_push(entry)
            heapq.heappush(reference, entry)
        elif how == "python":
            heapq.heappush(loop._timers, entry)
            loop._timers_changed()
            heapq.heappush(reference, entry)
        elif how == "heapify":
            loop._timers.reverse()
            heapq.heapify(loop._timers)
            loop._timers_changed()
            reference.reverse()
            heapq.heapify(reference)
        elif reference:
            assert loop._heap_pop() == heapq.heappop(reference)
        assert loop._timers == reference
    while reference:
        assert loop._heap_pop() == heapq.heappop(reference)
    with pytest.raises(IndexError):
        loop._heap_pop()
    loop.close()


@pytest.mark.skipif(not speedups.ACCELERATED, reason="the compiled core is not in use")
def test_the_compiled_path_takes_slots_only_from_the_class_that_has_them():
    """A class that borrows another class's slot descriptors under the names the compiled core reads is
    refused by name, not read at the other class's offsets (memory its instances do not have)."""
    import emulator as em
    import emulator._speedups as native
    from emulator.network import Link, Message, Network

    class Borrowed:  # Link's descriptors in a class without Link's layout
        __slots__ = ()
        src, _version, _plain, fast_path = Link.src, Link._version, Link._plain, Link.fast_path

    sim = em.Simulation(seed=1)
    with pytest.raises(TypeError, match=r"Borrowed'>\.src is not a __slots__ entry"):
        native.MessagePath(sim.network, sim.loop, Borrowed, Message, Network.transmit, Network._deliver)
    native.MessagePath(sim.network, sim.loop, Link, Message, Network.transmit, Network._deliver)  # Link's own: taken
