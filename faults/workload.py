"""A lin-kv workload: client processes issuing read, write and cas at a rate.

Drives any store that speaks Maelstrom's lin-kv protocol (``read``,
``write``, ``cas``; see :mod:`nodes.kv`) and keeps the history checkable by
following Jepsen's process model:

- each client process has at most one operation in flight: it waits for the
  reply (or its timeout) before the next;
- an operation that ends ``info`` (a timeout, an indefinite error) retires
  the process and a fresh process id takes its place (``emulator.Client``
  does this), since the old op may still take effect at any later time.

Rate: closed loop per process with an exponential think time. ``rate`` is
operations per second over all clients together (Jepsen's ``--rate``): each
client waits ``Exponential(clients / rate)`` seconds before each op, so the
offered rate is ``rate`` when replies are fast and less when they are slow.

Keys are the ints ``0 .. keys-1``. ``distribution = "uniform"`` picks one
uniformly; ``"hot-key"`` sends a fraction ``hot`` of operations to key 0 and
spreads the rest uniformly over the other keys. Written values are unique
ints (1, 2, 3, ... across all clients), which keeps the linearizability
search small. A ``cas`` goes from the value last seen for its key (written or
read ok by any client) to a fresh value, so some succeed and some find
another value (error 22, a definite ``fail``).

``unique`` (default 0) sends that fraction of writes to a fresh key
(``"u1"``, ``"u2"``, ...) that no other operation ever writes: a set
workload inside the register workload. On a shared key a later write hides
an earlier one from any checker; a fresh key's final read shows whether its
one acknowledged write survived, so lost writes stay visible. ``written``
lists every key written.

``single_writer`` (default false) gives each key one writer: client ``i``
writes and cas-es only the keys ``k`` with ``k % clients == i`` (its fresh
``unique`` keys too), and reads any key; a client with no key of its own
reads where it would have written: a history where every write to a key
comes from one process, as some guarantees and checks ask.

``final_reads`` (Jepsen's final generator): once the traffic ends, the first
client reads every key written, retrying each a few times, so the lost-write
checker has a final read of every key. ``read_all`` does it on demand.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import emulator as em
from faults.spec import ParamError, check_choice, check_count, check_number

if TYPE_CHECKING:
    from faults.target import FaultTarget

__all__ = ["OPERATIONS", "Workload"]

OPERATIONS = ("read", "write", "cas")
#: The most clients a workload may have: each is a node of the simulation.
MAX_CLIENTS = 100_000
#: The most keys: a run's final reads, and its checks of the replicas, go over every one.
MAX_KEYS = 1_000_000


@dataclass
class Workload:
    """What the clients do: how many, how fast, on which keys, which operations.

    Args:
        clients: client processes (nodes ``c0``, ``c1``, ...), at most ``MAX_CLIENTS``.
        rate: operations per second offered over all clients.
        keys: how many keys (ints from 0), at most ``MAX_KEYS``.
        distribution: ``"uniform"`` or ``"hot-key"``.
        hot: with ``hot-key``, the fraction of operations on key 0.
        mix: ``{operation: weight}`` over read, write, cas.
        timeout: seconds a client waits for a reply before recording ``info``.
        duration: seconds of traffic; None runs until stopped.
        routing: ``"random"`` (each op to a random server) or ``"bound"``
            (client i always asks server i mod n, as Jepsen binds processes to nodes).
        unique: the fraction of writes that go to a fresh key (see the module doc).
        single_writer: each key written by one client only (see the module doc).
        final_reads: read every written key once the traffic ends (see the module doc).
    """

    clients: int = 3
    rate: float = 10.0
    keys: int = 3
    distribution: str = "uniform"
    hot: float = 0.8
    mix: Mapping[str, float] = field(default_factory=lambda: {"read": 0.5, "write": 0.4, "cas": 0.1})
    timeout: float = 1.0
    duration: float | None = None
    routing: str = "random"
    unique: float = 0.0
    single_writer: bool = False
    final_reads: bool = False

    #: how many times a final read is tried before the key is left unread
    READ_ATTEMPTS = 5

    def __post_init__(self):
        check_count("clients", self.clients, high=MAX_CLIENTS)
        check_number("rate", self.rate, low=0.0, strict_low=True)
        check_count("keys", self.keys, high=MAX_KEYS)
        check_choice("distribution", self.distribution, ("uniform", "hot-key"))
        check_number("hot", self.hot, low=0.0, high=1.0)
        check_number("timeout", self.timeout, low=0.0, strict_low=True)
        if self.duration is not None:
            check_number("duration", self.duration, low=0.0)
        check_choice("routing", self.routing, ("random", "bound"))
        check_number("unique", self.unique, low=0.0, high=1.0)
        for flag in ("single_writer", "final_reads"):
            if not isinstance(getattr(self, flag), bool):
                raise ParamError(flag, getattr(self, flag), "true or false")
        if not isinstance(self.mix, Mapping) or not self.mix:
            raise ParamError("mix", self.mix, "a table of operation weights, e.g. {read = 0.5, write = 0.5}")
        for op, weight in self.mix.items():
            check_choice("mix", op, OPERATIONS)
            check_number(f"mix.{op}", weight, low=0.0)
        if not sum(self.mix.values()) > 0:
            raise ParamError("mix", dict(self.mix), "at least one operation with a weight > 0")

    def client_names(self) -> list[str]:
        """The client nodes' names: ``c0``, ``c1``, ..."""
        return [f"c{i}" for i in range(self.clients)]

    def add_clients(self, sim: em.Simulation) -> list[em.Client]:
        """Add the client nodes ``c0``.. to ``sim`` (on a real cluster, ``await cluster.add_client`` each name)."""
        return [sim.add_client(name) for name in self.client_names()]

    def start(self, sim: FaultTarget, clients: list[em.Client] | None = None) -> asyncio.Task[None]:
        """Start the traffic as a task on ``sim``'s loop; it runs while the simulation runs.

        Call from outside ``sim.run`` (then ``sim.run(until=...)`` or
        ``Schedule.play``), or from inside it. Adds the clients when not given.
        ``sim`` may be a ``RealCluster`` (with ``clients`` given): the traffic
        then runs in real time, paced by ``asyncio.sleep`` and ``sim.now``.
        """
        if clients is None:
            if not isinstance(sim, em.Simulation):
                raise em.ConfigError(
                    "Workload.start on a real cluster needs its clients: "
                    "clients = [await cluster.add_client(name) for name in workload.client_names()]"
                )
            clients = self.add_clients(sim)
        return sim.loop.create_task(self.run(sim, clients), name="workload")

    async def run(self, sim: FaultTarget, clients: list[em.Client]) -> None:
        """Drive ``clients`` until ``duration`` seconds have passed since the call."""
        until = math.inf if self.duration is None else sim.now + self.duration
        state = self._state = _Shared()
        await asyncio.gather(*(self._process(sim, client, i, until, state) for i, client in enumerate(clients)))
        if self.final_reads and clients:
            await self.read_all(sim, clients[0])

    async def read_all(self, sim, client: em.Client, keys: list | None = None, servers: list[str] | None = None) -> int:
        """Read each key (default: the shared keys and every key written), trying servers in turn.

        A read answered "no such key" counts as read. Returns how many keys were read.
        """
        servers = servers or sim.servers
        keys = keys if keys is not None else [*range(self.keys), *(k for k in self.written if not isinstance(k, int))]
        done = 0
        for i, key in enumerate(keys):
            for attempt in range(self.READ_ATTEMPTS):
                try:
                    await client.invoke(
                        "read", key=key, dest=servers[(i + attempt) % len(servers)], timeout=self.timeout
                    )
                except em.RPCError as exc:
                    if exc.code != 20:
                        await asyncio.sleep(self.timeout)
                        continue
                except em.Timeout:
                    continue
                done += 1
                break
        return done

    def drain(self) -> float:
        """Seconds after ``duration`` the traffic may still run: the last timeouts, and the final reads.

        No think time runs past ``duration``: a process whose next op would start later stops at it.
        """
        if not self.final_reads:
            return self.timeout
        keys = self.keys + sum(1 for k in self.written if not isinstance(k, int))
        return self.timeout + keys * self.READ_ATTEMPTS * 2 * self.timeout

    async def _process(self, sim, client: em.Client, index: int, until: float, state: _Shared) -> None:
        rng = sim.rng(f"workload:{client.name}")
        think = self.clients / self.rate
        ops, weights = list(self.mix), list(self.mix.values())
        while True:
            # The draw is made whatever happens, so the choices stay those of the seed; a think time
            # that would end after ``until`` is cut there, so the final reads start within drain().
            await asyncio.sleep(min(rng.expovariate(1.0 / think), max(until - sim.now, 0.0)))
            if sim.now >= until:
                return
            f = rng.choices(ops, weights=weights)[0]
            key: int | str = self._key(rng)
            if self.single_writer and f != "read":
                own = [k for k in range(index, self.keys, self.clients)]
                if not own:
                    f = "read"
                elif key not in own:
                    key = own[rng.randrange(len(own))]
            if f == "write" and self.unique and rng.random() < self.unique:
                key = f"u{next(state.fresh)}"
            value = self._value(f, key, state)
            if f != "read":
                state.written.setdefault(key, None)
            dest = sim.servers[index % len(sim.servers)] if self.routing == "bound" else None
            try:
                reply = await client.invoke(f, key=key, value=value, dest=dest, timeout=self.timeout)
            except (em.RPCError, em.Timeout):
                continue
            state.last[key] = reply.get("value") if f == "read" else (value[1] if f == "cas" else value)

    def _key(self, rng) -> int:
        if self.distribution == "hot-key" and (self.keys == 1 or rng.random() < self.hot):
            return 0
        if self.distribution == "hot-key":
            return rng.randrange(1, self.keys)
        return rng.randrange(self.keys)

    def _value(self, f: str, key: int | str, state: _Shared):
        if f == "read":
            return None
        fresh = next(state.values)
        if f == "write":
            return fresh
        return [state.last.get(key, 0), fresh]

    @property
    def written(self) -> list:
        """Every key the last run wrote (or tried to), in the order first written."""
        state = getattr(self, "_state", None)
        return list(state.written) if state is not None else []

    def to_dict(self) -> dict:
        """The workload as plain data (a scenario's ``[workload]`` table)."""
        out = {
            "clients": self.clients,
            "rate": self.rate,
            "keys": self.keys,
            "distribution": self.distribution,
            "hot": self.hot,
            "mix": dict(self.mix),
            "timeout": self.timeout,
            "routing": self.routing,
            "unique": self.unique,
            "single_writer": self.single_writer,
            "final_reads": self.final_reads,
        }
        if self.duration is not None:
            out["duration"] = self.duration
        return out


class _Shared:
    """What the processes of one workload share: the value counter and the last value seen per key."""

    def __init__(self):
        self.values = itertools.count(1)
        self.fresh = itertools.count(1)
        self.last: dict[int | str, object] = {}  # str: a fresh key (unique)
        self.written: dict = {}  # keys written, in order (a dict as an ordered set)
