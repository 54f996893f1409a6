"""The API gateway: tokens, per-client limits (per replica and shared, through a partition), routes, deadlines."""

import asyncio

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import emulator as em
from nodes.discovery import Instance, Registry
from nodes.gateway import Gateway, TokenBucket
from tests.common.hostile import HOSTILE

TOKENS = {"t-alice": "alice", "t-bob": "bob"}
GATEWAYS = ["g0", "g1", "g2"]


class Echo(em.Node):
    """Answers a request with the fields the gateway set, after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay

    async def handle_request(self, msg):
        await asyncio.sleep(self.delay)
        body = msg.body
        return {
            "type": "request_ok",
            "by": self.name,
            "client": body.get("client"),
            "deadline": body.get("deadline"),
            "token": body.get("token"),
        }


def gateway_sim(seed=1, **config):
    sim = em.Simulation(seed=seed, latency=em.Constant(0.001))
    sim.add_node("users", Echo)
    sim.add_node("admin", Echo)
    sim.add_node("slow", Echo, delay=2.0)
    settings = {
        "routes": {"/users": "users", "/users/admin": "admin", "/slow": "slow"},
        "services": {"users": ["users"], "admin": ["admin"], "slow": ["slow"]},
        "tokens": TOKENS,
        "rate": 1000.0,
        "burst": 100.0,
        "deadline": 0.5,
        **config,
    }
    sim.add_node("g0", Gateway, **settings)
    return sim, sim.add_client("c0")


def call(sim, client, body, dest="g0"):
    try:
        return sim.run(client.rpc(dest, {"type": "request", **body}, timeout=5.0))
    except em.RPCError as exc:
        return exc


def test_a_request_needs_a_valid_token_and_the_refusal_is_definite():
    """No token, or an unknown one: error 14, definite, and nothing reaches a service."""
    sim, client = gateway_sim()
    for body in ({"path": "/users/1"}, {"path": "/users/1", "token": "t-eve"}):
        error = call(sim, client, body)
        assert isinstance(error, em.RPCError) and error.code == 14 and error.definite and "unauthorized" in error.text
    ok = call(sim, client, {"path": "/users/1", "token": "t-alice"})
    assert ok["client"] == "alice" and ok["token"] is None  # the token stays at the gateway
    assert sim.node("g0").stats["forwarded"] == 1


def test_the_longest_matching_prefix_routes_and_an_unknown_path_is_error_10():
    """/users/admin/x goes to admin, /users/7 and /users to users, /usersx and /orders nowhere."""
    sim, client = gateway_sim()
    routed = {
        path: call(sim, client, {"path": path, "token": "t-bob"})
        for path in ("/users/admin/x", "/users/7", "/users", "/usersx", "/orders")
    }
    assert routed["/users/admin/x"]["by"] == "admin" and routed["/users/7"]["by"] == routed["/users"]["by"] == "users"
    assert all(isinstance(routed[p], em.RPCError) and routed[p].code == 10 for p in ("/usersx", "/orders"))


def test_the_deadline_left_is_passed_downstream_and_bounds_the_wait():
    """The service sees the seconds left (the client's own deadline if shorter); a slow one costs exactly that long."""
    sim, client = gateway_sim()
    seen = call(sim, client, {"path": "/users/1", "token": "t-bob"})["deadline"]
    assert 0.5 - 0.002 < seen <= 0.5
    assert 0.2 - 0.002 < call(sim, client, {"path": "/users/1", "token": "t-bob", "deadline": 0.2})["deadline"] <= 0.2
    start = sim.now
    error = call(sim, client, {"path": "/slow", "token": "t-bob"})
    assert error.code == 0 and not error.definite and sim.now - start == pytest.approx(0.5 + 0.002, abs=1e-6)


def test_a_client_gets_burst_plus_rate_times_t_from_one_replica():
    """Sending at 4x its rate for 2 s, a client is admitted at most burst + rate * 2, and refused with error 11."""
    sim, client = gateway_sim(rate=50.0, burst=10.0)
    outcomes = []

    async def run():
        for _ in range(400):
            try:
                await client.rpc("g0", {"type": "request", "path": "/users/1", "token": "t-alice"})
                outcomes.append("ok")
            except em.RPCError as exc:
                outcomes.append(exc.code)
            await asyncio.sleep(0.005 - 0.002)  # 200 requests a second, round trip included

    sim.run(run())
    admitted = outcomes.count("ok")
    assert 10 + 50 * sim.now * 0.95 <= admitted <= 10 + 50 * sim.now
    assert set(outcomes) == {"ok", 11}


def test_a_restart_forgets_the_buckets_so_a_window_across_it_admits_up_to_burst_more():
    """A client drains g0's bucket, g0 crashes and restarts at once: within 0.2 s it is admitted burst + rate * t
    and then up to burst more, as the docstring bounds it (one incarnation's limit does not span a restart)."""
    sim, client = gateway_sim(rate=5.0, burst=10.0)

    async def burst_of(n):
        admitted = 0
        for _ in range(n):
            try:
                await client.rpc("g0", {"type": "request", "path": "/users/1", "token": "t-alice"}, timeout=1.0)
                admitted += 1
            except em.RPCError:
                pass
        return admitted

    async def run():
        start = sim.now
        first = await burst_of(15)
        sim.crash("g0")
        sim.restart("g0")
        second = await burst_of(15)
        return first + second, sim.now - start

    admitted, elapsed = sim.run(run())
    assert elapsed < 0.2
    assert 10 + 5.0 * elapsed < admitted <= 2 * 10 + 5.0 * elapsed


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(1, 100),
    burst=st.integers(1, 20),
    steps=st.lists(st.tuples(st.floats(0, 0.5), st.integers(0, 3)), max_size=60),
)
def test_a_token_bucket_never_admits_more_than_burst_plus_rate_times_t(rate, burst, steps):
    """Property: over any stretch of time t, takes admitted <= burst + rate * t."""
    now = [0.0]
    bucket = TokenBucket(rate, burst, lambda: now[0])
    admitted = []
    for dt, tries in steps:
        now[0] += dt
        admitted += [now[0]] * sum(bucket.take() for _ in range(tries))
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= burst + rate * (admitted[j] - start) + 1e-9


