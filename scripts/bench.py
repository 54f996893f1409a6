"""capsim benchmarks: every figure beside its baseline, measured in the same run.

    python scripts/bench.py            # tables
    python scripts/bench.py --json     # the same figures as JSON
    python scripts/bench.py --quick    # smaller sizes, for a smoke run
    python scripts/bench.py --only kernel,scale   # some parts: kernel, scale, memory, sweeps, rest
    python scripts/bench.py --only cache          # opt-in: simulated cache misses (needs valgrind)

Kernel: one-way messages per wall second for a ping-pong between two nodes
(send + handlers, 1 ms latency, message copies and trace digest on) and rpc
round trips per second, beside (a) the same ping-pong over asyncio.Queue on
the default loop and (b) the same model in SimPy; each the median of several
interleaved repetitions. capsim runs with its compiled scheduler core when
it is built (emulator.speedups.MODE is printed) and, beside it in the same
run, with the pure-Python one (CAPSIM_PURE_PYTHON=1, in a subprocess).
Scale: a heartbeat ring of 1,000 nodes (every 100 ms to the next node)
beside the same ring in SimPy (and on the pure-Python core), and of 10,000
nodes (capsim's and SimPy's). Each ring is built once in a process of its
own and kept resident; the rings then take turns running short measured
windows, 21 rounds of them, so rings compared with each other are measured
a fraction of a second apart (wall time, cost per message, peak memory of
its own process); each ratio is the median over the rounds (see scale());
from them, the largest ring that runs in 1 GB. Memory model: peaks of capsim cap runs fitted
to what capsim.limits uses to refuse runs too big for the machine. Sweeps: a
20-seed chaos sweep of a shipped scenario and capsim cap --seeds 1-20 on one
worker and on two. Then the checker, the real transport, an aiohttp request
between two simulated hosts beside the same aiohttp pair over real loopback
and over in-memory transports on a stock loop, the least any transport can
cost (scripts/bench_hosts.py), the protocols and a chaos run.

Cache (opt-in, not in the default run; it needs valgrind and about five
minutes): the Node.every ring's last-level cache misses per message at 1,000
and 10,000 nodes, under cachegrind's simulated 8, 16 and 32 MB last levels
(scripts/bench_cache.py). Unlike the wall-clock figures it does not move
with the host's load, so it shows where the ring's working set lies.

The machine's load average is printed with the figures: ratios are taken
within one run, but a busy machine moves them, and a second core that
someone else is using cannot speed a sweep up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import emulator as em
from emulator import speedups

ROOT = Path(__file__).resolve().parents[1]


def pure(function: str, size: int) -> float | None:
    """``function(size)`` of this script run with the pure-Python core, in a fresh process (None: it already is)."""
    if not speedups.ACCELERATED:
        return None
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench; print(bench.{function}({size}))"
    )
    env = dict(os.environ, CAPSIM_PURE_PYTHON="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return float(out.stdout)


# -- ping-pong: simulation, asyncio.Queue, SimPy ------------------------------------------------


def sim_pingpong(messages: int) -> float:
    """One-way messages per wall second between two nodes, 1 ms apart."""

    class Player(em.Node):
        def __init__(self):
            self.count = 0

        async def handle_ping(self, msg):
            self.count += 1
            if self.count < messages // 2:
                self.send(msg.src, {"type": "pong", "n": msg.body["n"] + 1})

        async def handle_pong(self, msg):
            self.count += 1
            self.send(msg.src, {"type": "ping", "n": msg.body["n"] + 1})

    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    a = sim.add_node("a", Player)
    sim.add_node("b", Player)
    sim.run(until=0)
    start = time.perf_counter()
    a.send("b", {"type": "ping", "n": 0})
    sim.run()
    elapsed = time.perf_counter() - start
    assert sim.network.stats["delivered"] == messages - 1
    return (messages - 1) / elapsed


def queue_pingpong(messages: int) -> float:
    """The same exchange over two asyncio.Queues on the default event loop."""

    async def main():
        to_a: asyncio.Queue = asyncio.Queue()
        to_b: asyncio.Queue = asyncio.Queue()

        async def a():
            for i in range(messages // 2):
                to_b.put_nowait({"type": "ping", "n": i})
                await to_a.get()

        async def b():
            for _ in range(messages // 2):
                msg = await to_b.get()
                to_a.put_nowait({"type": "pong", "n": msg["n"] + 1})

        start = time.perf_counter()
        await asyncio.gather(a(), b())
        return messages / (time.perf_counter() - start)

    return asyncio.run(main())


def simpy_pingpong(messages: int) -> float | None:
    """The same model in SimPy: two processes, stores as inboxes, 1 ms timeouts."""
    try:
        import simpy
    except ImportError:
        return None
    env = simpy.Environment()
    inbox = {"a": simpy.Store(env), "b": simpy.Store(env)}

    def deliver(dest, msg):
        yield env.timeout(0.001)
        inbox[dest].put(msg)

    def player(me, other, first):
        if first:
            env.process(deliver(other, {"type": "ping", "n": 0}))
        for _ in range(messages // 2):
            msg = yield inbox[me].get()
            env.process(deliver(other, {"type": "pong", "n": msg["n"] + 1}))

    env.process(player("a", "b", True))
    env.process(player("b", "a", False))
    start = time.perf_counter()
    env.run()
    return messages / (time.perf_counter() - start)


# -- rpc round trips ------------------------------------------------------------------------------


def sim_rpc(calls: int) -> float:
    """rpc round trips per wall second from a client to an echo node, 1 ms each way."""

    class Echo(em.Node):
        async def handle_echo(self, msg):
            return {"type": "echo_ok", "n": msg.body["n"]}

    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("n0", Echo)
    client = sim.add_client("c0")

    async def main():
        for i in range(calls):
            await client.rpc("n0", {"type": "echo", "n": i}, timeout=1.0)

    start = time.perf_counter()
    sim.run(main())
    return calls / (time.perf_counter() - start)


def queue_rpc(calls: int) -> float:
    """Request and reply over asyncio.Queues: a server task answers each request's future."""

    async def main():
        requests: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def server():
            while True:
                msg, reply = await requests.get()
                reply.set_result({"type": "echo_ok", "n": msg["n"]})

        task = asyncio.ensure_future(server())
        start = time.perf_counter()
        for i in range(calls):
            future = loop.create_future()
            requests.put_nowait(({"type": "echo", "n": i}, future))
            await asyncio.wait_for(future, 1.0)
        elapsed = time.perf_counter() - start
        task.cancel()
        return calls / elapsed

    return asyncio.run(main())


