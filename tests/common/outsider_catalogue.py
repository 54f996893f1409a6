"""The outsider's targets beyond the CP stores: fronts over lin-kv, multi-primary, and the queue.

Each target is an :class:`~tests.common.outsider.Target` with its own
cluster (``build``), run by ``outsider.run`` under the same fault episodes
(partitions of every shape, flapping, crashes right after an ack, pauses,
clock jumps, elections, the hostile network), and judged by the guarantee
its module's docstring states:

- ``cache-*`` (:mod:`nodes.cache`): through one cache over lin-kv the
  history is linearizable, for each policy; write-behind only "while the
  cache lives", so a crash never takes the cache there (a pause may).
- ``balancer``, ``caller`` (:mod:`nodes.balancer`, :mod:`nodes.breaker`):
  a front that passes each request on with the client's request id keeps a
  linearizable store linearizable.
- ``multi-primary-*`` (:mod:`nodes.multiprimary`): replicas converge after
  the heal (anti-entropy on); the CRDT counter also counts every
  acknowledged add once and no add twice.
- ``registry-cp`` (:mod:`nodes.discovery`): a lookup lists every instance
  whose heartbeat was acknowledged before it began and cannot have expired
  yet (clocks in sync: no clock jumps).

The queue (:mod:`nodes.queue`, :mod:`nodes.queue_client`) has no
read/write traffic: :func:`run_queue` plays the same episodes over the
queue demo's cluster (three brokers, a publisher, a consumer group, a
sink) and checks at-least-once delivery of every acknowledged message and
order within a partition, plus what the idempotent producer and sink add.
"""

from __future__ import annotations

import asyncio

import emulator as em
from nodes import Cache, Caller, LoadBalancer, MultiPrimary, Registry, SingleKV, crdt
from tests.common.outsider import EPISODES, LATENCY, Run, Target, _diverged, _Faults, schedule
from tests.common.queue_cluster import measure, queue_cluster

STORES = ["n0", "n1", "n2"]


class EveryCopyCaller(Caller):
    """The breaker's caller as it was: every copy of a write forwarded, and answered, on its own."""

    handle_write = handle_cas = Caller._forward


def _stores(sim) -> None:
    """lin-kv on n0..n2, led by n0 (named, so a front whose name sorts first cannot lead)."""
    for name in STORES:
        sim.add_node(name, SingleKV, leader="n0")


def front(factory, **config):
    """A build: lin-kv on n0..n2 and ``factory`` in front of it as ``x0``."""

    def build(sim) -> None:
        _stores(sim)
        sim.add_node("x0", factory, **config)

    return build


def multi(resolution: str, **config):
    """A build: three multi-primary replicas, anti-entropy every 0.2 s."""

    def build(sim) -> None:
        for name in STORES:
            sim.add_node(name, MultiPrimary, resolution=resolution, anti_entropy=0.2, **config)

    return build


def _state(node, key):
    return node.data.get(key)


def _count(node, key) -> int | None:
    state = node.data.get(key)
    return None if state is None else crdt.counter_value(state)


class SetTraffic:
    """Add-wins set traffic: each client adds and removes elements of its own, one op in flight.

    Each element lives in one key and has a home replica that all its adds and removes go to, so a remove that
    follows an acknowledged add was applied where that add was: it observed it, and removes it. ``ops`` holds
    each element's ``(f, "ok" | "unsure" | "fail")`` in order (unsure: a timeout or an indefinite error).
    """

    ELEMENTS = 4  # per client

    def __init__(self, sim, clients, keys, target):
        self.sim, self.clients, self.keys, self.entry = sim, clients, keys, list(target.entry or sim.servers)
        self.ops: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.running = self.writing = True

    async def run(self) -> None:
        await asyncio.gather(*(self._client(c) for c in self.clients))

    async def _client(self, client) -> None:
        rng = self.sim.rng(f"outsider:{client.name}")
        elements = [f"{client.name}-e{j}" for j in range(self.ELEMENTS)]
        home = {e: rng.choice(self.entry) for e in elements}
        key_of = {e: rng.choice(self.keys) for e in elements}
        while self.running:
            if self.writing:
                element = rng.choice(elements)
                log = self.ops.setdefault((key_of[element], element), [])
                f = "remove" if log and log[-1][0] == "add" and rng.random() < 0.6 else "add"
                try:
                    await client.invoke(
                        f, key=key_of[element], dest=home[element], timeout=0.5, fields={"element": element}
                    )
                    log.append((f, "ok"))
                except em.Timeout:
                    log.append((f, "unsure"))
                except em.RPCError as exc:
                    log.append((f, "fail" if exc.definite else "unsure"))
            await asyncio.sleep(rng.uniform(0.0, 0.06))

    async def final_reads(self) -> None:
        pass


