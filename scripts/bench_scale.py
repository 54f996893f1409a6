"""Scale benchmarks for scripts/bench.py: a heartbeat ring in capsim, SimPy and a bare loop, and memory per node.

The model: ``nodes`` nodes in a ring; every 100 ms each sends a heartbeat to
the next one over a link of Uniform(1 ms, 3 ms) latency, and the receiver
counts it. capsim's version is ordinary node code, with message copies and
the trace digest on, written two ways: a spawned task looping on
``asyncio.sleep`` (``sleep``), and a periodic timer, ``self.every(0.1,
self.beat)`` (``every``); both beat at the same times. SimPy's is the network
idiom of SimPy's own examples: a process per node that times out and hands
the message to a delivery process, which times out for the latency and puts
it in the receiver's ``Store``; a process per node takes from its store and
counts. The bare loop (``FLOOR_RING``) is the same ring with no simulator at
all: a heapq of tuples, a ``random.Random`` per link and a counter per node.

Each ring runs in a process of its own (class ``Ring``), so its peak memory
(VmHWM) is its own. The process builds the ring and warms it up, then runs
measured windows when asked; the cost per message is a window's wall time
over the messages delivered in it. The warm-up is the same in all of them:
building the cluster and the first heartbeat round (to ``WARM_S`` virtual
seconds), in which every link is made and carries its first message. What a
link costs once (its route, its random stream, its trace recorder) is a cost
per node, not per message: counted in a window, it would weigh more in a
short window of 10,000 nodes than in a long one of 1,000, and the
per-message comparison between the two sizes would measure the windows'
lengths. Before each measured window, one heartbeat round runs unmeasured:
while the other rings took their turns, the process's memory left the
caches, and a long run of one ring alone would not pay for that.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

__all__ = ["Ring", "baseline_memory_mb", "cap_memory_model", "capsim_ring", "floor_ring", "simpy_ring"]

ROOT = Path(__file__).resolve().parents[1]
WARM_S = 0.15  # virtual seconds: the first heartbeats leave at 0.1 and arrive by 0.103

_PEAK = r"""
import json, sys, time
import resource
def peak_mb():
    # VmHWM is this process's own high-water mark (ru_maxrss can carry the forking parent's size)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def serve(start, advance, delivered, final):
    # Build and warm up (to WARM_S), say so, then run each window asked for on stdin:
    # "window REWARM LENGTH" runs REWARM virtual seconds unmeasured (the process's memory back
    # in the caches, after the other rings' windows), then LENGTH measured. "end" ends it.
    now = float(sys.argv[-1])
    advance(now)
    print(json.dumps({"build_s": time.perf_counter() - start}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[0] != "window":
            break
        now += float(words[1])
        advance(now)
        before, began = delivered(), time.perf_counter()
        now += float(words[2])
        advance(now)
        took, count = time.perf_counter() - began, delivered() - before
        print(json.dumps({"run_s": took, "delivered": count, "us_per_msg": took / count * 1e6}), flush=True)
    print(json.dumps({"peak_mb": peak_mb(), **final()}), flush=True)
"""

CAPSIM_RING = (
    _PEAK
    + r"""
import asyncio, bisect, json, sys, time
import emulator as em
nodes, model = int(sys.argv[1]), sys.argv[2]
if model == "every" and not hasattr(em.Node, "every"):  # a tree from before Node.every (a baseline run)
    print(json.dumps(None))
    sys.exit()
class Heart(em.Node):
    async def on_start(self):
        peers = self.peers  # the next node round the ring: the first peer after this one, in name order
        self.next = peers[bisect.bisect(peers, self.name) % len(peers)]
        self.heard = 0
        if model == "every":
            self.every(0.1, self.beat)
        else:
            self.spawn(self.loop())
    async def loop(self):
        while True:
            await asyncio.sleep(0.1)
            self.beat()
    def beat(self):
        self.send(self.next, {"type": "heartbeat", "from": self.name})
    async def handle_heartbeat(self, msg):
        self.heard += 1
start = time.perf_counter()
sim = em.Simulation(seed=1, latency=em.Uniform(0.001, 0.003))
for i in range(nodes):
    sim.add_node(f"n{i:05d}", Heart)
serve(start, lambda t: sim.run(until=t), lambda: sim.network.stats["delivered"],
      lambda: {"virtual_s": sim.now, "digest": sim.trace_digest()})
"""
)

SIMPY_RING = (
    _PEAK
    + r"""
import json, random, sys, time
import simpy
nodes = int(sys.argv[1])
start = time.perf_counter()
env = simpy.Environment()
rng = random.Random(1)
names = [f"n{i:05d}" for i in range(nodes)]
inbox = {name: simpy.Store(env) for name in names}
heard = dict.fromkeys(names, 0)
delivered = [0]
def deliver(dest, msg):
    yield env.timeout(rng.uniform(0.001, 0.003))
    inbox[dest].put(msg)
def beat(me, nxt):
    while True:
        yield env.timeout(0.1)
        env.process(deliver(nxt, {"type": "heartbeat", "from": me}))
def receive(me):
    while True:
        yield inbox[me].get()
        heard[me] += 1
        delivered[0] += 1
for i, name in enumerate(names):
    env.process(beat(name, names[(i + 1) % nodes]))
    env.process(receive(name))
serve(start, lambda t: env.run(until=t), lambda: delivered[0], lambda: {"virtual_s": env.now})
"""
)

# The least a ring of this shape costs in Python, with no simulator: one heap of (time, seq, ...) tuples, a
# random.Random per link drawing the latency, a fresh body dict per heartbeat and a counter per node. What
# its 10,000-node message costs over its 1,000-node one is what this machine's caches charge any Python
# model of the ring, capsim's and SimPy's included.
FLOOR_RING = (
    _PEAK
    + r"""
import heapq, json, random, sys, time
nodes = int(sys.argv[1])
start = time.perf_counter()
class Node:
    __slots__ = ("name", "next", "link_rng", "heard")
ring = []
for i in range(nodes):
    node = Node()
    node.name, node.link_rng, node.heard = f"n{i:05d}", random.Random(i), 0
    ring.append(node)
for i, node in enumerate(ring):
    node.next = ring[(i + 1) % nodes]
BEAT, DELIVER, PERIOD = 0, 1, 100_000_000
heap = [(PERIOD, i, BEAT, node, None) for i, node in enumerate(ring)]
seq, now, delivered = nodes, 0, [0]
def advance(until_s):
    global seq, now
    until, push, pop = round(until_s * 1e9), heapq.heappush, heapq.heappop
    while heap and heap[0][0] <= until:
        now, _, kind, node, body = pop(heap)
        if kind == BEAT:
            push(heap, (now + PERIOD, seq, BEAT, node, None))
            latency = round(node.link_rng.uniform(1e6, 3e6))
            push(heap, (now + latency, seq + 1, DELIVER, node.next, {"type": "heartbeat", "from": node.name}))
            seq += 2
        else:
            node.heard += 1
            delivered[0] += 1
serve(start, advance, lambda: delivered[0], lambda: {"virtual_s": now / 1e9})
"""
)

CAP_MEMORY = (
    _PEAK
    + r"""
import json, sys
from capsim.cap import Plan, choose, run_config
nodes, duration = int(sys.argv[1]), float(sys.argv[2])
ops = 0
for config in choose(None):
    plan = Plan(seed=1, nodes=nodes, duration=duration, partition_at=duration / 4,
                heal_at=max(duration / 2, duration / 4 + Plan().timeout))  # no shorter than the timeout
    ops = max(ops, len(run_config(config, plan).history))
print(json.dumps({"nodes": nodes, "duration": duration, "ops": ops, "peak_mb": peak_mb()}))
"""
)


def _run(code: str, *args, pure: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if pure:  # the pure-Python scheduler core (emulator.speedups)
        env["CAPSIM_PURE_PYTHON"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=True, env=env, cwd=ROOT
    )
    return json.loads(out.stdout)


class Ring:
    """One ring in a process of its own, built and warmed up, that runs measured windows on request.

    All the rings of a comparison stay resident side by side, so their
    windows can take turns a fraction of a second apart (see
    ``scripts/bench.py``'s ``scale``). Each window first runs ``rewarm``
    virtual seconds unmeasured, which brings the process's memory back into
    the caches after the other rings' turns.
    """

    def __init__(self, key: str, code: str, nodes: int, *args: object, pure: bool = False, tree: Path = ROOT) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree))
        if pure:  # the pure-Python scheduler core (emulator.speedups)
            env["CAPSIM_PURE_PYTHON"] = "1"
        self.key, self.nodes, self.windows = key, nodes, []
        command = [sys.executable, "-c", code, str(nodes), *map(str, args), str(WARM_S)]
        # A session of its own: Ctrl-C at the terminal reaches the script, which ends its rings (stop), not
        # each ring with a traceback of its own. A ring whose script is gone sees its stdin end, and ends.
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tree, start_new_session=True
        )
        try:
            self.built = self._answer()  # None: a tree without Node.every (a baseline run)
        except BaseException:  # Ctrl-C while it builds: its caller never gets it to stop
            self.stop()
            raise

    def window(self, rewarm: float, length: float) -> dict:
        """Run ``rewarm`` virtual seconds, then ``length`` measured: run_s, delivered, us_per_msg."""
        self._proc.stdin.write(f"window {rewarm!r} {length!r}\n")
        self._proc.stdin.flush()
        self.windows.append(self._answer())
        return self.windows[-1]

    def stop(self) -> None:
        """End the process now, whatever it was doing (its row is lost: see ``close``)."""
        self._proc.kill()
        self._proc.wait()

    def close(self) -> dict:
        """End the process; its row: nodes, build_s, windows' totals and median cost, peak_mb, virtual_s (digest)."""
        final = self._answer(stdin="end\n") if self.built is not None else None
        self._proc.wait()
        if final is None:
            return None
        costs = sorted(w["us_per_msg"] for w in self.windows)
        return {
            "nodes": self.nodes,
            "build_s": self.built["build_s"],
            "run_s": sum(w["run_s"] for w in self.windows),
            "delivered": sum(w["delivered"] for w in self.windows),
            "us_per_msg": statistics.median(costs),
            "us_per_msg_best": costs[0],
            **final,
        }

    def _answer(self, stdin: str | None = None) -> dict | None:
        if stdin is not None:
            self._proc.stdin.write(stdin)
            self._proc.stdin.close()
        line = self._proc.stdout.readline()
        if not line:
            self._proc.kill()
            raise RuntimeError(f"the {self.key} ring's process ended without an answer (exit {self._proc.wait()})")
        return json.loads(line)


def capsim_ring(key: str, nodes: int, model: str = "sleep", pure: bool = False, tree: Path = ROOT) -> Ring:
    """The capsim heartbeat ring (``model`` "sleep" or "every") in a process of its own, on the pure-Python
    core if ``pure`` (its ``built`` is None in a tree without Node.every), importing capsim from ``tree``."""
    return Ring(key, CAPSIM_RING, nodes, model, pure=pure, tree=tree)


def simpy_ring(key: str, nodes: int) -> Ring | None:
    """The same ring in SimPy (None if SimPy is not installed)."""
    try:
        import simpy  # noqa: F401
    except ImportError:
        return None
    return Ring(key, SIMPY_RING, nodes)


def floor_ring(key: str, nodes: int) -> Ring:
    """The same ring as a bare heapq loop in plain Python, no simulator (``FLOOR_RING``)."""
    return Ring(key, FLOOR_RING, nodes)


def baseline_memory_mb() -> float:
    """The peak memory of a process that only imports emulator, measured like the ring's."""
    return _run(_PEAK + "import json, emulator\nprint(json.dumps(peak_mb()))")


def cap_memory_model(sizes: tuple[int, ...], durations: tuple[float, float]) -> dict:
    """Fit ``capsim.limits.MemoryModel`` to peaks of capsim cap runs (all default configurations).

    ``sizes`` (at least three node counts) at the shorter duration give the
    per-node and per-pair costs (least squares on peak = a + b n + c n^2);
    five nodes at both durations give the cost per history operation.
    """
    short, long = durations
    runs = [_run(CAP_MEMORY, n, short) for n in sizes]
    a, b, c = _fit_quadratic([r["nodes"] for r in runs], [r["peak_mb"] for r in runs])
    b, c = max(b, 0.0), max(c, 0.0)  # a noisy fit of small runs can dip below zero; costs cannot
    few, many = _run(CAP_MEMORY, 5, short), _run(CAP_MEMORY, 5, long)
    op_kb = max(0.0, (many["peak_mb"] - few["peak_mb"]) * 1024 / max(1, many["ops"] - few["ops"]))
    return {"runs": runs + [few, many], "base_mb": a, "node_mb": b, "pair_kb": c * 1024, "op_kb": op_kb}


def _fit_quadratic(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares a + b x + c x^2 (normal equations, solved by Cramer's rule)."""
    sums = [sum(x**k for x in xs) for k in range(5)]
    rhs = [sum(y * x**k for x, y in zip(xs, ys)) for k in range(3)]
    matrix = [[sums[i + j] for j in range(3)] for i in range(3)]

    def det(m):
        return (
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        )

    whole = det(matrix)
    out = []
    for col in range(3):
        m = [row[:] for row in matrix]
        for row in range(3):
            m[row][col] = rhs[row]
        out.append(det(m) / whole)
    return out[0], out[1], out[2]


def main(argv: list[str] | None = None) -> int:
    """One ring, resident in its own process: ``--windows`` measured windows after a warm-up, as JSON."""
    import argparse

    parser = argparse.ArgumentParser(
        description="One heartbeat ring (capsim's two ways, SimPy's, or a bare heapq loop's) in a process of its own: "
        "the cost per "
        "message of each measured window, and the ring's peak memory. scripts/bench.py --only scale "
        "runs them all side by side."
    )
    parser.add_argument("--nodes", type=int, default=1000, help="ring size (default 1000)")
    parser.add_argument(
        "--model",
        choices=("sleep", "every", "simpy", "floor"),
        default="sleep",
        help="capsim's two ways, SimPy's, or the plain-Python floor (a bare heapq loop); default: sleep",
    )
    parser.add_argument("--pure", action="store_true", help="capsim on its pure-Python core")
    parser.add_argument("--windows", type=int, default=5, help="measured windows (default 5)")
    parser.add_argument("--seconds", type=float, default=1.0, help="virtual seconds a window (default 1)")
    args = parser.parse_args(argv)
    if args.nodes < 2 or args.windows < 1 or not args.seconds > 0:
        parser.error("--nodes must be at least 2, --windows at least 1 and --seconds above 0")
    if args.model == "simpy":
        ring = simpy_ring("simpy", args.nodes)
        if ring is None:
            parser.error("SimPy is not installed: pip install simpy")
    elif args.model == "floor":
        ring = floor_ring("floor", args.nodes)
    else:
        ring = capsim_ring(args.model, args.nodes, args.model, pure=args.pure)
    try:
        for _ in range(args.windows):
            ring.window(0.1, args.seconds)
    finally:
        row = ring.close()
    print(json.dumps({**row, "us_per_msg_windows": [w["us_per_msg"] for w in ring.windows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