def simpy_rpc(calls: int) -> float | None:
    """The same request/reply in SimPy, with 1 ms each way."""
    try:
        import simpy
    except ImportError:
        return None
    env = simpy.Environment()
    requests = simpy.Store(env)

    def server():
        while True:
            msg, reply = yield requests.get()
            yield env.timeout(0.001)
            reply.succeed({"type": "echo_ok", "n": msg["n"]})

    def client():
        for i in range(calls):
            reply = env.event()
            yield env.timeout(0.001)
            requests.put(({"type": "echo", "n": i}, reply))
            yield reply | env.timeout(1.0)

    env.process(server())
    done = env.process(client())
    start = time.perf_counter()
    env.run(until=done)
    return calls / (time.perf_counter() - start)


# -- scale ------------------------------------------------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cache import cache_misses  # noqa: E402
from bench_scale import baseline_memory_mb, cap_memory_model, capsim_ring, floor_ring, simpy_ring  # noqa: E402
from bench_sweeps import capacity, compile_bytecode, sweep  # noqa: E402


def scale(nodes: int, big: int, seconds: float, big_seconds: float, rounds: int) -> dict:
    """The ring at ``nodes`` (sleep loops and periodic timers) beside SimPy's, and at ``big`` nodes.

    Every ring runs in a process of its own, built once and kept resident;
    then, ``rounds`` times, each takes a turn: one heartbeat round unmeasured
    (its memory back in the caches) and a measured window of ``seconds``
    virtual seconds (``big_seconds`` at ``big`` nodes). The turns go
    10,000-node sleep ring, 1,000-node sleep ring, SimPy at 1,000 and at
    10,000 nodes, 1,000-node ``every`` ring, 10,000-node ``every`` ring,
    the bare heapq loop at 1,000 and 10,000 nodes (the same ring with no
    simulator: what the caches charge any Python model of it), then the
    pure-Python rings,
    so each compared pair is measured a fraction of a second apart. On this
    kind of shared VM the same run's wall time moves by 3x within a minute
    (the host's other work): runs compared with each other must be measured
    together. Each ratio is the median over the rounds of the two windows'
    ratio in that round; the table shows each ring's median window.
    """
    rewarm = 0.1  # one heartbeat round: every node's state touched once
    order = [("big-sleep", big), ("sleep", nodes), ("simpy", nodes), ("big-simpy", big), ("every", nodes)]
    order += [("big-every", big), ("floor", nodes), ("big-floor", big)]
    if speedups.ACCELERATED:  # the same rings on the pure-Python core, for comparison
        order += [("pure-sleep", nodes), ("pure-every", nodes)]
    rings = {}
    try:
        for key, size in order:
            if key.endswith("simpy"):
                ring = simpy_ring(key, size)
            elif key.endswith("floor"):
                ring = floor_ring(key, size)
            else:
                ring = capsim_ring(key, size, key.split("-")[-1], pure=key.startswith("pure-"))
            if ring is not None and ring.built is not None:  # None: no SimPy, or a tree without Node.every
                rings[key] = ring
        for _ in range(rounds):
            for key, size in order:
                if key in rings:
                    rings[key].window(rewarm, big_seconds if size == big else seconds)
    finally:
        rows = {key: ring.close() for key, ring in rings.items()}
    windows = {key: [w["us_per_msg"] for w in ring.windows] for key, ring in rings.items()}

    def paired(slow: str, fast: str) -> dict | None:  # the median of cost(slow) / cost(fast), round by round
        if slow not in windows or fast not in windows:
            return None
        ratios = sorted(a / b for a, b in zip(windows[slow], windows[fast]))
        return {"median": statistics.median(ratios), "min": ratios[0], "max": ratios[-1]}

    out = {"rings": rows, "rounds": rounds, "baseline_process_mb": baseline_memory_mb()}
    simpy_big = paired("big-simpy", "simpy")  # the same growth in SimPy: what the caches cost any model
    out["simpy"] = {"big_per_msg_ratio": simpy_big and simpy_big["median"]}
    out["simpy"]["big_per_msg_range"] = simpy_big and [simpy_big["min"], simpy_big["max"]]
    floor_big = paired("big-floor", "floor")  # the same growth in a bare heapq loop, no simulator
    out["floor"] = {
        "big_per_msg_ratio": floor_big and floor_big["median"],
        "big_per_msg_range": floor_big and [floor_big["min"], floor_big["max"]],
    }
    out["us_per_msg_windows"] = windows  # every window's cost per message, in round order
    for model in ("sleep", "every"):
        if model not in rows:
            continue
        ring, large = rows[model], rows[f"big-{model}"]
        per_node_mb = (large["peak_mb"] - ring["peak_mb"]) / (big - nodes)
        vs_simpy, big_ratio = paired("simpy", model), paired(f"big-{model}", model)
        out[model] = {
            "vs_simpy": vs_simpy and vs_simpy["median"],
            "vs_simpy_range": vs_simpy and [vs_simpy["min"], vs_simpy["max"]],
            "big_per_msg_ratio": big_ratio and big_ratio["median"],
            "big_per_msg_range": big_ratio and [big_ratio["min"], big_ratio["max"]],
            "per_node_kb": per_node_mb * 1024,
            "nodes_in_1gb": int(nodes + (1024 - ring["peak_mb"]) / per_node_mb),
        }
        if f"pure-{model}" in rows:
            assert rows[f"pure-{model}"]["digest"] == ring["digest"], "the two cores must run the same ring"
            vs_pure = paired(f"pure-{model}", model)
            pure_vs_simpy = paired("simpy", f"pure-{model}")
            out[model]["pure_vs_simpy"] = pure_vs_simpy and pure_vs_simpy["median"]
            out[model]["compiled_speedup"] = vs_pure["median"]
    return out


