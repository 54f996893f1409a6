"""Traffic splitting: the canary's share, A/B stickiness, and automatic rollback with its cost counted."""

import asyncio
import fractions
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from nodes.balancer import Backend, LoadBalancer
from nodes.canary import LIVE, ROLLED_BACK, Canary
from tests.common.hostile import HOSTILE

STABLE = ["b0", "b1", "b2"]


def split_cluster(seed: int, canary: dict, error_rate: float = 0.0, hostile: bool = True):
    """A balancer over three good backends and a canary; hostile links between balancer and backends."""
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.002))
    for name in STABLE:
        sim.add_node(name, Backend, service_time=em.Exponential(0.005), concurrency=8)
    sim.add_node("canary", Backend, service_time=em.Exponential(0.005), concurrency=8, error_rate=error_rate)
    sim.add_node(
        "lb", LoadBalancer, backends=STABLE, health_interval=None, timeout=0.5, canary={"backend": "canary", **canary}
    )
    if hostile:
        for name in [*STABLE, "canary"]:
            sim.network.set_link("lb", name, **HOSTILE)
    return sim


def drive(sim, requests: int, clients: int = 20, gap: float = 0.002, prefix: str = "c"):
    """Send ``requests`` requests through lb from ``clients`` clients; returns (client, sent at, outcome) rows."""
    nodes = [sim.add_client(f"{prefix}{i}") for i in range(clients)]
    rows = []

    async def one(client, i):
        t = sim.now
        try:
            reply = await client.rpc("lb", {"type": "request", "key": i, "client": client.name}, timeout=2.0)
            rows.append((client.name, t, reply["backend"]))
        except (em.RPCError, em.Timeout) as exc:
            rows.append((client.name, t, exc))

    async def run():
        tasks = []
        for i in range(requests):
            tasks.append(asyncio.ensure_future(one(nodes[i % clients], i)))
            await asyncio.sleep(gap)
        await asyncio.gather(*tasks)

    sim.run(run())
    return rows


def test_a_healthy_canary_gets_its_share_and_stays():
    """weight 0.1 over 3000 requests under a hostile network: within four standard deviations of 300.

    Never rolled back.
    """
    sim = split_cluster(seed=1, canary={"weight": 0.1, "error_threshold": 0.5, "min_requests": 20, "window": 50})
    drive(sim, 3000)
    canary = sim.node("lb").canary
    assert abs(canary.stats["sent"] - 300) < 4 * (3000 * 0.1 * 0.9) ** 0.5
    assert canary.state == LIVE


def test_a_failing_canary_is_rolled_back_and_gets_nothing_after():
    """A canary failing every request is rolled back at its min_requests-th outcome; later requests avoid it."""
    sim = split_cluster(
        seed=2,
        canary={"weight": 0.2, "error_threshold": 0.5, "min_requests": 10, "window": 20},
        error_rate=1.0,
        hostile=False,
    )
    arrivals = []
    canary_node = sim.node("canary")
    original = canary_node.handle_request

    async def counted(msg):
        arrivals.append(sim.now)
        return await original(msg)

    canary_node.handle_request = counted
    rows = drive(sim, 1000)
    canary = sim.node("lb").canary
    assert canary.state == ROLLED_BACK and canary.finished == canary.stats["sent"]
    assert canary.stats["failed"] == 10 + canary.in_flight_at_rollback > 10  # the verdict, plus what was in flight
    assert all(t <= canary.rolled_back_at for t in arrivals)
    failed = [r for r in rows if isinstance(r[2], em.RPCError)]
    assert len(failed) == canary.stats["failed"]  # every error a client saw was the canary's, before the rollback
    events = [e for e in sim.events if e["what"] == "canary"]
    assert [e["value"][:2] for e in events] == [["canary", "rolled-back"]]


def test_ab_splitting_by_client_keeps_each_client_on_one_side():
    """sticky='client': every client's requests all go to the canary or all to the stable pool."""
    sim = split_cluster(seed=3, canary={"weight": 0.3, "sticky": "client"}, hostile=False)
    rows = drive(sim, 2000, clients=200, gap=0.001)
    sides: dict[str, set] = {}
    for client, _, backend in rows:
        sides.setdefault(client, set()).add(backend == "canary")
    assert all(len(s) == 1 for s in sides.values())
    on_canary = sum(True in s for s in sides.values())
    assert 0.3 * 200 - 4 * (200 * 0.21) ** 0.5 < on_canary < 0.3 * 200 + 4 * (200 * 0.21) ** 0.5


