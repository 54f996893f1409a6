"""A scenario on fresh node processes of this machine, every one stopped whatever happens.

    from faults.processes import run_processes
    result = run_processes(load_scenario("scenarios/lin-kv-partitions.toml"), seed=7,
                           command=[sys.executable, "-m", "capsim.commands.serve"])

``run_processes`` starts one node process per server of the scenario
(``emulator.transport.launcher``, on 127.0.0.1), runs the scenario on them
in real time (``faults.real.run_real``: the same workload, faults and
checks as the simulation of that seed) and stops them all, when the run
ends, fails or is interrupted (Ctrl-C, SIGTERM: see
``emulator.transport.interrupts``). This is what ``capsim chaos --real``
runs; the command only parses its arguments and prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from emulator.errors import ConfigError
from emulator.transport.interrupts import Interrupts
from emulator.transport.launcher import launch_cluster
from emulator.transport.processes import ClusterState, NodeProcess, stop
from faults.scenario import Cluster, Scenario
from faults.schedule import RandomNemesis, Schedule

if TYPE_CHECKING:
    from emulator.client import Client
    from emulator.transport import RealCluster
    from faults.real import RealChaosResult

__all__ = ["kv_clients", "run_processes", "serve_args"]


def refused_for_real(scenario: Scenario) -> str | None:
    """Why ``scenario`` cannot run on real processes as written (None: it can), before any process starts.

    Membership changes are a simulation's (they reconfigure nodes in place). A fault aimed at the leader
    (``isolate-primary``, ``target = "primary"``) needs someone to say who leads: in a simulation the
    protocol's ``leader_of(sim)`` reads the nodes' state, which other processes do not share, so a real
    run takes ``cluster.primary`` only as a node name (a function of the simulation, or none, would name
    the first server every time, or fail mid-run).
    """
    leader, membership = [], []
    for phase in scenario.phases:
        faults = phase.faults
        if isinstance(faults, RandomNemesis):
            kinds = list(faults.kinds)
            membership += [phase.name] if "membership" in kinds else []
            leader += [phase.name] if "partition" in kinds and "isolate-primary" in faults.shapes else []
        elif isinstance(faults, Schedule):
            for step in faults.steps:
                membership += [phase.name] if step.kind == "membership" else []
                aims = step.params.get("target") == "primary" or step.params.get("shape") == "isolate-primary"
                leader += [phase.name] if aims else []
    if membership:
        return f"phase {membership[0]!r} changes membership, which only a simulation can: run it without --real"
    primary = scenario.cluster.primary
    if leader and not (isinstance(primary, str) and primary in scenario.cluster.names and ":" not in primary):
        return (
            f"phase {leader[0]!r} aims faults at the leader, and a real run cannot ask its nodes who leads: set "
            f'[cluster] primary = "{scenario.cluster.names[0]}" to aim at that node, or run it without --real'
        )
    return None


def run_processes(
    scenario: Scenario,
    seed: int,
    command: Sequence[str],
    time_scale: float = 1.0,
    out: str | None = None,
    announce: Callable[[ClusterState], None] | None = None,
    interrupted: Callable[[], bool] | None = None,
) -> RealChaosResult:
    """Run ``scenario`` on fresh node processes and stop them all, whatever happens.

    Node logs and storage go to ``out/cluster/`` (a temporary directory,
    removed afterwards, without ``out``). Call from outside any event loop,
    in the main thread.

    Ctrl-C and SIGTERM are taken over before the first node starts and given
    back after the last one has stopped: a signal at any moment, launch
    included, stops the run at the next safe point (between two spawns,
    between two health checks, or by cancelling the run's task) and every
    node is stopped before this returns; a second signal cannot cut that
    teardown short.

    Args:
        scenario: the scenario; its servers become processes.
        seed: the seed of the faults, the workload's choices and every node's rng.
        command: the program that serves one node (see ``launcher.node_argv``).
        time_scale: every duration of the scenario is multiplied by it.
        out: the directory of the run's files (None: nothing is kept).
        announce: called with the ``ClusterState`` once every node is healthy.
        interrupted: whether a Ctrl-C came before this took the signals over
            (Python can swallow its KeyboardInterrupt); asked once they are ours.

    Returns:
        The ``faults.real.RealChaosResult``.

    Raises:
        ConfigError: the cluster's config is not JSON (it cannot reach a process).
        LaunchError: a node did not start (none is left running).
        KeyboardInterrupt: Ctrl-C or SIGTERM (none is left running).
    """
    with Interrupts() as interrupts:
        if interrupted is not None and interrupted():
            raise KeyboardInterrupt
        protocol, config = serve_args(scenario.cluster)
        workdir = Path(out) / "cluster" if out else Path(tempfile.mkdtemp(prefix="capsim-chaos-"))
        nodes: list[NodeProcess] = []  # every node process started, so the finally below finds it whatever happens
        try:
            state = launch_cluster(
                command,
                protocol,
                scenario.cluster.names,
                workdir,
                config=config,
                seed=seed,
                parent_pid=os.getpid(),
                nodes=nodes,
                abort=interrupts.check,
            )
            if announce is not None:
                announce(state)
            interrupts.check()
            return _drive(scenario, state, seed, time_scale, interrupts, out)
        finally:
            stop(nodes)  # again after _drive's own stop: a restart in flight may have started a process since
            if out is None:
                shutil.rmtree(workdir, ignore_errors=True)


def _drive(
    scenario: Scenario,
    state: ClusterState,
    seed: int,
    time_scale: float,
    interrupts: Interrupts,
    out: str | os.PathLike[str] | None = None,
) -> RealChaosResult:
    """``faults.real.run_real`` on the processes of ``state``, in a fresh event loop.

    Interrupted, it writes the history recorded so far to ``out``/history.jsonl first: a real run cannot be replayed.
    """
    from emulator.transport import RealCluster
    from faults.real import run_real

    async def main() -> RealChaosResult:
        interrupts.watch(asyncio.current_task())
        cluster = await RealCluster.from_state(state, seed=seed)
        try:
            return await run_real(scenario, cluster, seed, time_scale)
        except asyncio.CancelledError:
            if out is not None:
                cluster.history.write(Path(out) / "history.jsonl")
            raise
        finally:
            await asyncio.to_thread(stop, state.nodes)  # first: calls still waiting on a paused node fail at once
            await cluster.close()

    try:
        result = asyncio.run(main())
    except asyncio.CancelledError:
        interrupts.check()
        raise
    finally:
        interrupts.watch(None)
    interrupts.check()  # a signal that came as the run ended: the user asked to stop, say so
    return result


def serve_args(cluster: Cluster) -> tuple[str, dict[str, object]]:
    """The protocol and config that run the scenario's servers as processes.

    Raises:
        ConfigError: the config is not JSON (a node process could not receive it).
    """
    cls = cluster.node_class()
    protocol = cluster.protocol if isinstance(cluster.protocol, str) else f"{cls.__module__}:{cls.__qualname__}"
    try:
        json.dumps(cluster.config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cluster.config must be JSON to reach node processes ({exc})") from None
    return protocol, cluster.config


# -- a workload for a running cluster ---------------------------------------------------------


async def kv_clients(cluster: RealCluster, clients: int, ops: int, keys: int, timeout: float, seed: int) -> None:
    """``clients`` lin-kv clients on ``cluster``, each doing ``ops`` random reads, writes and cas in turn.

    The keys are fresh for each call (the checker assumes every key starts
    empty); the choices of operation, key and value come from ``seed``. A
    failed or timed-out operation is recorded in ``cluster.history`` and the
    client goes on. ``capsim cluster workload`` runs this, then checks the
    history.

    Args:
        cluster: the running cluster; its history records the operations.
        clients: how many clients (``c0``, ``c1``, ...), run concurrently.
        ops: operations per client.
        keys: how many keys the operations spread over.
        timeout: seconds each operation may take.
        seed: the seed of the operations' choices (one stream shared by all clients).
    """
    from emulator.errors import RPCError, Timeout

    rng = random.Random(seed)
    run_id = secrets.token_hex(3)  # fresh keys, as the checker assumes every key starts empty; wall-clock ok
    names = [f"{run_id}-k{i}" for i in range(keys)]

    async def client_loop(client: Client) -> None:
        for _ in range(ops):
            f, key = rng.choice(("read", "write", "cas")), rng.choice(names)
            value = [rng.randrange(5), rng.randrange(5)] if f == "cas" else rng.randrange(5)
            try:
                await client.invoke(f, key=key, value=None if f == "read" else value, timeout=timeout)
            except (RPCError, Timeout):
                pass

    started = [await cluster.add_client(f"c{i}") for i in range(clients)]
    await asyncio.gather(*(client_loop(c) for c in started))