def memory_model(quick: bool) -> dict:
    """capsim cap's memory per node, pair and operation, and the largest cap cluster that runs in 1 GB."""
    model = cap_memory_model((8, 16, 24) if quick else (25, 50, 100), (1.0, 4.0) if quick else (4.0, 40.0))
    try:
        from capsim.limits import CAP, MemoryModel
    except ImportError:  # a tree without capsim.limits (the baseline)
        return model
    fitted = MemoryModel(model["base_mb"], model["node_mb"], model["pair_kb"], model["op_kb"], "this run")
    model["cap_nodes_in_1gb"] = fitted.max_nodes(1024, 2 * 100 * 12.0)  # capsim cap's default workload
    model["limits"] = {"base_mb": CAP.base_mb, "node_mb": CAP.node_mb, "pair_kb": CAP.pair_kb, "op_kb": CAP.op_kb}
    return model


def sweeps(quick: bool) -> list[dict]:
    """A 20-seed chaos sweep of a shipped scenario and capsim cap --seeds 1-20, on one worker and two."""
    seeds = "1-4" if quick else "1-20"
    compile_bytecode()  # every timed command loads capsim's bytecode, as an installed capsim does
    before = capacity(*((1_000_000, 1) if quick else (20_000_000, 2)))
    # Best of 5 for the short chaos sweep (1-2 s a run, so half a second of someone else's work moves it 40%);
    # one run of cap's (10-20 s).
    rows = [
        sweep(
            "chaos lin-kv-partitions",
            ["chaos", "scenarios/lin-kv-partitions.toml", "--seeds", seeds],
            repeats=1 if quick else 5,
        )
    ]
    if not quick:
        # A seed of lin-kv-partitions takes about 0.05 s against the command's 0.15-0.2 s of start-up before its workers
        # fork (the interpreter, the kernel and the fault policy, imported once; rich comes after the fork), which
        # no second worker shortens; a seed of the aiohttp service under chaos takes 0.3 s.
        rows.append(sweep("chaos http-kv-chaos", ["chaos", "scenarios/http-kv-chaos.toml", "--seeds", seeds]))
        rows.append(sweep("cap (cp, ap, async)", ["cap", "--seeds", seeds]))
    after = capacity(*((1_000_000, 1) if quick else (20_000_000, 2)))
    for row in rows:
        row["capacity"] = [before, after]
    return rows


