"""Small protocols for the tests of faults/: traffic to watch, and a store that is wrong on purpose."""

import asyncio

import emulator as em
from faults import Cluster, Network, Phase, Scenario, Workload, validate_check
from nodes.quorum import QuorumKV


class Pinger(em.Node):
    """Pings every peer every ``interval`` seconds; logs each ping it gets into the shared ``log``.

    ``log`` is a list the test owns (config survives restarts): entries are
    ``(arrival time, src, dst, seq, sent time)`` in true virtual time. Also
    answers ``clock`` with its own clock reading and ``echo`` with its body.
    """

    def __init__(self, log: list, interval: float = 0.01):
        self.pings = log
        self.interval = interval

    async def on_start(self):
        self.spawn(self._pings())

    async def _pings(self):
        loop = asyncio.get_running_loop()
        seq = 0
        while True:
            await asyncio.sleep(self.interval)
            seq += 1
            for peer in self.peers:
                self.send(peer, {"type": "ping", "seq": seq, "sent": loop.time()})

    async def handle_ping(self, msg):
        now = asyncio.get_running_loop().time()
        self.pings.append((now, msg.src, self.name, msg.body["seq"], msg.body["sent"]))

    async def handle_clock(self, msg):
        return {"type": "clock_ok", "now": self.now()}

    async def handle_echo(self, msg):
        return {"type": "echo_ok"}


def pingers(n=3, seed=1, interval=0.01, **sim_kwargs):
    """A Simulation of ``n`` Pingers (n0..) sharing one log, plus a client c0; returns (sim, log)."""
    log: list = []
    sim = em.Simulation(seed=seed, **sim_kwargs)
    for i in range(n):
        sim.add_node(f"n{i}", Pinger, log=log, interval=interval)
    sim.add_client("c0")
    return sim, log


def heard(log, start, end):
    """{(src, dst): pings delivered} for pings sent and delivered within ``[start, end)``."""
    counts: dict = {}
    for arrival, src, dst, _, sent in log:
        if start <= sent and arrival < end:
            counts[(src, dst)] = counts.get((src, dst), 0) + 1
    return counts


class LocalKV(em.Node):
    """An AP store that is wrong on purpose: local reads and writes, fire-and-forget replication.

    Not linearizable: a read on one node misses a write acknowledged on
    another until the replication message arrives, and forever when a
    partition drops it.
    """

    def __init__(self):
        self.data = {}

    async def handle_read(self, msg):
        key = msg.body["key"]
        if key not in self.data:
            raise em.RPCError(20, f"key {key!r} does not exist")
        return {"type": "read_ok", "value": self.data[key]}

    async def handle_write(self, msg):
        self._set(msg.body["key"], msg.body["value"])
        return {"type": "write_ok"}

    async def handle_cas(self, msg):
        key = msg.body["key"]
        if key not in self.data:
            raise em.RPCError(20, f"key {key!r} does not exist")
        if self.data[key] != msg.body["from"]:
            raise em.RPCError(22, f"expected {msg.body['from']!r}")
        self._set(key, msg.body["to"])
        return {"type": "cas_ok"}

    async def handle_replicate(self, msg):
        self.data[msg.body["key"]] = msg.body["value"]

    def _set(self, key, value):
        self.data[key] = value
        for peer in self.peers:
            self.send(peer, {"type": "replicate", "key": key, "value": value})


def first_server(sim):
    """A primary callback for isolate-primary: the first server."""
    return sim.servers[0]


def small_scenario(protocol="lin-kv", nodes=3, duration=4.0, faults=None, checks=("linearizable",), **workload):
    """A Scenario built in Python: one phase with ``faults``, traffic throughout."""
    options = {"clients": 3, "rate": 40.0, "keys": 2, "timeout": 0.3, "duration": duration, **workload}
    return Scenario(
        cluster=Cluster(protocol, nodes),
        workload=Workload(**options),
        phases=[Phase("main", duration, faults)],
        network=Network(latency=em.Uniform(0.001, 0.003)),
        checks={name: validate_check(name, {}) for name in checks},
        name="small",
    )


class BuggyKV(LocalKV):
    """LocalKV with a bug in cas: the handler raises (answered as error 13, kept in sim.errors)."""

    async def handle_cas(self, msg):
        raise KeyError(f"bug handling cas on {msg.body['key']!r}")


class EveryCopyKV(em.Node):
    """lin-kv's leader design with the bug the hostile network exists to catch: every copy of a request applies.

    n0 holds every key; other nodes forward to it. Nothing identifies a
    request, so a duplicated write or cas applies once per copy that arrives:
    a late copy of an old write overwrites newer ones, and a cas that took
    effect can be answered by its second copy's "precondition failed".
    """

    async def _serve(self, msg):
        if self.name != "n0":
            body = {k: v for k, v in msg.body.items() if k != "msg_id"}
            return await self.rpc("n0", body, timeout=1.0)
        data = self.storage.setdefault("data", {})
        key, kind = msg.body["key"], msg.body["type"]
        if kind != "write" and key not in data:
            raise em.RPCError(20, f"key {key!r} does not exist")
        if kind == "read":
            return {"type": "read_ok", "value": data[key]}
        if kind == "cas" and data[key] != msg.body["from"]:
            raise em.RPCError(22, f"expected {msg.body['from']!r}, found {data[key]!r}")
        data[key] = msg.body["value"] if kind == "write" else msg.body["to"]
        return {"type": f"{kind}_ok"}

    handle_read = handle_write = handle_cas = _serve


class EveryCopyQuorumKV(QuorumKV):
    """The quorum store without request ids: every copy of a write is coordinated, each a new version.

    A late copy of ``write(v)`` is stamped with the coordinator's clock when
    it arrives, so ``v`` comes back over the writes acknowledged since.
    """

    async def _once(self, msg):
        return await self._serve(msg.body)