def orset_holds(outcome: Run) -> list[str]:
    """Replicas converge, and each element whose every op is known (none unsure) is in the set exactly when its last
    op that happened was an add: nothing acknowledged lost, no remove undone, no op applied twice out of turn."""
    found = _diverged(outcome)
    sim = outcome.sim
    node = next(sim.node(n) for n in sim.servers if sim.alive(n))
    for (key, element), log in sorted(outcome.traffic.ops.items()):
        done = [f for f, result in log if result == "ok"]
        if not done or any(result == "unsure" for _, result in log):
            continue
        state = node.data.get(key)
        present = state is not None and element in crdt.orset_value(state)
        if present != (done[-1] == "add"):
            found.append(f"{element} of {key!r} is {'in' if present else 'not in'} the set after {done}")
    return found


orset_holds.converges = True  # type: ignore[attr-defined]


def _front_target(name: str, build, **changes) -> Target:
    return Target(name, SingleKV, {}, 4, "linearizable", build=build, entry=("x0",), **changes)


CATALOGUE = {
    t.name: t
    for t in (
        *(
            _front_target(f"cache-{policy}", front(Cache, store=STORES, policy=policy, ttl=0.3, capacity=2))
            for policy in ("cache-aside", "write-through")
        ),
        # Write-behind is linearizable "while the cache lives": it may pause, never crash.
        _front_target(
            "cache-write-behind", front(Cache, store=STORES, policy="write-behind", ttl=0.3, capacity=2), spared=("x0",)
        ),
        _front_target(
            "balancer",
            front(LoadBalancer, backends=STORES, health_interval=None, timeout=0.4, eject_after=2, eject_time=0.3),
        ),
        _front_target(
            "caller",
            front(Caller, dependency="n0", timeout=0.4, breaker={"failure_threshold": 3, "reset_timeout": 0.2}),
        ),
        *(
            Target(f"multi-primary-{r}", MultiPrimary, {}, 3, "converge", build=multi(r), copy=_state, settle=3.0)
            for r in ("lww", "siblings")
        ),
        Target(
            "multi-primary-crdt-set",
            MultiPrimary,
            {},
            3,
            orset_holds,
            build=multi("crdt"),
            copy=_state,
            traffic=SetTraffic,
            settle=3.0,
        ),
        Target(
            "multi-primary-crdt",
            MultiPrimary,
            {},
            3,
            "counter",
            build=multi("crdt"),
            copy=_state,
            count=_count,
            traffic="counter",
            settle=3.0,
        ),
    )
}


class Heartbeats:
    """Registry traffic: each client is an instance of service "s" that heartbeats (a new beat each try) and looks up.

    ``beats`` holds ``(invoked, acknowledged, instance)`` of each acknowledged heartbeat and ``lookups``
    ``(invoked, answered, instances)`` of each answered lookup, in true (simulation) time.
    """

    TTL = 1.0

    def __init__(self, sim, clients, keys, target):
        self.sim, self.clients, self.entry = sim, clients, list(target.entry or sim.servers)
        self.beats: list[tuple] = []
        self.lookups: list[tuple] = []
        self.running = self.writing = True

    async def run(self) -> None:
        await asyncio.gather(*(self._instance(c) for c in self.clients))

    async def _instance(self, client) -> None:
        rng, beat = self.sim.rng(f"outsider:{client.name}"), 0
        while self.running:
            began = self.sim.now
            try:
                if rng.random() < 0.4:
                    beat += 1
                    await client.invoke(
                        "heartbeat",
                        dest=rng.choice(self.entry),
                        timeout=0.5,
                        fields={"service": "s", "instance": client.name, "ttl": self.TTL, "beat": beat},
                    )
                    self.beats.append((began, self.sim.now, client.name))
                else:
                    reply = await client.invoke(
                        "lookup", dest=rng.choice(self.entry), timeout=0.5, fields={"service": "s"}
                    )
                    self.lookups.append((began, self.sim.now, reply["instances"]))
            except (em.RPCError, em.Timeout):
                pass
            await asyncio.sleep(rng.uniform(0.0, 0.06))

    async def final_reads(self) -> None:
        pass