# -- checker ---------------------------------------------------------------------------------------

HISTORIES = (
    Path(os.environ.get("CAPSIM_SHARED", ROOT.parent / "shared")) / "data" / "kv-histories"
)  # as the tests find it


def checker(repeats: int) -> list[dict] | None:
    """Linearizability checking time of the shared kv histories, split by key and unsplit."""
    from emulator.check import check_file

    if not HISTORIES.is_dir():
        return None
    rows = []
    for path in sorted(HISTORIES.glob("*.edn")):
        row = {"history": path.stem}
        for split in (True, False):
            verdicts = [check_file(path, model="kv", partition=split) for _ in range(repeats)]
            row["ops"] = sum(len(p.ops) for p in verdicts[0].partitions)
            row["valid"] = verdicts[0].valid
            row["split_s" if split else "unsplit_s"] = statistics.median(v.elapsed for v in verdicts)
        rows.append(row)
    return rows


def checker_vs_porcupine(quick: bool) -> dict:
    """The checker on issue 10's shapes beside Porcupine's reference figures (scripts/bench_check.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_check import run as bench_check

    return bench_check(quick)


# -- the real transport ---------------------------------------------------------------------------


def transport(messages: int) -> list[dict]:
    """Ping-pong over loopback HTTP between two processes, beside the simulation, same run."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_http import bench_http_pingpong

    return [bench_http_pingpong(messages, window, processes=True) for window in (1, 64)]