def _limited_gateways(sim: em.Simulation, limiter: str) -> None:
    """The users service behind GATEWAYS, each limiting bob to 50/s (burst 5) with ``limiter``."""
    sim.add_node("users", Echo)
    for name in GATEWAYS:
        sim.add_node(
            name,
            Gateway,
            routes={"/users": "users"},
            services={"users": ["users"]},
            tokens=TOKENS,
            rate=50.0,
            burst=5.0,
            limiter=limiter,
            replicas=GATEWAYS,
            sync_interval=0.05,
        )


def limiter_run(limiter: str, partition: bool, seed: int = 3) -> float:
    """Admitted requests per second for one client spreading 600/s over three gateways for 4 s (limit 50/s)."""
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.002))
    _limited_gateways(sim, limiter)
    for a in GATEWAYS:
        for b in GATEWAYS:
            if a < b:
                sim.network.set_link(a, b, **HOSTILE)
    clients = [sim.add_client(f"c{i}") for i in range(3)]
    if partition:
        sim.network.partition(["g0", "c0"], ["g1", "g2", "c1", "c2"])  # the service, in neither, reaches both

    async def spray(client, gateway):
        while sim.now < 4.0:
            sim.loop.create_task(_quiet(client.rpc(gateway, {"type": "request", "path": "/users", "token": "t-bob"})))
            await asyncio.sleep(1 / 200)

    async def run():
        await asyncio.gather(*(spray(c, g) for c, g in zip(clients, GATEWAYS)))
        await asyncio.sleep(0.5)

    sim.run(run())
    return sum(sim.node(g).admitted["bob"] for g in GATEWAYS) / 4.0


async def _quiet(coro):
    try:
        await coro
    except (em.RPCError, em.Timeout):
        pass


