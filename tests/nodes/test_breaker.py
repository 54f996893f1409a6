"""Circuit breaker: tripping, fail-fast while open, half-open probes, recovery, and the trace."""

import asyncio

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import emulator as em
from emulator.check import availability, linearizable
from nodes.breaker import CLOSED, HALF_OPEN, OPEN, BreakerOpen, Caller, CircuitBreaker
from nodes.kv import SingleKV
from tests.common.lb_harness import SimMachine, background, ops

LATENCY = 0.001
FAST = 2 * LATENCY + 1e-9  # a refusal costs one round trip to the caller, nothing more


class Clock:
    """A hand-driven clock for the breaker's unit tests."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def fail(breaker, n=1, exc=None):
    for _ in range(n):
        breaker.release(breaker.acquire(), exc or em.Timeout("no reply"))


def succeed(breaker, n=1):
    for _ in range(n):
        breaker.release(breaker.acquire(), None)


def opened(clock, **config):
    breaker = CircuitBreaker(clock, failure_threshold=2, reset_timeout=5.0, **config)
    fail(breaker, 2)
    assert breaker.state == OPEN
    return breaker


# -- unit: tripping ----------------------------------------------------------------------


def test_trips_after_failure_threshold_failures_in_a_row():
    """Three failures in a row open a breaker with failure_threshold=3; two do not."""
    breaker = CircuitBreaker(Clock(), failure_threshold=3)
    fail(breaker, 2)
    assert breaker.state == CLOSED
    fail(breaker)
    assert breaker.state == OPEN
    assert breaker.transitions[-1][1:3] == (CLOSED, OPEN)


def test_a_success_resets_the_run_of_failures():
    """fail, fail, ok, fail, fail never reaches three in a row: the breaker stays closed."""
    breaker = CircuitBreaker(Clock(), failure_threshold=3)
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 2)
    assert breaker.state == CLOSED


def test_trips_on_the_failure_rate_once_min_calls_are_in_the_window():
    """failure_rate=0.5, min_calls=4: 1 failure of 3 calls stays closed; 2 of 4 opens."""
    breaker = CircuitBreaker(Clock(), failure_threshold=None, failure_rate=0.5, window=10.0, min_calls=4)
    succeed(breaker, 2)
    fail(breaker)
    assert breaker.state == CLOSED
    fail(breaker)
    assert breaker.state == OPEN
    assert "failure rate 0.50" in breaker.transitions[-1][3]


def test_failures_older_than_the_window_do_not_count():
    """Failures that left the rolling window no longer weigh on the rate."""
    clock = Clock()
    breaker = CircuitBreaker(clock, failure_threshold=None, failure_rate=0.5, window=10.0, min_calls=4)
    fail(breaker, 2)
    clock.t = 10.5  # both failures are now out of the window
    succeed(breaker, 2)
    fail(breaker, 1)  # 1 of 3 in the window (3 of 5 had they stayed)
    succeed(breaker, 1)
    assert breaker.state == CLOSED


# -- unit: open and half-open ------------------------------------------------------------------


def test_open_refuses_until_the_reset_timeout_with_a_definite_error_11():
    """While open every call is refused with BreakerOpen: code 11, definite."""
    clock = Clock()
    breaker = opened(clock)
    clock.t = 4.999
    with pytest.raises(BreakerOpen, match="open") as refused:
        breaker.acquire()
    assert (refused.value.code, refused.value.definite) == (11, True)
    assert breaker.stats["rejected"] == 1


def test_half_open_admits_at_most_half_open_max_probes_at_once():
    """After reset_timeout, half_open_max=2 probes go through and a third is refused."""
    clock = Clock()
    breaker = opened(clock, half_open_max=2)
    clock.t = 5.0
    probes = [breaker.acquire(), breaker.acquire()]
    assert breaker.state == HALF_OPEN
    with pytest.raises(BreakerOpen, match="half-open with 2 probe"):
        breaker.acquire()
    breaker.release(probes[0], None)
    assert breaker.state == HALF_OPEN  # one success of the two needed
    breaker.release(probes[1], None)
    assert breaker.state == CLOSED


def test_a_failed_probe_reopens_and_restarts_the_reset_timeout():
    """A probe that fails at t=6 reopens the breaker until t=11."""
    clock = Clock()
    breaker = opened(clock)
    clock.t = 6.0
    fail(breaker)
    assert breaker.state == OPEN
    assert breaker.retry_at == 11.0
    clock.t = 10.9
    with pytest.raises(BreakerOpen):
        breaker.acquire()
    clock.t = 11.0
    succeed(breaker)
    assert [t[2] for t in breaker.transitions] == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


def test_a_cancelled_probe_frees_its_slot_without_counting():
    """A cancelled probe neither closes nor reopens the breaker, and lets another probe in."""
    clock = Clock()
    breaker = opened(clock)
    clock.t = 5.0
    breaker.release(breaker.acquire(), asyncio.CancelledError())
    assert breaker.state == HALF_OPEN
    succeed(breaker)
    assert breaker.state == CLOSED


@pytest.mark.parametrize("code, counts", [(0, True), (1, True), (11, True), (13, True), (20, False), (22, False)])
def test_only_errors_that_say_the_dependency_is_unwell_count_as_failures(code, counts):
    """Timeouts and errors 0, 1, 11, 13 are failures; 20 and 22 are answers, so successes."""
    breaker = CircuitBreaker(Clock(), failure_threshold=1)
    fail(breaker, exc=em.RPCError(code, "x"))
    assert (breaker.state == OPEN) is counts


def test_an_outcome_from_before_a_transition_counts_for_nothing():
    """A call admitted while closed that fails after the breaker reopened does not touch the new state."""
    clock = Clock()
    breaker = CircuitBreaker(clock, failure_threshold=2, reset_timeout=5.0)
    late = breaker.acquire()
    fail(breaker, 2)
    clock.t = 5.0
    probe = breaker.acquire()
    breaker.release(late, em.Timeout("late"))
    assert breaker.state == HALF_OPEN
    breaker.release(probe, None)
    assert breaker.state == CLOSED


@pytest.mark.parametrize(
    "config, match",
    [
        ({"failure_threshold": None}, "never trip"),
        ({"failure_threshold": 0}, "failure_threshold must be >= 1"),
        ({"failure_rate": 1.5}, "fraction in"),
        ({"window": 0}, "window must be > 0"),
        ({"half_open_max": 0}, "half_open_max must be >= 1"),
        ({"half_open_max": 1.5}, "half_open_max is a number of probes, a whole number >= 1"),  # 1.5 let 2 run
        ({"reset_timeout": "5"}, "reset_timeout must be a number"),
    ],
)
def test_bad_config_says_what_to_do(config, match):
    """Each misconfiguration raises a ConfigError naming the parameter."""
    with pytest.raises(em.ConfigError, match=match):
        CircuitBreaker(Clock(), **config)


def test_the_clock_must_be_callable():
    """Passing a number for the clock is refused with a hint."""
    with pytest.raises(em.ConfigError, match=r"node\.now"):
        CircuitBreaker(5.0)


# -- call() and async with, on the virtual clock ---------------------------------------------------


async def test_call_refuses_without_running_the_awaited_coroutine(sim):
    """An open breaker's call() raises BreakerOpen and the coroutine never starts."""
    breaker = CircuitBreaker(sim.loop.time, failure_threshold=1)
    ran = []

    async def dependency(ok):
        ran.append(ok)
        if not ok:
            raise em.Timeout("down")
        return "fine"

    with pytest.raises(em.Timeout):
        await breaker.call(dependency(False))
    with pytest.raises(BreakerOpen):
        await breaker.call(dependency(True))
    assert ran == [False]


