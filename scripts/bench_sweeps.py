"""Sweep benchmarks for scripts/bench.py: the same seed sweep on one worker and on two.

Each sweep is the real command (``python -m capsim ...``) in a fresh process,
timed from start to exit, so worker start-up (spawn, imports) is counted.
One worker runs every seed in the command's own process; two start two
persistent workers. The repeats alternate which of the two runs first. The
machine's load average is read before each run, and ``capacity`` measures,
in the same run, what two processes can gain here at all: the same
pure-Python loop in one process, then in two at once. On an idle 2-core
machine that is 2x; on a shared one someone else's work takes the second
core, and a sweep cannot beat it.

``compile_bytecode`` writes capsim's bytecode (``__pycache__``) before any
run is timed, as ``pip install`` does for an installed package; every timed
command (one worker and two alike) then loads it instead of compiling about
sixty modules from source, which a machine that sets
``PYTHONDONTWRITEBYTECODE`` (this VM does) would make each run do again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["capacity", "compile_bytecode", "sweep"]

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("emulator", "nodes", "faults", "capsim")


def compile_bytecode() -> None:
    """Compile every module of capsim's packages into its ``__pycache__`` (the ones already there are kept)."""
    import compileall

    for package in PACKAGES:
        if not compileall.compile_dir(ROOT / package, quiet=1):
            raise RuntimeError(f"compileall could not compile {ROOT / package}")


def _timed(argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the bytecode is written already (compile_bytecode); read it
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "capsim", *argv], capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if out.returncode not in (0, 1):
        raise RuntimeError(f"capsim {' '.join(argv)} exited {out.returncode}: {out.stderr[-2000:]}")
    return elapsed


def _burn(n: int) -> None:
    x = 0
    for i in range(n):
        x += i


def capacity(n: int = 20_000_000, repeats: int = 2) -> float:
    """Throughput of two processes over one on a CPU-bound loop (best of ``repeats``): 2.0 on two idle cores."""
    from multiprocessing import get_context

    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        _burn(n)
        one = time.perf_counter() - start
        with get_context("spawn").Pool(2) as pool:
            pool.map(_burn, [1000, 1000])  # both processes up before the clock starts
            start = time.perf_counter()
            pool.map(_burn, [n, n], chunksize=1)
            two = time.perf_counter() - start
        best = max(best, 2 * one / two)
    return best


def sweep(label: str, argv: list[str], workers: tuple[int, ...] = (1, 2), repeats: int = 1) -> dict:
    """Wall seconds of ``capsim ARGV --jobs W`` for each W (best of ``repeats``), and the speed-up."""
    walls: dict[int, float] = {}
    loads = []
    for repeat in range(repeats):
        # One worker first, then two, then two first: a machine that slows down or speeds up during the
        # repeats (someone else's work starting or stopping) does not favour either.
        for w in workers if repeat % 2 == 0 else workers[::-1]:
            loads.append(os.getloadavg()[0])
            wall = _timed([*argv, "--jobs", str(w)])
            walls[w] = min(walls.get(w, wall), wall)
    first, last = workers[0], workers[-1]
    return {
        "label": label,
        "command": "capsim " + " ".join(argv),
        "walls": walls,
        "speedup": walls[first] / walls[last],
        "load_avg": max(loads),
    }


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(
        description="Time `capsim chaos scenarios/lin-kv-partitions.toml --seeds 1-20` on one worker and on two."
    ).parse_args()  # --help, and no stray arguments
    compile_bytecode()
    print(sweep("chaos", ["chaos", "scenarios/lin-kv-partitions.toml", "--seeds", "1-20"]))
