"""A real cluster driven like a Simulation: ``RealCluster`` (its links: ``RealNetwork``).

The fault methods have the simulation's names and arguments
(``cluster.network.partition(["n1"], ["n2", "n3"])``, ``cluster.crash("n2")``),
so a fault schedule written against ``Simulation`` can drive real nodes.
Two differences, both forced by real time:

- A fault method returns at once with an ``asyncio.Future`` that is done
  when every node has applied it (``partition``, ``partition_oneway`` and
  ``isolate`` return the cut's id instead, an ``int`` for ``heal(id)`` as in
  the simulation, and awaitable the same way). Fire and forget it (as a
  schedule written for the simulation does) or ``await`` it. Calls reach
  each node in the order they were made, through the cluster's
  ``ControlPlane``. A misuse (an unknown node, a bad probability) raises at
  the call, as in the simulation.
- Time is wall-clock: ``cluster.now`` is seconds since the cluster object
  was made, and history times are in those seconds. Nothing is replayable.

Node faults: with node processes (``RealCluster.from_state``) ``crash`` is
SIGKILL, ``restart`` starts the same command again (storage survives through
its data directory), ``pause``/``resume`` are SIGSTOP/SIGCONT, a true
stop-the-world. With in-process hosts (``RealCluster.local``) ``crash``
stops the host, and ``pause`` is the soft pause of ``NodeHost``: inbox and
outbox wait, timers do not. Either way every fault lands in ``history`` as a
``nemesis`` op, as in the simulation, and a restarted node is brought up to
date with the cluster's current faults.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

from emulator.client import Client
from emulator.errors import ConfigError
from emulator.history import History
from emulator.node import Node
from emulator.rng import Streams
from emulator.transport.host import NodeHost
from emulator.transport.links import LinkFaults
from emulator.transport.network import RealNetwork
from emulator.transport.plane import ControlPlane, Fault
from emulator.transport.processes import (
    ClusterState,
    NodeProcess,
    node_running,
    reap,
    signal_node,
    spawn,
    stop,
    stopped,
    wait_healthy,
)
from emulator.transport.wire import JsonObject

__all__ = ["RealCluster"]


class RealCluster:
    """Real nodes, reached over HTTP, with the simulation's fault API.

    Made by ``await RealCluster.local(...)`` (hosts in this process) or
    ``await RealCluster.from_state(path)`` (node processes started by
    ``capsim cluster up``). Call ``await cluster.close()`` when done.

    Args:
        seed: the root of ``rng(name)`` streams (default: from the OS). The
            run is not replayable whatever the seed: timing is real.

    Attributes:
        network: the link faults (``RealNetwork``).
        control: the control plane both send their calls through (``ControlPlane``).
        history: client operations and faults, in wall-clock seconds since start.
        errors: control calls that failed, as dicts.
    """

    def __init__(
        self,
        urls: dict[str, str],
        token: str | None,
        *,
        faults: JsonObject | None = None,
        hosts: dict[str, NodeHost] | None = None,
        state: ClusterState | None = None,
        state_path: str | Path | None = None,
        seed: int | None = None,
    ):
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**63)
        self.streams = Streams(self.seed)
        self.token = token
        self._hosts = hosts  # in-process servers, or None for processes
        self._state, self._state_path = state, state_path
        self._faults = LinkFaults.from_json(faults or {})
        self.history = History()
        self._skews: dict[str, list[float]] = dict(state.skews) if state else {}
        self._processes = itertools.count()
        self._start = time.monotonic()  # wall-clock ok
        #: the loop the cluster runs on (fault policies start their own tasks on it, as on ``sim.loop``)
        self.loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession()
        self.control = ControlPlane(urls, token, self._session, lambda: self.now, self.record_nemesis)
        self.errors = self.control.errors
        self.network = RealNetwork(self.control, self._faults)

    # -- making one ---------------------------------------------------------------------

    @classmethod
    async def local(
        cls, nodes: dict[str, Any], token: str = "local-token", seed: int | None = None, **host_options: Any
    ) -> RealCluster:
        """Start ``nodes`` (name -> Node class, or (class, config)) as hosts in this process on loopback."""
        hosts = {}
        for name, spec in sorted(nodes.items()):
            factory, config = spec if isinstance(spec, tuple) else (spec, {})
            # one seed for all, as the launcher gives it: streams are named per node (see transport/launcher.py)
            hosts[name] = NodeHost(name, factory, config, token=token, seed=seed, **host_options)
        try:
            urls = {name: await host.listen() for name, host in hosts.items()}
            for host in hosts.values():
                host.peer_urls = {n: u for n, u in urls.items() if n != host.name}
            for host in hosts.values():
                await host.start()
        except BaseException:
            for host in hosts.values():
                await host.stop()
            raise
        return cls(urls, token, hosts=hosts, seed=seed)

    @classmethod
    async def from_state(cls, state_or_path: ClusterState | str | Path, seed: int | None = None) -> RealCluster:
        """Attach to the node processes of a cluster state (or its file); its faults carry on.

        A node whose process is gone, even one killed outside capsim, counts
        as crashed: faults skip it, ``restart`` starts it and gives it them.
        One whose process is stopped (paused) is skipped too, and given the
        faults when ``resume`` continues it.
        """
        if isinstance(state_or_path, ClusterState):
            state, path = state_or_path, None
        else:
            state, path = ClusterState.load(state_or_path), state_or_path
        cluster = cls(
            {p.name: p.url for p in state.nodes},
            state.token,
            faults=state.faults,
            state=state,
            state_path=path,
            seed=seed,
        )
        for proc in state.nodes:  # killed outside capsim (kill -9, the OOM killer): crashed, as for a crash
            if proc.pid and not node_running(proc):
                proc.pid = None
        cluster.control.set_down(p.name for p in state.nodes if not p.pid)
        cluster.control.set_paused(p.name for p in state.nodes if p.pid and stopped(p))
        return cluster

    async def close(self) -> None:
        """Wait for pending control calls, stop clients (and in-process hosts), save the state."""
        await self.settle()
        await self.control.close()
        for host in list(self.control.clients.values()) + list((self._hosts or {}).values()):
            await host.stop()
        await self._session.close()
        self.save()

    def save(self) -> None:
        """Write faults and pids back to the state file this cluster came from, if any."""
        if self._state is not None:
            self._state.faults = self._faults.to_json()
            self._state.skews = self._skews
            if self._state_path is not None:
                self._state.save(self._state_path)

    # -- who is who -----------------------------------------------------------------------

    @property
    def servers(self) -> list[str]:
        return self.control.servers

    @property
    def nodes(self) -> list[str]:
        return self.control.nodes

    def url(self, name: str) -> str:
        return self.control.url(name)

    def node(self, name: str) -> Node | None:
        """The live Node instance of an in-process server or client, else None."""
        host = (self._hosts or {}).get(name) or self.control.clients.get(self.control.check(name))
        return host.node if host is not None else None

    def alive(self, name: str) -> bool:
        return not self.control.down(self.control.check(name))

    def rng(self, name: str) -> random.Random:
        """A random stream for the caller's own use (a workload), derived from ``seed`` by name."""
        return self.streams(f"user:{name}")

    @property
    def now(self) -> float:
        """Wall-clock seconds since this cluster object was made (or ``reset_clock``)."""
        return time.monotonic() - self._start  # wall-clock ok

    def reset_clock(self) -> None:
        """Count ``now`` and history times from this moment (say, when the traffic starts).

        Raises:
            ConfigError: something is already recorded in ``history`` with the old origin.
        """
        if len(self.history):
            raise ConfigError(
                "reset_clock before anything is recorded: the history already has "
                f"{len(self.history)} op(s) timed from the old origin"
            )
        self._start = time.monotonic()  # wall-clock ok

    async def statuses(self) -> list[JsonObject]:
        """``GET /status`` of every live server."""
        return await self.control.statuses()

    async def status(self, name: str) -> JsonObject:
        """``GET /status`` of one server (its counters, faults, recent errors and events).

        Raises:
            ControlError: it does not answer (crashed, or paused and the call timed out).
        """
        return await self.control.status(name)

    # -- clients ---------------------------------------------------------------------------

    async def add_client(self, name: str, **host_options: Any) -> Client:
        """A client node, hosted in this process, recording into ``history`` (wall-clock times)."""
        if name in self.control.nodes:
            raise ConfigError(f"a node named {name!r} already exists; pick another name")
        host = NodeHost(
            name,
            Client,
            {"record": self._record, "new_process": self._processes.__next__},
            peers={n: self.control.url(n) for n in self.control.servers},
            token=self.token,
            server=False,
            **host_options,
        )
        host.faults.apply("state", self._faults.to_json())
        await host.start()
        self.control.add_client(name, host)
        if not isinstance(host.node, Client):
            raise RuntimeError(f"client host {name!r} started without its node")
        return host.node

    def _record(self, op: JsonObject) -> JsonObject:
        op["time"] = self.now
        self.history.append(op)
        return op

    def record_nemesis(self, f: str, value: object = None) -> JsonObject:
        """Put a fault (or its repair) in ``history`` as a ``nemesis`` info op, as ``Simulation`` does.

        Fault policies call it to bracket their faults (``start-partition`` ... ``stop-partition``).
        """
        return self._record({"process": "nemesis", "type": "info", "f": f, "value": value})

    # -- node faults -------------------------------------------------------------------------

    def crash(self, name: str) -> Fault:
        """Kill ``name``: SIGKILL for a process, stop for an in-process host. Memory is lost."""
        control = self.control
        if control.down(control.check_server(name)):
            return control.done()
        control.set_down([name])
        control.set_resumed(name)  # SIGKILL ends a stopped process too
        control.record("crash", name)
        return control.track(self._crash(name), f"crash {name}")

    async def _crash(self, name: str) -> None:
        if self._hosts is not None:
            await self._hosts[name].crash()
            return
        proc = self._process(name)
        signal_node(proc, signal.SIGKILL)
        await asyncio.to_thread(reap, proc)
        proc.pid = None
        self.save()

    def restart(self, name: str) -> Fault:
        """Start a crashed ``name`` again (same command, address and storage), then give it the faults.

        The future raises ``LaunchError`` if a node process did not come up
        (its address taken meanwhile, say): it is stopped, and the node stays down.
        """
        control = self.control
        if not control.down(control.check_server(name)):
            raise ConfigError(f"{name!r} is running; crash it before restarting it")
        control.record("restart", name)
        return control.track(self._restart(name), f"restart {name}")

    async def _restart(self, name: str) -> None:
        if self._hosts is not None:
            await self._hosts[name].restart()
        else:
            proc = self._process(name)
            env = dict(os.environ)
            if self.token is not None:  # a cluster without one was started without a token
                env["CAPSIM_TOKEN"] = self.token
            try:
                await asyncio.to_thread(lambda: wait_healthy([spawn(proc, env)]))
            except BaseException:  # it did not come up (its port taken, say): no process left, the node stays down
                await asyncio.to_thread(stop, [proc])
                proc.pid = None
                self.save()
                raise
            self.save()
        self.control.set_up(name)
        await self._bring_up_to_date(name)

    async def _bring_up_to_date(self, name: str) -> None:
        """Give ``name`` the whole fault state and its clock skew (after a restart or a long pause)."""
        await self.control.send(name, "state", self._faults.to_json())
        if name in self._skews:
            offset, drift = self._skews[name]
            await self.control.send(name, "skew", {"offset": offset, "drift": drift})

    def pause(self, name: str) -> Fault:
        """Freeze ``name``: SIGSTOP for a process (all of it stops); a soft pause in process."""
        self.control.check_server(name)
        self.control.record("pause", name)
        if self._hosts is None:
            if signal_node(self._process(name), signal.SIGSTOP):
                self.control.set_paused([name])  # it cannot answer: calls skip it until resume
            return self.control.done()
        self._faults.apply("pause", {"name": name})
        return self.control.broadcast("pause", {"name": name})

    def resume(self, name: str) -> Fault:
        """Unfreeze ``name``; a process is then given the whole fault state again.

        A stopped process cannot answer control calls, so calls skip it while
        it is paused (one sent just before the pause may also have timed out):
        without this it would miss them for good.
        """
        self.control.check_server(name)
        self.control.record("resume", name)
        if self._hosts is None:
            signal_node(self._process(name), signal.SIGCONT)
            self.control.set_resumed(name)
            if self.control.down(name):
                return self.control.done()
            return self.control.track(self._bring_up_to_date(name), f"resume {name}")
        self._faults.apply("resume", {"name": name})
        return self.control.broadcast("resume", {"name": name})

    def skew(self, name: str, offset: float = 0.0, drift: float = 0.0) -> Fault:
        """Make ``name``'s ``now()`` read true time + ``offset``, advancing at ``1 + drift``."""
        self.control.check_server(name)
        self._skews[name] = [offset, drift]
        self.control.record("skew", [name, offset, drift])
        if self.control.down(name) or self.control.paused(name):
            return self.control.done()  # applied when it restarts or resumes
        return self.control.joined([self.control.send(name, "skew", {"offset": offset, "drift": drift})], "skew")

    def _process(self, name: str) -> NodeProcess:
        if self._state is None:
            raise RuntimeError("this cluster's servers are in-process hosts, not node processes")
        return self._state.node(name)

    async def settle(self) -> None:
        """Wait until every fault called so far has been applied (or failed: see ``errors``)."""
        await self.control.settle()
