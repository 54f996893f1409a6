"""Ping-pong over real HTTP on loopback, beside the same ping-pong in the simulation.

    python scripts/bench_http.py [N_MESSAGES] [--window W] [--in-process]

Node ``a`` sends ``ping`` rpcs to node ``b`` (``emulator.transport.diag.Echo``),
which answers ``pong``: two messages per round trip, ``window`` round trips
in flight at once (1: strictly one message on the wire at a time, latency
bound). By default the two nodes are two OS processes: ``a`` in this
process, ``b`` a ``capsim serve`` subprocess; ``--in-process`` puts both
servers on this process's loop. The simulation figure is wall-clock time for
the same node code and the same number of messages in virtual time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import emulator as em
from emulator.transport import Echo, NodeHost, NodeProcess, RealCluster, free_ports, launch, stop

ECHO = "emulator.transport.diag:Echo"


async def _drive(node, n_rounds: int, window: int) -> None:
    rounds = iter(range(n_rounds))

    async def worker():
        for i in rounds:
            await node.rpc("b", {"type": "ping", "n": i}, timeout=10.0)

    await asyncio.gather(*(worker() for _ in range(window)))


async def _http_in_process(n_rounds: int, window: int) -> float:
    cluster = await RealCluster.local({"a": Echo, "b": Echo}, seed=1)
    try:
        start = time.perf_counter()
        await _drive(cluster.node("a"), n_rounds, window)
        return time.perf_counter() - start
    finally:
        await cluster.close()


async def _http_two_processes(n_rounds: int, window: int) -> float:
    port_b, port_a = free_ports(2)
    url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    argv = [
        sys.executable,
        "-m",
        "capsim.commands.serve",
        "--protocol",
        ECHO,
        "--name",
        "b",
        "--listen",
        f"127.0.0.1:{port_b}",
        "--peer",
        f"a={url_a}",
    ]
    log = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"capsim-bench-b-{os.getpid()}.log")
    procs = await asyncio.to_thread(launch, [NodeProcess("b", url_b, argv, log)], {**os.environ, "CAPSIM_TOKEN": "x"})
    host = NodeHost("a", Echo, port=port_a, peers={"b": url_b}, seed=1, token="x")  # the secret b has: a signs
    try:
        await host.start()
        start = time.perf_counter()
        await _drive(host.node, n_rounds, window)
        return time.perf_counter() - start
    finally:
        await host.stop()
        await asyncio.to_thread(stop, procs)


def _sim(n_rounds: int, window: int) -> float:
    sim = em.Simulation(seed=1)
    sim.add_node("a", Echo)
    sim.add_node("b", Echo)
    start = time.perf_counter()
    sim.run(_drive(sim.node("a"), n_rounds, window))
    return time.perf_counter() - start


def bench_http_pingpong(n_messages: int = 20_000, window: int = 1, processes: bool = True) -> dict:
    """Messages per second of ping-pong over loopback HTTP and in the simulation, same run.

    Args:
        n_messages: messages in all (requests + replies); rounded down to an even number.
        window: round trips in flight at once.
        processes: two OS processes (True) or two servers in this process (False).

    Returns:
        ``{"messages", "window", "mode", "http_seconds", "http_msgs_per_s", "sim_seconds",
        "sim_msgs_per_s", "sim_over_http"}``.
    """
    rounds = max(1, n_messages // 2)
    run = _http_two_processes if processes else _http_in_process
    http_seconds = asyncio.run(run(rounds, window))
    sim_seconds = _sim(rounds, window)
    messages = 2 * rounds
    return {
        "messages": messages,
        "window": window,
        "mode": "two processes (a here, b a capsim serve subprocess)" if processes else "two servers, one process",
        "http_seconds": round(http_seconds, 3),
        "http_msgs_per_s": round(messages / http_seconds),
        "sim_seconds": round(sim_seconds, 3),
        "sim_msgs_per_s": round(messages / sim_seconds),
        "sim_over_http": round(http_seconds / sim_seconds, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("messages", nargs="?", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=1)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(bench_http_pingpong(args.messages, args.window, not args.in_process), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