def test_a_restarted_shared_replica_admits_at_the_rate_and_the_others_count_what_it_admits():
    """Shared limiter, 50/s: bob sends 100/s to g0 for 5 s, g1 restarts, then bob sends 100/s to g1 for 2 s and to
    g2 for 2 s more. g1 admits about 50/s (it does not charge itself for the 250 admitted before it started), and
    over the last 4 s the cluster admits about 50/s (g2 counts what g1 admitted since its restart)."""
    sim = em.Simulation(seed=1, latency=em.Uniform(0.001, 0.002))
    _limited_gateways(sim, "shared")
    client = sim.add_client("c0")

    async def spray(gateway, until):
        while sim.now < until:
            sim.loop.create_task(_quiet(client.rpc(gateway, {"type": "request", "path": "/users", "token": "t-bob"})))
            await asyncio.sleep(1 / 100)

    async def run():
        await spray("g0", 5.0)
        sim.crash("g1")
        sim.restart("g1")
        await spray("g1", 7.0)
        await spray("g2", 9.0)
        await asyncio.sleep(0.5)

    sim.run(run())
    on_g1, on_g2 = sim.node("g1").admitted["bob"], sim.node("g2").admitted["bob"]
    assert 50 * 2 * 0.9 <= on_g1 <= 50 * 2 * 1.1 + 5, on_g1
    assert 50 * 4 * 0.9 <= on_g1 + on_g2 <= 50 * 4 * 1.1 + 5, (on_g1, on_g2)


@pytest.mark.parametrize(
    "limiter, partition, low, high",
    [
        ("local", False, 3 * 50, 3 * 50 * 1.1),  # each replica alone: three times the limit
        ("shared", False, 50 * 0.9, 50 * 1.3),  # synced: about the limit
        ("shared", True, 2 * 50 * 0.9, 2 * 50 * 1.2),  # cut in two: each side enforces it alone
    ],
)
def test_the_limit_across_replicas_local_shared_and_partitioned(limiter, partition, low, high):
    """Per-replica limiters give R times the rate; shared ones the rate, and k times it across k partition sides."""
    assert low <= limiter_run(limiter, partition) <= high


def test_services_are_found_through_the_registry():
    """A route to a service with no static list resolves through the registry and round-robins its instances."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("r0", Registry)
    for name in ("u0", "u1"):
        sim.add_node(name, Instance, service="users", registries=["r0"], service_time=em.Constant(0.001))
    sim.add_node("g0", Gateway, routes={"/users": "users"}, registries=["r0"])
    client = sim.add_client("c0")

    async def run():
        await asyncio.sleep(0.1)
        return [(await client.rpc("g0", {"type": "request", "path": "/users"}))["backend"] for _ in range(4)]

    assert sim.run(run(), until=5) == ["u0", "u1", "u0", "u1"]


@pytest.mark.parametrize(
    "config, match",
    [
        ({"routes": {"users": "users"}}, "routes must map path prefixes"),
        ({"routes": {"/users": "users"}}, "add them to services or give registries"),
        ({"routes": {"/u": "u"}, "services": {"u": ["u0"]}, "limiter": "global"}, "limiter must be 'local'"),
        ({"routes": {"/u": "u"}, "services": {"u": ["u0"]}, "burst": 0.5}, "burst must be at least 1"),
    ],
)
def test_bad_config_says_what_to_do(config, match):
    """A misconfigured gateway fails at construction, naming the fix."""
    with pytest.raises(em.ConfigError, match=match):
        em.Simulation().add_node("g0", Gateway, **config)


def test_the_pool_forwards_max_in_flight_queues_in_order_and_refuses_beyond_the_queue():
    """max_in_flight=2, queue_limit=1, a 2 s service: two forwarded, one waits, the fourth is refused (11)."""
    sim, client = gateway_sim(max_in_flight=2, queue_limit=1, deadline=10.0)
    others = [sim.add_client(f"c{i}") for i in range(1, 4)]

    async def run():
        calls = [
            c.rpc("g0", {"type": "request", "path": "/slow", "token": "t-bob"}, timeout=20) for c in [client, *others]
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    replies = sim.run(run())
    assert [type(r).__name__ for r in replies] == ["dict", "dict", "dict", "RPCError"]
    assert replies[3].code == 11 and "gateway busy" in replies[3].text
    assert sim.node("g0").stats["peak_in_flight"] == 2 and sim.now == pytest.approx(4.0, abs=0.01)


def test_without_propagation_no_deadline_goes_downstream_and_the_gateway_waits_its_own():
    """propagate_deadline=False: the service sees no deadline, and a client's shorter one is ignored."""
    sim, client = gateway_sim(propagate_deadline=False, deadline=3.0)
    assert call(sim, client, {"path": "/users/1", "token": "t-bob", "deadline": 0.1})["deadline"] is None
    assert call(sim, client, {"path": "/slow", "token": "t-bob", "deadline": 0.1})["type"] == "request_ok"