async def test_async_with_counts_the_outcome_of_its_block(sim):
    """A block that raises Timeout under ``async with breaker`` counts as a failure and trips it."""
    breaker = CircuitBreaker(sim.loop.time, failure_threshold=1, reset_timeout=1.0)
    with pytest.raises(em.Timeout):
        async with breaker:
            raise em.Timeout("down")
    assert breaker.state == OPEN
    await asyncio.sleep(1.0)
    async with breaker:
        pass
    assert breaker.state == CLOSED


# -- a pure state machine: the breaker's invariants under any schedule ------------------------------


class BreakerModel(RuleBasedStateMachine):
    """Random calls, outcomes and clock moves; the breaker's state graph and limits must hold."""

    @initialize(threshold=st.integers(1, 4), half_open_max=st.integers(1, 3))
    def setup(self, threshold, half_open_max):
        self.clock = Clock()
        self.breaker = CircuitBreaker(
            self.clock, failure_threshold=threshold, reset_timeout=2.0, half_open_max=half_open_max
        )
        self.permits = []

    @rule()
    def call(self):
        was_open = self.breaker.retry_at is not None
        try:
            self.permits.append(self.breaker.acquire())
        except BreakerOpen:
            return
        assert not was_open, "an open breaker admitted a call before its reset timeout"

    @precondition(lambda self: self.permits)
    @rule(which=st.integers(0, 10), outcome=st.sampled_from(["ok", "timeout", "answer", "cancel"]))
    def finish(self, which, outcome):
        permit = self.permits.pop(which % len(self.permits))
        exc = {
            "ok": None,
            "timeout": em.Timeout("t"),
            "answer": em.RPCError(22, "no"),
            "cancel": asyncio.CancelledError(),
        }[outcome]
        self.breaker.release(permit, exc)

    @rule(dt=st.sampled_from([0.1, 1.0, 2.0, 3.0]))
    def wait(self, dt):
        self.clock.t += dt

    @invariant()
    def probes_stay_within_the_limit(self):
        if self.breaker.state == HALF_OPEN:
            assert self.breaker.probes_in_flight <= self.breaker.half_open_max

    @invariant()
    def transitions_follow_the_state_graph(self):
        allowed = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (HALF_OPEN, CLOSED)}
        state = CLOSED
        for _, old, new, _ in self.breaker.transitions:
            assert old == state and (old, new) in allowed
            state = new