def fresh_lookups(outcome) -> list[str]:
    """CP registry: a lookup lists every instance whose heartbeat was acknowledged before it began, unless expired.

    A record taken at ``arrival`` expires at ``arrival + ttl``, and ``arrival`` is no earlier than the
    heartbeat's invocation, so a lookup answered before ``invoked + ttl`` must list the instance.
    """
    traffic, found = outcome.traffic, []
    for began, answered, instances in traffic.lookups:
        for invoked, acked, instance in traffic.beats:
            if acked < began and answered < invoked + traffic.TTL and instance not in instances:
                found.append(
                    f"lookup at {began:.3f}-{answered:.3f} misses {instance}, whose heartbeat of "
                    f"{invoked:.3f} was acknowledged at {acked:.3f} ({instances})"
                )
                break
    return found[:3]


def registries(mode: str):
    """A build: three registry replicas n0..n2 in ``mode``."""

    def build(sim) -> None:
        for name in STORES:
            sim.add_node(name, Registry, replicas=STORES, mode=mode)

    return build


# The CP registry's claim compares times from different replicas' clocks: it holds with clocks in sync.
CATALOGUE["registry-cp"] = Target(
    "registry-cp",
    Registry,
    {},
    3,
    fresh_lookups,
    tuple(e for e in EPISODES[:-1] if e != "jump"),
    build=registries("cp"),
    traffic=Heartbeats,
)

#: The queue's configurations: (acks, idempotent producer, idempotent sink).
QUEUE = {"queue": (1, False, False), "queue-idempotent": (1, True, True)}


def run_queue(name: str, seed: int, span: float = 2.5, count: int = 40) -> Run:
    """The queue demo's cluster under the schedule of ``seed``; the publisher is never crashed (its tally is memory)."""
    acks, idempotent, sink_idempotent = QUEUE[name]
    sim = queue_cluster(
        seed, acks, idempotent, sink_idempotent, count=count, every=span / count, network={"latency": LATENCY}
    )
    target = Target(name, None, {}, len(sim.servers), "delivered", EPISODES[:-1], spared=("p0",))
    outcome = Run(target, seed, schedule(seed, target, span), sim)
    sim.run(_play_queue(sim, outcome, span))
    outcome.violations = _judge_queue(outcome, idempotent, sink_idempotent)
    return outcome


async def _play_queue(sim, outcome: Run, span: float) -> None:
    faults = _Faults(sim, outcome.target)
    tasks = [asyncio.ensure_future(faults.episode(e)) for e in outcome.plan]
    await asyncio.sleep(span)
    faults.end()
    await asyncio.gather(*tasks)
    publisher = sim.node("p0")
    while len(publisher.acked) + len(publisher.unsure) < publisher.count and sim.now < span + 30:
        await asyncio.sleep(0.25)
    await asyncio.sleep(4.0)  # the group rebalances and consumes what is left


def _judge_queue(outcome: Run, idempotent: bool, sink_idempotent: bool) -> list[str]:
    found = [f"node error: {e}" for e in outcome.sim.errors[:1]]
    out = measure(outcome.sim)
    found += [f"acknowledged message {i} never applied" for i in out.lost[:3]]
    missing = [i for i in out.acked if i not in out.in_log]
    found += [f"acknowledged message {i} not in any log" for i in missing[:3]]
    if out.inversions_within():
        found.append(f"{out.inversions_within()} messages applied out of offset order within a partition")
    if idempotent and out.log_duplicates:
        found.append(f"the idempotent producer's log holds {out.log_duplicates} duplicates")
    if sink_idempotent and out.effect_duplicates:
        found.append(f"the idempotent sink applied {out.effect_duplicates} effects twice")
    return found