def test_an_instance_whose_breaker_is_open_gets_no_requests():
    """Two instances, one dead: after five timeouts its breaker opens and every request goes to the other."""
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    for name in ("u0", "u1"):
        sim.add_node(name, Echo)
    sim.add_node(
        "g0",
        Gateway,
        routes={"/users": "users"},
        services={"users": ["u0", "u1"]},
        deadline=0.2,
        breaker={"failure_threshold": 5, "reset_timeout": 60.0},
    )
    client = sim.add_client("c0")
    sim.crash("u1")

    async def run():
        outcomes = []
        for _ in range(40):
            try:
                outcomes.append((await client.rpc("g0", {"type": "request", "path": "/users"}))["by"])
            except em.RPCError as exc:
                outcomes.append(exc.code)
        return outcomes

    outcomes = sim.run(run())
    assert outcomes.count(0) == 5 and outcomes[-20:] == ["u0"] * 20


class Ledger(em.Node):
    """A service that logs the ``"n"`` of every request it receives (into the test's list) and answers it."""

    def __init__(self, received: list):
        self.received = received

    async def handle_request(self, msg):
        self.received.append(msg.body.get("n"))
        await asyncio.sleep(0.002)
        return {"type": "request_ok", "n": msg.body.get("n")}


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    duplicate=st.floats(0.1, 0.8),
    reorder=st.floats(0.0, 0.8),
    burst=st.integers(1, 4),
    max_in_flight=st.sampled_from([None, 1, 2]),
)
@example(seed=0, duplicate=0.5, reorder=0.5, burst=1, max_in_flight=None)
def test_a_duplicated_request_goes_downstream_once_and_a_definite_refusal_means_it_went_nowhere(
    seed, duplicate, reorder, burst, max_in_flight
):
    """Over a duplicating, reordering client link: each request reaches the service at most once, and one the
    client was refused (a definite error: rate limited, pool full) never reached it."""
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.004))
    received: list = []
    sim.add_node("svc", Ledger, received=received)
    sim.add_node(
        "g0",
        Gateway,
        routes={"/x": "svc"},
        services={"svc": ["svc"]},
        tokens=TOKENS,
        rate=50.0,
        burst=float(burst),
        max_in_flight=max_in_flight,
        queue_limit=0 if max_in_flight else 1000,
    )
    clients = [sim.add_client(f"c{i}") for i in range(3)]
    for client in clients:
        sim.network.set_link(
            client.name, "g0", duplicate=duplicate, reorder=reorder, latency=em.Pareto(0.001, 1.5, 0.05)
        )
    refused, numbers = [], iter(range(10**6))

    async def caller(client):
        for _ in range(20):
            n = next(numbers)
            try:
                await client.rpc("g0", {"type": "request", "path": "/x", "token": "t-alice", "n": n}, timeout=0.5)
            except em.RPCError as exc:
                if exc.definite:
                    refused.append(n)
            except em.Timeout:
                pass
            await asyncio.sleep(0.005)

    async def run():
        await asyncio.gather(*(caller(c) for c in clients))
        await asyncio.sleep(1.0)  # late copies land

    sim.run(run())
    twice = sorted({n for n in received if received.count(n) > 1})
    assert not twice, f"requests forwarded more than once: {twice}"
    assert refused and not set(refused) & set(received), "a request refused as definite reached the service"