TestBreakerModel = BreakerModel.TestCase
TestBreakerModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


# -- in a simulation: a caller in front of a dependency that fails -------------------------------------


def outage(fault: str, breaker: dict | None, seed: int = 3, clients: int = 4):
    """Clients read and write through a Caller for 8 s; the store is down from t=1.0 to t=4.0.

    Returns (sim, caller events, history); the trace is kept.
    """
    sim = em.Simulation(seed=seed, latency=em.Constant(LATENCY), keep_trace=True)
    sim.add_node("store", SingleKV, leader="store")
    sim.add_node("caller", Caller, dependency="store", breaker=breaker, timeout=0.5)
    nodes = [sim.add_client(f"c{i}") for i in range(clients)]
    rng = sim.rng("workload")

    async def worker(client):
        while sim.now < 8.0:
            f = rng.choice(["read", "write"])
            try:
                await client.invoke(
                    f,
                    key=rng.randrange(3),
                    value=rng.randrange(100) if f == "write" else None,
                    dest="caller",
                    timeout=2.0,
                )
            except (em.RPCError, em.Timeout):
                pass
            await asyncio.sleep(0.05)

    async def nemesis():
        await asyncio.sleep(1.0 - sim.now)  # the workers are mid-operation now: the fault lands in flight
        sim.crash("store") if fault == "crash" else sim.network.isolate("store")
        await asyncio.sleep(4.0 - sim.now)
        sim.restart("store") if fault == "crash" else sim.network.heal()

    async def main():
        for key in range(3):  # every key exists, so a read fails only if the store cannot answer
            await nodes[0].invoke("write", key=key, value=0, dest="store")
        await asyncio.gather(nemesis(), *(worker(c) for c in nodes))

    sim.run(main())
    caller = sim.node("caller")
    return sim, caller.events, sim.history


BREAKER = {"failure_threshold": 3, "reset_timeout": 1.0}


