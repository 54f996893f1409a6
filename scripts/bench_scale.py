"""Scale benchmarks for scripts/bench.py: a heartbeat ring in capsim and in SimPy, and memory per node.

The model: ``nodes`` nodes in a ring; every 100 ms each sends a heartbeat to
the next one over a link of Uniform(1 ms, 3 ms) latency, and the receiver
counts it. capsim's version is ordinary node code, with message copies and
the trace digest on, written two ways: a spawned task looping on
``asyncio.sleep`` (``sleep``), and a periodic timer, ``self.every(0.1,
self.beat)`` (``every``); both beat at the same times. SimPy's is the network
idiom of SimPy's own examples: a process per node that times out and hands
the message to a delivery process, which times out for the latency and puts
it in the receiver's ``Store``; a process per node takes from its store and
counts.

Each run is a fresh process, so its peak memory (VmHWM) is its own. Its wall
time is split into a warm-up and the run proper, and the cost per message is
the run's wall time over the messages it delivered. The warm-up is the same
in all three: building the cluster and the first heartbeat round (to
``WARM_S`` virtual seconds), in which every link is made and carries its
first message. What a link costs once (its route, its random stream, its
trace recorder) is a cost per node, not per message: counted in the run, it
would weigh 30 times more in a 2-second run of 10,000 nodes than in a
60-second run of 1,000, and the per-message comparison between the two
sizes would measure the runs' lengths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["baseline_memory_mb", "cap_memory_model", "capsim_ring", "simpy_ring"]

ROOT = Path(__file__).resolve().parents[1]
WARM_S = 0.15  # virtual seconds: the first heartbeats leave at 0.1 and arrive by 0.103

_PEAK = r"""
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
"""

CAPSIM_RING = (
    _PEAK
    + r"""
import asyncio, bisect, json, sys, time
import emulator as em
nodes, seconds, model = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
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
sim.run(until=float(sys.argv[4]))
built = time.perf_counter()
before = sim.network.stats["delivered"]
sim.run(until=seconds)
digest = sim.trace_digest()
end = time.perf_counter()
delivered = sim.network.stats["delivered"] - before
print(json.dumps({"build_s": built - start, "run_s": end - built, "delivered": delivered,
                  "us_per_msg": (end - built) / delivered * 1e6, "peak_mb": peak_mb(), "virtual_s": sim.now,
                  "digest": digest}))
"""
)

SIMPY_RING = (
    _PEAK
    + r"""
import json, random, sys, time
import simpy
nodes, seconds = int(sys.argv[1]), float(sys.argv[2])
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
env.run(until=float(sys.argv[3]))
built = time.perf_counter()
env.run(until=seconds)
end = time.perf_counter()
print(json.dumps({"build_s": built - start, "run_s": end - built, "delivered": delivered[0],
                  "us_per_msg": (end - built) / delivered[0] * 1e6, "peak_mb": peak_mb(), "virtual_s": env.now}))
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
    plan = Plan(seed=1, nodes=nodes, duration=duration, partition_at=duration / 4, heal_at=duration / 2)
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


def capsim_ring(nodes: int, seconds: float, model: str = "sleep", pure: bool = False) -> dict | None:
    """The capsim heartbeat ring (``model`` "sleep" or "every") in a fresh process, on the pure-Python
    core if ``pure``: build_s, run_s, delivered, us_per_msg, peak_mb (None: this tree has no Node.every)."""
    out = _run(CAPSIM_RING, nodes, seconds, model, WARM_S, pure=pure)
    return None if out is None else {"nodes": nodes, "model": model, **out}


def simpy_ring(nodes: int, seconds: float) -> dict | None:
    """The same ring in SimPy (None if SimPy is not installed)."""
    try:
        import simpy  # noqa: F401
    except ImportError:
        return None
    return {"nodes": nodes, **_run(SIMPY_RING, nodes, seconds, WARM_S)}


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


if __name__ == "__main__":
    print(
        json.dumps(
            {
                "capsim": capsim_ring(1000, 10.0),
                "every": capsim_ring(1000, 10.0, "every"),
                "simpy": simpy_ring(1000, 10.0),
            },
            indent=2,
        )
    )