def hosts_http(requests: int, repeats: int) -> dict:
    """An aiohttp GET between two simulated hosts beside the same pair over real loopback and in memory."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_hosts import bench_hosts

    return bench_hosts(requests, repeats)


# -- protocols ------------------------------------------------------------------------------------


def _closed_loop_kv(protocol: str, config: dict, seconds: float, clients: int = 10, nodes: int = 5) -> dict:
    """Closed-loop lin-kv clients (reads, writes, cas on 100 keys) against a 5-node cluster."""
    from faults import Workload
    from nodes.registry import resolve

    sim = em.Simulation(seed=1, latency=em.Uniform(0.001, 0.003))
    for i in range(nodes):
        sim.add_node(f"n{i}", resolve(protocol), **config)
    sim.run(until=0.5)  # elections settle before the clock starts
    workload = Workload(clients=clients, rate=100_000.0, keys=100, timeout=1.0, duration=seconds)
    start, cpu = time.perf_counter(), time.process_time()
    sim.run(workload.run(sim, workload.add_clients(sim)))
    wall = time.perf_counter() - start
    ops = sum(1 for op in sim.history if op["type"] != "invoke" and op["process"] != "nemesis")
    return {
        "protocol": protocol,
        "ops": ops,
        "ops_per_wall_s": ops / wall,
        "ops_per_virtual_s": ops / seconds,
        "ops_per_cpu_s": ops / (time.process_time() - cpu),
        "messages": sim.network.stats["delivered"],
    }


def protocols(quick: bool) -> list[dict]:
    """Throughput of each protocol on a 5-node cluster, per wall and per virtual second."""
    seconds = 1.0 if quick else 5.0
    rows = [
        {"name": "lin-kv (one leader)", **_closed_loop_kv("lin-kv", {}, seconds)},
        {
            "name": "primary-replica semi-sync k=2",
            **_closed_loop_kv("primary-replica", {"mode": "semi-sync", "acks": 2}, seconds),
        },
        {"name": "primary-replica async", **_closed_loop_kv("primary-replica", {"mode": "async"}, seconds)},
        {"name": "quorum N=3 R=2 W=2", **_closed_loop_kv("quorum", {}, seconds)},
        {
            "name": "quorum sloppy + handoff",
            **_closed_loop_kv("quorum", {"sloppy": True, "hinted_handoff": True}, seconds),
        },
    ]
    try:
        rows.append({"name": "sharded-kv", **_closed_loop_kv("sharded-kv", {}, seconds)})
    except (ValueError, ImportError):
        pass  # not in this tree yet
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_lb import bench_balancer, bench_cache

    lb = bench_balancer(seconds=seconds * 2)
    rows.append(
        {
            "name": "load balancer, least-connections, 3 backends",
            "ops": lb["ops"],
            "ops_per_wall_s": lb["ops_per_wall_s"],
            "ops_per_virtual_s": lb["ops_per_virtual_s"],
            "messages": lb["messages"],
        }
    )
    cache = bench_cache(seconds=seconds * 2)
    rows.append(
        {
            "name": "cache, write-through, over lin-kv",
            "ops": cache["ops"],
            "ops_per_wall_s": cache["ops_per_wall_s"],
            "ops_per_virtual_s": cache["ops_per_virtual_s"],
            "messages": None,
        }
    )
    return rows


def chaos_run() -> dict:
    """A whole chaos scenario (workload, random partitions, checks) per wall second."""
    import faults

    scenario = faults.load_scenario(ROOT / "scenarios" / "lin-kv-partitions.toml")
    start = time.perf_counter()
    result = faults.run_chaos(scenario, seed=1)
    wall = time.perf_counter() - start
    ops = sum(result.counts.values())
    return {
        "scenario": "lin-kv-partitions",
        "wall_s": wall,
        "ops": ops,
        "passed": result.passed,
        "virtual_s": result.sim.now,
        "virtual_per_wall": result.sim.now / wall,
    }


# -- running and printing -------------------------------------------------------------------------


def median_of(repeats: int, *functions):
    """Run the functions interleaved ``repeats`` times; the median of each."""
    results = [[] for _ in functions]
    for _ in range(repeats):
        for slot, function in zip(results, functions):
            slot.append(function())
    return [None if None in r else statistics.median(r) for r in results]


PARTS = ("kernel", "scale", "memory", "sweeps", "rest")
OPT_IN = ("cache",)  # not in the default run: only when named in --only


def run(quick: bool, only: tuple[str, ...] = PARTS) -> dict:
    """Every figure (or the ``only`` parts: kernel, scale, memory, sweeps, rest, cache), each beside its baseline."""
    messages, calls, repeats = (20_000, 5_000, 3) if quick else (200_000, 50_000, 5)
    load = [os.getloadavg()[0]]
    out: dict = {
        "python": sys.version.split()[0],
        "scheduler_core": speedups.MODE,
        "cpus": os.cpu_count(),
        "load_avg": load,
        "sizes": {"messages": messages, "calls": calls, "repeats": repeats},
    }
    if "kernel" in only:
        sim_pp, pure_pp, queue_pp, simpy_pp = median_of(
            repeats,
            lambda: sim_pingpong(messages),
            lambda: pure("sim_pingpong", messages),
            lambda: queue_pingpong(messages),
            lambda: simpy_pingpong(messages),
        )
        sim_r, pure_r, queue_r, simpy_r = median_of(
            repeats,
            lambda: sim_rpc(calls),
            lambda: pure("sim_rpc", calls),
            lambda: queue_rpc(calls),
            lambda: simpy_rpc(calls),
        )
        out["pingpong_msgs_per_s"] = {
            "capsim": sim_pp,
            "capsim_pure_python": pure_pp,
            "pure_vs_queue": pure_pp and pure_pp / queue_pp,
            "asyncio_queue": queue_pp,
            "simpy": simpy_pp,
            "vs_queue": sim_pp / queue_pp,
            "vs_simpy": simpy_pp and sim_pp / simpy_pp,
        }
        out["rpc_round_trips_per_s"] = {
            "capsim": sim_r,
            "capsim_pure_python": pure_r,
            "pure_vs_queue": pure_r and pure_r / queue_r,
            "asyncio_queue": queue_r,
            "simpy": simpy_r,
            "vs_queue": sim_r / queue_r,
            "vs_simpy": simpy_r and sim_r / simpy_r,
        }
        load.append(os.getloadavg()[0])
    if "scale" in only:
        out["scale"] = scale(200, 2000, 1.0, 0.2, 2) if quick else scale(1000, 10_000, 2.0, 0.3, 21)
        load.append(os.getloadavg()[0])
    if "memory" in only:
        out["memory_model"] = memory_model(quick)
    if "sweeps" in only:
        out["sweeps"] = sweeps(quick)
        load.append(os.getloadavg()[0])
    if "rest" in only:
        out["checker"] = checker(1 if quick else 3)
        out["checker_vs_porcupine"] = checker_vs_porcupine(quick)
        out["transport"] = transport(2_000 if quick else 20_000)
        out["hosts_http"] = hosts_http(200 if quick else 2_000, 1 if quick else 3)
        out["protocols"] = protocols(quick)
        out["chaos"] = chaos_run()
    if "cache" in only:
        out["cache"] = cache_misses(quick)
    return out


def _fmt(value, digits=0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _bar(value, bar, higher=True) -> str:
    if value is None:
        return "n/a"
    met = value >= bar if higher else value <= bar
    return f"{'met' if met else 'NOT met'} ({'>=' if higher else '<='} {bar:g})"


def print_table(results: dict) -> None:
    from rich.console import Console

    console = Console()
    console.print(
        f"Python {results['python']}, {results['cpus']} CPUs, load average during the run "
        f"{', '.join(f'{x:.1f}' for x in results['load_avg'])}; scheduler core: {results['scheduler_core']}"
    )
    if "pingpong_msgs_per_s" in results:
        _print_kernel(console, results)
    if "scale" in results:
        _print_scale(console, results["scale"])
    if "memory_model" in results:
        _print_memory(console, results["memory_model"])
    if "sweeps" in results:
        _print_sweeps(console, results["sweeps"])
    if "chaos" in results:
        _print_rest(console, results)
    if "cache" in results:
        _print_cache(console, results["cache"])


def _print_kernel(console, results: dict) -> None:
    from rich.table import Table

    table = Table(title=f"kernel (median of {results['sizes']['repeats']} interleaved runs)")
    columns = (
        "figure",
        "capsim",
        "pure Python",
        "asyncio.Queue",
        "SimPy",
        "capsim / Queue",
        "pure / Queue",
        "capsim / SimPy",
    )
    for column in columns:
        table.add_column(column, justify="right" if column != "figure" else "left")
    for key, label in (
        ("pingpong_msgs_per_s", "ping-pong, one-way msgs/s"),
        ("rpc_round_trips_per_s", "rpc round trips/s"),
    ):
        row = results[key]
        table.add_row(
            label,
            _fmt(row["capsim"]),
            _fmt(row["capsim_pure_python"]),
            _fmt(row["asyncio_queue"]),
            _fmt(row["simpy"]),
            _fmt(row["vs_queue"], 2) + "x",
            _fmt(row["pure_vs_queue"], 2) + "x",
            _fmt(row["vs_simpy"], 2) + "x",
        )
    pp = results["pingpong_msgs_per_s"]
    table.caption = (
        f"capsim: the {results['scheduler_core']} scheduler core; pure Python: CAPSIM_PURE_PYTHON=1 (a subprocess)\n"
        f"bars: ping-pong vs Queue {_bar(pp['vs_queue'], 1.3)}, vs SimPy {_bar(pp['vs_simpy'], 1.5)}"
    )
    console.print(table)


def _range(bounds: list[float] | None) -> str:
    return "n/a" if not bounds else f"rounds: {_fmt(bounds[0], 2)}-{_fmt(bounds[1], 2)}x"


def _print_scale(console, s: dict) -> None:
    from rich.table import Table

    rings = s["rings"]
    table = Table(
        title=f"heartbeat ring: every node to the next every 100 ms; each ring resident in its own process, "
        f"{s['rounds']} measured windows each, taken in turns; us / message: the median window; "
        "ratios: the median over the rounds of the two windows'"
    )
    for column in (
        "run",
        "nodes",
        "virtual s",
        "messages measured",
        "build s",
        "measured s",
        "us / message",
        "peak MB",
    ):
        table.add_column(column, justify="right" if column != "run" else "left")
    labels = {
        "sleep": "capsim, task looping on asyncio.sleep",
        "every": "capsim, Node.every timer",
        "simpy": "SimPy, same model",
        "floor": "plain Python, no simulator (a bare heapq loop)",
    }
    keys = ("sleep", "pure-sleep", "every", "pure-every", "simpy", "floor", "big-sleep", "big-every", "big-simpy")
    for key in (*keys, "big-floor"):
        row = rings.get(key)
        if row:
            label = labels[key.removeprefix("big-").removeprefix("pure-")]
            table.add_row(
                label + (", pure Python" if key.startswith("pure-") else ""),
                _fmt(row["nodes"]),
                _fmt(row["virtual_s"], 1),
                _fmt(row["delivered"]),
                _fmt(row["build_s"], 2),
                _fmt(row["run_s"], 2),
                _fmt(row["us_per_msg"], 2),
                _fmt(row["peak_mb"], 1),
            )
    lines = []
    for model in ("sleep", "every"):
        if model not in rings:
            continue
        ring, big, m = rings[model], rings[f"big-{model}"], s[model]
        lines.append(
            f"{labels[model]}: {_fmt(m['vs_simpy'], 2)}x SimPy's speed at {ring['nodes']:,} nodes "
            f"({_range(m['vs_simpy_range'])}) {_bar(m['vs_simpy'], 2.0)}, peak {_fmt(ring['peak_mb'], 0)} MB "
            f"{_bar(ring['peak_mb'], 300, higher=False)}; {big['nodes']:,} nodes cost "
            f"{_fmt(m['big_per_msg_ratio'], 2)}x per message ({_range(m['big_per_msg_range'])}) "
            f"{_bar(m['big_per_msg_ratio'], 1.5, higher=False)}, "
            f"peak {_fmt(big['peak_mb'], 0)} MB {_bar(big['peak_mb'], 300, higher=False)}; "
            f"{_fmt(m['per_node_kb'], 1)} kB per node: about {m['nodes_in_1gb']:,} nodes run in 1 GB"
        )
        if "compiled_speedup" in m:
            lines.append(
                f"  pure Python: {_fmt(m['pure_vs_simpy'], 2)}x SimPy's speed; the compiled core runs it "
                f"{_fmt(m['compiled_speedup'], 2)}x as fast (the same trace digest)"
            )
    if s.get("simpy", {}).get("big_per_msg_ratio"):
        lines.append(
            f"SimPy, for comparison: {rings['big-simpy']['nodes']:,} nodes cost "
            f"{_fmt(s['simpy']['big_per_msg_ratio'], 2)}x per message ({_range(s['simpy']['big_per_msg_range'])})"
        )
    if s.get("floor", {}).get("big_per_msg_ratio"):
        lines.append(
            f"a bare heapq loop of the same ring, no simulator: {rings['big-floor']['nodes']:,} nodes cost "
            f"{_fmt(s['floor']['big_per_msg_ratio'], 2)}x per message ({_range(s['floor']['big_per_msg_range'])}): "
            f"what this machine's caches (and a deeper heap) charge any Python model of the ring"
        )
    lines.append(f"a process that only imports emulator: {_fmt(s['baseline_process_mb'], 1)} MB")
    table.caption = "\n".join(lines)
    console.print(table)


def _print_memory(console, m: dict) -> None:
    from rich.table import Table

    table = Table(title="memory model of capsim cap (cp, ap, async; each in a fresh process)")
    for column in ("nodes", "virtual s", "history ops", "peak MB"):
        table.add_column(column, justify="right")
    for row in m["runs"]:
        table.add_row(_fmt(row["nodes"]), _fmt(row["duration"], 1), _fmt(row["ops"]), _fmt(row["peak_mb"], 1))
    caption = (
        f"fitted: {m['base_mb']:.1f} MB + {m['node_mb']:.3f} MB per node + {m['pair_kb']:.2f} kB per pair "
        f"of nodes + {m['op_kb']:.2f} kB per history op"
    )
    if "limits" in m:
        lim = m["limits"]
        caption += (
            f"; capsim.limits.CAP uses {lim['base_mb']:g} MB + {lim['node_mb']:g} MB + {lim['pair_kb']:g} kB "
            f"+ {lim['op_kb']:g} kB. The largest capsim cap cluster that runs in 1 GB (default workload): "
            f"about {m['cap_nodes_in_1gb']:,} nodes (all-to-all: every pair of nodes has its link)"
        )
    table.caption = caption
    console.print(table)


def _print_sweeps(console, rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(
        title="seed sweeps: the whole command (lin-kv-partitions: best of 5), one worker (in process) and two "
        "(persistent, forked); capsim's bytecode compiled first, as pip install does"
    )
    capacity = rows[0].get("capacity", [None, None])
    reachable = min(capacity) if None not in capacity else None
    for column in ("sweep", "1 worker s", "2 workers s", "speed-up", "of what 2 processes gain here", "load avg"):
        table.add_column(column, justify="right" if column != "sweep" else "left")
    for row in rows:
        walls = row["walls"]
        table.add_row(
            row["command"],
            _fmt(walls.get(1, walls.get("1")), 2),
            _fmt(walls.get(2, walls.get("2")), 2),
            _fmt(row["speedup"], 2) + "x",
            _fmt(reachable and 100 * row["speedup"] / reachable) + "%",
            _fmt(row["load_avg"], 1),
        )
    table.caption = (
        "bar: >= 1.7x on 2 workers; "
        + "; ".join(f"{r['label']} {_bar(r['speedup'], 1.7)}" for r in rows)
        + f". What two processes gain over one on a CPU-bound loop here, before and after: "
        f"{_fmt(capacity[0], 2)}x, {_fmt(capacity[1], 2)}x (2.00x on two idle cores)"
    )
    console.print(table)


def _print_cache(console, cache: dict) -> None:
    from rich.table import Table

    if "error" in cache:
        console.print(f"cache: {cache['error']}", markup=False)
        return
    sizes = sorted({row["ll_mb"] for row in cache["rows"]})
    rings = sorted({row["nodes"] for row in cache["rows"]})
    misses = {(row["nodes"], row["ll_mb"]): row["misses_per_msg"] for row in cache["rows"]}
    table = Table(
        title=f"heartbeat ring ({cache['model']}): last-level cache misses per message, simulated by cachegrind "
        "(the same on any host and at any load)"
    )
    table.add_column("nodes", justify="right")
    for mb in sizes:
        table.add_column(f"{mb} MB last level", justify="right")
    for nodes in rings:
        table.add_row(f"{nodes:,}", *(_fmt(misses[nodes, mb], 1) for mb in sizes))
    console.print(table)


def _print_rest(console, results: dict) -> None:
    from rich.table import Table

    if results.get("checker"):
        checks = Table(
            title="linearizability checker (kv model, shared Porcupine histories; bars: split < 1 s, unsplit < 30 s)"
        )
        for column in ("history", "ops", "linearizable", "split by key (s)", "unsplit (s)"):
            checks.add_column(column, justify="right" if column != "history" else "left")
        for row in results["checker"]:
            checks.add_row(
                row["history"], _fmt(row["ops"]), str(row["valid"]), _fmt(row["split_s"], 4), _fmt(row["unsplit_s"], 3)
            )
        console.print(checks)
    if results.get("checker_vs_porcupine"):
        from bench_check import print_table as print_checker

        print_checker(results["checker_vs_porcupine"])
    if results.get("transport"):
        http = Table(title="the same ping-pong (rpc) over loopback HTTP, two processes, beside the simulation")
        for column in ("round trips in flight", "messages", "HTTP msgs/s", "simulation msgs/s", "simulation / HTTP"):
            http.add_column(column, justify="right")
        for row in results["transport"]:
            http.add_row(
                str(row["window"]),
                _fmt(row["messages"]),
                _fmt(row["http_msgs_per_s"]),
                _fmt(row["sim_msgs_per_s"]),
                _fmt(row["sim_over_http"], 1) + "x",
            )
        console.print(http)
    if results.get("hosts_http"):
        h = results["hosts_http"]
        hosts = Table(
            title=f"aiohttp GET, one at a time, {h['requests']:,} requests (median of {h['repeats']}): "
            "two simulated hosts beside the same pair over real loopback and over in-memory transports "
            "(aiohttp's own cost, the floor)"
        )
        for column in (
            "simulated us/request",
            "in-memory floor us/request",
            "loopback us/request",
            "loopback / simulated",
            "simulated / floor",
        ):
            hosts.add_column(column, justify="right")
        hosts.add_row(
            _fmt(h["simulated_s_per_request"] * 1e6),
            _fmt(h["floor_s_per_request"] * 1e6),
            _fmt(h["loopback_s_per_request"] * 1e6),
            _fmt(h["loopback_over_simulated"], 2) + "x",
            _fmt(h["simulated_over_floor"], 2) + "x",
        )
        hosts.caption = f"bar: {_bar(h['loopback_over_simulated'], 10)}"
        console.print(hosts)
    if results.get("protocols"):
        table = Table(title="protocols: closed-loop clients on a 5-node cluster (1-3 ms links)")
        for column in ("protocol", "ops", "ops / wall s", "ops / virtual s", "messages delivered"):
            table.add_column(column, justify="right" if column != "protocol" else "left")
        for row in results["protocols"]:
            table.add_row(
                row["name"],
                _fmt(row["ops"]),
                _fmt(row["ops_per_wall_s"]),
                _fmt(row["ops_per_virtual_s"]),
                _fmt(row.get("messages")),
            )
        console.print(table)
    if results.get("chaos"):
        c = results["chaos"]
        console.print(
            f"chaos scenario {c['scenario']}: {c['ops']:,} operations, checks "
            f"{'passed' if c['passed'] else 'FAILED'}, {c['virtual_s']:.1f} virtual s in {c['wall_s']:.2f} s wall"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        metavar="PARTS",
        help=f"comma-separated parts to run, of {', '.join(PARTS + OPT_IN)} (default: all but {', '.join(OPT_IN)})",
    )
    args = parser.parse_args(argv)
    only = tuple(part.strip() for part in args.only.split(",") if part.strip())
    unknown = sorted(set(only) - set(PARTS + OPT_IN))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS + OPT_IN)}")
    results = run(args.quick, only)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