@pytest.mark.parametrize("fault", ["crash", "partition"])
def test_once_open_calls_fail_fast_in_virtual_time(fault):
    """While open, every call through the caller fails definitely (11) within one round trip."""
    _sim, events, history = outage(fault, BREAKER)
    opens = [t for t, old, new, _ in events if new == OPEN]
    probes = [t for t, old, new, _ in events if new == HALF_OPEN]
    assert 1.0 < opens[0] < 1.0 + 0.05 + 0.5 + FAST  # tripped by the first calls after the store went
    # An op sent one hop before the breaker turned half-open may be the probe itself.
    spans = [(start, probe - 1.5 * LATENCY) for start, probe in zip(opens, probes)]
    during = [
        (inv, done)
        for inv, done in ops(history, node="caller")
        if any(start <= inv["time"] < end for start, end in spans)
    ]
    assert len(during) > 20
    for inv, done in during:
        assert done["type"] == "fail" and done["error"][0] == 11
        assert done["time"] - inv["time"] <= FAST


@pytest.mark.parametrize("fault", ["crash", "partition"])
def test_without_a_breaker_every_call_waits_out_the_timeout(fault):
    """The control: with breaker=None each call during the outage takes the full 0.5 s timeout."""
    _sim, events, history = outage(fault, None)
    during = [(inv, done) for inv, done in ops(history, node="caller") if 1.0 < inv["time"] < 3.5]
    assert during and events == []
    assert all(done["time"] - inv["time"] >= 0.5 for inv, done in during)


@pytest.mark.parametrize("fault", ["crash", "partition"])
def test_the_breaker_closes_again_after_the_dependency_recovers(fault):
    """After the store is back, a probe succeeds, the breaker closes, and every later call is ok."""
    _sim, events, history = outage(fault, BREAKER)
    closed_at = max(t for t, old, new, _ in events if new == CLOSED)
    assert 4.0 < closed_at <= 4.0 + BREAKER["reset_timeout"] + 0.5 + 0.1
    after = availability(history.client_ops(), during=(closed_at + FAST, 8.0))["overall"]
    assert after.total > 50 and after.fraction == 1.0


def test_it_gives_up_calls_that_would_succeed_until_its_next_probe():
    """The cost: after the store is back at t=4.0, calls are still refused for up to reset_timeout."""
    _sim, _events, history = outage("crash", BREAKER)
    refused = [
        inv["time"] for inv, done in ops(history, node="caller") if inv["time"] >= 4.0 and done["type"] == "fail"
    ]
    assert len(refused) > 5 and max(refused) < 4.0 + BREAKER["reset_timeout"] + 0.5


def test_state_changes_appear_in_the_trace():
    """Each transition is a trace event at the time it happened: closed, open, ..., half-open, closed."""
    sim, events, _history = outage("crash", BREAKER)
    traced = [(r["time"], r["value"]) for r in sim.trace.records() if r["kind"] == "event" and r["what"] == "breaker"]
    assert [(t, [old, new, why]) for t, old, new, why in events] == traced
    assert traced[0][1][:2] == [CLOSED, OPEN] and traced[-1][1][1] == CLOSED


def test_the_same_seed_gives_the_same_trace():
    """Two runs of the outage with seed 5 have one digest."""
    assert outage("crash", BREAKER, seed=5)[0].trace_digest() == outage("crash", BREAKER, seed=5)[0].trace_digest()


# -- the guarantee under random faults ------------------------------------------------------------------


