"""A seeded run of an aiohttp service and its clients under every fault; prints one line per seed.

Run as a script (``python hosts_run.py 1 2 3``) so tests can compare runs across processes with
different PYTHONHASHSEED values: each line is the seed, the trace digest and a hash of every response.
"""

import hashlib
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import emulator as em
from tests.common.hosts import counter_app, poller


def run(seed: int) -> tuple[str, str]:
    """(trace digest, sha256 of the clients' logs) of one run under a hostile network, a partition and a crash."""
    sim = em.Simulation(seed=seed, latency=em.Pareto(0.001, 1.5, 1.0), loss=0.02, duplicate=0.1, reorder=0.2)
    logs: dict[str, list] = {"c1": [], "c2": []}
    sim.add_host("web", counter_app, delay=0.01)
    for name, log in logs.items():
        sim.add_host(name, poller, url="http://web:8080/slow", log=log, every=0.2, server=False)
    sim.run(until=2)
    sim.network.partition(["web"], ["c1"])
    sim.run(until=4)
    sim.network.heal()
    sim.crash("web")
    sim.run(until=5)
    sim.restart("web")
    sim.skew("c2", 3.0, 0.01)
    sim.run(until=8)
    sim.close()
    return sim.trace_digest(), hashlib.sha256(repr(logs).encode()).hexdigest()


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, *run(int(arg)))
