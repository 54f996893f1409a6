"""Cache benchmark for scripts/bench.py: the heartbeat ring's last-level cache misses per message, simulated.

The wall-clock cost of a 10,000-node ring against a 1,000-node one (bench.py's
scale part) moves by 2x between runs minutes apart on a shared host, because
the larger ring's memory traffic depends on how much of the last-level cache
the host's other work leaves it. This part takes the host out: it runs the
same ring (``Node.every``, bench_scale's model, in a process of its own)
under valgrind's cachegrind, which simulates a last-level cache of a given
size, and counts the misses per delivered message. The count is the same on
any machine and at any load (the run is deterministic), so it shows where the
ring's working set lies: a last level that holds it misses about once per
message or less; one that does not, tens of times.

Each figure is a difference of two runs of the same seed, to ``WARM_S + short``
and to ``WARM_S + long`` virtual seconds: building the ring, the warm-up and
the interpreter's start are the same in both and cancel out, so the figure is
the steady state's misses over the messages delivered between the two ends.
It needs valgrind (``apt install valgrind``); without it the part says so and
gives no figures. A 10,000-node run takes about a minute under cachegrind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_scale import CAPSIM_RING, WARM_S

__all__ = ["VALGRIND", "cache_misses", "ll_misses", "misses_per_message"]

ROOT = Path(__file__).resolve().parents[1]
VALGRIND = shutil.which("valgrind")
_LL_MISSES = re.compile(r"LL misses:\s+([\d,]+)")


def ll_misses(log: str) -> int:
    """The total last-level misses (reads and writes) in a cachegrind summary."""
    found = _LL_MISSES.search(log)
    if found is None:
        raise ValueError("no 'LL misses:' line in the cachegrind output:\n" + log[-2000:])
    return int(found.group(1).replace(",", ""))


def _run(nodes: int, length: float, ll_bytes: int) -> tuple[int, int]:
    """(LL misses, messages delivered) of one ring run: built, warmed to WARM_S, then ``length`` virtual s."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [
        VALGRIND or "valgrind",
        "--tool=cachegrind",
        "--cache-sim=yes",
        f"--LL={ll_bytes},16,64",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-c",
        CAPSIM_RING,
        str(nodes),
        "every",
        str(WARM_S),
    ]
    out = subprocess.run(
        command, input=f"window 0 {length!r}\nend\n", capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    window = json.loads(out.stdout.splitlines()[1])  # the first line says the ring is built
    return ll_misses(out.stderr), window["delivered"]


def misses_per_message(nodes: int, ll_bytes: int, short: float, long: float) -> float:
    """Last-level misses per message delivered between ``WARM_S + short`` and ``WARM_S + long`` virtual seconds."""
    with ThreadPoolExecutor(2) as pool:  # the two runs at once, a core each
        (m1, d1), (m2, d2) = pool.map(lambda length: _run(nodes, length, ll_bytes), (short, long))
    if d2 <= d1:
        raise ValueError(f"no messages between the two ends ({d1} and {d2} delivered)")
    return (m2 - m1) / (d2 - d1)


def cache_misses(quick: bool = False) -> dict:
    """Misses per message of the 1,000- and 10,000-node rings for last levels of 8, 16 and 32 MB."""
    if VALGRIND is None:
        return {"error": "valgrind is not installed (apt install valgrind): no simulated-cache figures"}
    small, large = (200, 2000) if quick else (1000, 10_000)
    sizes_mb = (4, 16) if quick else (8, 16, 32)
    rows = []
    for nodes in (small, large):
        # Three rounds between the two ends for the large ring (30,000 messages at 10,000 nodes), twenty for
        # the small one (20,000 at 1,000).
        short, long = (0.2, 0.5) if nodes == large else (0.2, 2.2)
        for mb in sizes_mb:
            rows.append(
                {"nodes": nodes, "ll_mb": mb, "misses_per_msg": misses_per_message(nodes, mb << 20, short, long)}
            )
    return {"model": "every", "rows": rows}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="The heartbeat ring's simulated last-level cache misses per message (needs valgrind)."
    )
    parser.add_argument("--quick", action="store_true", help="small rings, for a smoke run")
    print(json.dumps(cache_misses(parser.parse_args().quick), indent=2))