class CallerUnderFaults(SimMachine):
    """Ops through a breaker-guarded Caller while the store crashes, restarts, is cut off and healed.

    Guarantees checked: the history stays linearizable (a refusal is a
    definite fail, so it must not have happened), every refusal is fast, no
    refused call reached the store, and after recovery the breaker closes.
    """

    clients = 3
    TIMEOUT = 0.2

    keep_trace = True

    def build(self, sim):
        sim.add_node("store", SingleKV, leader="store")
        sim.add_node(
            "caller",
            Caller,
            dependency="store",
            timeout=self.TIMEOUT,
            breaker={"failure_threshold": 2, "reset_timeout": 0.3, "half_open_max": 1},
        )

    @rule(
        batch=st.lists(
            st.tuples(
                st.sampled_from(["read", "write", "cas"]), st.integers(0, 1), st.integers(0, 2), st.integers(0, 2)
            ),
            min_size=1,
            max_size=3,
        )
    )
    def ops(self, batch):
        for f, key, a, b in batch:
            self.start(f, key, {"read": None, "write": a, "cas": [a, b]}[f], dest="caller")

    @precondition(lambda self: self.sim.alive("store"))
    @rule()
    def crash_store(self):
        self.sim.crash("store")

    @precondition(lambda self: not self.sim.alive("store"))
    @rule()
    def restart_store(self):
        self.sim.restart("store")

    @rule()
    def isolate_store(self):
        self.sim.network.isolate("store")

    @rule()
    def heal(self):
        self.sim.network.heal()

    @rule(dt=st.sampled_from([0.001, 0.01, 0.1, 0.25, 0.5]))
    def wait(self, dt):
        """Time passes under load: each idle client keeps reading, writing and cas-ing."""
        self.advance_under_load(dt, self.random_op, step=0.02)

    @staticmethod
    def random_op(rng):
        f, key, a, b = rng.choice(["read", "write", "cas"]), rng.randrange(2), rng.randrange(3), rng.randrange(3)
        return f, key, {"read": None, "write": a, "cas": [a, b]}[f], "caller"

    @rule()
    def recover(self):
        """Heal everything; within reset_timeout plus a probe the breaker closes and calls succeed."""
        self.settle()
        self.sim.network.heal()
        if not self.sim.alive("store"):
            self.sim.restart("store")
        self.advance(0.35)
        task = background(self.sim, self.client_nodes[0].invoke("write", 0, 9, dest="caller"))
        self.sim.run(task)
        assert not isinstance(task.result(), Exception), task.result()
        assert self.sim.node("caller").breaker.state == CLOSED

    @invariant()
    def history_is_linearizable(self):
        verdict = linearizable(self.sim.history.client_ops(), model="cas_register")
        assert verdict.valid, verdict

    @invariant()
    def every_call_while_open_is_refused(self):
        events = self.sim.node("caller").events
        reset = self.sim.node("caller").breaker.reset_timeout
        spans = []
        for i, (t, _, new, _) in enumerate(events):
            if new == OPEN:
                probe = next((u for u, _, n, _ in events[i + 1 :] if n == HALF_OPEN), t + reset)
                spans.append((t, min(probe, t + reset) - 1.5 * LATENCY))  # a call sent a hop earlier may probe
        for inv, done in ops(self.sim.history, node="caller"):
            if done is not None and any(start <= inv["time"] < end for start, end in spans):
                assert done["type"] == "fail" and done["error"][0] == 11, (inv, done)

    @invariant()
    def refusals_are_fast(self):
        for inv, done in ops(self.sim.history, node="caller"):
            if done is not None and done.get("error", [None])[0] == 11:
                assert done["time"] - inv["time"] <= FAST

    @invariant()
    def refused_calls_never_reach_the_store(self):
        trace = self.sim.trace
        trace.digest()  # flushes the records hashed so far into trace.events
        seen = getattr(self, "seen", 0)
        self.sent = getattr(self, "sent", 0) + sum(
            1 for r in trace.events[seen:] if r[1] in ("deliver", "drop") and r[2:4] == ("caller", "store")
        )
        self.seen, sent = len(trace.events), self.sent
        in_flight = sum(1 for t in self.tasks.values() if not t.done())  # sent, not yet delivered
        admitted = self.sim.node("caller").breaker.stats["admitted"]
        assert admitted - in_flight <= sent <= admitted


TestCallerUnderFaults = CallerUnderFaults.TestCase
TestCallerUnderFaults.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


@pytest.mark.slow
class TestCallerUnderFaultsSoak(CallerUnderFaults.TestCase):
    """The same machine, longer: run with -m slow."""

    settings = settings(max_examples=400, stateful_step_count=40, deadline=None)