@settings(max_examples=300, deadline=None)
@given(
    outcomes=st.lists(st.booleans(), max_size=80),
    min_requests=st.integers(1, 10),
    extra=st.integers(0, 10),
    threshold=st.sampled_from([0.1, 0.14, 0.28, 0.3, 0.5, 0.55, 1.0]),
)
def test_rollback_happens_exactly_when_the_window_reaches_the_threshold(outcomes, min_requests, extra, threshold):
    """Property: the canary rolls back at the first outcome with enough outcomes and a window at the threshold.

    The share is compared exactly, as the decimal the threshold was written as: 7 failures in 25 reach 0.28
    (in floats 0.28 * 25 is 7.000000000000001, which the code once compared the failures with).
    """
    window = min_requests + extra
    canary = Canary("c", weight=0.5, error_threshold=threshold, min_requests=min_requests, window=window)
    exact = fractions.Fraction(repr(threshold))
    expected = None
    for i in range(len(outcomes)):
        recent = outcomes[max(0, i + 1 - window) : i + 1]
        if expected is None and i + 1 >= min_requests and fractions.Fraction(sum(recent), len(recent)) >= exact:
            expected = i
    fired = []
    for i, failed in enumerate(outcomes):
        canary.sent()
        if canary.finished_request(failed, float(i)):
            fired.append(i)
    assert fired == ([] if expected is None else [expected])
    assert canary.state == (LIVE if expected is None else ROLLED_BACK)
    assert not canary.takes("x", random.Random(0)) or expected is None


@pytest.mark.parametrize("threshold, window, failures", [(0.28, 25, 7), (0.14, 50, 7), (0.07, 100, 7), (0.55, 100, 55)])
def test_a_share_exactly_at_the_threshold_rolls_back(threshold, window, failures):
    """Found by a review: 7 failures of 25 are a share of 0.28, which reaches error_threshold 0.28; no rollback."""
    canary = Canary("c", weight=0.1, error_threshold=threshold, min_requests=window, window=window)
    for i, failed in enumerate([True] * failures + [False] * (window - failures)):
        canary.sent()
        canary.finished_request(failed, float(i))
    assert canary.state == ROLLED_BACK


@pytest.mark.parametrize(
    "canary, match",
    [
        ({"backend": "canary", "weight": 1.5}, "weight is the share"),
        ({"backend": "b0"}, "must not also be in backends"),
        ({"backend": "canary", "window": 5, "min_requests": 10}, "must hold at least min_requests"),
        ({"backend": "canary", "sticky": "user"}, "sticky must be 'request' or 'client'"),
        ({"backend": "canary", "speed": 3}, "canary: .*speed.*settings: backend, weight"),
        ("canary", "canary must be a table"),
    ],
)
def test_bad_canary_settings_say_what_to_do(canary, match):
    """A misconfigured canary fails when the balancer is built, naming the fix."""
    sim = em.Simulation()
    with pytest.raises(em.ConfigError, match=match):
        sim.add_node("lb", LoadBalancer, backends=STABLE, canary=canary)


def test_a_rollback_is_final_across_a_crash_of_the_balancer():
    """Rolled back, the balancer crashes and restarts: the canary stays rolled back and gets no more requests."""
    sim = split_cluster(
        seed=4,
        canary={"weight": 0.3, "error_threshold": 0.5, "min_requests": 5, "window": 10},
        error_rate=1.0,
        hostile=False,
    )
    drive(sim, 200)
    assert sim.node("lb").canary.state == ROLLED_BACK
    rolled_back_at = sim.node("lb").canary.rolled_back_at
    sim.crash("lb")
    sim.restart("lb")
    rows = drive(sim, 200, prefix="d")
    canary = sim.node("lb").canary
    assert canary.state == ROLLED_BACK and canary.rolled_back_at == rolled_back_at
    assert canary.stats["sent"] == 0 and not any(isinstance(outcome, Exception) for _, _, outcome in rows)
